package air

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// inputUnits are the units the catalog accepts for p's raw readings (aliases convert
// by the same factor and are covered by TestConvert).
func inputUnits(p Pollutant) []string {
	u := []string{unitUG, unitMG}
	if pollutantInfo[p].molar > 0 {
		u = append(u, unitPPB, unitPPM)
	}
	return u
}

// breakpointValues returns, in e's unit for p, every breakpoint concentration of p's
// columns in e, and each ± one reporting step and ± half a step (the GB/T 8170 ties of
// HJ 633-2026; the truncations of the US method). The step is the unit of the last
// decimal the edition keeps: 1 µg/m³ (CO 0.1 mg/m³) for HJ 633-2026, the same for
// HJ 633-2012 (which does not round), the truncation step for the US method.
func breakpointValues(e Edition, p Pollutant) []*big.Rat {
	seen := map[string]*big.Rat{}
	for k, col := range tables[e] {
		if k.Pollutant != p {
			continue
		}
		step := pow10(-col.decimals)
		half := new(big.Rat).Quo(step, big.NewRat(2, 1))
		for _, s := range col.segs {
			for _, b := range []*big.Rat{s.cLo, s.cHi} {
				for _, d := range []*big.Rat{new(big.Rat), step, half} {
					for _, c := range []*big.Rat{new(big.Rat).Add(b, d), new(big.Rat).Sub(b, d)} {
						if c.Sign() >= 0 {
							seen[c.RatString()] = c
						}
					}
				}
			}
		}
	}
	var out []*big.Rat
	for _, c := range seen {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *big.Rat) int { return a.Cmp(b) })
	return out
}

// in returns c, a concentration of p in e's unit, in unit: the float64 nearest the
// exact value (what a device reporting in that unit sends, at most rounded).
func in(t *testing.T, e Edition, p Pollutant, c *big.Rat, unit string) float64 {
	t.Helper()
	var r Reference
	toCat, err := r.factor(p.Quantity(), e.Unit(p))
	if err != nil {
		t.Fatal(err)
	}
	fromCat, err := r.factor(p.Quantity(), unit)
	if err != nil {
		t.Fatal(err)
	}
	x := new(big.Rat).Mul(c, toCat)
	return toFloat(x.Quo(x, fromCat))
}

// combo is one constant input of a property day: c in the edition's unit, sent in unit
// as v.
type combo struct {
	c    *big.Rat
	unit string
	v    float64
}

// TestPropertyConstantWindows: for both Chinese editions and the US method, for every
// breakpoint concentration c of every pollutant and averaging time, and c ± one
// reporting step and ± half of one, a constant day of c, in every input unit the
// catalog accepts (converted at the edge by reading.Convert, as drivers and replay do;
// this package's Convert gives the same float64, checked for each), yields exactly the
// indices of c itself: every IAQI and the AQI of the hourly report that ends the day
// (1-h, 8-h, 24-h means and NowCast all c) and of the daily report (daily mean, largest
// 1-h and 8-h mean all c). Each day carries all six pollutants, each its own next
// (c, unit); one sample every 20 minutes, 3 to an hour (so hourly means divide by 3).
func TestPropertyConstantWindows(t *testing.T) {
	for _, e := range Editions() {
		t.Run(e.String(), func(t *testing.T) {
			t.Parallel()
			var combos [nPollutants][]combo
			n := 0
			for _, p := range Pollutants() {
				q, _ := reading.Lookup(p.Quantity())
				for _, c := range breakpointValues(e, p) {
					for _, unit := range inputUnits(p) {
						v := in(t, e, p, c, unit)
						cat, err := reading.Convert(p.Quantity(), v, unit)
						own, err2 := Convert(p.Quantity(), v, unit)
						if err != nil || err2 != nil || cat != own {
							t.Fatalf("%s %v %s: reading.Convert %v (%v), Convert %v (%v)", p, v, unit, cat, err, own, err2)
						}
						if q.Plausible(cat) { // beyond the catalog's range: rejected, not rated
							combos[p] = append(combos[p], combo{c, unit, v})
						}
					}
				}
				n = max(n, len(combos[p]))
			}
			// Under qemu-arm (32-bit, ~10× slower) every 4th day: the arithmetic is the
			// same Go code; the full set runs on 64-bit with -race.
			stride := 1
			if strconv.IntSize == 32 {
				stride = 4
			}
			for i := 0; i < n; i += stride {
				a := newAgg(t, func(cfg *Config) { cfg.Method.Edition = e; cfg.Sample = 20 * time.Minute })
				conc := Concentrations{}
				var rs []reading.Reading
				what := e.String() + ":"
				for _, p := range Pollutants() {
					k := combos[p][i%len(combos[p])]
					for _, avg := range []Averaging{Avg1h, Avg8h, Avg24h, AvgNowCast} {
						conc[Key{p, avg}] = toFloat(k.c) // c as the decimal it is
					}
					cat, _ := reading.Convert(p.Quantity(), k.v, k.unit)
					rs = append(rs, raw(day0, p.Quantity(), cat))
					what += fmt.Sprintf(" %s %s %s = %v %s;", p, k.c.FloatString(3), e.Unit(p), k.v, k.unit)
				}
				set := feedConstant(t, a, rs)
				m := Method{Edition: e}
				checkReport(t, what, set, Hourly, day0.Add(23*time.Hour), m.Report(Hourly, conc))
				checkReport(t, what, set, Daily, day0, m.Report(Daily, conc))
			}
			t.Logf("%d constant days", n)
		})
	}
}

