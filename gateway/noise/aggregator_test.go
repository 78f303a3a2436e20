package noise

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

const (
	site   = "canal-east-3"
	device = "noise-1"
)

func newAgg(t *testing.T, mutate func(*Config)) *Aggregator {
	t.Helper()
	cfg := Config{Site: site, Device: device, Zone: Zone1}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := NewAggregator(cfg)
	if err != nil {
		t.Fatalf("NewAggregator(%+v) = %v", cfg, err)
	}
	return a
}

func la(t time.Time, v float64) reading.Reading {
	return reading.Reading{Time: t, Site: site, Device: device, Quantity: "la", Value: v, Unit: "dB(A)"}
}

func laeq(t time.Time, v float64) reading.Reading {
	r := la(t, v)
	r.Quantity = "laeq"
	return r
}

func weather(t time.Time, quantity string, v float64) reading.Reading {
	return reading.Reading{Time: t, Site: site, Device: "weather-1", Quantity: quantity, Value: v, Unit: "mm/h"}
}

// derivedSet indexes derived readings by quantity and window start.
type derivedSet map[string]reading.Reading

func key(quantity string, t time.Time) string { return quantity + "@" + t.UTC().Format(time.RFC3339) }

// collect checks every derived reading locally (the catalog does not know them yet, so
// Reading.Validate would reject them) and indexes them; a duplicate is an error.
func collect(t *testing.T, set derivedSet, out []reading.Reading) derivedSet {
	t.Helper()
	if set == nil {
		set = derivedSet{}
	}
	for _, r := range out {
		q, ok := derivedByName[r.Quantity]
		switch {
		case !ok:
			t.Errorf("derived reading %+v: quantity not listed in Quantities()", r)
		case r.Unit != q.Unit:
			t.Errorf("derived reading %+v: unit %q, want %q", r, r.Unit, q.Unit)
		case !q.Plausible(r.Value):
			t.Errorf("derived reading %+v: value outside %v..%v", r, q.Min, q.Max)
		}
		if r.Site != site || r.Device != device || r.Time.IsZero() || r.Quality == reading.Bad {
			t.Errorf("derived reading %+v: want site %s, device %s, a time, not bad", r, site, device)
		}
		k := key(r.Quantity, r.Time)
		if _, dup := set[k]; dup {
			t.Errorf("derived reading %s emitted twice", k)
		}
		set[k] = r
	}
	return set
}

// want checks one derived reading's value (within 1e-9) and quality.
func (s derivedSet) want(t *testing.T, quantity string, at time.Time, value float64, q reading.Quality) {
	t.Helper()
	r, ok := s[key(quantity, at)]
	if !ok {
		t.Errorf("no %s for %v", quantity, at)
		return
	}
	if math.Abs(r.Value-value) > 1e-9 || r.Quality != q {
		t.Errorf("%s@%v = %v (%v), want %v (%v)", quantity, at, r.Value, r.Quality, value, q)
	}
}

func (s derivedSet) absent(t *testing.T, quantity string, at time.Time) {
	t.Helper()
	if r, ok := s[key(quantity, at)]; ok {
		t.Errorf("%s@%v = %+v, want none", quantity, at, r)
	}
}

func (s derivedSet) count(quantity string) int {
	n := 0
	for k := range s {
		if strings.HasPrefix(k, quantity+"@") {
			n++
		}
	}
	return n
}

func TestAggregatorSyntheticHour(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	// One hour at 1 s cycling through 50, 51, …, 69 dB: each level 180 times.
	var out []reading.Reading
	for i := range 3600 {
		out = append(out, a.Add(la(t0.Add(time.Duration(i)*time.Second), float64(50+i%20)))...)
	}
	if len(out) != 59 { // minutes 10:00-10:58 closed by lateness, 10:59 still open
		t.Errorf("during the hour: %d derived readings, want 59 laeq_1m", len(out))
	}
	set := collect(t, nil, out)
	set = collect(t, set, a.Tick(t0.Add(time.Hour+DefaultLateness)))

	cycle := make([]float64, 20)
	for i := range cycle {
		cycle[i] = float64(50 + i)
	}
	leq := Leq(cycle)
	// Descending, 180 of each level: rank k falls in group ceil(k/180) from the top.
	// L5 k=180 → 69, L10 k=360 → 68, L50 k=1800 → 60, L90 k=3240 → 52, L95 k=3420 → 51.
	var mean, ss float64
	for _, l := range cycle {
		mean += l / 20
	}
	for _, l := range cycle {
		ss += 180 * (l - mean) * (l - mean)
	}
	sd := math.Sqrt(ss / 3599)
	good := reading.Good
	set.want(t, QuantityLAeqHourly, t0, leq, good)
	set.want(t, QuantityL5Hourly, t0, 69, good)
	set.want(t, QuantityL10Hourly, t0, 68, good)
	set.want(t, QuantityL50Hourly, t0, 60, good)
	set.want(t, QuantityL90Hourly, t0, 52, good)
	set.want(t, QuantityL95Hourly, t0, 51, good)
	set.want(t, QuantityLmaxHourly, t0, 69, good)
	set.want(t, QuantityLminHourly, t0, 50, good)
	set.want(t, QuantitySDHourly, t0, sd, good)
	set.want(t, QuantityVDRHourly, t0, 100, good)
	set.want(t, QuantityExceedanceHourly, t0, leq-55, good) // class 1 day limit
	// Every minute holds 60 samples, three whole cycles.
	for m := range 60 {
		set.want(t, QuantityLAeqMinute, t0.Add(time.Duration(m)*time.Minute), leq, good)
	}
	if n := len(set); n != 60+11 {
		t.Errorf("%d derived readings, want 71", n)
	}
}

