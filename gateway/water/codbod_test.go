package water

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// TestCODBOD5ClassesWorked classifies COD and BOD5 values at each GB 3838-2002 Table 1
// limit (docs/standards.md §3.1) and one reporting step past it. HJ 212-2017 sends both
// as N5.1 (docs/standards.md §4.8), so the step is 0.1 mg/L. Classes I and II share a
// limit (COD 15, BOD5 3), so a value at it is I and one step past it is III: neither
// parameter ever has class II. Computed by hand from the table:
//
//	COD   0 → I    15 → I    15.1 → III   20 → III   20.1 → IV   30 → IV   30.1 → V   40 → V   40.1 → 劣V
//	BOD5  0 → I     3 → I     3.1 → III    4 → III    4.1 → IV    6 → IV    6.1 → V   10 → V   10.1 → 劣V
func TestCODBOD5ClassesWorked(t *testing.T) {
	for _, c := range []struct {
		p    Param
		v    float64
		want Class
	}{
		{ParamCOD, 0, ClassI}, {ParamCOD, 15, ClassI}, {ParamCOD, 15.1, ClassIII},
		{ParamCOD, 20, ClassIII}, {ParamCOD, 20.1, ClassIV}, {ParamCOD, 30, ClassIV},
		{ParamCOD, 30.1, ClassV}, {ParamCOD, 40, ClassV}, {ParamCOD, 40.1, ClassWorseThanV},
		{ParamBOD5, 0, ClassI}, {ParamBOD5, 3, ClassI}, {ParamBOD5, 3.1, ClassIII},
		{ParamBOD5, 4, ClassIII}, {ParamBOD5, 4.1, ClassIV}, {ParamBOD5, 6, ClassIV},
		{ParamBOD5, 6.1, ClassV}, {ParamBOD5, 10, ClassV}, {ParamBOD5, 10.1, ClassWorseThanV},
	} {
		for _, w := range []Waterbody{River, Lake, Reservoir} { // one row for every water body
			if got := classOf(t, c.p, c.v, w); got != c.want {
				t.Errorf("ParamClass(%s, %v, %s) = %v, want %v", c.p, c.v, w, got, c.want)
			}
		}
	}
}

// TestCODBOD5Catalog: both are in the reading catalog in mg/L, in the water
// measurement, averaged and classified by the Aggregator, evaluated in the section
// class, and optional by default.
func TestCODBOD5Catalog(t *testing.T) {
	for _, c := range []struct {
		p              Param
		max            float64
		mean, class    string
		code           int
		factor         string
		evaluatedRiver bool
	}{
		{ParamCOD, 2000, QuantityCODMean, QuantityClassCOD, 1018, "w01018", true},
		{ParamBOD5, 1000, QuantityBOD5Mean, QuantityClassBOD5, 1017, "w01017", true},
	} {
		q, ok := reading.Lookup(string(c.p))
		if !ok || q.Unit != "mg/L" || q.Domain != reading.Water || q.Min != 0 || q.Max != c.max {
			t.Errorf("catalog entry of %s = %+v, %v; want mg/L, water, 0..%v", c.p, q, ok, c.max)
		}
		if !Takes(string(c.p)) || MeanQuantity(c.p) != c.mean || ClassQuantity(c.p) != c.class {
			t.Errorf("%s: Takes %v, mean %q, class %q", c.p, Takes(string(c.p)), MeanQuantity(c.p), ClassQuantity(c.p))
		}
		if m := derivedByName[c.mean]; m.Unit != "mg/L" || m.Max != c.max {
			t.Errorf("%s = %+v, want the unit and range of %s", c.mean, m, c.p)
		}
		if c.p.Code() != c.code || c.p.FactorCode() != c.factor || !derivedByName[QuantityWorstParam].Plausible(float64(c.code)) {
			t.Errorf("%s: code %d factor %q, want %d %q", c.p, c.p.Code(), c.p.FactorCode(), c.code, c.factor)
		}
		if (Rules{Waterbody: River}).evaluated(c.p) != c.evaluatedRiver {
			t.Errorf("%s: evaluated in a river = %v", c.p, !c.evaluatedRiver)
		}
	}
	a := newAgg(t, nil)
	if got, want := a.Config().Required, []Param{ParamPH, ParamDO, ParamCODMn, ParamNH3N, ParamTP}; !slices.Equal(got, want) {
		t.Errorf("default required = %v, want %v (cod and bod5 optional)", got, want)
	}
	a = newAgg(t, func(c *Config) { c.Waterbody, c.TNInClass = Lake, true })
	if got, want := a.Config().Required, []Param{ParamPH, ParamDO, ParamCODMn, ParamNH3N, ParamTP, ParamTN}; !slices.Equal(got, want) {
		t.Errorf("default required with TNInClass = %v, want %v", got, want)
	}
}

