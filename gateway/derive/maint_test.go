package derive

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/maint"
	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// maintEnd is the end of the recordings of the maintenance tests: 03:30 in Shanghai
// (the noise monitor's zone), so that the noise meter's maintenance window of
// maintWindows, 21:30 to 23:30 two days before, holds the 22:00 start of the night.
// The Set's clock is the test's, so the date is fixed.
var maintEnd = time.Date(2026, 3, 2, 19, 30, 0, 0, time.UTC)

// maintWindows puts each monitored device of recording (ending at end) through a
// window: the noise meter in maintenance for two hours across the 22:00 start of a
// night when end is maintEnd, then calibrating for ten minutes; the air monitor
// calibrating for three hours; the water probe in maintenance (and still so at the end).
func maintWindows(t *testing.T, end time.Time) *maint.Log {
	t.Helper()
	l := maint.New()
	for _, w := range []struct {
		dev        string
		kind       maint.Kind
		from, till time.Duration // before end; till 0: still active
	}{
		{"n-1", maint.Maintenance, 30 * time.Hour, 28 * time.Hour},
		{"n-1", maint.Calibration, 28 * time.Hour, 27*time.Hour + 50*time.Minute},
		{"air-1", maint.Calibration, 50 * time.Hour, 47 * time.Hour},
		{"probe-1", maint.Maintenance, 3 * time.Hour, 0},
	} {
		if _, err := l.Start(w.dev, w.kind, "test", end.Add(-w.from)); err != nil {
			t.Fatal(err)
		}
		if w.till != 0 {
			if _, err := l.Stop(w.dev, end.Add(-w.till)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l
}

// Readings measured inside a device's window derive nothing — exactly as if the device
// had sent nothing then — and every other reading derives as before; the excluded ones
// are counted per device.
func TestMaintExcludesReadingsInWindows(t *testing.T) {
	end := maintEnd
	batches := recording(rand.New(rand.NewPCG(7, 8)), end)
	walls := wallsOf(batches)
	l := maintWindows(t, end)
	if p := noise.DefaultPeriods(); p.IsNight(end.Add(-30*time.Hour)) || !p.IsNight(end.Add(-28*time.Hour)) {
		t.Fatalf("the noise meter's maintenance window, %v to %v, holds no start of a night", end.Add(-30*time.Hour), end.Add(-28*time.Hour))
	}

	var wall time.Time
	s := newSet(t, &wall)
	s.Exclude(l.Covers)
	got := derivedOf(liveWalls(s, &wall, batches, walls))

	// The reference: the same recording without the readings inside the windows.
	var silent [][]reading.Reading
	want := map[string]uint64{}
	for _, b := range batches {
		var kept []reading.Reading
		for _, r := range b {
			if _, in := l.At(r.Device, r.Time); in {
				want[r.Device]++
				continue
			}
			kept = append(kept, r)
		}
		silent = append(silent, kept)
	}
	ref := newSet(t, &wall)
	refDerived := derivedOf(liveWalls(ref, &wall, silent, walls))
	if g, w := windowtest.Format(got), windowtest.Format(refDerived); g != w {
		t.Errorf("derived with the windows excluded differ from a run without those readings\n%s", firstDiff(g, w))
	}
	// Without Exclude the same recording derives something else: the windows matter.
	all := newSet(t, &wall)
	if windowtest.Format(derivedOf(liveWalls(all, &wall, batches, walls))) == windowtest.Format(got) {
		t.Error("excluding the windows changed no derived reading")
	}
	if ex := s.Excluded(); len(ex) != 3 || ex["n-1"] != want["n-1"] || ex["air-1"] != want["air-1"] || ex["probe-1"] != want["probe-1"] || want["n-1"] == 0 {
		t.Errorf("Excluded() = %v, want %v", ex, want)
	}

	// A reading inside a window that arrives twice is kept out twice, and counted.
	in := reading.New(end.Add(-2*time.Hour), "lock", "probe-1", "ph", 7)
	before := s.Excluded()["probe-1"]
	wall = end
	if d := s.Add(nil, in, in); len(d) != 0 || s.Excluded()["probe-1"] != before+2 {
		t.Errorf("a reading in a window, twice: derived %d, excluded %d more; want 0 and 2", len(d), s.Excluded()["probe-1"]-before)
	}
}

// A restart inside a window, just after one and long after, rebuilds the open windows
// from the log (which holds the excluded readings: they are stored like any other) by
// the same rule: the derived readings after the restart are those of an uninterrupted
// run.
func TestMaintRestoreAppliesTheWindows(t *testing.T) {
	end := maintEnd
	batches := recording(rand.New(rand.NewPCG(9, 10)), end)
	l := maintWindows(t, end)
	var wall time.Time
	s := newSet(t, &wall)
	s.Exclude(l.Covers)
	ref := live(s, &wall, batches)
	index := func(before time.Duration) int {
		for i, b := range batches {
			if !b[0].Time.Before(end.Add(-before)) {
				return i
			}
		}
		return len(batches) - 1
	}
	for _, k := range []int{index(29 * time.Hour), index(27*time.Hour + 49*time.Minute), index(46 * time.Hour), index(2 * time.Hour), len(batches) - 3} {
		s := newSet(t, &wall)
		s.Exclude(l.Covers)
		wall = batches[k-1][0].Time.Add(2 * time.Second)
		j := k
		for j > 0 && !batches[j-1][0].Time.Before(wall.Add(-s.Reach()-10*time.Minute)) {
			j--
		}
		missing, _, err := s.Restore(scanOf(ref[j:k]))
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) != 0 {
			t.Errorf("restart at %d: Restore found %d derived readings missing from a complete log", k, len(missing))
		}
		after := live(s, &wall, batches[k:])
		// Sorted: a device silent across the restart (here: in maintenance) has its
		// windows closed by the wall clock CloseAfter after the restart rather than after
		// its last sample (New counts every monitor as heard from at the start), so the
		// same derived readings may come in another order.
		if got, want := sortedLines(windowtest.Format(derivedOf(after))), sortedLines(windowtest.Format(derivedOf(ref[k:]))); got != want {
			t.Errorf("restart at %d (%s): derived readings after it differ from the uninterrupted run\n%s", k,
				batches[k][0].Time.Format(time.DateTime), firstDiff(got, want))
		}
	}
}

func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// With screening on, a reading's maintenance window is looked up once (it was twice:
// before screening and again when fed), and each excluded reading is counted once.
func TestMaintExcludeJudgedOnce(t *testing.T) {
	end := maintEnd
	batches := screenedRecording(rand.New(rand.NewPCG(11, 12)), end)
	l := maintWindows(t, end)
	for _, screened := range []bool{false, true} {
		var wall time.Time
		s := newSet(t, &wall)
		if screened {
			s = newScreenedSet(t, &wall)
		}
		calls := 0
		s.Exclude(func(d string, at time.Time) bool { calls++; return l.Covers(d, at) })
		live(s, &wall, batches)
		readings, want := 0, map[string]uint64{}
		for _, b := range batches {
			for _, r := range b {
				readings++
				if l.Covers(r.Device, r.Time) {
					want[r.Device]++
				}
			}
		}
		if calls != readings {
			t.Errorf("screened %v: the exclusion was asked %d times for %d readings, want once each", screened, calls, readings)
		}
		if ex := s.Excluded(); !maps.Equal(ex, want) {
			t.Errorf("screened %v: Excluded() = %v, want %v", screened, ex, want)
		}
	}
}
