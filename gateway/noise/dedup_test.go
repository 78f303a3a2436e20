package noise

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// Issue 11, defect 3: a redelivered sample counted twice. One minute of 1-s samples,
// 10 at 80 dB(A) then 50 at 50 dB(A); the 10 loud ones arrive again (an MQTT
// redelivery) before the minute closes. Counted once:
//
//	LAeq,1min = 10·lg((10·10^8 + 50·10^5)/60) = 10·lg(1 005 000 000/60) = 10·lg(16 750 000)
//	          = 72.2401… → 72.24 dB(A)
//
// Counted twice, as the old code did: 10·lg((20·10^8 + 50·10^5)/70) = 10·lg(28 642 857.14…)
// = 74.5702… → 74.57 dB(A), and a valid-data rate of 70 s in a 60-s minute.
func TestAggregatorRedeliveredSamplesCountOnce(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	var out []reading.Reading
	for s := range 60 {
		l := 50.0
		if s < 10 {
			l = 80
		}
		out = append(out, a.Add(la(t0.Add(time.Duration(s)*time.Second), l))...)
	}
	for s := range 10 {
		out = append(out, a.Add(la(t0.Add(time.Duration(s)*time.Second), 80))...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(time.Minute+DefaultLateness))...))
	set.want(t, QuantityLAeqMinute, t0, 10*math.Log10(16_750_000), reading.Good)
	if got := reading.RoundHalfEven(set[key(QuantityLAeqMinute, t0)].Value, 2); got != 72.24 {
		t.Errorf("laeq_1m = %v, want 72.24", got)
	}
	if l := a.Now(t0.Add(time.Minute)); l.Accepted != 60 || l.Duplicate != 10 || l.Seconds != 60 {
		t.Errorf("Live: %d accepted, %d duplicate, %v s; want 60, 10, 60 s", l.Accepted, l.Duplicate, l.Seconds)
	}
}

// A meter's own Leq values redelivered: each counts once, also the first of the
// recording (weighted when its windows are read). 70 at 10:00, 62 at 10:15, 10:30 and
// 10:45 (TestAggregatorLaeqFirstValueOfRecording), every value sent twice:
// LAeq,1h = 10·lg((3·10^6.2 + 10^7)/4) = 65.67 dB(A), valid-data rate 100 %.
func TestAggregatorRedeliveredLaeqCountOnce(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	var out []reading.Reading
	for i, l := range []float64{70, 62, 62, 62} {
		r := laeq(t0.Add(time.Duration(i)*15*time.Minute), l)
		out = append(out, a.Add(r)...)
		out = append(out, a.Add(r)...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(time.Hour+DefaultLateness))...))
	set.want(t, QuantityLAeqHourly, t0, 10*math.Log10((3*math.Pow(10, 6.2)+1e7)/4), reading.Good)
	set.want(t, QuantityVDRHourly, t0, 100, reading.Good)
}

// noiseStream is a realistic evening of one device: 1-s `la` samples from 21:30 to
// 22:30 (across the night start, with night bursts) with random dropouts and a 3-min
// outage, a weather station's rain now and then, and a meter's 1-min `laeq` values
// with gaps from 20:00.
func noiseStream(rng *rand.Rand) []reading.Reading {
	t0 := time.Date(2026, 6, 1, 21, 30, 0, 0, cst)
	var rs []reading.Reading
	level := 55.0
	for s := range 3600 {
		at := t0.Add(time.Duration(s) * time.Second)
		level = min(95, max(35, level+rng.NormFloat64()*2))
		if rng.IntN(20) == 0 || s >= 1200 && s < 1380 {
			continue
		}
		r := la(at, math.Round(level*10)/10)
		if rng.IntN(50) == 0 {
			r.Quality = reading.Suspect
		}
		rs = append(rs, r)
		if s%300 == 17 {
			rs = append(rs, weather(at, "rain_rate", float64(rng.IntN(3))))
		}
	}
	return rs
}

func meterStream(rng *rand.Rand) []reading.Reading {
	t0 := time.Date(2026, 6, 1, 20, 0, 0, 0, cst)
	var rs []reading.Reading
	for m := range 180 {
		if rng.IntN(8) == 0 {
			continue
		}
		rs = append(rs, laeq(t0.Add(time.Duration(m)*time.Minute), 45+float64(rng.IntN(300))/10))
	}
	return rs
}

