package water

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Param is a GB 3838-2002 Table 1 parameter, named by its quantity in the reading
// catalog (gateway/reading). Fecal coliform is not in the catalog yet; its name here
// is the one to add.
type Param string

// The Table 1 parameters docs/standards.md §3.1 lists, in its order.
const (
	ParamWaterTemperature Param = "water_temperature" // °C; GB 3838 limits its anthropogenic change, not a class
	ParamPH               Param = "ph"                // dimensionless
	ParamDO               Param = "do"                // dissolved oxygen, mg/L
	ParamCODMn            Param = "codmn"             // permanganate index, mg/L
	ParamCOD              Param = "cod"               // chemical oxygen demand (dichromate, CODCr), mg/L
	ParamBOD5             Param = "bod5"              // five-day biochemical oxygen demand, mg/L
	ParamNH3N             Param = "nh3n"              // ammonia nitrogen as N, mg/L
	ParamTP               Param = "tp"                // total phosphorus as P, mg/L
	ParamTN               Param = "tn"                // total nitrogen as N, mg/L; lakes and reservoirs only
	ParamFecalColiform    Param = "fecal_coliform"    // per litre (not in the catalog)
)

var params = []Param{
	ParamWaterTemperature, ParamPH, ParamDO, ParamCODMn, ParamCOD, ParamBOD5,
	ParamNH3N, ParamTP, ParamTN, ParamFecalColiform,
}

// Params returns every Table 1 parameter this package knows, in the order of
// docs/standards.md §3.1, which is also the order of every list this package returns.
func Params() []Param { return slices.Clone(params) }

func (p Param) index() int { return slices.Index(params, p) }

// Known reports whether p is one of Params.
func (p Param) Known() bool { return p.index() >= 0 }

// hj212 is the water factor code of HJ 212-2017 Table B.1 (docs/standards.md §4.8 [T]). Fecal
// coliform has none there.
var hj212 = map[Param]string{
	ParamPH:               "w01001",
	ParamDO:               "w01009",
	ParamWaterTemperature: "w01010",
	ParamBOD5:             "w01017",
	ParamCOD:              "w01018",
	ParamCODMn:            "w01019",
	ParamTN:               "w21001",
	ParamNH3N:             "w21003",
	ParamTP:               "w21011",
}

// FactorCode returns the HJ 212-2017 factor code of p ("w01009" for DO), or "" if
// docs/standards.md §4.8 gives none.
func (p Param) FactorCode() string { return hj212[p] }

// Code returns the number of p's HJ 212-2017 factor code without its letter: 1001
// for pH (w01001), 1009 DO, 1010 water temperature, 1017 BOD5, 1018 COD, 1019 CODMn,
// 21001 TN, 21003 NH3-N, 21011 TP. It is the value of the worst_param series, a float
// like every reading. 0 means none (fecal coliform, unknown parameters).
func (p Param) Code() int {
	c := hj212[p]
	if c == "" {
		return 0
	}
	n := 0
	for _, d := range c[1:] {
		n = 10*n + int(d-'0')
	}
	return n
}

// ParamByCode returns the parameter whose Code is code.
func ParamByCode(code int) (Param, bool) {
	for _, p := range params {
		if code != 0 && p.Code() == code {
			return p, true
		}
	}
	return "", false
}

// Waterbody is the kind of water body a section is on: Table 1 gives different TP
// limits for rivers and for lakes and reservoirs, and TN limits for the latter only.
type Waterbody string

// The water bodies of GB 3838-2002 Table 1. Lake and Reservoir are evaluated alike.
const (
	River     Waterbody = "river"
	Lake      Waterbody = "lake"
	Reservoir Waterbody = "reservoir"
)

// Valid reports whether w is River, Lake or Reservoir.
func (w Waterbody) Valid() bool { return w == River || w == Lake || w == Reservoir }

// Still reports whether w is a lake or a reservoir (湖、库), where Table 1's lake
// limits for TP and TN apply.
func (w Waterbody) Still() bool { return w == Lake || w == Reservoir }

// Direction says on which side of a limit a value meets a class.
type Direction uint8

// The directions of Table 1.
const (
	AtMost  Direction = iota + 1 // value ≤ limit meets the class (concentrations)
	AtLeast                      // value ≥ limit meets the class (dissolved oxygen)
	Within                       // Low ≤ value ≤ High meets every class I to V (pH)
)

// Sentinel errors of ParamClass and CriterionOf, checked with errors.Is.
var (
	ErrUnknownParam  = errors.New("not a GB 3838-2002 Table 1 parameter")
	ErrNotClassified = errors.New("GB 3838-2002 gives no class limits for it")
	ErrNotApplicable = errors.New("GB 3838-2002 gives no limit for it in this water body")
	ErrWaterbody     = errors.New("water body must be river, lake or reservoir")
	ErrNotANumber    = errors.New("value is not a number")
)

// Criterion is the Table 1 rule of one parameter in one kind of water body.
type Criterion struct {
	Param     Param
	Direction Direction
	// Limits of classes I to V (index 0 is class I) for AtMost and AtLeast; a value
	// equal to a limit meets that class (docs/standards.md §3.2). Unused for Within.
	Limits [5]float64
	// Low and High bound the range of Within; unused otherwise.
	Low, High float64
}

