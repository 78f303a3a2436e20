package air

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
)

// ErrNotDefined means the edition defines no index for that pollutant at that averaging
// time (HJ 633-2012 rates PM by the 24-h mean only), or not for that concentration (US
// 1-h O3 below 0.125 ppm, docs/standards.md §2.10).
var ErrNotDefined = errors.New("no index defined")

// ErrConcentration means the concentration is negative, NaN or infinite.
var ErrConcentration = errors.New("concentration is negative or not a finite number")

// UseError means the concentration lies above the column of its averaging time, and the
// edition reports the index of another average of the same pollutant instead (docs/standards.md
// §2.1, §2.10): HJ 633-2012 SO2 1-h > 800 µg/m³ → the 24-h mean, O3 8-h > 800 µg/m³ →
// the 1-h mean; US SO2 1-h ≥ 305 ppb → the 24-h mean, O3 8-h > 0.200 ppm → the 1-h
// mean. Report follows it; check with errors.As.
type UseError struct {
	Edition Edition
	Key     Key       // the average given
	Use     Averaging // the average the edition rates instead
}

func (e *UseError) Error() string {
	return fmt.Sprintf("%s: %s above its breakpoint table: rate the %s %s average instead",
		e.Edition, e.Key, e.Key.Pollutant.Quantity(), e.Use)
}

// AboveTop says what a Chinese IAQI is when the concentration exceeds the 500
// breakpoint. Neither HJ 633 edition says [U] (docs/standards.md §2.1); the US method extends
// its last segment whatever this says.
type AboveTop uint8

// The choices for AboveTop.
const (
	// CapAt500 gives 500 with Index.BeyondScale set: the recommendation of docs/standards.md
	// §2.1, never extrapolating silently. The default.
	CapAt500 AboveTop = iota
	// Extrapolate extends the 400–500 segment (still with BeyondScale set).
	Extrapolate
)

// String returns "cap" or "extrapolate".
func (a AboveTop) String() string {
	switch a {
	case CapAt500:
		return "cap"
	case Extrapolate:
		return "extrapolate"
	}
	return fmt.Sprintf("above_top(%d)", uint8(a))
}

// Index is one pollutant's index: an IAQI (China) or a sub-index (US).
type Index struct {
	Key           Key     // the average the index was computed from
	Value         int     // the index, rounded as the edition says (CN: ceiling; US: nearest, .5 up)
	Raw           float64 // the linear interpolation before that rounding, approximately
	Concentration float64 // the concentration after the edition's rounding (CN 2026) or truncation (US)
	// BeyondScale: the concentration lies above the column's highest breakpoint and
	// Value follows the edition's rule for that: HJ 633-2026 SO2 1-h → 200, O3 8-h →
	// 300; above the 500 breakpoint → AboveTop; US → the last segment extended.
	BeyondScale bool
}

// Method is an edition with the choices the standards leave to the operator.
type Method struct {
	Edition  Edition
	AboveTop AboveTop // Chinese editions only
	// Plan is the site's monitoring plan: the pollutants a report expects. A pollutant
	// outside it is "/" (HJ 633-2026 §5.3): not rated and not missing. Nil means all
	// six. Leave a pollutant out only under the exception of §5.3 (never monitored,
	// and not the primary pollutant of a lightly-or-worse polluted day in 3 years), or
	// for the US method, which rates whatever is measured.
	Plan []Pollutant
}

// Validate reports every problem of m.
func (m Method) Validate() error {
	var errs []error
	if !m.Edition.valid() {
		errs = append(errs, fmt.Errorf("edition: unknown edition %d", uint8(m.Edition)))
	}
	if m.AboveTop > Extrapolate {
		errs = append(errs, fmt.Errorf("above_top: unknown choice %d", uint8(m.AboveTop)))
	}
	seen := map[Pollutant]bool{}
	for i, p := range m.Plan {
		switch {
		case !p.valid():
			errs = append(errs, fmt.Errorf("plan[%d]: unknown pollutant %d", i, uint8(p)))
		case seen[p]:
			errs = append(errs, fmt.Errorf("plan[%d]: %s listed twice", i, p.Quantity()))
		}
		seen[p] = true
	}
	if m.Plan != nil && len(m.Plan) == 0 {
		errs = append(errs, errors.New("plan: must not be empty (nil means all six)"))
	}
	return errors.Join(errs...)
}

// planned reports whether p is in the monitoring plan.
func (m Method) planned(p Pollutant) bool {
	if m.Plan == nil {
		return p.valid()
	}
	for _, q := range m.Plan {
		if q == p {
			return true
		}
	}
	return false
}