func TestAggregatorGap(t *testing.T) {
	for _, c := range []struct {
		minValid float64
		q        reading.Quality
	}{{0, reading.Good}, {0.9, reading.Suspect}} {
		t.Run(fmt.Sprint(c.minValid), func(t *testing.T) {
			a := newAgg(t, func(cfg *Config) { cfg.MinValidHour = c.minValid })
			t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
			var out []reading.Reading
			for i := range 3600 {
				if i >= 20*60 && i < 30*60 { // nothing from 10:20 to 10:30
					continue
				}
				out = append(out, a.Add(la(t0.Add(time.Duration(i)*time.Second), 60))...)
			}
			set := collect(t, nil, append(out, a.Tick(t0.Add(2*time.Hour+DefaultLateness))...))
			if got := reading.RoundHalfEven(set[key(QuantityVDRHourly, t0)].Value, 1); got != 83.3 {
				t.Errorf("vdr_1h = %v, want 83.3", got)
			}
			set.want(t, QuantityVDRHourly, t0, 100*3000/3600.0, reading.Good)
			set.want(t, QuantityLAeqHourly, t0, 60, c.q)
			set.want(t, QuantityL50Hourly, t0, 60, c.q)
			for m := 20; m < 30; m++ {
				set.absent(t, QuantityLAeqMinute, t0.Add(time.Duration(m)*time.Minute))
			}
			if n := set.count(QuantityLAeqMinute); n != 50 {
				t.Errorf("%d laeq_1m, want 50", n)
			}
			// The next hour had no data: only its valid-data rate, 0.
			set.want(t, QuantityVDRHourly, t0.Add(time.Hour), 0, reading.Good)
			set.absent(t, QuantityLAeqHourly, t0.Add(time.Hour))
		})
	}
}

func TestAggregatorLateSamples(t *testing.T) {
	a := newAgg(t, nil) // lateness 5 s
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	var out []reading.Reading
	for i := range 62 {
		if i == 30 {
			continue // 10:00:30 arrives late
		}
		out = append(out, a.Add(la(t0.Add(time.Duration(i)*time.Second), 50))...)
	}
	// 10:01:01 is within 10:01:00 + 5 s: the 10:00 minute is still open.
	out = append(out, a.Add(la(t0.Add(30*time.Second), 80))...)
	if got := a.Now(t0.Add(61 * time.Second)).Late; got != 0 {
		t.Errorf("Late = %d after a sample within lateness, want 0", got)
	}
	out = append(out, a.Add(la(t0.Add(65*time.Second), 50))...) // closes 10:00
	out = append(out, a.Add(la(t0.Add(40*time.Second), 90))...) // too late now
	set := collect(t, nil, out)
	want := Leq(append(slices.Repeat([]float64{50}, 59), 80))
	set.want(t, QuantityLAeqMinute, t0, want, reading.Good)

	l := a.Now(t0.Add(66 * time.Second))
	if l.Late != 1 || l.Accepted != 63 {
		t.Errorf("Now: Late %d, Accepted %d, want 1, 63", l.Late, l.Accepted)
	}
	// The late 90 dB sample is in no window: the hour has 62 samples at 50 plus one at 80.
	set = collect(t, set, a.Tick(t0.Add(time.Hour+DefaultLateness)))
	set.want(t, QuantityLmaxHourly, t0, 80, reading.Suspect) // 63 s of data
	set.want(t, QuantityLAeqHourly, t0, Leq(append(slices.Repeat([]float64{50}, 62), 80)), reading.Suspect)
	set.want(t, QuantityVDRHourly, t0, 100*63/3600.0, reading.Good)
}