// PHLow and PHHigh bound the pH range that meets every class I to V (GB 3838-2002
// Table 1, docs/standards.md §3.1 [T]).
const (
	PHLow  = 6.0
	PHHigh = 9.0
)

// DOClassI is the class I limit of dissolved oxygen in mg/L. Table 1 gives "saturation
// ≥ 90 % (or 7.5 mg/L)"; an automatic station reports mg/L, so 7.5 is used
// (docs/standards.md §3.2).
const DOClassI = 7.5

// Table 1 of GB 3838-2002, docs/standards.md §3.1 [T]: limits of classes I to V in mg/L
// (fecal coliform per litre).
var (
	limitsDO            = [5]float64{DOClassI, 6, 5, 3, 2}
	limitsCODMn         = [5]float64{2, 4, 6, 10, 15}
	limitsCOD           = [5]float64{15, 15, 20, 30, 40}
	limitsBOD5          = [5]float64{3, 3, 4, 6, 10}
	limitsNH3N          = [5]float64{0.15, 0.5, 1.0, 1.5, 2.0}
	limitsTPRiver       = [5]float64{0.02, 0.1, 0.2, 0.3, 0.4}
	limitsTPLake        = [5]float64{0.01, 0.025, 0.05, 0.1, 0.2}
	limitsTNLake        = [5]float64{0.2, 0.5, 1.0, 1.5, 2.0}
	limitsFecalColiform = [5]float64{200, 2000, 10000, 20000, 40000}
)

// CriterionOf returns the Table 1 rule of p in water body w. Errors wrap
// ErrUnknownParam, ErrWaterbody, ErrNotClassified (water temperature: Table 1 limits
// its anthropogenic change, a weekly mean rise of at most 1 °C and drop of at most
// 2 °C, which needs a baseline, not a class) or ErrNotApplicable (TN in a river: its
// limits are for lakes and reservoirs).
func CriterionOf(p Param, w Waterbody) (Criterion, error) {
	if !w.Valid() {
		return Criterion{}, fmt.Errorf("%q: %w", w, ErrWaterbody)
	}
	c := Criterion{Param: p, Direction: AtMost}
	switch p {
	case ParamPH:
		c.Direction, c.Low, c.High = Within, PHLow, PHHigh
	case ParamDO:
		c.Direction, c.Limits = AtLeast, limitsDO
	case ParamCODMn:
		c.Limits = limitsCODMn
	case ParamCOD:
		c.Limits = limitsCOD
	case ParamBOD5:
		c.Limits = limitsBOD5
	case ParamNH3N:
		c.Limits = limitsNH3N
	case ParamTP:
		c.Limits = limitsTPRiver
		if w.Still() {
			c.Limits = limitsTPLake
		}
	case ParamTN:
		if !w.Still() {
			return Criterion{}, fmt.Errorf("%s in a %s: %w", p, w, ErrNotApplicable)
		}
		c.Limits = limitsTNLake
	case ParamFecalColiform:
		c.Limits = limitsFecalColiform
	case ParamWaterTemperature:
		return Criterion{}, fmt.Errorf("%s: %w", p, ErrNotClassified)
	default:
		return Criterion{}, fmt.Errorf("%q: %w", p, ErrUnknownParam)
	}
	return c, nil
}

// Class returns the class of value v: the best class whose limit v meets, a value
// equal to a limit meeting it (docs/standards.md §3.2); ClassWorseThanV if it meets none. For
// pH, v within [Low, High] is ClassI (the range has no gradation, docs/standards.md §3.2) and
// outside it ClassWorseThanV. The comparison is exact: round a computed value to its
// reporting precision first (Mean does). NaN has no class: 0.
func (c Criterion) Class(v float64) Class {
	if math.IsNaN(v) {
		return 0
	}
	switch c.Direction {
	case Within:
		if v >= c.Low && v <= c.High {
			return ClassI
		}
		return ClassWorseThanV
	case AtLeast:
		for i, l := range c.Limits {
			if v >= l {
				return Class(i + 1)
			}
		}
		return ClassWorseThanV
	case AtMost:
		for i, l := range c.Limits {
			if v <= l {
				return Class(i + 1)
			}
		}
		return ClassWorseThanV
	}
	return 0
}

// Limit returns the limit of class k (I to V) for AtMost and AtLeast, and NaN for
// Within or an invalid k.
func (c Criterion) Limit(k Class) float64 {
	if c.Direction == Within || k < ClassI || k > ClassV {
		return math.NaN()
	}
	return c.Limits[k-1]
}

// ParamClass returns the GB 3838-2002 class of value v of parameter p in water body w
// (see Criterion.Class for the rule and CriterionOf for the errors; NaN wraps
// ErrNotANumber). +Inf is a valid concentration: ClassWorseThanV, or ClassI for DO.
func ParamClass(p Param, v float64, w Waterbody) (Class, error) {
	c, err := CriterionOf(p, w)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) {
		return 0, fmt.Errorf("%s: %w", p, ErrNotANumber)
	}
	return c.Class(v), nil
}