// IAQI returns the index of concentration c, in the unit Edition.Unit gives, of
// pollutant p averaged over avg, by edition e's method with the default choices. See
// Method.IAQI.
func IAQI(e Edition, p Pollutant, avg Averaging, c float64) (Index, error) {
	return Method{Edition: e}.IAQI(p, avg, c)
}

// IAQI returns the index of concentration c (in the unit m.Edition.Unit(p) gives) of
// pollutant p averaged over avg:
//
//  1. the concentration is taken as its shortest decimal rounded to ConcentrationDigits
//     (12) significant digits, which drops binary noise (149.99999999999997 is 150)
//     and nothing an analyser measures; HJ 633-2026 rounds it by
//     GB/T 8170 to an integer (CO: one decimal) (§4.2.2/4.2.3); HJ 633-2012 uses it as
//     is; the US method truncates it (O3 ppm to 3 decimals, PM2.5 and CO to 1, PM10,
//     SO2, NO2 to integers) (docs/standards.md §2.3, §2.10);
//  2. IAQI = (IAQI_Hi − IAQI_Lo)/(BP_Hi − BP_Lo)·(C − BP_Lo) + IAQI_Lo with exact
//     rational arithmetic (docs/standards.md §2.2);
//  3. China rounds up to an integer (ceiling, "全部向上进位取整数"); the US rounds to
//     the nearest integer, .5 up.
//
// Averaging times: HJ 633-2026 rates SO2, NO2, CO, O3 by their 1-h and 24-h (O3: 8-h)
// columns and PM 1-h means with the 24-h columns; HJ 633-2012 the same but PM by 24-h
// means only; the US method O3 by 8-h and 1-h (from 0.125 ppm), PM by 24-h means and
// the NowCast, CO by 8-h means, SO2 by 1-h means (24-h from 305 ppb), NO2 by 1-h
// means. Anything else is ErrNotDefined.
//
// Beyond the tables (docs/standards.md §2.1, §2.10): HJ 633-2026 SO2 1-h > 800 µg/m³ gives 200,
// O3 8-h > 800 µg/m³ gives 300; HJ 633-2012 and the US method send some averages to
// another (a *UseError); above the 500 breakpoint China gives what m.AboveTop says and
// the US extends its 301–500 segment. The US 24-h SO2 below 305 ppb gives 200: the TAD
// uses it only after a 1-h mean of 305 ppb or more, and then sets the index to 200.
// All of these set Index.BeyondScale except the last.
func (m Method) IAQI(p Pollutant, avg Averaging, c float64) (Index, error) {
	k := Key{p, avg}
	if !m.Edition.valid() {
		return Index{}, fmt.Errorf("unknown AQI edition %d", uint8(m.Edition))
	}
	col := tables[m.Edition][k]
	if col == nil {
		return Index{}, fmt.Errorf("%s: %s: %w", m.Edition, k, ErrNotDefined)
	}
	if c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
		return Index{}, fmt.Errorf("%s: %s = %v: %w", m.Edition, k, c, ErrConcentration)
	}
	x := snap(c)
	switch col.round {
	case roundHalfEven:
		x = halfEven(x, col.decimals)
	case roundTruncate:
		x = truncate(x, col.decimals)
	}
	idx := Index{Key: k, Concentration: toFloat(x)}
	first, last := col.segs[0], col.segs[len(col.segs)-1]
	if x.Cmp(first.cLo) < 0 {
		if col.under < 0 {
			return Index{}, fmt.Errorf("%s: %s = %v below %s %s: %w",
				m.Edition, k, c, first.cLo.FloatString(3), m.Edition.Unit(p), ErrNotDefined)
		}
		idx.Value, idx.Raw = col.under, float64(col.under)
		return idx, nil
	}
	if x.Cmp(last.cHi) > 0 {
		idx.BeyondScale = true
		switch col.over {
		case overFixed:
			idx.Value, idx.Raw = col.fixed, float64(col.fixed)
			return idx, nil
		case overUse:
			return Index{}, &UseError{Edition: m.Edition, Key: k, Use: col.use}
		case overTop:
			raw := last.at(x)
			idx.Raw = toFloat(raw)
			if m.AboveTop == Extrapolate {
				idx.Value = clampInt(ceilInt(raw))
			} else {
				idx.Value = clampInt(ceilInt(last.iHi))
			}
			return idx, nil
		}
		// overExtrapolate: the last segment, below.
	}
	seg := last
	for _, s := range col.segs {
		if x.Cmp(s.cHi) <= 0 {
			seg = s
			break
		}
	}
	raw := seg.at(x)
	if x.Cmp(seg.cLo) < 0 { // between two US segments: cannot happen after truncation
		raw = seg.iLo
	}
	idx.Raw = toFloat(raw)
	if col.ceil {
		idx.Value = clampInt(ceilInt(raw))
	} else {
		idx.Value = clampInt(halfUp(raw))
	}
	return idx, nil
}