func TestAggregatorBursts(t *testing.T) {
	night := time.Date(2026, 6, 1, 23, 0, 0, 0, cst)
	levels := []float64{50, 61, 62, 58, 70, 70, 50, 60, 50} // class 1: night limit 45
	for _, c := range []struct {
		margin float64
		want   map[int]float64 // second of the peak → peak
	}{
		{0, map[int]float64{2: 62, 4: 70}}, // default 15: over 60; 60 itself is not over
		{15, map[int]float64{2: 62, 4: 70}},
		{10, map[int]float64{4: 70, 7: 60}}, // over 55: 61…70 is one run, then 60
	} {
		t.Run(fmt.Sprint(c.margin), func(t *testing.T) {
			a := newAgg(t, func(cfg *Config) { cfg.BurstMargin = c.margin })
			var out []reading.Reading
			// Loud daytime samples are no bursts.
			for i := range 5 {
				out = append(out, a.Add(la(night.Add(-2*time.Hour+time.Duration(i)*time.Second), 100))...)
			}
			for i, l := range levels {
				out = append(out, a.Add(la(night.Add(time.Duration(i)*time.Second), l))...)
			}
			set := collect(t, nil, out)
			if n := set.count(QuantityLmaxBurst); n != len(c.want) {
				t.Errorf("%d burst events, want %d: %v", n, len(c.want), out)
			}
			for s, peak := range c.want {
				set.want(t, QuantityLmaxBurst, night.Add(time.Duration(s)*time.Second), peak, reading.Good)
			}
			if got := a.Now(night).Bursts; got != len(c.want) {
				t.Errorf("Now().Bursts = %d, want %d", got, len(c.want))
			}
		})
	}

	t.Run("gap and tick", func(t *testing.T) {
		a := newAgg(t, nil)
		var out []reading.Reading
		out = append(out, a.Add(la(night, 65))...)
		out = append(out, a.Add(la(night.Add(5*time.Second), 66))...) // a gap of 5 s: a new event
		if n := collect(t, nil, out).count(QuantityLmaxBurst); n != 1 {
			t.Errorf("after a gap: %d events emitted, want 1", n)
		}
		if got := a.Tick(night.Add(6 * time.Second)); len(got) != 0 {
			t.Errorf("Tick 1 s after the last sample = %v, want nothing yet", got)
		}
		set := collect(t, nil, a.Tick(night.Add(13*time.Second))) // > 2 s + 5 s lateness
		set.want(t, QuantityLmaxBurst, night.Add(5*time.Second), 66, reading.Good)
		if got := a.Now(night).Bursts; got != 2 {
			t.Errorf("Bursts = %d, want 2", got)
		}
	})
}

func TestAggregatorWeather(t *testing.T) {
	a := newAgg(t, func(cfg *Config) { cfg.RainMax = 1; cfg.WindMax = 5 })
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	var out []reading.Reading
	for i := range 3 * 3600 {
		ts := t0.Add(time.Duration(i) * time.Second)
		switch ts.Sub(t0) {
		case 30*time.Minute + 10*time.Second:
			out = append(out, a.Add(weather(ts, "rain_rate", 2.5))...) // rain at 10:30
		case 90 * time.Minute:
			out = append(out, a.Add(weather(ts, "rain_rate", 0.5))...) // drizzle below the threshold
		case 150 * time.Minute:
			out = append(out, a.Add(weather(ts, "wind_speed", 6))...) // wind at 12:30
		}
		out = append(out, a.Add(la(ts, 55))...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(4*time.Hour))...))
	set.want(t, QuantityLAeqHourly, t0, 55, reading.Suspect)
	set.want(t, QuantityL10Hourly, t0, 55, reading.Suspect)
	set.want(t, QuantityVDRHourly, t0, 100, reading.Good)
	set.want(t, QuantityLAeqHourly, t0.Add(time.Hour), 55, reading.Good)
	set.want(t, QuantityLAeqHourly, t0.Add(2*time.Hour), 55, reading.Suspect)
	set.want(t, QuantityLAeqMinute, t0.Add(30*time.Minute), 55, reading.Suspect)
	set.want(t, QuantityLAeqMinute, t0.Add(31*time.Minute), 55, reading.Good)
	set.want(t, QuantityLAeqMinute, t0.Add(29*time.Minute), 55, reading.Good)

	// Weather is ignored without thresholds.
	b := newAgg(t, nil)
	b.Add(weather(t0, "rain_rate", 50))
	b.Add(la(t0, 55))
	set = collect(t, nil, b.Tick(t0.Add(time.Minute+DefaultLateness)))
	set.want(t, QuantityLAeqMinute, t0, 55, reading.Suspect) // 1 s of 60: by VDR, not rain
	if l := b.Now(t0); l.Rejected != 0 {
		t.Errorf("Rejected = %d, want 0", l.Rejected)
	}
}

