package air

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// Issue 11, defect 3: a redelivered sample counted twice. An hour of 1-min PM2.5
// samples, 10 at 200 µg/m³ then 50 at 20; the 10 high ones arrive again before the
// hour closes. Counted once the 1-h mean is (10·200 + 50·20)/60 = 3000/60 = 50 µg/m³;
// counted twice, as the old code did, (20·200 + 50·20)/70 = 5000/70 = 71.43 µg/m³.
func TestAggregatorRedeliveredSamplesCountOnce(t *testing.T) {
	a := newAgg(t, nil)
	var out []reading.Reading
	for m := range 60 {
		v := 20.0
		if m < 10 {
			v = 200
		}
		out = append(out, a.Add(raw(day0.Add(time.Duration(m)*time.Minute), "pm25", v))...)
	}
	for m := range 10 {
		out = append(out, a.Add(raw(day0.Add(time.Duration(m)*time.Minute), "pm25", 200))...)
	}
	set := collect(t, nil, append(out, a.Tick(day0.Add(time.Hour+DefaultLateness))...))
	set.want(t, QuantityPM25Hourly, day0, 50, reading.Good)
	set.want(t, QuantityPM25Minutes, day0, 60, reading.Good)
	if l := a.Now(day0.Add(time.Hour)); l.Accepted != 60 || l.Duplicate != 10 {
		t.Errorf("Live: %d accepted, %d duplicate; want 60, 10", l.Accepted, l.Duplicate)
	}
}

// airStream is two days of 1-min samples of the six pollutants with random levels, a
// random tenth missing, an outage of 3 h, some samples Suspect and NO2 in ppb.
func airStream(rng *rand.Rand) []reading.Reading {
	levels := map[string]float64{"so2": 10, "no2": 40, "co": 1, "o3": 100, "pm10": 90, "pm25": 60}
	var rs []reading.Reading
	for m := range 2 * 24 * 60 {
		if m >= 1800 && m < 1980 {
			continue
		}
		at := day0.Add(time.Duration(m) * time.Minute)
		for _, q := range []string{"so2", "no2", "co", "o3", "pm10", "pm25"} {
			levels[q] = max(0.1, levels[q]*(1+rng.NormFloat64()*0.05))
			if rng.IntN(10) == 0 {
				continue
			}
			v := float64(int(levels[q]*10)) / 10
			r := raw(at, q, v)
			switch {
			case q == "no2" && m%3 == 0:
				r.Value, r.Unit = float64(int(levels[q]*5)/10), "ppb"
			case rng.IntN(100) == 0:
				r.Quality = reading.Suspect
			}
			rs = append(rs, r)
		}
	}
	return rs
}

func feedAir(t *testing.T, mutate func(*Config), rs []reading.Reading) string {
	t.Helper()
	return windowtest.Feed(newAgg(t, mutate), rs, nil)
}

// Issue 11, defect 3, as a property: feeding every sample twice, or random subsets of
// the recent samples again out of order within the lateness, derives byte-identical
// readings (1-h, 8-h, 24-h means, daily figures, AQI) to feeding them once. Seeded
// streams, two editions, two latenesses.
func TestAggregatorIdempotent(t *testing.T) {
	for seed := range uint64(2) {
		for _, c := range []struct {
			edition  Edition
			lateness time.Duration
		}{{HJ633_2026, 0}, {USEPA2024, 10 * time.Minute}} {
			cfg := func(cfg *Config) { cfg.Method.Edition, cfg.Lateness = c.edition, c.lateness }
			rng := rand.New(rand.NewPCG(seed, 11))
			rs := airStream(rng)
			once := feedAir(t, cfg, rs)
			if once == "" {
				t.Fatalf("seed %d, %v: derived nothing, so every comparison would pass", seed, c.edition)
			}
			l := max(c.lateness, DefaultLateness)
			for _, v := range []struct {
				name string
				rs   []reading.Reading
			}{{"twice", windowtest.Twice(rs)}, {"redelivered", windowtest.Redeliver(rng, rs, l)}} {
				if d := windowtest.Diff(feedAir(t, cfg, v.rs), once); d != "" {
					t.Errorf("seed %d, %v, lateness %v, fed %s: %s", seed, c.edition, c.lateness, v.name, d)
				}
			}
		}
	}
}

// Issue 11, defect 3, over a month end: feeding every reading twice, or random subsets
// again out of order within the lateness, gives byte-identical output, the monthly
// statistics included (those of the last 4 days of February 2026: the stream of
// TestAggregatorMonthStatistics from the 25th).
func TestAggregatorIdempotentOverMonthEnd(t *testing.T) {
	rs := februaryFrom(feb1.AddDate(0, 0, 24))
	once := feedAir(t, hourly, rs)
	if !strings.Contains(once, QuantityGoodShareMonthly) {
		t.Fatal("no monthly statistics derived, so the comparison would prove nothing")
	}
	rng := rand.New(rand.NewPCG(11, 2))
	for _, v := range []struct {
		name string
		rs   []reading.Reading
	}{{"twice", windowtest.Twice(rs)}, {"redelivered", windowtest.Redeliver(rng, rs, DefaultLateness)}} {
		if d := windowtest.Diff(feedAir(t, hourly, v.rs), once); d != "" {
			t.Errorf("fed %s: %s", v.name, d)
		}
	}
}
