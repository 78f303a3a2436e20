package water

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func classes(s Section) map[Param]Class {
	m := map[Param]Class{}
	for _, r := range s.Params {
		m[r.Param] = r.Class
	}
	return m
}

func evaluateOK(t *testing.T, values map[Param]float64, r Rules) Section {
	t.Helper()
	s, err := Evaluate(values, r)
	if err != nil {
		t.Fatalf("Evaluate(%v, %+v) = %v", values, r, err)
	}
	return s
}

// TestWorkedExample is docs/standards.md §3.3 exactly.
func TestWorkedExample(t *testing.T) {
	river := map[Param]float64{ParamPH: 7.5, ParamDO: 6.5, ParamCODMn: 3.5, ParamNH3N: 0.40, ParamTP: 0.08}
	s := evaluateOK(t, river, Rules{Waterbody: River})
	want := map[Param]Class{ParamPH: ClassI, ParamDO: ClassII, ParamCODMn: ClassII, ParamNH3N: ClassII, ParamTP: ClassII}
	if got := classes(s); !mapsEqual(got, want) {
		t.Errorf("parameter classes = %v, want %v", got, want)
	}
	if s.Class != ClassII || s.Target != ClassIII || !s.Meets() || len(s.Missed) != 0 {
		t.Errorf("section = %v (target %v, missed %v), want II meeting III", s.Class, s.Target, s.Missed)
	}
	// Four parameters tie at class II; the largest multiple against III decides:
	// CODMn (3.5−6)/6 = −0.42 beats NH3-N (0.4−1)/1 and TP (0.08−0.2)/0.2, both −0.6;
	// DO has none and ranks last.
	if s.Worst != ParamCODMn {
		t.Errorf("worst = %s, want codmn", s.Worst)
	}

	river[ParamDO] = 4.0
	s = evaluateOK(t, river, Rules{Waterbody: River})
	if s.Class != ClassIV || s.Worst != ParamDO || s.Meets() {
		t.Errorf("DO 4.0: section %v worst %s, want IV, do", s.Class, s.Worst)
	}
	if len(s.Missed) != 1 || s.Missed[0].Param != ParamDO || !math.IsNaN(s.Missed[0].Multiple) || s.Missed[0].Limit != 5 {
		t.Errorf("DO 4.0: missed %+v, want do against 5 with no multiple", s.Missed)
	}
	s = evaluateOK(t, river, Rules{Waterbody: River, DOExceedance: true})
	if m := s.Missed[0].Multiple; math.Abs(m-0.2) > 1e-12 {
		t.Errorf("DO 4.0 with DOExceedance: multiple %v, want (5−4)/5 = 0.2", m)
	}

	river[ParamDO] = 1.9
	s = evaluateOK(t, river, Rules{Waterbody: River})
	if s.Class != ClassWorseThanV || s.Worst != ParamDO {
		t.Errorf("DO 1.9: section %v worst %s, want 劣V, do", s.Class, s.Worst)
	}

	// TP 0.05 is class II in a river but class III in a lake.
	for _, c := range []struct {
		w    Waterbody
		want Class
	}{{River, ClassII}, {Lake, ClassIII}} {
		s := evaluateOK(t, map[Param]float64{ParamTP: 0.05}, Rules{Waterbody: c.w})
		if s.Class != c.want {
			t.Errorf("TP 0.05 in a %s: %v, want %v", c.w, s.Class, c.want)
		}
	}
}