func TestAggregatorLaeqInputs(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)

	// 45 min at 62 dB and 15 min at 70 dB from a meter with a 15-min period: 65.67 dB
	// (docs/standards.md §1.8), not the arithmetic 64.
	a := newAgg(t, func(cfg *Config) { cfg.LaeqPeriod = 15 * time.Minute })
	var out []reading.Reading
	for i, l := range []float64{62, 62, 62, 70} {
		out = append(out, a.Add(laeq(t0.Add(time.Duration(i)*15*time.Minute), l))...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(time.Hour+DefaultLateness))...))
	set.want(t, QuantityLAeqHourly, t0, LeqWeighted([]float64{62, 70}, []float64{45, 15}), reading.Good)
	if got := reading.RoundHalfEven(set[key(QuantityLAeqHourly, t0)].Value, 1); got != 65.7 {
		t.Errorf("laeq_1h = %v, want 65.7", got)
	}
	set.want(t, QuantityVDRHourly, t0, 100, reading.Good)
	set.absent(t, QuantityL50Hourly, t0) // no instantaneous levels, no statistics
	set.absent(t, QuantityLmaxHourly, t0)

	// A learned period: a meter with a steady 5-min cadence, one value missing. Each
	// value covers 300 s: 11 of 12 slots, 55 min of 60.
	b := newAgg(t, nil)
	out = nil
	var levels []float64
	for i := range 12 {
		if i == 7 {
			continue // 10:35 lost
		}
		l := float64(50 + i)
		levels = append(levels, l)
		out = append(out, b.Add(laeq(t0.Add(time.Duration(i)*5*time.Minute), l))...)
	}
	set = collect(t, nil, append(out, b.Tick(t0.Add(time.Hour+DefaultLateness))...))
	set.want(t, QuantityLAeqHourly, t0, Leq(levels), reading.Good)
	set.want(t, QuantityVDRHourly, t0, 100*11*300/3600.0, reading.Good)
	set.want(t, QuantityLAeqMinute, t0.Add(40*time.Minute), 58, reading.Good)
	set.absent(t, QuantityLAeqMinute, t0.Add(35*time.Minute))

	// A meter sending both: the `la` samples rule their windows.
	c := newAgg(t, nil)
	out = nil
	for i := range 120 {
		ts := t0.Add(time.Duration(i) * time.Second)
		out = append(out, c.Add(la(ts, 50))...)
		if i%60 == 59 {
			out = append(out, c.Add(laeq(ts, 80))...)
		}
	}
	set = collect(t, nil, append(out, c.Tick(t0.Add(2*time.Hour))...))
	set.want(t, QuantityLAeqMinute, t0, 50, reading.Good)
	set.want(t, QuantityLAeqHourly, t0, 50, reading.Suspect)
	set.want(t, QuantityLmaxHourly, t0, 50, reading.Suspect)
}

func TestAggregatorTickClosesEmptyWindows(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	set := collect(t, nil, a.Add(la(t0, 60)))
	if len(set) != 0 {
		t.Fatalf("first sample emitted %v", set)
	}
	// Nothing closes before end + lateness.
	if got := a.Tick(t0.Add(time.Minute + DefaultLateness - time.Nanosecond)); len(got) != 0 {
		t.Errorf("Tick before end + lateness = %v, want nothing", got)
	}
	out := a.Tick(t0.Add(3*time.Hour + DefaultLateness - time.Nanosecond))
	set = collect(t, set, out)
	set.want(t, QuantityLAeqMinute, t0, 60, reading.Suspect) // 1 s of 60
	set.want(t, QuantityLAeqHourly, t0, 60, reading.Suspect)
	set.want(t, QuantityExceedanceHourly, t0, 5, reading.Suspect)
	set.want(t, QuantityVDRHourly, t0, 100/3600.0, reading.Good)
	set.want(t, QuantityVDRHourly, t0.Add(time.Hour), 0, reading.Good)
	set.absent(t, QuantityLAeqHourly, t0.Add(time.Hour))
	set.absent(t, QuantityVDRHourly, t0.Add(2*time.Hour)) // 13:00 + 5 s not reached
	if n := set.count(QuantityLAeqMinute); n != 1 {
		t.Errorf("%d laeq_1m, want 1 (empty minutes emit nothing)", n)
	}
	// Readings come out in order of their window's end.
	for i := 1; i < len(out); i++ {
		if out[i].Time.Before(out[i-1].Time) && out[i].Quantity == out[i-1].Quantity {
			t.Errorf("out of order: %v before %v", out[i-1], out[i])
		}
	}
	set = collect(t, set, a.Tick(t0.Add(3*time.Hour+DefaultLateness)))
	set.want(t, QuantityVDRHourly, t0.Add(2*time.Hour), 0, reading.Good)

	// A device that never reports: the first Tick opens windows, later ones close them.
	b := newAgg(t, nil)
	if got := b.Tick(t0); len(got) != 0 {
		t.Errorf("first Tick = %v, want nothing", got)
	}
	set = collect(t, nil, b.Tick(t0.Add(time.Hour+DefaultLateness)))
	if len(set) != 1 {
		t.Errorf("an empty hour emitted %v, want only vdr_1h", set)
	}
	set.want(t, QuantityVDRHourly, t0, 0, reading.Good)
}