// feedNoise feeds rs to a new Aggregator and flushes it; it returns what it derived.
// feedNoise is clocked by the noise sensor's own samples, not by weather readings.
func feedNoise(t *testing.T, mutate func(*Config), rs []reading.Reading) string {
	t.Helper()
	return windowtest.Feed(newAgg(t, mutate), rs, func(r reading.Reading) bool { return r.Device == device })
}

// Issue 11, defect 3, as a property: feeding every sample twice, or random subsets of
// the recent samples again out of order within the lateness, derives byte-identical
// readings to feeding them once. Seeded streams, two latenesses.
func TestAggregatorIdempotent(t *testing.T) {
	for seed := range uint64(4) {
		for _, lateness := range []time.Duration{0, 2 * time.Minute} {
			cfg := func(c *Config) { c.Lateness = lateness; c.RainMax = 1 }
			rng := rand.New(rand.NewPCG(seed, 11))
			for name, rs := range map[string][]reading.Reading{"la": noiseStream(rng), "laeq": meterStream(rng)} {
				once := feedNoise(t, cfg, rs)
				if once == "" {
					t.Fatalf("seed %d, lateness %v, %s stream: derived nothing, so every comparison would pass", seed, lateness, name)
				}
				l := lateness
				if l == 0 {
					l = DefaultLateness
				}
				for variant, again := range map[string][]reading.Reading{
					"twice":     windowtest.Twice(rs),
					"redeliver": windowtest.Redeliver(rng, rs, l),
				} {
					if d := windowtest.Diff(feedNoise(t, cfg, again), once); d != "" {
						t.Errorf("seed %d, lateness %v, %s stream fed %s: %s", seed, lateness, name, variant, d)
					}
				}
			}
		}
	}
}

// dayStream is two and a half days of one device's 1-min `la` samples (Sample 1 min),
// from 2026-06-01 00:00 to 2026-06-03 08:00, with random dropouts, a 2-h outage and a
// weather station's rain now and then: enough for whole calendar days, day and night
// periods and Lden 24 hours.
func dayStream(rng *rand.Rand) []reading.Reading {
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	var rs []reading.Reading
	level := 55.0
	for m := range 56 * 60 {
		at := t0.Add(time.Duration(m) * time.Minute)
		level = min(90, max(35, level+rng.NormFloat64()))
		if rng.IntN(15) == 0 || m >= 30*60 && m < 32*60 {
			continue
		}
		rs = append(rs, la(at, math.Round(level*10)/10))
		if m%97 == 0 {
			rs = append(rs, weather(at, "rain_rate", float64(rng.IntN(3))))
		}
	}
	return rs
}

// Issue 11, the report quantities under redelivery: laeq_24h, vdr_24h, the period
// exceedances and the parts of Lden (here with a configured evening) are byte-identical
// whether every sample arrives once, twice, or partly again out of order.
func TestAggregatorReportQuantitiesIdempotent(t *testing.T) {
	for seed := range uint64(2) {
		for _, lateness := range []time.Duration{0, 3 * time.Minute} {
			cfg := func(c *Config) {
				c.Sample, c.Lateness, c.RainMax = time.Minute, lateness, 1
				c.Lden = LdenPeriods{DayStart: 7 * time.Hour, EveningStart: 18 * time.Hour, NightStart: 23 * time.Hour}
			}
			rng := rand.New(rand.NewPCG(seed, 24))
			rs := dayStream(rng)
			once := feedNoise(t, cfg, rs)
			for _, q := range []string{QuantityLAeqDaily, QuantityVDRDaily, QuantityExceedanceDay, QuantityExceedanceNight,
				QuantityLdenDay, QuantityLdenEvening, QuantityLdenNight, QuantityLden} {
				if !strings.Contains(once, "/"+device+" "+q+"=") {
					t.Fatalf("seed %d, lateness %v: no %s derived, so the comparison would not cover it", seed, lateness, q)
				}
			}
			l := lateness
			if l == 0 {
				l = DefaultLateness
			}
			for variant, again := range map[string][]reading.Reading{
				"twice":     windowtest.Twice(rs),
				"redeliver": windowtest.Redeliver(rng, rs, l),
			} {
				if d := windowtest.Diff(feedNoise(t, cfg, again), once); d != "" {
					t.Errorf("seed %d, lateness %v, fed %s: %s", seed, lateness, variant, d)
				}
			}
		}
	}
}
