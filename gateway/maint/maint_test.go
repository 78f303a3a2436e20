package maint

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/clock"
)

// base is a time relative to the gateway's clock, so the tests pass on any day and
// under the fakeclock build's shift.
var base = clock.Now().UTC().Truncate(time.Second)

func at(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Kind
		flag string
	}{{"maintenance", Maintenance, "M"}, {"M", Maintenance, "M"}, {"Calibration", Calibration, "C"}, {"c", Calibration, "C"}} {
		k, err := ParseKind(tc.in)
		if err != nil || k != tc.want || k.Flag() != tc.flag {
			t.Errorf("ParseKind(%q) = %v (flag %q), %v; want %v, flag %s", tc.in, k, k.Flag(), err, tc.want, tc.flag)
		}
	}
	if _, err := ParseKind("repair"); err == nil {
		t.Error(`ParseKind("repair") = nil error`)
	}
}

// At on the boundaries: the start belongs to the window, the end does not; an active
// window holds every time from its start on; a gap between windows holds none.
func TestAtBoundaries(t *testing.T) {
	l := New()
	mustStart(t, l, "noise-1", Maintenance, "clean windscreen", at(100))
	mustStop(t, l, "noise-1", at(200))
	mustStart(t, l, "noise-1", Calibration, "94 dB calibrator", at(300))
	check := func(dev string, s int, want Kind) {
		t.Helper()
		w, ok := l.At(dev, at(s))
		switch {
		case want == 0 && ok:
			t.Errorf("At(%s, +%ds) = %+v, want none", dev, s, w)
		case want != 0 && (!ok || w.Kind != want):
			t.Errorf("At(%s, +%ds) = %+v, %v; want a %v window", dev, s, w, ok, want)
		}
		if got := l.Covers(dev, at(s)); got != ok {
			t.Errorf("Covers(%s, +%ds) = %v, At says %v", dev, s, got, ok)
		}
	}
	check("noise-1", 99, 0)
	check("noise-1", 100, Maintenance)
	check("noise-1", 199, Maintenance)
	check("noise-1", 200, 0)
	check("noise-1", 299, 0)
	check("noise-1", 300, Calibration)
	check("noise-1", 1_000_000, Calibration)
	check("air-1", 150, 0)
	if w, ok := l.At("noise-1", at(199).Add(999*time.Millisecond)); !ok || w.Kind != Maintenance {
		t.Errorf("At just before the end = %+v, %v", w, ok)
	}
	if w, ok := l.Active("noise-1"); !ok || w.Kind != Calibration || w.Reason != "94 dB calibrator" {
		t.Errorf("Active = %+v, %v", w, ok)
	}
}

func mustStart(t *testing.T, l *Log, dev string, k Kind, reason string, ts time.Time) Window {
	t.Helper()
	w, err := l.Start(dev, k, reason, ts)
	if err != nil {
		t.Fatalf("Start(%s, %v, %q) = %v", dev, k, reason, err)
	}
	return w
}

func mustStop(t *testing.T, l *Log, dev string, ts time.Time) Window {
	t.Helper()
	w, err := l.Stop(dev, ts)
	if err != nil {
		t.Fatalf("Stop(%s) = %v", dev, err)
	}
	return w
}