func TestAggregatorDayNight(t *testing.T) {
	// One sample a minute (Sample 1 min) from 06:00 to 06:00 next day, 60 dB by day and
	// 50 dB by night (class 1: 55/45).
	for _, withGap := range []bool{false, true} {
		t.Run(fmt.Sprint("gap=", withGap), func(t *testing.T) {
			a := newAgg(t, func(cfg *Config) { cfg.Sample = time.Minute })
			d0 := time.Date(2026, 6, 1, 6, 0, 0, 0, cst)
			var out []reading.Reading
			for m := range 24 * 60 {
				ts := d0.Add(time.Duration(m) * time.Minute)
				if withGap && ts.Hour() >= 1 && ts.Hour() < 4 { // 3 h of 8 missing at night
					continue
				}
				l := 60.0
				if DefaultPeriods().IsNight(ts) {
					l = 50
				}
				out = append(out, a.Add(la(ts, l))...)
			}
			// The Lden 24 hours 07:00 to 07:00 end an hour after the night.
			set := collect(t, nil, append(out, a.Tick(d0.Add(25*time.Hour+DefaultLateness))...))
			night := d0.Add(16 * time.Hour)
			set.want(t, QuantityLd, d0, 60, reading.Good)
			set.want(t, QuantityExceedanceDay, d0, 5, reading.Good) // 60 − 55
			set.want(t, QuantityVDRPeriod, d0, 100, reading.Good)
			set.want(t, QuantityExceedanceHourly, d0.Add(15*time.Hour), 5, reading.Good) // 21:00, day limit 55
			set.want(t, QuantityExceedanceHourly, night, 5, reading.Good)                // 22:00, night limit 45
			wantQ, wantVDR := reading.Good, 100.0
			if withGap {
				wantQ, wantVDR = reading.Suspect, 100*5/8.0
			}
			set.want(t, QuantityLn, night, 50, wantQ)
			set.want(t, QuantityExceedanceNight, night, 5, wantQ) // 50 − 45, as good as ln
			set.want(t, QuantityVDRPeriod, night, wantVDR, reading.Good)
			set.want(t, QuantityLdn, d0, Ldn(60, 50, 16, 8), wantQ)

			// Lden over 07:00 to 07:00 from the hourly LAeq: 07-19 day (60), 19-23 evening
			// (19, 20, 21 at 60, 22 at 50), 23-07 night (23-05 at 50, 06 without data).
			// The night part has 7 (with the gap 4) of its 8 hours: Good (Suspect).
			l0 := d0.Add(time.Hour)
			nightHours := []float64{50, 50, 50, 50, 50, 50, 50}
			if withGap {
				nightHours = []float64{50, 50, 50, 50}
			}
			set.want(t, QuantityLdenDay, l0, 60, reading.Good)
			set.want(t, QuantityLdenEvening, l0.Add(12*time.Hour), Leq([]float64{60, 60, 60, 50}), reading.Good)
			set.want(t, QuantityLdenNight, l0.Add(16*time.Hour), Leq(nightHours), wantQ)
			set.want(t, QuantityLden, l0, Lden(60, Leq([]float64{60, 60, 60, 50}), Leq(nightHours), 12, 4, 8), wantQ)
			// The 24 hours before hold only 06:00-07:00 (60), the end of their night.
			set.want(t, QuantityLdenNight, l0.Add(-8*time.Hour), 60, reading.Suspect)
			set.absent(t, QuantityLden, l0.Add(-24*time.Hour))
			if n := set.count(QuantityLdn); n != 1 {
				t.Errorf("%d ldn, want 1", n)
			}
			if n := set.count(QuantityLden); n != 1 {
				t.Errorf("%d lden, want 1", n)
			}
		})
	}
}