func mapsEqual(a, b map[Param]Class) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestEvaluateMissed(t *testing.T) {
	// Target II; CODMn 14 is V with (14−4)/4 = 2.5, NH3-N 2.1 is 劣V with
	// (2.1−0.5)/0.5 = 3.2, TP 0.15 is III with (0.15−0.1)/0.1 = 0.5, pH 9.5 is 劣V
	// without a multiple.
	s := evaluateOK(t, map[Param]float64{
		ParamPH: 9.5, ParamDO: 6, ParamCODMn: 14, ParamNH3N: 2.1, ParamTP: 0.15,
	}, Rules{Waterbody: River, Target: ClassII})
	var got []Param
	for _, m := range s.Missed {
		got = append(got, m.Param)
	}
	if want := []Param{ParamNH3N, ParamPH, ParamCODMn, ParamTP}; !slices.Equal(got, want) {
		t.Errorf("missed = %v, want %v (class, then multiple, then none)", got, want)
	}
	multiples := map[Param]float64{ParamNH3N: 3.2, ParamCODMn: 2.5, ParamTP: 0.5}
	for _, m := range s.Missed {
		want, ok := multiples[m.Param]
		if !ok {
			if !math.IsNaN(m.Multiple) {
				t.Errorf("%s multiple = %v, want none", m.Param, m.Multiple)
			}
			continue
		}
		if math.Abs(m.Multiple-want) > 1e-12 {
			t.Errorf("%s multiple = %v, want %v", m.Param, m.Multiple, want)
		}
	}
	if s.Worst != ParamNH3N || s.Class != ClassWorseThanV {
		t.Errorf("worst %s class %v, want nh3n 劣V", s.Worst, s.Class)
	}
	if ph := s.Missed[1]; ph.Limit != 9 {
		t.Errorf("pH limit = %v, want the upper bound 9", ph.Limit)
	}
	var main []Param
	for _, m := range s.MainPollutants() {
		main = append(main, m.Param)
	}
	if want := []Param{ParamNH3N, ParamPH, ParamCODMn}; !slices.Equal(main, want) {
		t.Errorf("main pollutants = %v, want %v (worse than III, top three)", main, want)
	}
	// A class III section has no main pollutants even if it misses a class II target.
	s = evaluateOK(t, map[Param]float64{ParamTP: 0.15}, Rules{Waterbody: River, Target: ClassII})
	if len(s.Missed) != 1 || len(s.MainPollutants()) != 0 {
		t.Errorf("III section: missed %v, main %v", s.Missed, s.MainPollutants())
	}
	// pH below the range is measured against 6.
	s = evaluateOK(t, map[Param]float64{ParamPH: 5}, Rules{Waterbody: River})
	if s.Params[0].Limit != 6 || s.Class != ClassWorseThanV {
		t.Errorf("pH 5: %+v", s.Params[0])
	}
}

func TestEvaluateTN(t *testing.T) {
	values := map[Param]float64{ParamDO: 8, ParamTN: 1.8, ParamWaterTemperature: 25, ParamFecalColiform: 50000}
	// River: TN has no limits, water temperature no class: both skipped; fecal
	// coliform is classified (劣V) but not evaluated.
	s := evaluateOK(t, values, Rules{Waterbody: River})
	if got := classes(s); !mapsEqual(got, map[Param]Class{ParamDO: ClassI, ParamFecalColiform: ClassWorseThanV}) {
		t.Errorf("river classes = %v", got)
	}
	if s.Class != ClassI {
		t.Errorf("river section = %v, want I (TN and fecal coliform not evaluated)", s.Class)
	}
	// Lake: TN is V, reported, but left out of the section class by default.
	s = evaluateOK(t, values, Rules{Waterbody: Lake})
	if got := classes(s)[ParamTN]; got != ClassV {
		t.Errorf("lake TN class = %v, want V", got)
	}
	if s.Class != ClassI || len(s.Missed) != 0 || s.Worst != ParamDO {
		t.Errorf("lake section = %v missed %v worst %s, want I, none, do", s.Class, s.Missed, s.Worst)
	}
	s = evaluateOK(t, values, Rules{Waterbody: Reservoir, TNInClass: true})
	if s.Class != ClassV || s.Worst != ParamTN || len(s.Missed) != 1 {
		t.Errorf("reservoir with TNInClass: %v worst %s missed %v, want V, tn", s.Class, s.Worst, s.Missed)
	}
	// TNInClass never applies to a river.
	s = evaluateOK(t, values, Rules{Waterbody: River, TNInClass: true})
	if s.Class != ClassI {
		t.Errorf("river with TNInClass: %v, want I", s.Class)
	}
}

