// Package maint keeps the maintenance and calibration windows of a gateway's devices
// (issue 16): while a technician services or calibrates a device, its readings are
// still stored and forwarded unchanged, but they are kept out of the noise, air and
// water derivations (gateway/derive), and the HJ 212 uplink flags them M
// (maintenance) or C (calibration) instead of N (HJ 212-2017 Table 8, the data
// flags: M and C mark a value invalid for the platform's statistics).
//
// A Log holds, per device, its windows in time order: kind, reason, start and, once
// stopped, end, all on the gateway's clock (internal/clock). A reading belongs to the
// window whose [Start, End) holds its measurement time (At); an active window has no
// end yet and holds every time from its start on. The log is one small JSON file in
// the state directory, written atomically (temporary file, fsync, rename, fsync of the
// directory) on every Start and Stop, and read once at start (Open).
package maint

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/envgate/envgate/gateway/reading"
)

// Kind is what is being done to a device.
type Kind uint8

const (
	// Maintenance is servicing (cleaning, reagents, repairs): HJ 212 flag M.
	Maintenance Kind = iota + 1
	// Calibration is a zero or span check or a calibration: HJ 212 flag C.
	Calibration
)

// String returns "maintenance" or "calibration".
func (k Kind) String() string {
	switch k {
	case Maintenance:
		return "maintenance"
	case Calibration:
		return "calibration"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Flag returns the HJ 212-2017 data flag of readings in a window of kind k: "M" or "C"
// (HJ 212-2017 Table 8); "" for an invalid kind.
func (k Kind) Flag() string {
	switch k {
	case Maintenance:
		return "M"
	case Calibration:
		return "C"
	}
	return ""
}

// ParseKind parses "maintenance" or "calibration" (also "M" and "C", any case).
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "maintenance", "m":
		return Maintenance, nil
	case "calibration", "c":
		return Calibration, nil
	}
	return 0, fmt.Errorf("kind %q: want maintenance or calibration", s)
}