func TestAggregatorNow(t *testing.T) {
	a := newAgg(t, func(cfg *Config) { v := 50.0; cfg.DayLimit = &v })
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	for i := range 90 {
		a.Add(la(t0.Add(time.Duration(i)*time.Second), float64(50+10*(i/60)))) // 60 s of 50, 30 s of 60
	}
	l := a.Now(t0.Add(90 * time.Second))
	leqAll := Leq(append(slices.Repeat([]float64{50}, 60), slices.Repeat([]float64{60}, 30)...))
	if l.Night || l.Limit != 50 || l.LeqMinute != 60 || math.Abs(l.LeqHour-leqAll) > 1e-9 ||
		math.Abs(l.LeqPeriod-leqAll) > 1e-9 || math.Abs(l.Exceedance-(leqAll-50)) > 1e-9 || l.Accepted != 90 {
		t.Errorf("Now = %+v, want limit 50, minute 60, hour and period %v, exceedance %v", l, leqAll, leqAll-50)
	}
	// Three hours on, no minute or hour window with data contains the instant: NaN, not
	// a stale value. The day period is still running.
	if l := a.Now(t0.Add(3 * time.Hour)); !math.IsNaN(l.LeqMinute) || !math.IsNaN(l.LeqHour) || math.Abs(l.LeqPeriod-leqAll) > 1e-9 {
		t.Errorf("Now(3 h later) = %+v, want NaN minute and hour, period %v", l, leqAll)
	}
	if l := a.Now(time.Date(2026, 6, 1, 23, 0, 0, 0, cst)); !l.Night || l.Limit != 45 {
		t.Errorf("Now(23:00) = %+v, want night limit 45 (zone 1)", l)
	}
}

func TestAggregatorRejects(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	bad := la(t0, 60)
	bad.Quality = reading.Bad
	other := la(t0, 60)
	other.Device = "noise-2"
	for _, r := range []reading.Reading{
		bad, other, la(t0, 200), la(t0, -1), la(t0, math.NaN()), la(time.Time{}, 60),
		{Time: t0, Site: site, Device: device, Quantity: "pm25", Value: 30},
	} {
		if out := a.Add(r); len(out) != 0 {
			t.Errorf("Add(%+v) = %v", r, out)
		}
	}
	suspect := la(t0, 70)
	suspect.Quality = reading.Suspect
	a.Add(suspect) // plausible: used
	l := a.Now(t0)
	if l.Rejected != 7 || l.Accepted != 1 || l.LeqMinute != 70 {
		t.Errorf("Now = %+v, want Rejected 7, Accepted 1, LeqMinute 70", l)
	}
}

func TestNewAggregatorErrors(t *testing.T) {
	v, neg := 50.0, -3.0
	if _, err := NewAggregator(Config{Site: "s", Device: "d", DayLimit: &v, NightLimit: &v}); err != nil {
		t.Errorf("NewAggregator(no zone, both limits) = %v, want nil", err)
	}
	_, err := NewAggregator(Config{
		Site: "", Device: "a b", Zone: "5", NightLimit: &neg, BurstMargin: -1,
		Sample: -time.Second, MinValidHour: 1.5, Lateness: -1, RainMax: math.NaN(),
		Periods: Periods{DayStart: 23 * time.Hour, NightStart: time.Hour},
	})
	for _, w := range []string{
		"site: must not be empty", "device: character ' '", `zone: "5" is not`, "night_limit: -3",
		"burst_margin: -1", "sample: -1s", "min_valid_hour: 1.5", "lateness: -1ns", "rain_max: NaN",
		"periods: night_start",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("NewAggregator(bad config) = %v, want error containing %q", err, w)
		}
	}
	if _, err := NewAggregator(Config{Site: "s", Device: "d", DayLimit: &v}); err == nil {
		t.Errorf("NewAggregator(no zone, one limit) = nil, want error")
	}
}

func TestQuantities(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range Quantities() {
		if seen[q.Name] {
			t.Errorf("quantity %q listed twice", q.Name)
		}
		seen[q.Name] = true
		if q.Name != strings.ToLower(q.Name) || strings.ContainsAny(q.Name, " .-") || strings.HasSuffix(q.Name, "_quality") {
			t.Errorf("quantity %q: not a catalog field key", q.Name)
		}
		if q.Min >= q.Max || q.Unit == "" || q.Doc == "" || q.Domain != reading.Noise {
			t.Errorf("quantity %+v: incomplete entry", q)
		}
		// Once the integrator adds them, the catalog must agree.
		if c, ok := reading.Lookup(q.Name); ok && c.Unit != q.Unit {
			t.Errorf("quantity %q: catalog unit %q, ours %q", q.Name, c.Unit, q.Unit)
		}
	}
	if len(seen) != 25 {
		t.Errorf("%d derived quantities, want 25", len(seen))
	}
	for _, in := range []string{inLA, inLAeq, inRainRate, inWindSpeed} {
		if _, ok := reading.Lookup(in); !ok {
			t.Errorf("input quantity %q is not in the catalog", in)
		}
	}
}