// segment maps concentrations [cLo, cHi] linearly onto indices [iLo, iHi].
type segment struct {
	cLo, cHi, iLo, iHi, slope *big.Rat
}

// at returns the formula of docs/standards.md §2.2 at x.
func (s segment) at(x *big.Rat) *big.Rat {
	r := new(big.Rat).Sub(x, s.cLo)
	r.Mul(r, s.slope)
	return r.Add(r, s.iLo)
}

func newSegment(cLo, cHi string, iLo, iHi int) segment {
	s := segment{cLo: rat(cLo), cHi: rat(cHi), iLo: big.NewRat(int64(iLo), 1), iHi: big.NewRat(int64(iHi), 1)}
	s.slope = new(big.Rat).Quo(new(big.Rat).Sub(s.iHi, s.iLo), new(big.Rat).Sub(s.cHi, s.cLo))
	return s
}

type rounding uint8

const (
	noRounding rounding = iota
	roundHalfEven
	roundTruncate
)

type overRule uint8

const (
	overTop         overRule = iota // China above the 500 breakpoint: Method.AboveTop
	overFixed                       // a footnote gives the index
	overUse                         // a footnote sends to another averaging time
	overExtrapolate                 // US: the last segment extended
)

// column is one breakpoint column of an edition.
type column struct {
	segs     []segment
	round    rounding
	decimals int
	ceil     bool      // China: ceiling; US: nearest, .5 up
	over     overRule  // above the last breakpoint
	fixed    int       // overFixed
	use      Averaging // overUse
	under    int       // below the first breakpoint (US columns not starting at 0): the index, or -1: not defined
}

// cnIAQI are the IAQI of the breakpoints of HJ 633 (docs/standards.md §2.1).
var cnIAQI = []int{0, 50, 100, 150, 200, 300, 400, 500}

// cn returns a Chinese column through the breakpoints bps (at 0, 50, 100, …).
func cn(round rounding, decimals int, bps ...float64) *column {
	c := &column{round: round, decimals: decimals, ceil: true, over: overTop}
	for i := 1; i < len(bps); i++ {
		c.segs = append(c.segs, newSegment(fmtBP(bps[i-1]), fmtBP(bps[i]), cnIAQI[i-1], cnIAQI[i]))
	}
	return c
}