// TestSectionWorstCOD evaluates the river section of docs/standards.md §3.3 (pH 7.5,
// DO 6.5, CODMn 3.5, NH3-N 0.40, TP 0.08: I, II, II, II, II, section II) with COD and
// BOD5 added; target III, exceedance multiple (C − L_III)/L_III. By hand:
//
//	A: COD 22 → IV (20 < 22 ≤ 30), multiple (22−20)/20 = 0.1; BOD5 3.5 → III (3 < 3.5 ≤ 4).
//	   Section IV, worst COD, missed [COD], main pollutants [COD].
//	B: COD 24 → IV, multiple 4/20 = 0.2; BOD5 5.0 → IV (4 < 5 ≤ 6), multiple 1/4 = 0.25.
//	   Both IV: the larger multiple ranks first, so worst BOD5, missed [BOD5, COD].
//	C: COD 41 → 劣V, multiple 21/20 = 1.05; BOD5 10 → V, multiple 6/4 = 1.5; DO 1.9 → 劣V,
//	   no multiple by default. Section 劣V; among the 劣V ones COD has a multiple and DO
//	   none, so worst COD; main pollutants [COD, DO, BOD5] (class first, then multiple).
func TestSectionWorstCOD(t *testing.T) {
	base := func(cod, bod5, do float64) map[Param]float64 {
		return map[Param]float64{ParamPH: 7.5, ParamDO: do, ParamCODMn: 3.5, ParamNH3N: 0.40, ParamTP: 0.08,
			ParamCOD: cod, ParamBOD5: bod5}
	}
	type pm struct {
		p        Param
		class    Class
		multiple float64 // NaN: none
	}
	for _, c := range []struct {
		name     string
		values   map[Param]float64
		class    Class
		worst    Param
		missed   []pm
		main     []Param
		codClass Class
	}{
		{"A", base(22, 3.5, 6.5), ClassIV, ParamCOD, []pm{{ParamCOD, ClassIV, 0.1}}, []Param{ParamCOD}, ClassIV},
		{"B", base(24, 5.0, 6.5), ClassIV, ParamBOD5, []pm{{ParamBOD5, ClassIV, 0.25}, {ParamCOD, ClassIV, 0.2}},
			[]Param{ParamBOD5, ParamCOD}, ClassIV},
		{"C", base(41, 10, 1.9), ClassWorseThanV, ParamCOD,
			[]pm{{ParamCOD, ClassWorseThanV, 1.05}, {ParamDO, ClassWorseThanV, math.NaN()}, {ParamBOD5, ClassV, 1.5}},
			[]Param{ParamCOD, ParamDO, ParamBOD5}, ClassWorseThanV},
	} {
		s, err := Evaluate(c.values, Rules{Waterbody: River})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.Class != c.class || s.Worst != c.worst || s.Meets() {
			t.Errorf("%s: class %v worst %s meets %v, want %v, %s, false", c.name, s.Class, s.Worst, s.Meets(), c.class, c.worst)
		}
		if len(s.Missed) != len(c.missed) {
			t.Errorf("%s: missed %+v, want %+v", c.name, s.Missed, c.missed)
			continue
		}
		for i, m := range c.missed {
			got := s.Missed[i]
			if got.Param != m.p || got.Class != m.class || !sameMultiple(got.Multiple, m.multiple) {
				t.Errorf("%s: missed[%d] = %s %v %v, want %s %v %v", c.name, i, got.Param, got.Class, got.Multiple, m.p, m.class, m.multiple)
			}
		}
		var main []Param
		for _, r := range s.MainPollutants() {
			main = append(main, r.Param)
		}
		if !slices.Equal(main, c.main) {
			t.Errorf("%s: main pollutants %v, want %v", c.name, main, c.main)
		}
		for _, r := range s.Params {
			if r.Param == ParamCOD && (r.Class != c.codClass || r.Limit != 20 || !r.Evaluated) {
				t.Errorf("%s: COD result %+v, want class %v, limit 20 (III), evaluated", c.name, r, c.codClass)
			}
		}
	}
}

// sameMultiple compares exceedance multiples to 1e-12 (they are quotients of
// decimals) and NaN with NaN.
func sameMultiple(got, want float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Abs(got-want) < 1e-12
}