func TestEvaluateEmptyAndErrors(t *testing.T) {
	s := evaluateOK(t, nil, Rules{Waterbody: Lake})
	if s.Class != 0 || s.Worst != "" || s.Meets() || s.Target != ClassIII {
		t.Errorf("Evaluate(nil) = %+v, want no class, target III", s)
	}
	s = evaluateOK(t, map[Param]float64{ParamWaterTemperature: 20}, Rules{Waterbody: River})
	if s.Class != 0 || len(s.Params) != 0 {
		t.Errorf("water temperature only: %+v, want nothing", s)
	}
	_, err := Evaluate(map[Param]float64{"turbidity": 3, ParamDO: math.NaN()}, Rules{Waterbody: "sea", Target: ClassWorseThanV})
	for _, want := range []error{ErrUnknownParam, ErrNotANumber} {
		if !errors.Is(err, want) {
			t.Errorf("Evaluate error %v: want %v", err, want)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "waterbody:") || !strings.Contains(err.Error(), "target:") {
		t.Errorf("Evaluate error %v: want waterbody and target problems", err)
	}
}

// TestSectionIsWorstParam is a property test of the single-factor rule: the section
// class is the largest class of the evaluated parameters, the worst parameter has it,
// and Missed is exactly the evaluated parameters worse than the target.
func TestSectionIsWorstParam(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 1))
	ranges := map[Param]float64{
		ParamWaterTemperature: 35, ParamPH: 14, ParamDO: 12, ParamCODMn: 25, ParamCOD: 60,
		ParamBOD5: 15, ParamNH3N: 3, ParamTP: 0.6, ParamTN: 3, ParamFecalColiform: 60000,
	}
	for range 5000 {
		r := Rules{
			Waterbody:    []Waterbody{River, Lake, Reservoir}[rng.IntN(3)],
			Target:       Class(rng.IntN(6)),
			TNInClass:    rng.IntN(2) == 0,
			DOExceedance: rng.IntN(2) == 0,
		}
		values := map[Param]float64{}
		for _, p := range Params() {
			if rng.IntN(3) > 0 {
				values[p] = rng.Float64() * ranges[p]
			}
		}
		s := evaluateOK(t, values, r)
		target := r.Target
		if target == 0 {
			target = ClassIII
		}
		want := Class(0)
		missed := 0
		for _, p := range Params() {
			v, ok := values[p]
			if !ok {
				continue
			}
			c, err := ParamClass(p, v, r.Waterbody)
			if err != nil {
				continue
			}
			evaluated := p != ParamWaterTemperature && p != ParamFecalColiform &&
				(p != ParamTN || r.TNInClass && r.Waterbody.Still())
			if evaluated {
				want = max(want, c)
				if c > target {
					missed++
				}
			}
		}
		if s.Class != want || len(s.Missed) != missed {
			t.Fatalf("Evaluate(%v, %+v): class %v, %d missed; want %v, %d", values, r, s.Class, len(s.Missed), want, missed)
		}
		if want != 0 && classes(s)[s.Worst] != want {
			t.Fatalf("Evaluate(%v, %+v): worst %s has class %v, want %v", values, r, s.Worst, classes(s)[s.Worst], want)
		}
		if s.Meets() != (want != 0 && want <= target) {
			t.Fatalf("Evaluate(%v, %+v): Meets() = %v", values, r, s.Meets())
		}
		for i := 1; i < len(s.Missed); i++ {
			if worseFirst(s.Missed[i-1], s.Missed[i]) > 0 {
				t.Fatalf("Missed not worst first: %+v", s.Missed)
			}
		}
	}
}

func TestMean(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{0.1, 0.1, 0.1}, 0.1}, // plain summation gives 0.10000000000000002
		{[]float64{0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2}, 0.2},
		{[]float64{7.4, 7.6}, 7.5},
		{[]float64{1e-3}, 1e-3},
		{[]float64{0.05, 0.15}, 0.1},
		{[]float64{0, 14}, 7},
	} {
		if got := Mean(c.in); got != c.want {
			t.Errorf("Mean(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := Mean(nil); !math.IsNaN(got) {
		t.Errorf("Mean(nil) = %v, want NaN", got)
	}
	// A day of one-second samples of 0.1 averages to the limit exactly.
	day := make([]float64, 86400)
	for i := range day {
		day[i] = 0.1
	}
	if got := Mean(day); got != 0.1 {
		t.Errorf("Mean(86400 × 0.1) = %v, want 0.1", got)
	}
	// Three TP samples of 0.1 in a river: the mean sits on the class II limit.
	if c := classOf(t, ParamTP, Mean([]float64{0.1, 0.1, 0.1}), River); c != ClassII {
		t.Errorf("class of mean(0.1, 0.1, 0.1) = %v, want II", c)
	}
	if got := roundDigits(math.Inf(1)); !math.IsInf(got, 1) {
		t.Errorf("roundDigits(+Inf) = %v", got)
	}
	if got := roundDigits(math.MaxFloat64); got != math.MaxFloat64 {
		t.Errorf("roundDigits(MaxFloat64) = %v", got)
	}
}
