package water

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Rules are the evaluation choices for one section.
type Rules struct {
	Waterbody Waterbody // River, Lake or Reservoir; required

	// Target is the class the section must meet, from the local water-function zoning
	// (docs/standards.md §3.1: configuration, none is assumed there). 0 selects ClassIII, the
	// reference class of the exceedance multiple in docs/standards.md §3.2.
	Target Class

	// TNInClass counts TN in the section class of a lake or reservoir. The 2011
	// evaluation method (docs/standards.md §3.2 [S]) leaves it out and evaluates it
	// separately, the default; set it for GB 3838-2002 §5.1 single-factor evaluation
	// over every Table 1 item. TN never counts in a river, which has no TN limits.
	TNInClass bool

	// DOExceedance computes an exceedance multiple for dissolved oxygen, against its
	// direction: (limit − value)/limit. By default DO, like pH, has none: whether
	// Chinese practice excludes them is not confirmed (docs/standards.md §3.2 [U]), so this is
	// configurable.
	DOExceedance bool
}

// Validate reports every problem of r after defaults.
func (r Rules) Validate() error {
	r = r.norm()
	var errs []error
	if !r.Waterbody.Valid() {
		errs = append(errs, fmt.Errorf("waterbody: %q is not river, lake or reservoir", r.Waterbody))
	}
	if r.Target < ClassI || r.Target > ClassV {
		errs = append(errs, fmt.Errorf("target: %v is not a class from I to V", r.Target))
	}
	return errors.Join(errs...)
}

func (r Rules) norm() Rules {
	if r.Target == 0 {
		r.Target = ClassIII
	}
	return r
}

// evaluated reports whether p counts in the section class: every classified Table 1
// parameter except water temperature, fecal coliform and (unless TNInClass) TN
// (docs/standards.md §3.2 [S]).
func (r Rules) evaluated(p Param) bool {
	switch p {
	case ParamWaterTemperature, ParamFecalColiform:
		return false
	case ParamTN:
		return r.TNInClass && r.Waterbody.Still()
	}
	return true
}

// ParamResult is the evaluation of one parameter.
type ParamResult struct {
	Param Param
	Value float64
	Class Class
	// Evaluated: the parameter counts in the section class (docs/standards.md §3.2 [S]).
	Evaluated bool
	// Limit is the parameter's limit for the target class; for pH the bound of the
	// 6–9 range on the value's side (6 below 7.5, else 9).
	Limit float64
	// Multiple is the exceedance multiple (超标倍数) against Limit: (value − limit)/limit,
	// for DO (limit − value)/limit if Rules.DOExceedance, so that it is positive when
	// the target is missed and negative (the margin) when it is met. NaN when not
	// computed: pH, and DO by default (docs/standards.md §3.2 [U]).
	Multiple float64
}

// Section is the single-factor evaluation of a section (GB 3838-2002 §5.1, docs/standards.md
// §3.2).
type Section struct {
	Class  Class // worst class of the evaluated parameters; 0 if none was evaluated
	Target Class
	// Params holds every parameter that has a class, in the order of Params(),
	// including those not evaluated (TN of a lake by default, fecal coliform).
	Params []ParamResult
	// Missed holds the evaluated parameters worse than Target, worst first: by class,
	// then by exceedance multiple (largest first, none last), then in Params() order.
	Missed []ParamResult
	// Worst is the evaluated parameter with the worst class, ranked like Missed (so it
	// is Missed[0] when the target is missed); "" if none was evaluated.
	Worst Param
}

// Meets reports whether s has a class and it is no worse than the target.
func (s Section) Meets() bool { return s.Class.Valid() && s.Class <= s.Target }

