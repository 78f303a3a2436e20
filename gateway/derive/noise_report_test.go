package derive

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
)

// Issue 11, the noise report quantities through the path `envgate replay` takes (Add,
// then Flush at the end of the input): one recorded calendar day, 2026-06-01 00:00 to
// 23:59 Shanghai, of a meter's 1-min Leq (laeq_period 1m) at 60 dB(A) by day (06–22)
// and 50 by night, zone 1 (55/45), with Lden's evening shortened to 19–22. The flush
// closes the day, the night that began at 22:00 and the Lden 24 hours of 07:00.
// Every derived reading is in the catalog, and a file with every row twice (an
// overlapping export) derives the same readings.
//
//	laeq_24h = 10·lg((16·10^6 + 8·10^5)/24) = 10·lg(700 000) = 58.45 (vdr_24h 100 %)
//	exceedance_day = 60 − 55 = 5; exceedance_night of 22:00 = 50 − 45 = 5, Suspect
//	(2 of its 8 hours recorded)
//	lden_day (07–19) = 60; lden_evening (19–22) = 60; lden_night (22–07) = 50, Suspect
//	(2 of 9 hours); lden = 10·lg((12·10^6 + 3·10^6.5 + 9·10^6)/24), Suspect
func TestReplayNoiseReportQuantities(t *testing.T) {
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, reading.ChinaStandardTime)
	var in []reading.Reading
	for m := range 24 * 60 {
		ts := day.Add(time.Duration(m) * time.Minute)
		l := 60.0
		if h := ts.Hour(); h < 6 || h >= 22 {
			l = 50
		}
		in = append(in, reading.New(ts, "canal", "n-1", "laeq", l))
	}
	replay := func(rs []reading.Reading) (string, map[string]reading.Reading) {
		t.Helper()
		cfg := noiseMonitor().Config
		cfg.RainMax, cfg.LaeqPeriod = 0, time.Minute
		cfg.Lden = noise.LdenPeriods{DayStart: 7 * time.Hour, EveningStart: 19 * time.Hour, NightStart: 22 * time.Hour}
		s, err := New(Monitors{Noise: []Noise{{Zone: "1", Config: cfg}}})
		if err != nil {
			t.Fatal(err)
		}
		s.ForReplay()
		var out []reading.Reading
		for _, r := range rs {
			out = s.Add(out, r)
		}
		out = s.Flush(out, rs[len(rs)-1].Time)
		got := map[string]reading.Reading{}
		var text string
		for _, r := range out {
			if err := r.Validate(); err != nil {
				t.Errorf("derived %+v: %v", r, err)
			}
			got[r.Quantity+"@"+r.Time.In(day.Location()).Format("01-02T15")] = r
			text += fmt.Sprintf("%v %s %v %v\n", r.Time.UnixNano(), r.Quantity, math.Float64bits(r.Value), r.Quality)
		}
		return text, got
	}
	once, got := replay(in)
	for _, w := range []struct {
		key     string
		v       float64
		quality reading.Quality
	}{
		{"laeq_24h@06-01T00", 10 * math.Log10(700_000), reading.Good},
		{"vdr_24h@06-01T00", 100, reading.Good},
		{"exceedance_day@06-01T06", 5, reading.Good},
		{"exceedance_night@06-01T22", 5, reading.Suspect},
		{"lden_day@06-01T07", 60, reading.Good},
		{"lden_evening@06-01T19", 60, reading.Good},
		{"lden_night@06-01T22", 50, reading.Suspect},
		{"lden@06-01T07", 10 * math.Log10((12e6+3*math.Pow(10, 6.5)+9e6)/24), reading.Suspect},
	} {
		r, ok := got[w.key]
		if !ok || math.Abs(r.Value-w.v) > 1e-9 || r.Quality != w.quality {
			t.Errorf("%s = %v (%v, found %v), want %v (%v)", w.key, r.Value, r.Quality, ok, w.v, w.quality)
		}
	}
	var twice []reading.Reading
	for _, r := range in {
		twice = append(twice, r, r)
	}
	if again, _ := replay(twice); again != once {
		t.Errorf("every row twice derives other readings:\n%s\nwant\n%s", again, once)
	}
}
