// Package window keeps the time windows the aggregators of gateway/noise, gateway/air
// and gateway/water derive their series over: a Series of consecutive windows on one
// device's clock, each open until its end plus a lateness, with a seen-set that makes
// every window count a reading of one device, quantity and time once.
//
// Inputs are at-least-once (an MQTT redelivery after a reconnect, a source re-sending a
// batch, a replayed file with overlapping exports, the buffer's recent readings read
// again after a restart), so a derivation must give the same result whether a reading
// arrives once or several times: a window records the Key of each reading it counts
// and refuses the same Key again (Window.Once). The seen-set belongs to the window and
// goes with it when it closes, so memory is bounded by the open windows; a reading
// whose window has closed is late, not a duplicate.
//
// The Series is the one copy of the open/find/advance bookkeeping: windows open as the
// clock reaches them, close oldest first once end + Lateness is not after the clock
// (Advance merges several series in order of their ends), and a jump of the clock over
// more than MaxEmpty empty windows closes only the newest MaxEmpty of them.
package window

import (
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// A Key identifies one reading for deduplication: the same device, quantity and time
// is the same reading, whatever its value (the first one counts).
type Key struct {
	Site, Device, Quantity string
	Time                   int64 // Unix nanoseconds
}

// KeyOf returns the Key of r.
func KeyOf(r reading.Reading) Key {
	return Key{Site: r.Site, Device: r.Device, Quantity: r.Quantity, Time: r.Time.UnixNano()}
}

// A Window is one window of a Series: [Start, End) and the aggregator's data.
type Window[W any] struct {
	Start, End time.Time
	Data       W
	seen       map[Key]struct{}
}

// Once records k in w and reports whether it is new: false means w has already counted
// a reading with that Key, and the caller must not count it again.
func (w *Window[W]) Once(k Key) bool {
	if _, ok := w.seen[k]; ok {
		return false
	}
	if w.seen == nil {
		w.seen = map[Key]struct{}{}
	}
	w.seen[k] = struct{}{}
	return true
}

// Config describes the windows of a Series.
type Config[W any] struct {
	// Start returns the start of the window containing t (aligned to the clock, in the
	// aggregator's time zone); End the end of the window that starts at start, which is
	// also the start of the next one.
	Start func(t time.Time) time.Time
	End   func(start time.Time) time.Time
	// Make returns the data of a new window; nil leaves it the zero W.
	Make func(start, end time.Time) W
	// Lateness is how long after its end a window still takes readings.
	Lateness time.Duration
	// MaxEmpty bounds the empty windows one jump of the clock closes one by one; older
	// ones are skipped (Skipped counts them). ≤ 0: no bound.
	MaxEmpty int
}

// A Series is the open windows of one kind on one clock, contiguous and ascending. It is
// not safe for concurrent use.
type Series[W any] struct {
	cfg     Config[W]
	started bool
	open    []*Window[W]
	next    time.Time // start of the window after the last opened
	skipped int
}

// New returns an empty Series; the first Begin opens its windows.
func New[W any](cfg Config[W]) *Series[W] {
	return &Series[W]{cfg: cfg}
}

// Started reports whether Begin has been called.
func (s *Series[W]) Started() bool { return s.started }

// Begin opens the window containing t, the first of the Series.
func (s *Series[W]) Begin(t time.Time) {
	s.started = true
	s.next = s.cfg.Start(t)
	s.openUntil(t)
}

// Find returns the open window containing t, or nil (t is before the oldest open
// window: late; or after the newest: the clock has not reached it).
func (s *Series[W]) Find(t time.Time) *Window[W] {
	for i := len(s.open) - 1; i >= 0; i-- {
		if w := s.open[i]; !t.Before(w.Start) {
			if t.Before(w.End) {
				return w
			}
			return nil
		}
	}
	return nil
}

// Oldest returns the start of the oldest window not closed.
func (s *Series[W]) Oldest() time.Time {
	if len(s.open) > 0 {
		return s.open[0].Start
	}
	return s.next
}

// Skipped returns how many empty windows jumps of the clock skipped without closing
// them: exact for windows of one length, else counted in the length of the first one
// skipped.
func (s *Series[W]) Skipped() int { return s.skipped }

// Advance moves the Series to clock t: see the function Advance.
func (s *Series[W]) Advance(t time.Time, close func(w *Window[W])) {
	Advance(t, func(_ int, w *Window[W]) { close(w) }, s)
}

// Advance moves every series of ss to clock t: it hands to close, in order of their
// ends (at equal ends in the order of ss), every window whose end + Lateness is not
// after t, the open ones and then the empty ones the clock passed (at most MaxEmpty of
// those per series, the newest), and then opens each series' windows up to the one
// containing t. k is the index in ss of the series the window belongs to. close must
// not change the series.
func Advance[W any](t time.Time, close func(k int, w *Window[W]), ss ...*Series[W]) {
	for _, s := range ss {
		s.skip(t)
	}
	for {
		best := -1
		var bestEnd time.Time
		for k, s := range ss {
			if end, ok := s.due(t); ok && (best < 0 || end.Before(bestEnd)) {
				best, bestEnd = k, end
			}
		}
		if best < 0 {
			break
		}
		close(best, ss[best].pop())
	}
	for _, s := range ss {
		s.openUntil(t)
	}
}

// due returns the end of the oldest window not closed and whether it is due at t.
func (s *Series[W]) due(t time.Time) (time.Time, bool) {
	if !s.started {
		return time.Time{}, false
	}
	end := s.cfg.End(s.next)
	if len(s.open) > 0 {
		end = s.open[0].End
	}
	return end, !end.Add(s.cfg.Lateness).After(t)
}

// pop removes and returns the oldest window not closed, opening it first if needed.
func (s *Series[W]) pop() *Window[W] {
	if len(s.open) == 0 {
		return s.newWindow()
	}
	w := s.open[0]
	s.open[0] = nil
	s.open = s.open[1:]
	return w
}

// skip moves the start of the next window past all but the newest MaxEmpty of the empty
// windows due at t.
func (s *Series[W]) skip(t time.Time) {
	cutoff := t.Add(-s.cfg.Lateness) // windows ending at or before it are due
	if s.cfg.MaxEmpty <= 0 || !s.started || s.cfg.End(s.next).After(cutoff) {
		return
	}
	first := s.cfg.Start(cutoff.Add(-1)) // the newest due window, walking back
	if s.cfg.End(first).After(cutoff) {
		first = s.cfg.Start(first.Add(-1))
	}
	for i := 1; i < s.cfg.MaxEmpty && first.After(s.next); i++ {
		first = s.cfg.Start(first.Add(-1))
	}
	if !first.After(s.next) {
		return
	}
	if d := s.cfg.End(s.next).Sub(s.next); d > 0 {
		s.skipped += int(first.Sub(s.next) / d)
	}
	s.next = first
}

func (s *Series[W]) newWindow() *Window[W] {
	w := &Window[W]{Start: s.next, End: s.cfg.End(s.next)}
	if s.cfg.Make != nil {
		w.Data = s.cfg.Make(w.Start, w.End)
	}
	s.next = w.End
	return w
}

// openUntil opens the windows up to the one containing t.
func (s *Series[W]) openUntil(t time.Time) {
	for !s.next.After(t) {
		s.open = append(s.open, s.newWindow())
	}
}