// TestAggregatorCODBOD5 runs a river section (target III, 4-hour windows) through
// three windows, each with the §3.3 station results (pH 7.5, DO 6.5, CODMn 3.5, NH3-N
// 0.40, TP 0.08: class II alone). By hand:
//
//	00–04  COD 20.1, 19.8, 20.1 → mean 60.0/3 = 20.0 → III (a plain float mean is
//	       20.000000000000004, class IV); BOD5 4.1, 3.9 → 8.0/2 = 4.0 → III. Section III,
//	       target met; COD and BOD5 tie at III with multiple 0, so the worst is COD, first
//	       in Params() order: worst_param 1018.
//	04–08  COD 22 → IV; BOD5 3.5 → III. Section IV, 1 missed, worst_param 1018.
//	08–12  no COD or BOD5: section II as in §3.3, worst_param 1019 (CODMn), and
//	       params_missing 0 — COD and BOD5 are optional unless required, in which case
//	       params_missing is 2 and the section results are Suspect.
func TestAggregatorCODBOD5(t *testing.T) {
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	w := func(i int) time.Time { return day.Add(time.Duration(i) * 4 * time.Hour) }
	var in []reading.Reading
	for i := range 3 {
		at := w(i)
		for _, s := range []struct {
			q string
			v float64
		}{{"ph", 7.5}, {"do", 6.5}, {"codmn", 3.5}, {"nh3n", 0.40}, {"tp", 0.08}} {
			in = append(in, rd(at, "station-1", s.q, s.v))
		}
	}
	step := 80 * time.Minute
	in = append(in,
		rd(w(0), "station-1", "cod", 20.1), rd(w(0).Add(step), "station-1", "cod", 19.8), rd(w(0).Add(2*step), "station-1", "cod", 20.1),
		rd(w(0).Add(time.Hour), "lab", "bod5", 4.1), rd(w(0).Add(3*time.Hour), "lab", "bod5", 3.9),
		rd(w(1), "station-1", "cod", 22), rd(w(1).Add(time.Hour), "lab", "bod5", 3.5))
	slices.SortStableFunc(in, func(x, y reading.Reading) int { return x.Time.Compare(y.Time) })

	run := func(required []Param) derivedSet {
		a := newAgg(t, func(c *Config) { c.Required = required })
		var out []reading.Reading
		for _, r := range in {
			out = append(out, a.Add(r)...)
		}
		set := collect(t, nil, out)
		return collect(t, set, a.Tick(w(3).Add(DefaultLateness)))
	}
	good, suspect := reading.Good, reading.Suspect
	set := run(nil)
	set.want(t, QuantityCODMean, w(0), 20, good)
	if r := set[key(QuantityCODMean, w(0))]; r.Value != 20 {
		t.Errorf("cod_mean 00–04 = %v, want exactly 20 (the class III limit)", r.Value)
	}
	set.want(t, QuantityClassCOD, w(0), float64(ClassIII), good)
	set.want(t, QuantityBOD5Mean, w(0), 4, good)
	set.want(t, QuantityClassBOD5, w(0), float64(ClassIII), good)
	set.want(t, QuantityClass, w(0), float64(ClassIII), good)
	set.want(t, QuantityTargetMissed, w(0), 0, good)
	set.want(t, QuantityWorstParam, w(0), 1018, good)
	set.want(t, QuantityParamsMissing, w(0), 0, good)

	set.want(t, QuantityCODMean, w(1), 22, good)
	set.want(t, QuantityClassCOD, w(1), float64(ClassIV), good)
	set.want(t, QuantityBOD5Mean, w(1), 3.5, good)
	set.want(t, QuantityClassBOD5, w(1), float64(ClassIII), good)
	set.want(t, QuantityClass, w(1), float64(ClassIV), good)
	set.want(t, QuantityTargetMissed, w(1), 1, good)
	set.want(t, QuantityWorstParam, w(1), 1018, good)

	set.absent(t, QuantityCODMean, w(2))
	set.absent(t, QuantityClassBOD5, w(2))
	set.want(t, QuantityClass, w(2), float64(ClassII), good)
	set.want(t, QuantityWorstParam, w(2), 1019, good)
	set.want(t, QuantityParamsMissing, w(2), 0, good)

	set = run([]Param{ParamPH, ParamDO, ParamCODMn, ParamCOD, ParamBOD5, ParamNH3N, ParamTP})
	set.want(t, QuantityClass, w(0), float64(ClassIII), good)
	set.want(t, QuantityParamsMissing, w(0), 0, good)
	set.want(t, QuantityClass, w(2), float64(ClassII), suspect)
	set.want(t, QuantityParamsMissing, w(2), 2, good)
}