// MarshalText encodes k as its String.
func (k Kind) MarshalText() ([]byte, error) {
	if k != Maintenance && k != Calibration {
		return nil, fmt.Errorf("invalid maintenance kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes what MarshalText (or ParseKind) accepts.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Window is one maintenance or calibration window of a device.
type Window struct {
	Device string    `json:"device"`
	Kind   Kind      `json:"kind"`
	Reason string    `json:"reason,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"` // zero while the window is active
}

// Active reports whether w has not been stopped.
func (w Window) Active() bool { return w.End.IsZero() }

// Covers reports whether a reading measured at t falls in w: Start ≤ t < End, or
// Start ≤ t while w is active.
func (w Window) Covers(t time.Time) bool {
	return !t.Before(w.Start) && (w.End.IsZero() || t.Before(w.End))
}

// MaxReason bounds a window's reason, in bytes: a note for the log book, not a report.
const MaxReason = 200

// MaxPerDevice is how many windows the log keeps per device: the newest. A device
// serviced every day keeps three months of them; the file stays a few hundred KiB at
// most for a box of a hundred devices.
const MaxPerDevice = 100

// Errors of Start and Stop, checked with errors.Is.
var (
	// ErrNotInMaintenance: Stop of a device that has no active window.
	ErrNotInMaintenance = errors.New("not in maintenance or calibration")
	// ErrInvalid: a device name, kind or reason the log cannot hold.
	ErrInvalid = errors.New("invalid maintenance window")
)

// Log is the maintenance and calibration windows of a gateway's devices. Its methods
// are safe for concurrent use. Readers (At, Active, Windows) take no lock: they read an
// immutable snapshot that Start and Stop replace, so At, called for every reading,
// neither waits for a file write nor allocates.
type Log struct {
	path string // "" keeps the log in memory only

	mu   sync.Mutex            // serialises Start and Stop (and their file writes)
	snap atomic.Pointer[index] // never nil
}

// index is an immutable snapshot: every device's windows, oldest first, not
// overlapping.
type index struct {
	byDevice map[string][]Window
}

// New returns an empty log kept in memory only (tests, replay without a state
// directory).
func New() *Log {
	l := &Log{}
	l.snap.Store(&index{byDevice: map[string][]Window{}})
	return l
}

// validate checks a window as Start makes it and Open reads it.
func validate(w Window) error {
	var errs []error
	if err := reading.CheckName(w.Device); err != nil {
		errs = append(errs, fmt.Errorf("device %q: %w", w.Device, err))
	}
	if w.Kind != Maintenance && w.Kind != Calibration {
		errs = append(errs, fmt.Errorf("kind %d: want maintenance or calibration", uint8(w.Kind)))
	}
	if len(w.Reason) > MaxReason {
		errs = append(errs, fmt.Errorf("reason: longer than %d bytes", MaxReason))
	} else if !utf8.ValidString(w.Reason) || strings.ContainsFunc(w.Reason, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		errs = append(errs, errors.New("reason: must be one line of UTF-8 text"))
	}
	if w.Start.IsZero() {
		errs = append(errs, errors.New("start is zero"))
	}
	if !w.End.IsZero() && w.End.Before(w.Start) {
		errs = append(errs, fmt.Errorf("end %s before start %s", w.End.Format(time.RFC3339), w.Start.Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Start begins a window of kind on device at t (the gateway's clock) and returns it.
//
// A device already in a window of the same kind and reason stays in it: Start returns
// that window unchanged, so a repeated request (a retry after a lost answer) does not
// split it. A device in a window of another kind or reason gets a new one: the old
// window ends at t and the new one starts at t (maintenance followed by calibration is
// one visit, two windows).
//
// The windows of a device never overlap and never go back in time: a t before the
// device's latest window start or end (the clock stepped back) is taken as that
// boundary.
func (l *Log) Start(device string, kind Kind, reason string, t time.Time) (Window, error) {
	w := Window{Device: device, Kind: kind, Reason: reason, Start: t.UTC().Round(0)}
	if err := validate(w); err != nil {
		return Window{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.snap.Load()
	ws := old.byDevice[device]
	if n := len(ws); n > 0 {
		last := ws[n-1]
		if last.Active() && last.Kind == kind && last.Reason == reason {
			return last, nil
		}
		w.Start = latest(w.Start, last.Start, last.End)
	}
	next := slices.Clone(ws)
	if n := len(next); n > 0 && next[n-1].Active() {
		next[n-1].End = w.Start
	}
	next = append(next, w)
	if err := l.replace(old, device, next); err != nil {
		return Window{}, err
	}
	return w, nil
}

// Stop ends device's active window at t (the gateway's clock) and returns it. A device
// without one is an error wrapping ErrNotInMaintenance. A t before the window's start
// (the clock stepped back) ends it at its start.
func (l *Log) Stop(device string, t time.Time) (Window, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.snap.Load()
	ws := old.byDevice[device]
	n := len(ws)
	if n == 0 || !ws[n-1].Active() {
		return Window{}, fmt.Errorf("device %q: %w", device, ErrNotInMaintenance)
	}
	next := slices.Clone(ws)
	next[n-1].End = latest(t.UTC().Round(0), next[n-1].Start)
	if err := l.replace(old, device, next); err != nil {
		return Window{}, err
	}
	return next[n-1], nil
}

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// replace makes ws (trimmed to MaxPerDevice) device's windows: it writes the file,
// then publishes the new snapshot, so a failed write changes nothing. l.mu is held.
func (l *Log) replace(old *index, device string, ws []Window) error {
	if len(ws) > MaxPerDevice {
		ws = ws[len(ws)-MaxPerDevice:]
	}
	next := &index{byDevice: make(map[string][]Window, len(old.byDevice)+1)}
	for d, w := range old.byDevice {
		next.byDevice[d] = w
	}
	next.byDevice[device] = ws
	if l.path != "" {
		if err := writeFile(l.path, next.list()); err != nil {
			return err
		}
	}
	l.snap.Store(next)
	return nil
}

// Active returns device's active window, if it has one.
func (l *Log) Active(device string) (Window, bool) {
	ws := l.snap.Load().byDevice[device]
	if n := len(ws); n > 0 && ws[n-1].Active() {
		return ws[n-1], true
	}
	return Window{}, false
}

// At returns the window of device that holds a reading measured at t, if one does. It
// is called for every reading: it takes no lock and allocates nothing.
func (l *Log) At(device string, t time.Time) (Window, bool) {
	ws := l.snap.Load().byDevice[device]
	// The last window starting at or before t is the only one that can hold it.
	i, _ := slices.BinarySearchFunc(ws, t, func(w Window, t time.Time) int {
		if w.Start.After(t) {
			return 1
		}
		return -1
	})
	if i > 0 && ws[i-1].Covers(t) {
		return ws[i-1], true
	}
	return Window{}, false
}

// Covers reports whether a window of device holds a reading measured at t: At without
// the window, in the shape of derive.Set.Exclude.
func (l *Log) Covers(device string, t time.Time) bool {
	_, ok := l.At(device, t)
	return ok
}

// Windows returns every window the log holds, by device, then oldest first.
func (l *Log) Windows() []Window { return l.snap.Load().list() }

// list returns the windows of ix, by device, then oldest first.
func (ix *index) list() []Window {
	var out []Window
	for _, d := range slices.Sorted(maps.Keys(ix.byDevice)) {
		out = append(out, ix.byDevice[d]...)
	}
	return out
}

// build makes an index of ws, checking each window and that a device's windows are in
// order and do not overlap.
func build(ws []Window) (*index, error) {
	ix := &index{byDevice: map[string][]Window{}}
	for i, w := range ws {
		if err := validate(w); err != nil {
			return nil, fmt.Errorf("windows[%d]: %w", i, err)
		}
		prev := ix.byDevice[w.Device]
		if n := len(prev); n > 0 {
			p := prev[n-1]
			if p.Active() || w.Start.Before(p.End) {
				return nil, fmt.Errorf("windows[%d]: device %q: starts %s, before its previous window ends", i, w.Device, w.Start.Format(time.RFC3339Nano))
			}
		}
		w.Start = w.Start.UTC()
		if !w.End.IsZero() {
			w.End = w.End.UTC()
		}
		ix.byDevice[w.Device] = append(prev, w)
	}
	for d, dws := range ix.byDevice {
		if len(dws) > MaxPerDevice {
			ix.byDevice[d] = dws[len(dws)-MaxPerDevice:]
		}
	}
	return ix, nil
}