// The energy counters give the LAeq of any span between two snapshots, and the last
// burst's peak is kept for metrics.
func TestLiveEnergyAndLastBurst(t *testing.T) {
	a, err := NewAggregator(Config{Site: "s", Device: "d", Zone: Zone1})
	if err != nil {
		t.Fatal(err)
	}
	if l := a.Now(time.Now()); !math.IsNaN(l.LastBurst) || l.Energy != 0 || l.Seconds != 0 {
		t.Fatalf("fresh Live = %+v", l)
	}
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) // 20:00 in Shanghai: day
	for i, v := range []float64{50, 60} {
		a.Add(reading.Reading{Time: t0.Add(time.Duration(i) * time.Second), Site: "s", Device: "d", Quantity: "la", Value: v})
	}
	l := a.Now(t0)
	if got := 10 * math.Log10(l.Energy/l.Seconds); math.Abs(got-57.40) > 0.005 || l.Seconds != 2 {
		t.Errorf("LAeq from counters = %.3f over %v s, want 57.40 over 2 s (docs/standards.md §1.8)", got, l.Seconds)
	}
	night := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC) // 23:00 in Shanghai
	for i, v := range []float64{70, 80, 40} {               // night limit 45 (zone 1): 70 and 80 are a burst
		a.Add(reading.Reading{Time: night.Add(time.Duration(i) * time.Second), Site: "s", Device: "d", Quantity: "la", Value: v})
	}
	if l := a.Now(night); l.LastBurst != 80 || l.Bursts != 1 {
		t.Errorf("LastBurst = %v, Bursts = %d, want 80, 1", l.LastBurst, l.Bursts)
	}
}

// A meter's own 1-min Leq values without laeq_period: each covers its minute, the first
// of the recording included (it used to count for 1 s, every later one for 60 s, which
// gave 10·lg((1·10^8 + 59·60·10^5)/3541) = 51.08 dB). Exactly, in units of 60 s:
//
//	LAeq,1h = 10·lg((10^8 + 59·10^5)/60) = 10·lg(105 900 000/60) = 10·lg(1 765 000)
//	        = 62.4674… → 62.47 dB(A)
func TestAggregatorLaeqSixtyMinutes(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	var out []reading.Reading
	for m := range 60 {
		l := 50.0
		if m == 0 {
			l = 80
		}
		out = append(out, a.Add(laeq(t0.Add(time.Duration(m)*time.Minute), l))...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(time.Hour+DefaultLateness))...))
	want := 10 * math.Log10((1e8+59*1e5)/60)
	set.want(t, QuantityLAeqHourly, t0, want, reading.Good)
	if got := reading.RoundHalfEven(set[key(QuantityLAeqHourly, t0)].Value, 2); got != 62.47 {
		t.Errorf("laeq_1h = %v, want 62.47", got)
	}
	set.want(t, QuantityVDRHourly, t0, 100, reading.Good)
	set.want(t, QuantityLAeqMinute, t0, 80, reading.Good) // the first minute is whole
	set.want(t, QuantityLAeqMinute, t0.Add(59*time.Minute), 50, reading.Good)
	if n := set.count(QuantityLAeqMinute); n != 60 {
		t.Errorf("%d laeq_1m, want 60", n)
	}
	// The counters hold the same hour: 3600 s of the same energy.
	if l := a.Now(t0.Add(time.Hour)); l.Seconds != 3600 || math.Abs(10*math.Log10(l.Energy/l.Seconds)-want) > 1e-9 {
		t.Errorf("Live: %v s, LAeq %v; want 3600 s, %v", l.Seconds, 10*math.Log10(l.Energy/l.Seconds), want)
	}
}

// A missing quarter-hour of 1-min Leq values is missing data, not 16 minutes of the
// level after it: 45 values of 60 s cover 2700 s of 3600, a valid-data rate of 75 %
// (it used to say (1 + 43·60 + 960)/3600 = 98.4 %: the first value counted for 1 s, the
// one after the gap for 16 min). 10:00-10:19 at 50, 10:20-10:34 missing, 10:35-10:59 at 70:
//
//	LAeq,1h = 10·lg((20·10^5 + 25·10^7)/45) = 10·lg(252 000 000/45) = 10·lg(5 600 000)
//	        = 67.4819… → 67.48 dB(A)
//
// (the old weights gave 10·lg((10^5 + 19·60·10^5 + 960·10^7 + 24·60·10^7)/3541) = 68.33).
func TestAggregatorLaeqMissingQuarterHour(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	var out []reading.Reading
	for m := range 60 {
		if m >= 20 && m < 35 {
			continue
		}
		l := 50.0
		if m >= 35 {
			l = 70
		}
		out = append(out, a.Add(laeq(t0.Add(time.Duration(m)*time.Minute), l))...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(time.Hour+DefaultLateness))...))
	set.want(t, QuantityVDRHourly, t0, 75, reading.Good)
	set.want(t, QuantityLAeqHourly, t0, 10*math.Log10(5_600_000), reading.Good) // 75 % is not below 0.75
	if got := reading.RoundHalfEven(set[key(QuantityLAeqHourly, t0)].Value, 2); got != 67.48 {
		t.Errorf("laeq_1h = %v, want 67.48", got)
	}
	set.want(t, QuantityLAeqMinute, t0.Add(35*time.Minute), 70, reading.Good) // its own minute only
	set.absent(t, QuantityLAeqMinute, t0.Add(20*time.Minute))
	if n := set.count(QuantityLAeqMinute); n != 45 {
		t.Errorf("%d laeq_1m, want 45", n)
	}
}

