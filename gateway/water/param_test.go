package water

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// table1 is GB 3838-2002 Table 1 as printed in docs/standards.md §3.1, typed again here so
// that a typo in the package's table fails the boundary tests.
var table1 = []struct {
	p       Param
	w       Waterbody // "" = every water body
	atLeast bool
	limits  [5]float64
}{
	{ParamDO, "", true, [5]float64{7.5, 6, 5, 3, 2}},
	{ParamCODMn, "", false, [5]float64{2, 4, 6, 10, 15}},
	{ParamCOD, "", false, [5]float64{15, 15, 20, 30, 40}},
	{ParamBOD5, "", false, [5]float64{3, 3, 4, 6, 10}},
	{ParamNH3N, "", false, [5]float64{0.15, 0.5, 1.0, 1.5, 2.0}},
	{ParamTP, River, false, [5]float64{0.02, 0.1, 0.2, 0.3, 0.4}},
	{ParamTP, Lake, false, [5]float64{0.01, 0.025, 0.05, 0.1, 0.2}},
	{ParamTP, Reservoir, false, [5]float64{0.01, 0.025, 0.05, 0.1, 0.2}},
	{ParamTN, Lake, false, [5]float64{0.2, 0.5, 1.0, 1.5, 2.0}},
	{ParamTN, Reservoir, false, [5]float64{0.2, 0.5, 1.0, 1.5, 2.0}},
	{ParamFecalColiform, "", false, [5]float64{200, 2000, 10000, 20000, 40000}},
}

func waterbodies(w Waterbody) []Waterbody {
	if w == "" {
		return []Waterbody{River, Lake, Reservoir}
	}
	return []Waterbody{w}
}

func classOf(t *testing.T, p Param, v float64, w Waterbody) Class {
	t.Helper()
	c, err := ParamClass(p, v, w)
	if err != nil {
		t.Fatalf("ParamClass(%s, %v, %s) = %v", p, v, w, err)
	}
	return c
}

// TestParamClassBoundaries checks every limit of every parameter: a value at the limit
// meets the class (the better one), the next float64 on the wrong side does not.
func TestParamClassBoundaries(t *testing.T) {
	for _, row := range table1 {
		for _, w := range waterbodies(row.w) {
			worse := math.Inf(1) // the direction of a worse value
			if row.atLeast {
				worse = math.Inf(-1)
			}
			for k, limit := range row.limits {
				// At the limit: the best class with this limit (COD I and II share 15).
				at := Class(k + 1)
				for at > ClassI && row.limits[at-2] == limit {
					at--
				}
				// Just past it: the first class whose limit is further out, or 劣V.
				past := ClassWorseThanV
				for j := k + 1; j < 5; j++ {
					if row.limits[j] != limit {
						past = Class(j + 1)
						break
					}
				}
				if got := classOf(t, row.p, limit, w); got != at {
					t.Errorf("ParamClass(%s, %v, %s) = %v, want %v (at the limit)", row.p, limit, w, got, at)
				}
				v := math.Nextafter(limit, worse)
				if got := classOf(t, row.p, v, w); got != past {
					t.Errorf("ParamClass(%s, %v, %s) = %v, want %v (just past the limit)", row.p, v, w, got, past)
				}
				// A visible step too, as a report would print it.
				step := limit * 1.001
				if row.atLeast {
					step = limit * 0.999
				}
				if got := classOf(t, row.p, step, w); got != past {
					t.Errorf("ParamClass(%s, %v, %s) = %v, want %v", row.p, step, w, got, past)
				}
			}
			best, worst := 0.0, math.Inf(1)
			if row.atLeast {
				best, worst = 20, 0
			}
			if got := classOf(t, row.p, best, w); got != ClassI {
				t.Errorf("ParamClass(%s, %v, %s) = %v, want I", row.p, best, w, got)
			}
			if got := classOf(t, row.p, worst, w); got != ClassWorseThanV {
				t.Errorf("ParamClass(%s, %v, %s) = %v, want 劣V", row.p, worst, w, got)
			}
		}
	}
}

