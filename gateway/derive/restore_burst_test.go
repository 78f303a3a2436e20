package derive

import (
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// Found in review: a night burst in progress where the kept log begins. The burst's event
// (lmax_burst at its peak time, before the log's first sample) was stored after the
// log's first sample, so it is in the log. Restore rebuilds the burst from its tail,
// finds a peak at another time, and returns it as "missing": a second, spurious
// burst event is stored after every such restart.
func TestRestoreIgnoresBurstStraddlingLogStart(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	y, m, d := time.Now().In(loc).AddDate(0, 0, -1).Date()
	start := time.Date(y, m, d, 1, 0, 0, 0, loc) // night
	var wall time.Time
	mk := func() *Set {
		s, err := New(Monitors{Noise: []Noise{{Zone: "1", Config: noise.Config{Site: "canal", Device: "n-1", Zone: noise.Zone1}}}})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return wall }
		return s
	}
	var batches [][]reading.Reading
	for i := 0; i < 3600; i++ {
		v := 40.0
		switch {
		case i >= 1800 && i < 1820: // a 20-s burst, peak 85 at 1805
			v = 70
			if i == 1805 {
				v = 85
			}
		}
		batches = append(batches, []reading.Reading{reading.New(start.Add(time.Duration(i)*time.Second), "canal", "n-1", "la", v)})
	}
	ref := live(mk(), &wall, batches)
	var bursts []reading.Reading
	for _, r := range derivedOf(ref) {
		if r.Quantity == noise.QuantityLmaxBurst {
			bursts = append(bursts, r)
		}
	}
	if len(bursts) != 1 {
		t.Fatalf("uninterrupted run: %d bursts, want 1", len(bursts))
	}
	// The kept log begins at sample 1810 (a segment boundary), inside the burst.
	k := len(batches) - 10
	wall = batches[k-1][0].Time.Add(2 * time.Second)
	s := mk()
	missing, st, err := s.Restore(scanOf(ref[1810:k]))
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 0 {
		t.Errorf("Restore (%+v) returned as missing from the log, to be stored again:\n%s\nthe log already holds %s",
			st, windowtest.Format(missing), windowtest.Format(bursts))
	}
}
