package derive

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/screen"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// screenedRecording is recording with faults: the noise meter stuck at 41.0 for two
// hours in each day's afternoon, and a PM2.5 spike of 999 every 7 hours.
func screenedRecording(rng *rand.Rand, end time.Time) [][]reading.Reading {
	batches := recording(rng, end)
	for i, b := range batches {
		for j, r := range b {
			at := r.Time.UTC()
			switch {
			case r.Quantity == "la" && at.Hour() >= 6 && at.Hour() < 8:
				batches[i][j].Value = 41
			case r.Quantity == "pm25" && at.Minute() < 5 && at.Hour()%7 == 0:
				batches[i][j].Value = 999
			}
		}
	}
	return batches
}

func newScreenedSet(t *testing.T, wall *time.Time) *Set {
	t.Helper()
	ms := restoreMonitors()
	ms.Screening = &Screening{Rules: func(k screen.Key) (screen.Rules, bool) {
		r := screen.Defaults(k.Quantity)
		return r, !r.Off()
	}, Reach: screen.DefaultReach()}
	s, err := New(ms)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return *wall }
	return s
}

// emitted is what the Set added to the log: derived readings and flag records.
func emitted(log [][]reading.Reading) []reading.Reading {
	var out []reading.Reading
	for _, a := range log {
		for _, r := range a {
			if derivedNames[r.Quantity] || r.Reason != reading.NoReason {
				out = append(out, r)
			}
		}
	}
	return out
}

// Screening restarts like the derivations: after a restart at any point (inside a
// flatline, just after a spike) the flags and derived readings are those of the
// uninterrupted run, and the flags before it are not emitted again.
func TestRestoreScreensAsIfUninterrupted(t *testing.T) {
	// A fixed end, so that the recording always holds three whole stuck afternoons: the
	// Set's wall clock is the test's (newScreenedSet), no real clock is involved.
	end := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 8))
	batches := screenedRecording(rng, end)
	var wall time.Time
	ref := live(newScreenedSet(t, &wall), &wall, batches)
	flags := map[reading.Reason]int{}
	for _, r := range emitted(ref) {
		if r.Reason != reading.NoReason {
			flags[r.Reason]++
		}
	}
	// Two hours of 30-s samples stuck: flagged from 15 minutes in (240 - 30 samples a
	// day, three days); a spike every 7 hours of the three days.
	if flags[reading.Flatline] != 3*(240-30) || flags[reading.Spike] < 9 {
		t.Fatalf("the uninterrupted run flagged %v", flags)
	}
	points := []int{1, len(batches) / 2, len(batches) - 3}
	for i, b := range batches { // inside a flatline, and right after a spike
		if at := b[0].Time.UTC(); at.Hour() == 7 && at.Minute() == 0 && at.Second() == 0 || at.Hour() == 14 && at.Minute() == 7 && at.Second() == 0 {
			points = append(points, i)
		}
	}
	for _, k := range points {
		s := newScreenedSet(t, &wall)
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
			t.Errorf("restart at %d: Restore returned %d readings from a complete log: %s", k, len(missing), windowtest.Format(missing[:min(5, len(missing))]))
		}
		after := live(s, &wall, batches[k:])
		if got, want := windowtest.Format(emitted(after)), windowtest.Format(emitted(ref[k:])); got != want {
			t.Errorf("restart at %d (%s): flags and derived readings after it differ from the uninterrupted run\n%s", k,
				batches[k][0].Time.Format(time.DateTime), firstDiff(got, want))
		}
	}
}
