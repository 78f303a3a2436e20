package derive

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// Found in review: the append that closes a month's last day is cut by the crash after its
// samples (a torn tail keeps a prefix of the records: the samples come first, the
// derived readings after them). Restore derives the day and the month again; the day's
// readings come back as missing, but the month's statistics, stamped at the month's
// first instant (before the log's first sample), are dropped by the "window began
// before the first sample" rule, although the restored ledger made them complete. The
// ledger now marks the month as returned: its statistics are never stored.
func TestRestoreReturnsMonthOfTornAppend(t *testing.T) {
	end := time.Now().Truncate(time.Hour)
	rng := rand.New(rand.NewPCG(7, 8))
	var batches [][]reading.Reading
	for ts := end.Add(-40 * 24 * time.Hour); !ts.After(end); ts = ts.Add(20 * time.Minute) {
		batches = append(batches, []reading.Reading{
			reading.New(ts, "canal", "air-1", "pm25", float64(5+rng.IntN(150))),
			reading.New(ts, "canal", "air-1", "pm10", float64(10+rng.IntN(250))),
			reading.New(ts, "canal", "air-1", "co", float64(rng.IntN(40))/10),
			reading.New(ts, "canal", "air-1", "o3", float64(10+rng.IntN(250))),
		})
	}
	var wall time.Time
	mk := func() *Set {
		s, err := New(Monitors{Air: []Air{{Config: air.Config{Site: "canal", Device: "air-1", Sample: 20 * time.Minute}}}})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return wall }
		return s
	}
	dir := t.TempDir()
	s := mk()
	var log [][]reading.Reading
	k := -1
	for i, b := range batches {
		a := live(s, &wall, [][]reading.Reading{b})[0]
		var month []reading.Reading
		for _, r := range a {
			if r.Quantity == "pm25_1mo" {
				month = append(month, r)
			}
		}
		if len(month) > 0 { // the crash cuts this append after its samples
			log = append(log, b)
			k = i + 1
			t.Logf("month closed by batch %d at %s: %s", i, b[0].Time, windowtest.Format(month))
			break
		}
		log = append(log, a)
		if err := s.SaveState(dir); err != nil { // the sync after the append succeeded
			t.Fatal(err)
		}
	}
	if k < 0 {
		t.Fatal("no month closed")
	}
	wall = batches[k-1][0].Time.Add(time.Second)
	j := k
	for j > 0 && !batches[j-1][0].Time.Before(wall.Add(-s.Reach()-10*time.Minute)) {
		j--
	}
	r := mk()
	if err := r.LoadState(dir); err != nil {
		t.Fatal(err)
	}
	missing, st, err := r.Restore(scanOf(log[j:k]))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range missing {
		if m.Quantity == "pm25_1mo" {
			n++
		}
	}
	if n == 0 {
		t.Errorf("Restore (%+v) returned %d missing readings, none of them the month's pm25_1mo: the month's statistics are lost", st, len(missing))
	}
	// And nothing later emits them.
	after := live(r, &wall, batches[k:])
	for _, d := range derivedOf(after) {
		if d.Quantity == "pm25_1mo" {
			t.Logf("emitted later: %s", windowtest.Format([]reading.Reading{d}))
		}
	}
}
