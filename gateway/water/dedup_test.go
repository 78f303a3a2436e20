package water

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// Issue 11, defect 3: a redelivered sample counted twice. A 4-h window with CODMn 3.0
// from probe-1 at 01:00 and 5.0 from probe-2 at 02:00 (and probe-2's 02:00 value
// again): the mean is (3.0 + 5.0)/2 = 4.0 mg/L, class II (≤ 4, GB 3838 Table 1);
// counted twice it was (3.0 + 5.0 + 5.0)/3 = 4.33, class III. Two devices' values at
// the same time are two samples: probe-1 and probe-2 both at 03:00 with DO 7.0 and 9.0
// give 8.0.
func TestAggregatorRedeliveredSamplesCountOnce(t *testing.T) {
	a := newAgg(t, func(c *Config) { c.Required = []Param{} })
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	var out []reading.Reading
	for _, r := range []reading.Reading{
		rd(t0.Add(time.Hour), "probe-1", "codmn", 3),
		rd(t0.Add(2*time.Hour), "probe-2", "codmn", 5),
		rd(t0.Add(3*time.Hour), "probe-1", "do", 7),
		rd(t0.Add(3*time.Hour), "probe-2", "do", 9),
		rd(t0.Add(2*time.Hour), "probe-2", "codmn", 5),
	} {
		out = append(out, a.Add(r)...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(DefaultWindow+DefaultLateness))...))
	set.want(t, MeanQuantity(ParamCODMn), t0, 4, reading.Good)
	set.want(t, ClassQuantity(ParamCODMn), t0, float64(ClassII), reading.Good)
	set.want(t, MeanQuantity(ParamDO), t0, 8, reading.Good)
	if l := a.Now(t0); l.Accepted != 4 || l.Duplicate != 1 {
		t.Errorf("Live: %d accepted, %d duplicate; want 4, 1", l.Accepted, l.Duplicate)
	}
}

// waterStream is three days of a station: two analysers reporting ph, do, codmn, nh3n,
// tp and tn every 30 min with random values around class II–IV, a random fifth missing,
// some Suspect.
func waterStream(rng *rand.Rand) []reading.Reading {
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	base := map[string]float64{"ph": 7.5, "do": 6, "codmn": 4, "nh3n": 0.8, "tp": 0.15, "tn": 1.2}
	var rs []reading.Reading
	for i := range 3 * 48 {
		for _, dev := range []string{"probe-1", "probe-2"} {
			for _, q := range []string{"ph", "do", "codmn", "nh3n", "tp", "tn"} {
				if rng.IntN(5) == 0 {
					continue
				}
				v := float64(int(base[q]*(1+rng.NormFloat64()*0.2)*1000)) / 1000
				if q == "ph" {
					v = min(9, max(6, v))
				}
				r := rd(t0.Add(time.Duration(i)*30*time.Minute), dev, q, max(0.001, v))
				if rng.IntN(40) == 0 {
					r.Quality = reading.Suspect
				}
				rs = append(rs, r)
			}
		}
	}
	return rs
}

func feedWater(t *testing.T, rs []reading.Reading) string {
	t.Helper()
	return windowtest.Feed(newAgg(t, nil), rs, nil)
}

// Issue 11, defect 3, as a property: feeding every sample twice, or random subsets of
// the recent samples again out of order within the lateness, derives byte-identical
// means and classes to feeding them once. Seeded streams.
func TestAggregatorIdempotent(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 11))
		rs := waterStream(rng)
		once := feedWater(t, rs)
		if once == "" {
			t.Fatalf("seed %d: derived nothing, so every comparison would pass", seed)
		}
		for _, v := range []struct {
			name string
			rs   []reading.Reading
		}{{"twice", windowtest.Twice(rs)}, {"redelivered", windowtest.Redeliver(rng, rs, DefaultLateness)}} {
			if d := windowtest.Diff(feedWater(t, v.rs), once); d != "" {
				t.Errorf("seed %d, fed %s: %s", seed, v.name, d)
			}
		}
	}
}