// Start on a device in maintenance: the same kind and reason is a no-op; another kind
// or reason ends the window and starts a new one. Stop of a device out of maintenance
// is ErrNotInMaintenance. A clock that stepped back never makes windows overlap.
func TestStartStopRules(t *testing.T) {
	l := New()
	w1 := mustStart(t, l, "air-1", Maintenance, "filter", at(10))
	if w := mustStart(t, l, "air-1", Maintenance, "filter", at(20)); w != w1 {
		t.Errorf("repeated Start = %+v, want the window unchanged %+v", w, w1)
	}
	mustStart(t, l, "air-1", Calibration, "span gas", at(30))
	ws := l.Windows()
	if len(ws) != 2 || !ws[0].End.Equal(at(30)) || !ws[1].Start.Equal(at(30)) || !ws[1].Active() {
		t.Fatalf("windows after a change of kind = %+v", ws)
	}
	mustStop(t, l, "air-1", at(40))
	if _, err := l.Stop("air-1", at(50)); !errors.Is(err, ErrNotInMaintenance) || !strings.Contains(err.Error(), `"air-1"`) {
		t.Errorf("Stop of a device out of maintenance = %v, want ErrNotInMaintenance naming it", err)
	}
	if _, err := l.Stop("never", at(50)); !errors.Is(err, ErrNotInMaintenance) {
		t.Errorf("Stop of an unknown device = %v, want ErrNotInMaintenance", err)
	}
	// The clock stepped back 35 s: the new window starts where the last one ended.
	w := mustStart(t, l, "air-1", Maintenance, "", at(5))
	if !w.Start.Equal(at(40)) {
		t.Errorf("Start before the last end: start %v, want %v", w.Start, at(40))
	}
	if w := mustStop(t, l, "air-1", at(1)); !w.End.Equal(w.Start) {
		t.Errorf("Stop before the start: %+v, want an empty window", w)
	}
	for _, bad := range []struct {
		dev    string
		k      Kind
		reason string
	}{{"", Maintenance, ""}, {"a b", Maintenance, ""}, {"x", 0, ""}, {"x", Maintenance, strings.Repeat("r", MaxReason+1)}, {"x", Maintenance, "two\nlines"}} {
		if _, err := l.Start(bad.dev, bad.k, bad.reason, at(0)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Start(%q, %v, %q) = %v, want ErrInvalid", bad.dev, bad.k, bad.reason, err)
		}
	}
}

// The log survives a reopen, windows and all; the history is bounded per device.
func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", FileName)
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open wrote %s before any Start: %v", path, err)
	}
	for i := range MaxPerDevice + 5 {
		mustStart(t, l, "water-1", Calibration, fmt.Sprintf("visit %d", i), at(10*i))
		mustStop(t, l, "water-1", at(10*i+5))
	}
	mustStart(t, l, "noise-1", Maintenance, "新风屏 windscreen", at(1))
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, want := r.Windows(), l.Windows()
	if len(got) != MaxPerDevice+1 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reopened: %d windows\n%v\nwant %d\n%v", len(got), got, MaxPerDevice+1, want)
	}
	if got[1].Reason != "visit 5" { // got[0] is noise-1's
		t.Errorf("oldest kept window %q, want visit 5 (the newest %d per device)", got[0].Reason, MaxPerDevice)
	}
	if w, ok := r.Active("noise-1"); !ok || w.Reason != "新风屏 windscreen" {
		t.Errorf("reopened Active(noise-1) = %+v, %v", w, ok)
	}
	// Writes go on from the reopened log.
	mustStop(t, r, "noise-1", at(2))
	if r2, err := Read(path); err != nil || len(r2.Windows()) != MaxPerDevice+1 {
		t.Errorf("Read after Stop: %v, %v", r2, err)
	} else if _, ok := r2.Active("noise-1"); ok {
		t.Error("Stop not persisted")
	}
}

// Crash safety: a temporary file left by a crash mid-write is ignored; a failed write
// changes neither the file nor the log in memory; a corrupt file is set aside and the
// log starts empty, with an error naming the file.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustStart(t, l, "noise-1", Maintenance, "", at(0))
	before, _ := os.ReadFile(path)

	// A crash after writing half the temporary file, before the rename.
	if err := os.WriteFile(path+".tmp", before[:len(before)/2], 0o640); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, nil)
	if err != nil || fmt.Sprint(r.Windows()) != fmt.Sprint(l.Windows()) {
		t.Fatalf("reopen after a torn temporary file: %v, %v", r.Windows(), err)
	}

	// A write that fails: the directory is gone.
	gone := filepath.Join(dir, "gone")
	lg, err := Open(filepath.Join(gone, FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gone, nil, 0o600); err != nil { // a file where the directory should be
		t.Fatal(err)
	}
	if _, err := lg.Start("noise-1", Maintenance, "", at(0)); err == nil {
		t.Fatal("Start with an unwritable file = nil error")
	}
	if _, ok := lg.Active("noise-1"); ok {
		t.Error("a failed Start changed the log in memory")
	}

	// A corrupt file: set aside, logged, empty log.
	for _, junk := range []string{string(before[:len(before)/2]), "", `{"version":2,"windows":[]}`, "{}{}"} {
		if err := os.WriteFile(path, []byte(junk), 0o640); err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		c, err := Open(path, slog.New(slog.NewTextHandler(&logged, nil)))
		if err != nil {
			t.Fatalf("Open(corrupt %q) = %v, want an empty log", junk, err)
		}
		if len(c.Windows()) != 0 {
			t.Errorf("Open(corrupt %q) has windows %v", junk, c.Windows())
		}
		if !strings.Contains(logged.String(), path) || !strings.Contains(logged.String(), path+".bad") {
			t.Errorf("Open(corrupt %q) logged %q, want both file names", junk, logged.String())
		}
		if b, err := os.ReadFile(path + ".bad"); err != nil || string(b) != junk {
			t.Errorf("set-aside file = %q, %v; want %q", b, err, junk)
		}
		if _, err := Read(path + ".bad"); err == nil || !strings.Contains(err.Error(), path+".bad") {
			t.Errorf("Read(corrupt) = %v, want an error naming the file", err)
		}
	}
}