// TestParamClassDO spells the reversed direction of dissolved oxygen out.
func TestParamClassDO(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want Class
	}{
		{9, ClassI}, {7.5, ClassI}, {7.49, ClassII}, {6, ClassII}, {5.99, ClassIII},
		{5, ClassIII}, {4.99, ClassIV}, {3, ClassIV}, {2.99, ClassV}, {2, ClassV},
		{1.99, ClassWorseThanV}, {0, ClassWorseThanV},
	} {
		if got := classOf(t, ParamDO, c.v, River); got != c.want {
			t.Errorf("ParamClass(do, %v, river) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestParamClassPH(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want Class
	}{
		{0, ClassWorseThanV}, {5.99, ClassWorseThanV}, {math.Nextafter(6, 0), ClassWorseThanV},
		{6, ClassI}, {7.5, ClassI}, {9, ClassI},
		{math.Nextafter(9, 10), ClassWorseThanV}, {9.01, ClassWorseThanV}, {14, ClassWorseThanV},
	} {
		for _, w := range []Waterbody{River, Lake, Reservoir} {
			if got := classOf(t, ParamPH, c.v, w); got != c.want {
				t.Errorf("ParamClass(ph, %v, %s) = %v, want %v", c.v, w, got, c.want)
			}
		}
	}
}

// TestParamClassTPRiverLake: the same TP value is a different class in a river and a
// lake (docs/standards.md §3.3).
func TestParamClassTPRiverLake(t *testing.T) {
	for _, c := range []struct {
		v           float64
		river, lake Class
	}{
		{0.05, ClassII, ClassIII},
		{0.01, ClassI, ClassI},
		{0.02, ClassI, ClassII},
		{0.1, ClassII, ClassIV},
		{0.2, ClassIII, ClassV},
		{0.3, ClassIV, ClassWorseThanV},
		{0.4, ClassV, ClassWorseThanV},
	} {
		if got := classOf(t, ParamTP, c.v, River); got != c.river {
			t.Errorf("ParamClass(tp, %v, river) = %v, want %v", c.v, got, c.river)
		}
		if got := classOf(t, ParamTP, c.v, Lake); got != c.lake {
			t.Errorf("ParamClass(tp, %v, lake) = %v, want %v", c.v, got, c.lake)
		}
	}
}

func TestParamClassErrors(t *testing.T) {
	check := func(p Param, v float64, w Waterbody, want error) {
		t.Helper()
		c, err := ParamClass(p, v, w)
		if !errors.Is(err, want) || c != 0 {
			t.Errorf("ParamClass(%s, %v, %s) = %v, %v, want 0, %v", p, v, w, c, err, want)
		}
	}
	check(ParamTN, 0.1, River, ErrNotApplicable)
	check(ParamWaterTemperature, 20, River, ErrNotClassified)
	check(ParamWaterTemperature, 20, Lake, ErrNotClassified)
	check("turbidity", 1, River, ErrUnknownParam)
	check("", 1, River, ErrUnknownParam)
	check(ParamDO, 6, "sea", ErrWaterbody)
	check(ParamDO, 6, "", ErrWaterbody)
	check(ParamDO, math.NaN(), River, ErrNotANumber)
	check(ParamPH, math.NaN(), Lake, ErrNotANumber)
	if c := (Criterion{Direction: AtMost}).Class(math.NaN()); c != 0 {
		t.Errorf("Criterion.Class(NaN) = %v, want 0", c)
	}
	if c := (Criterion{}).Class(1); c != 0 {
		t.Errorf("zero Criterion.Class(1) = %v, want 0", c)
	}
}

func TestCriterionLimit(t *testing.T) {
	c, err := CriterionOf(ParamTP, Lake)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Limit(ClassIII); got != 0.05 {
		t.Errorf("tp lake Limit(III) = %v, want 0.05", got)
	}
	for _, k := range []Class{0, ClassWorseThanV} {
		if got := c.Limit(k); !math.IsNaN(got) {
			t.Errorf("Limit(%d) = %v, want NaN", k, got)
		}
	}
	ph, _ := CriterionOf(ParamPH, River)
	if ph.Direction != Within || ph.Low != 6 || ph.High != 9 || !math.IsNaN(ph.Limit(ClassIII)) {
		t.Errorf("pH criterion = %+v", ph)
	}
	do, _ := CriterionOf(ParamDO, River)
	if do.Direction != AtLeast || do.Limit(ClassI) != 7.5 {
		t.Errorf("DO criterion = %+v", do)
	}
}

func TestCodes(t *testing.T) {
	want := map[Param]int{
		ParamPH: 1001, ParamDO: 1009, ParamWaterTemperature: 1010, ParamBOD5: 1017, ParamCOD: 1018,
		ParamCODMn: 1019, ParamTN: 21001, ParamNH3N: 21003, ParamTP: 21011, ParamFecalColiform: 0,
	}
	for _, p := range Params() {
		if got := p.Code(); got != want[p] {
			t.Errorf("%s.Code() = %d, want %d", p, got, want[p])
		}
		if want[p] == 0 {
			if p.FactorCode() != "" {
				t.Errorf("%s.FactorCode() = %q, want none", p, p.FactorCode())
			}
			continue
		}
		if got, ok := ParamByCode(want[p]); !ok || got != p {
			t.Errorf("ParamByCode(%d) = %q, %v, want %s", want[p], got, ok, p)
		}
	}
	if ParamDO.FactorCode() != "w01009" {
		t.Errorf("do.FactorCode() = %q", ParamDO.FactorCode())
	}
	for _, c := range []int{0, 1, 99999} {
		if p, ok := ParamByCode(c); ok {
			t.Errorf("ParamByCode(%d) = %s, want none", c, p)
		}
	}
	if Param("x").Code() != 0 || Param("x").Known() || !ParamTN.Known() {
		t.Errorf("Known/Code of unknown parameters")
	}
}

// TestParamClassMonotonic is a property test: for every parameter and water body, the
// class never improves as the concentration rises (for DO: as it falls).
func TestParamClassMonotonic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3838, 2002))
	for _, p := range Params() {
		for _, w := range []Waterbody{River, Lake, Reservoir} {
			c, err := CriterionOf(p, w)
			if err != nil {
				continue
			}
			hi := 2 * c.Limits[4]
			if c.Direction == Within {
				hi = 14
			}
			for range 2000 {
				a, b := rng.Float64()*hi, rng.Float64()*hi
				if a > b {
					a, b = b, a
				}
				checkMonotonic(t, p, w, a, b)
			}
		}
	}
}

// checkMonotonic checks the class order of a ≤ b.
func checkMonotonic(t *testing.T, p Param, w Waterbody, a, b float64) {
	t.Helper()
	ca, cb := classOf(t, p, a, w), classOf(t, p, b, w)
	switch p {
	case ParamPH:
		// Worse outside 6–9 on either side: I inside, 劣V outside.
		if ca != ClassI && ca != ClassWorseThanV || cb != ClassI && cb != ClassWorseThanV {
			t.Errorf("pH classes %v, %v: want I or 劣V", ca, cb)
		}
		if a >= 6 && b <= 9 && (ca != ClassI || cb != ClassI) {
			t.Errorf("pH %v, %v inside 6–9: classes %v, %v", a, b, ca, cb)
		}
	case ParamDO:
		if ca < cb {
			t.Errorf("do: class(%v) = %v better than class(%v) = %v", a, ca, b, cb)
		}
	default:
		if ca > cb {
			t.Errorf("%s in a %s: class(%v) = %v worse than class(%v) = %v", p, w, a, ca, b, cb)
		}
	}
}
