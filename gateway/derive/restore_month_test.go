package derive

import (
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// The append that carried January's statistics is cut by a crash (its samples are in
// the log, its derived readings not), and the ledger on disk is the one saved after the
// previous sync (January not yet emitted). Restore derives the month again from the
// ledger and hands the lost monthly readings back with the day's; otherwise January is
// never stored, and the ledger saved next says it was. (Found in review: the monthly
// readings carry the month's first instant, older than any sample the log keeps, and
// were dropped as if from a partial window.) Fixed dates: the Set's wall clock follows
// the samples, so every party uses them.
func TestRestoreReturnsCutMonthStatistics(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	var wall time.Time
	mk := func() *Set {
		s, err := New(Monitors{Air: []Air{{Config: air.Config{Site: "canal", Device: "air-1", Sample: 20 * time.Minute, Location: cst}}}})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return wall }
		return s
	}
	var batches [][]reading.Reading
	for ts := time.Date(2026, 1, 1, 0, 0, 0, 0, cst); ts.Before(time.Date(2026, 2, 1, 3, 0, 0, 0, cst)); ts = ts.Add(20 * time.Minute) {
		batches = append(batches, []reading.Reading{
			reading.New(ts, "canal", "air-1", "pm25", 30),
			reading.New(ts, "canal", "air-1", "pm10", 40),
			reading.New(ts, "canal", "air-1", "co", 0.5),
			reading.New(ts, "canal", "air-1", "o3", 50),
		})
	}
	dir := t.TempDir()
	s := mk()
	var log [][]reading.Reading
	var cut []reading.Reading // derived readings of the append the crash cut
	k := -1
	for i, b := range batches {
		a := live(s, &wall, [][]reading.Reading{b})[0]
		if strings.Contains(windowtest.Format(a), "pm25_1mo") {
			k = i
			var samples []reading.Reading
			for _, r := range a {
				if derivedNames[r.Quantity] {
					cut = append(cut, r)
				} else {
					samples = append(samples, r)
				}
			}
			log = append(log, samples)
			break
		}
		log = append(log, a)
		if err := s.SaveState(dir); err != nil {
			t.Fatal(err)
		}
	}
	if k < 0 {
		t.Fatal("no month emitted")
	}
	wall = batches[k][0].Time.Add(2 * time.Second)
	j := len(log)
	for j > 0 && !log[j-1][0].Time.Before(wall.Add(-s.Reach()-10*time.Minute)) {
		j--
	}
	r := mk()
	if err := r.LoadState(dir); err != nil {
		t.Fatal(err)
	}
	missing, _, err := r.Restore(scanOf(log[j:]))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := windowtest.Format(missing), windowtest.Format(cut); got != want {
		t.Errorf("Restore returned\n%s\nwant the cut append's derived readings\n%s", got, want)
	}
	for _, q := range []string{"pm25_1d", "pm25_1mo", "pm25_days_1mo", "co_p95_1mo"} {
		if !strings.Contains(windowtest.Format(cut), q) {
			t.Errorf("the cut append had no %s: the test does not test it", q)
		}
	}
	// Stored now, they are not emitted again when the next day goes on.
	after := live(r, &wall, [][]reading.Reading{{reading.New(batches[k][0].Time.Add(20*time.Minute), "canal", "air-1", "pm25", 30)}})
	if f := windowtest.Format(derivedOf(after)); strings.Contains(f, "_1mo") {
		t.Errorf("the month came again after the restart:\n%s", f)
	}
}