// feedConstant sends the readings rs every a.Config().Sample through day0, ends the
// day and returns what was derived.
func feedConstant(t *testing.T, a *Aggregator, rs []reading.Reading) derivedSet {
	t.Helper()
	var out []reading.Reading
	for at := day0; at.Before(day0.Add(24 * time.Hour)); at = at.Add(a.Config().Sample) {
		for _, r := range rs {
			r.Time = at.UTC()
			out = append(out, a.Add(r)...)
		}
	}
	out = append(out, a.Tick(a.FlushTime(day0))...)
	if l := a.Now(day0); l.Rejected != 0 || l.Late != 0 {
		t.Fatalf("%d rejected, %d late", l.Rejected, l.Late)
	}
	set := derivedSet{}
	for _, r := range out {
		set[key(r.Quantity, r.Time)] = r
	}
	return set
}

// checkReport compares the derived report of kind k at `at` with want, item by item.
func checkReport(t *testing.T, what string, set derivedSet, k Kind, at time.Time, want Result) {
	t.Helper()
	for _, item := range AllItems() {
		r, got := set[key(iaqiName(item, k), at)]
		idx, ok := want.IAQI[item]
		switch {
		case ok && !got:
			t.Errorf("%s: no %s report %s, want %d", what, k, item, idx.Value)
		case !ok && got:
			t.Errorf("%s: %s report %s = %v, want none", what, k, item, r.Value)
		case ok && r.Value != float64(idx.Value):
			t.Errorf("%s: %s report %s = %v, want %d (concentration %v)", what, k, item, r.Value, idx.Value, idx.Concentration)
		}
	}
	name := reportNames[k][0]
	if r, got := set[key(name, at)]; got != want.Published || (got && r.Value != float64(want.AQI)) {
		t.Errorf("%s: %s = %v (%v), want %d (%v)", what, name, r.Value, got, want.AQI, want.Published)
	}
}

// TestPropertyUSRoundTrip: every concentration of the US gas tables on their truncation
// grid (SO2 and NO2 every ppb, CO every 0.1 ppm, O3 every 0.001 ppm, up to the top
// breakpoint), sent in ppb or ppm, converted at the edge to the catalog unit
// (reading.Convert, or this package's Convert) and expressed in the table's unit again
// (Express, as the Aggregator does for the US method), is the value sent, exactly.
func TestPropertyUSRoundTrip(t *testing.T) {
	var r Reference
	n := 0
	for _, p := range []Pollutant{SO2, NO2, CO, O3} {
		top := new(big.Rat)
		decimals := 0
		for k, col := range tables[USEPA2024] {
			if k.Pollutant == p {
				decimals = col.decimals
				if hi := col.segs[len(col.segs)-1].cHi; hi.Cmp(top) > 0 {
					top = hi
				}
			}
		}
		tableUnit := USEPA2024.Unit(p)
		step := pow10(-decimals)
		for c := new(big.Rat); c.Cmp(top) <= 0; c.Add(c, step) {
			for _, unit := range []string{unitPPB, unitPPM} {
				// c in unit: ppb = ppm·1000 exactly.
				v := new(big.Rat).Set(c)
				switch {
				case tableUnit == unitPPM && unit == unitPPB:
					v.Mul(v, big.NewRat(1000, 1))
				case tableUnit == unitPPB && unit == unitPPM:
					v.Quo(v, big.NewRat(1000, 1))
				}
				sent, want := toFloat(v), toFloat(c)
				edge, err1 := reading.Convert(p.Quantity(), sent, unit)
				own, err2 := r.Convert(p.Quantity(), sent, unit)
				if err1 != nil || err2 != nil || edge != own {
					t.Fatalf("%s %v %s: reading.Convert %v (%v), Convert %v (%v)", p, sent, unit, edge, err1, own, err2)
				}
				back, err := r.Express(p.Quantity(), edge, tableUnit)
				if err != nil || back != want {
					t.Errorf("%s %v %s → %v %s → %v %s (%v), want exactly %v", p, sent, unit, edge, p.Unit(), back, tableUnit, err, want)
				}
				n++
			}
		}
	}
	t.Logf("%d round trips", n)
}