// MainPollutants returns the main pollutants (主要污染指标) of a section worse than III:
// the up to three worst evaluated parameters worse than III, ranked like Missed
// (docs/standards.md §3.2 [S]). Nil for a section of class I to III.
func (s Section) MainPollutants() []ParamResult {
	var out []ParamResult
	for _, r := range s.Params {
		if r.Evaluated && r.Class > ClassIII {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, worseFirst)
	return out[:min(3, len(out))]
}

// worseFirst orders results worst first: by class, then by exceedance multiple
// (NaN last). It is used with a stable sort over Params() order.
func worseFirst(a, b ParamResult) int {
	if c := cmp.Compare(b.Class, a.Class); c != 0 {
		return c
	}
	an, bn := math.IsNaN(a.Multiple), math.IsNaN(b.Multiple)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	return cmp.Compare(b.Multiple, a.Multiple)
}

// Evaluate classifies the values of a section (one per parameter: the mean of the
// period, docs/standards.md §3.2) and applies the single-factor rule: the section class is the
// worst class of the evaluated parameters. Parameters without a class in the section's
// water body (water temperature; TN in a river) are skipped. The error lists the
// invalid rules, unknown parameters and NaN values.
func Evaluate(values map[Param]float64, r Rules) (Section, error) {
	r = r.norm()
	errs := []error{r.Validate()}
	for p, v := range values {
		if !p.Known() {
			errs = append(errs, fmt.Errorf("%q: %w", p, ErrUnknownParam))
		} else if math.IsNaN(v) {
			errs = append(errs, fmt.Errorf("%s: %w", p, ErrNotANumber))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Section{}, err
	}
	return evaluate(values, r), nil
}

// evaluate is Evaluate for valid input: normalised valid rules, known parameters and
// no NaN.
func evaluate(values map[Param]float64, r Rules) Section {
	s := Section{Target: r.Target}
	for _, p := range params {
		v, ok := values[p]
		if !ok {
			continue
		}
		c, err := CriterionOf(p, r.Waterbody)
		if err != nil {
			continue // not classified in this water body
		}
		pr := ParamResult{Param: p, Value: v, Class: c.Class(v), Evaluated: r.evaluated(p), Multiple: math.NaN()}
		switch c.Direction {
		case Within:
			pr.Limit = c.High
			if v < (c.Low+c.High)/2 {
				pr.Limit = c.Low
			}
		case AtMost:
			pr.Limit = c.Limit(r.Target)
			pr.Multiple = (v - pr.Limit) / pr.Limit
		case AtLeast:
			pr.Limit = c.Limit(r.Target)
			if r.DOExceedance {
				pr.Multiple = (pr.Limit - v) / pr.Limit
			}
		}
		s.Params = append(s.Params, pr)
		if !pr.Evaluated {
			continue
		}
		s.Class = max(s.Class, pr.Class)
		if pr.Class > r.Target {
			s.Missed = append(s.Missed, pr)
		}
	}
	slices.SortStableFunc(s.Missed, worseFirst)
	var worst *ParamResult
	for i := range s.Params {
		if pr := &s.Params[i]; pr.Evaluated && (worst == nil || worseFirst(*pr, *worst) < 0) {
			worst = pr
		}
	}
	if worst != nil {
		s.Worst = worst.Param
	}
	return s
}

// MeanDigits is the number of significant digits Mean keeps.
const MeanDigits = 10

// Mean returns the arithmetic mean of values (several measurements in a period are
// averaged, docs/standards.md §3.2), NaN for none. It is rounded to MeanDigits significant
// digits: far beyond any analyser's resolution, but enough to undo binary rounding, so
// that the mean of three 0.1 values is the limit 0.1 and not 0.10000000000000002 (which
// Criterion.Class, comparing exactly, would put in the next class).
func Mean(values []float64) float64 {
	var s sum
	for _, v := range values {
		s.add(v)
	}
	return s.mean()
}

// sum is a Neumaier compensated sum, so that a day of one-second samples loses no
// digits that MeanDigits keeps.
type sum struct {
	s, c float64
	n    int
}

func (s *sum) add(v float64) {
	t := s.s + v
	if math.Abs(s.s) >= math.Abs(v) {
		s.c += (s.s - t) + v
	} else {
		s.c += (v - t) + s.s
	}
	s.s = t
	s.n++
}

func (s sum) mean() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return roundDigits((s.s + s.c) / float64(s.n))
}

// roundDigits rounds v to MeanDigits significant digits (through the shortest decimal,
// so 0.1000000000 becomes the float64 of the literal 0.1).
func roundDigits(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', MeanDigits, 64), 64)
	if err != nil { // only on overflow to ±Inf near MaxFloat64
		return v
	}
	return r
}