// The first value of a recording covers its whole period. A meter with a 15-min Leq,
// not configured: 70 at 10:00 (the first), 62 at 10:15, 10:30 and 10:45. It is the
// worked example of docs/standards.md §1.8, 45 min at 62.0 and 15 min at 70.0:
//
//	LAeq,1h = 10·lg((45·10^6.2 + 15·10^7.0)/60) = 10·lg((3·10^6.2 + 10^7)/4) = 65.67 dB(A)
//
// (the first value used to count for 1 s: 10·lg((10^7 + 2700·10^6.2)/2701) = 62.01, and
// the hour's valid-data rate 2701/3600 = 75.03 %).
func TestAggregatorLaeqFirstValueOfRecording(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	var out []reading.Reading
	for i, l := range []float64{70, 62, 62, 62} {
		out = append(out, a.Add(laeq(t0.Add(time.Duration(i)*15*time.Minute), l))...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(time.Hour+DefaultLateness))...))
	want := 10 * math.Log10((3*math.Pow(10, 6.2)+1e7)/4)
	set.want(t, QuantityLAeqHourly, t0, want, reading.Good)
	if got := reading.RoundHalfEven(set[key(QuantityLAeqHourly, t0)].Value, 2); got != 65.67 {
		t.Errorf("laeq_1h = %v, want 65.67", got)
	}
	set.want(t, QuantityVDRHourly, t0, 100, reading.Good)
	set.want(t, QuantityLAeqMinute, t0, 70, reading.Good)
	if l := a.Now(t0.Add(time.Hour)); l.Seconds != 3600 || math.Abs(10*math.Log10(l.Energy/l.Seconds)-want) > 1e-9 {
		t.Errorf("Live: %v s, LAeq %v; want 3600 s, %v", l.Seconds, 10*math.Log10(l.Energy/l.Seconds), want)
	}

	// A single value, no cadence to learn: it covers Sample, as an `la` sample would.
	b := newAgg(t, nil)
	set = collect(t, nil, append(b.Add(laeq(t0, 70)), b.Tick(t0.Add(time.Hour+DefaultLateness))...))
	set.want(t, QuantityLAeqHourly, t0, 70, reading.Suspect)
	set.want(t, QuantityVDRHourly, t0, 100/3600.0, reading.Good)
}

func TestCadence(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	at := func(s ...float64) []time.Time {
		var ts []time.Time
		for _, v := range s {
			ts = append(ts, t0.Add(time.Duration(v*float64(time.Second))))
		}
		return ts
	}
	for _, c := range []struct {
		name  string
		times []time.Time
		p     float64
		n     int
	}{
		{"none", nil, 0, 0},
		{"one value", at(0), 0, 0},
		{"one spacing", at(0, 60), 60, 1},
		{"steady", at(0, 60, 120, 180), 60, 3},
		{"a gap does not win", at(0, 60, 120, 1080, 1140), 60, 3},
		{"tie: the shorter", at(0, 60, 180), 60, 1},
		{"redelivered", at(0, 60, 60, 0, 120, 60), 60, 2},
		{"out of order", at(120, 0, 180, 60), 60, 3},
		{"jitter rounds to seconds", at(0.3, 60.1, 119.8, 179.9), 60, 3},
		{"an outage is no period", at(0, 3601, 7202), 0, 0},
		{"an hour is", at(0, 3600, 7200.4), 3600, 2},
		{"sub-second: none", at(0, 0.2, 0.4), 0, 0},
		// 20 values at 1 s then 16 at 5 s: only the latest 16 count.
		{"the latest 16", append(at(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19),
			at(25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100)...), 5, 15},
		{"older than all kept", append(at(25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100),
			at(1, 2, 3)...), 5, 15},
	} {
		var cad cadence
		for _, ts := range c.times {
			cad.add(ts)
		}
		if p, n := cad.period(); p != c.p || n != c.n {
			t.Errorf("%s: period() = %v, %d; want %v, %d", c.name, p, n, c.p, c.n)
		}
		if len(cad.times) > cadenceSize || !slices.IsSortedFunc(cad.times, time.Time.Compare) {
			t.Errorf("%s: times %v not ascending within %d", c.name, cad.times, cadenceSize)
		}
	}
}