func fmtBP(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (c *column) thenFixed(v int) *column     { c.over, c.fixed = overFixed, v; return c }
func (c *column) thenUse(a Averaging) *column { c.over, c.use = overUse, a; return c }
func (c *column) clone() *column              { d := *c; return &d }

// usIndex are the index ranges of the US table's rows (docs/standards.md §2.10).
var usIndex = [][2]int{{0, 50}, {51, 100}, {101, 150}, {151, 200}, {201, 300}, {301, 500}}

// us returns a US column: concentration ranges "lo-hi" of the rows from `row` on.
func us(decimals, row int, ranges ...[2]string) *column {
	c := &column{round: roundTruncate, decimals: decimals, over: overExtrapolate, under: -1}
	for i, r := range ranges {
		c.segs = append(c.segs, newSegment(r[0], r[1], usIndex[row+i][0], usIndex[row+i][1]))
	}
	return c
}

// tables holds every edition's columns.
var tables = func() [3]map[Key]*column {
	var t [3]map[Key]*column

	// HJ 633-2026 Table 3 [T]; concentrations rounded by GB/T 8170 (§4.2.2/4.2.3).
	so2day := cn(roundHalfEven, 0, 0, 50, 150, 475, 800, 1600, 2100, 2620)
	so2hour := cn(roundHalfEven, 0, 0, 150, 500, 650, 800)
	no2day := cn(roundHalfEven, 0, 0, 40, 80, 180, 280, 565, 750, 940)
	no2hour := cn(roundHalfEven, 0, 0, 100, 200, 700, 1200, 2340, 3090, 3840)
	coday := cn(roundHalfEven, 1, 0, 2, 4, 14, 24, 36, 48, 60)
	cohour := cn(roundHalfEven, 1, 0, 5, 10, 35, 60, 90, 120, 150)
	o3eight := cn(roundHalfEven, 0, 0, 100, 160, 215, 265, 800)
	o3hour := cn(roundHalfEven, 0, 0, 160, 200, 300, 400, 800, 1000, 1200)
	pm10 := cn(roundHalfEven, 0, 0, 50, 120, 250, 350, 420, 500, 600)
	pm25 := cn(roundHalfEven, 0, 0, 35, 60, 115, 150, 250, 350, 500)
	t[HJ633_2026] = map[Key]*column{
		{SO2, Avg24h}: so2day, {SO2, Avg1h}: so2hour.clone().thenFixed(200), // ᵇ
		{NO2, Avg24h}: no2day, {NO2, Avg1h}: no2hour,
		{CO, Avg24h}: coday, {CO, Avg1h}: cohour,
		{O3, Avg8h}: o3eight.clone().thenFixed(300), {O3, Avg1h}: o3hour, // ᶜ
		// "PM10 / PM2.5 1-hour averages (real-time report) are converted with the daily columns."
		{PM10, Avg24h}: pm10, {PM10, Avg1h}: pm10,
		{PM25, Avg24h}: pm25, {PM25, Avg1h}: pm25,
	}

	// HJ 633-2012 Table 1 [T]: no concentration rounding; PM by 24-h means only.
	raw := func(c *column) *column { c = c.clone(); c.round = noRounding; return c }
	t[HJ633_2012] = map[Key]*column{
		{SO2, Avg24h}: raw(so2day), {SO2, Avg1h}: raw(so2hour).thenUse(Avg24h),
		{NO2, Avg24h}: raw(no2day), {NO2, Avg1h}: raw(no2hour),
		{CO, Avg24h}: raw(coday), {CO, Avg1h}: raw(cohour),
		{O3, Avg8h}: raw(o3eight).thenUse(Avg1h), {O3, Avg1h}: raw(o3hour),
		{PM10, Avg24h}: cn(noRounding, 0, 0, 50, 150, 250, 350, 420, 500, 600),
		{PM25, Avg24h}: cn(noRounding, 0, 0, 35, 75, 115, 150, 250, 350, 500),
	}

	// EPA-454/B-24-002 (2024) [T], O3 and CO in ppm, SO2 and NO2 in ppb, PM in µg/m³.
	usPM25 := us(1, 0, [2]string{"0.0", "9.0"}, [2]string{"9.1", "35.4"}, [2]string{"35.5", "55.4"},
		[2]string{"55.5", "125.4"}, [2]string{"125.5", "225.4"}, [2]string{"225.5", "325.4"})
	usPM10 := us(0, 0, [2]string{"0", "54"}, [2]string{"55", "154"}, [2]string{"155", "254"},
		[2]string{"255", "354"}, [2]string{"355", "424"}, [2]string{"425", "604"})
	usSO2day := us(0, 4, [2]string{"305", "604"}, [2]string{"605", "1004"})
	usSO2day.under = 200
	t[USEPA2024] = map[Key]*column{
		{O3, Avg8h}: us(3, 0, [2]string{"0.000", "0.054"}, [2]string{"0.055", "0.070"}, [2]string{"0.071", "0.085"},
			[2]string{"0.086", "0.105"}, [2]string{"0.106", "0.200"}).thenUse(Avg1h),
		{O3, Avg1h}: us(3, 2, [2]string{"0.125", "0.164"}, [2]string{"0.165", "0.204"},
			[2]string{"0.205", "0.404"}, [2]string{"0.405", "0.604"}),
		{PM25, Avg24h}: usPM25, {PM25, AvgNowCast}: usPM25,
		{PM10, Avg24h}: usPM10, {PM10, AvgNowCast}: usPM10,
		{CO, Avg8h}: us(1, 0, [2]string{"0.0", "4.4"}, [2]string{"4.5", "9.4"}, [2]string{"9.5", "12.4"},
			[2]string{"12.5", "15.4"}, [2]string{"15.5", "30.4"}, [2]string{"30.5", "50.4"}),
		{SO2, Avg1h}: us(0, 0, [2]string{"0", "35"}, [2]string{"36", "75"}, [2]string{"76", "185"},
			[2]string{"186", "304"}).thenUse(Avg24h),
		{SO2, Avg24h}: usSO2day,
		{NO2, Avg1h}: us(0, 0, [2]string{"0", "53"}, [2]string{"54", "100"}, [2]string{"101", "360"},
			[2]string{"361", "649"}, [2]string{"650", "1249"}, [2]string{"1250", "2049"}),
	}
	return t
}()