// Concurrent Start, Stop and At (run with -race): At never sees a torn state, and
// every device ends with its last window stopped.
func TestConcurrent(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for d := range 4 {
		dev := fmt.Sprintf("dev-%d", d)
		wg.Go(func() {
			for i := range 20 {
				if _, err := l.Start(dev, Kind(1+i%2), "", at(2*i)); err != nil {
					t.Error(err)
					return
				}
				if _, err := l.Stop(dev, at(2*i+1)); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 2000 {
				if w, ok := l.At(dev, at(7)); ok && (w.Device != dev || !w.Covers(at(7))) {
					t.Errorf("At(%s) = %+v", dev, w)
					return
				}
				l.Windows()
			}
		})
	}
	wg.Wait()
	for d := range 4 {
		dev := fmt.Sprintf("dev-%d", d)
		if _, ok := l.Active(dev); ok {
			t.Errorf("%s still active", dev)
		}
		if w, ok := l.At(dev, at(6)); !ok || w.Kind != Calibration || !w.Start.Equal(at(6)) {
			t.Errorf("At(%s, +6s) = %+v, %v; want the 4th window (calibration from +6s)", dev, w, ok)
		}
	}
}

// FuzzParse feeds the loader arbitrary bytes: no panic; whatever it accepts encodes
// and parses back to the same windows, in order and without overlaps.
func FuzzParse(f *testing.F) {
	l := New()
	_, _ = l.Start("noise-1", Maintenance, "windscreen", at(0))
	_, _ = l.Stop("noise-1", at(60))
	_, _ = l.Start("noise-1", Calibration, "", at(120))
	_, _ = l.Start("air-1", Calibration, "span", at(5))
	good, _ := encode(l.Windows())
	f.Add(good)
	f.Add([]byte(`{"version":1,"windows":[]}`))
	f.Add([]byte(`{"version":1,"windows":[{"device":"a","kind":"calibration","start":"2026-01-01T00:00:00Z"},{"device":"a","kind":"M","start":"2025-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"windows":[{"device":"a","kind":"repair","start":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"windows":null,"extra":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := parse(b)
		if err != nil {
			return
		}
		ws := ix.list()
		again, err := encode(ws)
		if err != nil {
			t.Fatalf("encode of parsed windows: %v", err)
		}
		ix2, err := parse(again)
		if err != nil {
			t.Fatalf("parse(encode(parse(%q))) = %v", b, err)
		}
		if fmt.Sprint(ix2.list()) != fmt.Sprint(ws) {
			t.Fatalf("round trip changed %v to %v", ws, ix2.list())
		}
		for d, dws := range ix.byDevice {
			if len(dws) > MaxPerDevice {
				t.Fatalf("%s: %d windows", d, len(dws))
			}
			for i := 1; i < len(dws); i++ {
				if dws[i-1].Active() || dws[i].Start.Before(dws[i-1].End) {
					t.Fatalf("%s: windows %d and %d overlap", d, i-1, i)
				}
			}
		}
	})
}

// BenchmarkAt is the per-reading cost of the lookup: a device with the full history
// of windows, and one without any.
func BenchmarkAt(b *testing.B) {
	l := New()
	for i := range MaxPerDevice {
		_, _ = l.Start("noise-1", Maintenance, "", at(100*i))
		_, _ = l.Stop("noise-1", at(100*i+50))
	}
	for _, bc := range []struct{ name, dev string }{{"100windows", "noise-1"}, {"none", "air-1"}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for i := 0; b.Loop(); i++ {
				if _, ok := l.At(bc.dev, at(i%10000)); ok {
					n++
				}
			}
			_ = n
		})
	}
}
