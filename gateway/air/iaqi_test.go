package air

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkIAQI checks one index value.
func checkIAQI(t *testing.T, m Method, p Pollutant, avg Averaging, c float64, want int) Index {
	t.Helper()
	idx, err := m.IAQI(p, avg, c)
	if err != nil || idx.Value != want {
		t.Errorf("%s IAQI(%s, %s, %v) = %d, %v; want %d", m.Edition, p, avg, c, idx.Value, err, want)
	}
	return idx
}

// Every worked example of docs/standards.md §2.11.
func TestWorkedExamples(t *testing.T) {
	cn26, cn12, us := Method{Edition: HJ633_2026}, Method{Edition: HJ633_2012}, Method{Edition: USEPA2024}

	// China daily, HJ 633-2026: PM2.5 80 → 50/55·20+100 = 118.18 → 119, 三级 轻度污染, orange.
	idx := checkIAQI(t, cn26, PM25, Avg24h, 80, 119)
	if math.Abs(idx.Raw-118.1818) > 1e-3 {
		t.Errorf("2026 PM2.5 80: raw %v, want 118.18", idx.Raw)
	}
	c := LevelOf(119).Category(HJ633_2026)
	if c.Level != 3 || c.Grade != "三级" || c.Chinese != "轻度污染" || c.Colour.Name != "orange" || c.Colour.Hex() != "#FF7E00" {
		t.Errorf("category of 119 = %+v, want 三级 轻度污染 orange", c)
	}
	// The same value under HJ 633-2012: 50/40·5+100 = 106.25 → 107.
	checkIAQI(t, cn12, PM25, Avg24h, 80, 107)

	// HJ 633-2026 with GB/T 8170: 34.5 → 34 (even) → 48.57 → 49; without rounding 50.
	idx = checkIAQI(t, cn26, PM25, Avg24h, 34.5, 49)
	if idx.Concentration != 34 {
		t.Errorf("2026 PM2.5 34.5: rounded concentration %v, want 34", idx.Concentration)
	}
	checkIAQI(t, cn12, PM25, Avg24h, 34.5, 50)

	// Real-time, HJ 633-2026: SO2 1-h 850 ⇒ 200 (rule ᵇ).
	if idx := checkIAQI(t, cn26, SO2, Avg1h, 850, 200); !idx.BeyondScale {
		t.Errorf("2026 SO2 1-h 850: BeyondScale false, want true")
	}
	// Legacy 2012: no IAQI from the 1-h value; the 24-h average 300 gives 124.
	_, err := cn12.IAQI(SO2, Avg1h, 850)
	var use *UseError
	if !errors.As(err, &use) || use.Use != Avg24h {
		t.Errorf("2012 IAQI(SO2, 1h, 850) error = %v, want a UseError to 24h", err)
	}
	idx = checkIAQI(t, cn12, SO2, Avg24h, 300, 124)
	if math.Abs(idx.Raw-123.0769) > 1e-3 {
		t.Errorf("2012 SO2 24-h 300: raw %v, want 123.08", idx.Raw)
	}
	r := cn12.Report(Hourly, Concentrations{{SO2, Avg1h}: 850, {SO2, Avg24h}: 300})
	if got := r.IAQI[ItemSO2]; got.Value != 124 || got.Key != (Key{SO2, Avg24h}) || !got.BeyondScale {
		t.Errorf("2012 hourly report, SO2 1-h 850 and 24-h 300: SO2 index %+v, want 124 from so2/24h", got)
	}

	// US: PM2.5 35.9 ⇒ 49/19.9·0.4+101 = 101.98 → 102.
	checkIAQI(t, us, PM25, Avg24h, 35.9, 102)
	// O3 8-h 0.07853333 ppm → 0.078 → 125.5 → 126 (.5 up).
	idx = checkIAQI(t, us, O3, Avg8h, 0.07853333, 126)
	if idx.Concentration != 0.078 || idx.Raw != 125.5 {
		t.Errorf("US O3 0.07853333: %+v, want concentration 0.078 and raw 125.5", idx)
	}
	// The TAD prints 148 for 1-h O3 0.162 ppm; its equation gives 147.49 → 147.
	checkIAQI(t, us, O3, Avg1h, 0.162, 147)
}

// cnColumns are the breakpoints of HJ 633 (docs/standards.md §2.1), as the tests see them.
type cnColumn struct {
	e        Edition
	key      Key
	bps      []int
	decimals int // HJ 633-2026 rounding; -1: none (HJ 633-2012)
}

var cnColumns = []cnColumn{
	{HJ633_2026, Key{SO2, Avg24h}, []int{0, 50, 150, 475, 800, 1600, 2100, 2620}, 0},
	{HJ633_2026, Key{SO2, Avg1h}, []int{0, 150, 500, 650, 800}, 0},
	{HJ633_2026, Key{NO2, Avg24h}, []int{0, 40, 80, 180, 280, 565, 750, 940}, 0},
	{HJ633_2026, Key{NO2, Avg1h}, []int{0, 100, 200, 700, 1200, 2340, 3090, 3840}, 0},
	{HJ633_2026, Key{CO, Avg24h}, []int{0, 2, 4, 14, 24, 36, 48, 60}, 1},
	{HJ633_2026, Key{CO, Avg1h}, []int{0, 5, 10, 35, 60, 90, 120, 150}, 1},
	{HJ633_2026, Key{O3, Avg8h}, []int{0, 100, 160, 215, 265, 800}, 0},
	{HJ633_2026, Key{O3, Avg1h}, []int{0, 160, 200, 300, 400, 800, 1000, 1200}, 0},
	{HJ633_2026, Key{PM10, Avg24h}, []int{0, 50, 120, 250, 350, 420, 500, 600}, 0},
	{HJ633_2026, Key{PM10, Avg1h}, []int{0, 50, 120, 250, 350, 420, 500, 600}, 0},
	{HJ633_2026, Key{PM25, Avg24h}, []int{0, 35, 60, 115, 150, 250, 350, 500}, 0},
	{HJ633_2026, Key{PM25, Avg1h}, []int{0, 35, 60, 115, 150, 250, 350, 500}, 0},
	{HJ633_2012, Key{SO2, Avg24h}, []int{0, 50, 150, 475, 800, 1600, 2100, 2620}, -1},
	{HJ633_2012, Key{SO2, Avg1h}, []int{0, 150, 500, 650, 800}, -1},
	{HJ633_2012, Key{NO2, Avg24h}, []int{0, 40, 80, 180, 280, 565, 750, 940}, -1},
	{HJ633_2012, Key{NO2, Avg1h}, []int{0, 100, 200, 700, 1200, 2340, 3090, 3840}, -1},
	{HJ633_2012, Key{CO, Avg24h}, []int{0, 2, 4, 14, 24, 36, 48, 60}, -1},
	{HJ633_2012, Key{CO, Avg1h}, []int{0, 5, 10, 35, 60, 90, 120, 150}, -1},
	{HJ633_2012, Key{O3, Avg8h}, []int{0, 100, 160, 215, 265, 800}, -1},
	{HJ633_2012, Key{O3, Avg1h}, []int{0, 160, 200, 300, 400, 800, 1000, 1200}, -1},
	{HJ633_2012, Key{PM10, Avg24h}, []int{0, 50, 150, 250, 350, 420, 500, 600}, -1},
	{HJ633_2012, Key{PM25, Avg24h}, []int{0, 35, 75, 115, 150, 250, 350, 500}, -1},
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b } // a ≥ 0, b > 0

// refCN is an independent, integer-only IAQI of a concentration of k hundredths, for
// concentrations within the column.
func refCN(bps []int, decimals int, k int64) int64 {
	// c in units of 10^-d: d = decimals (2026) or 2 (2012, no rounding).
	d, c := int64(2), k
	if decimals >= 0 {
		s := int64(100)
		if decimals == 1 {
			s = 10
		}
		q, r := k/s, k%s
		if 2*r > s || (2*r == s && q%2 == 1) { // GB/T 8170
			q++
		}
		d, c = int64(decimals), q
	}
	scale := int64(math.Pow10(int(d)))
	for i := 1; i < len(bps); i++ {
		lo, hi := int64(bps[i-1])*scale, int64(bps[i])*scale
		if c <= hi {
			return int64(cnIAQI[i-1]) + ceilDiv(int64(cnIAQI[i]-cnIAQI[i-1])*(c-lo), hi-lo)
		}
	}
	return -1
}

// Exactly at every breakpoint, one rounding unit above, and a sweep of the whole column
// in hundredths, against the integer-only reference.
func TestChineseColumns(t *testing.T) {
	for _, col := range cnColumns {
		t.Run(col.e.String()+"/"+col.key.String(), func(t *testing.T) {
			t.Parallel()
			checkColumn(t, col)
		})
	}
}

func checkColumn(t *testing.T, col cnColumn) {
	m := Method{Edition: col.e}
	for i, bp := range col.bps {
		checkIAQI(t, m, col.key.Pollutant, col.key.Averaging, float64(bp), cnIAQI[i])
		if i == len(col.bps)-1 {
			break
		}
		// One unit above: 1 (or 0.1 mg/m³ of CO) in 2026, 0.01 in 2012.
		step := int64(100)
		if col.decimals == 1 {
			step = 10
		} else if col.decimals < 0 {
			step = 1
		}
		k := int64(bp)*100 + step
		want := refCN(col.bps, col.decimals, k)
		if want <= int64(cnIAQI[i]) {
			t.Fatalf("reference: %s %v + 1 unit = %d", col.key, bp, want)
		}
		checkIAQI(t, m, col.key.Pollutant, col.key.Averaging, float64(k)/100, int(want))
	}
	top := int64(col.bps[len(col.bps)-1]) * 100
	for k := int64(0); k <= top; k += 11 { // every residue of 1/100 and 1/10 is hit
		checkIAQI(t, m, col.key.Pollutant, col.key.Averaging, float64(k)/100, int(refCN(col.bps, col.decimals, k)))
	}
}

// usColumns are the segments of EPA-454/B-24-002 (docs/standards.md §2.10) in units of 10^-d.
var usColumns = []struct {
	key  Key
	d    int
	segs [][4]int64 // cLo, cHi, iLo, iHi
}{
	{Key{O3, Avg8h}, 3, [][4]int64{{0, 54, 0, 50}, {55, 70, 51, 100}, {71, 85, 101, 150}, {86, 105, 151, 200}, {106, 200, 201, 300}}},
	{Key{O3, Avg1h}, 3, [][4]int64{{125, 164, 101, 150}, {165, 204, 151, 200}, {205, 404, 201, 300}, {405, 604, 301, 500}}},
	{Key{PM25, Avg24h}, 1, [][4]int64{{0, 90, 0, 50}, {91, 354, 51, 100}, {355, 554, 101, 150}, {555, 1254, 151, 200}, {1255, 2254, 201, 300}, {2255, 3254, 301, 500}}},
	{Key{PM25, AvgNowCast}, 1, [][4]int64{{0, 90, 0, 50}, {91, 354, 51, 100}, {355, 554, 101, 150}, {555, 1254, 151, 200}, {1255, 2254, 201, 300}, {2255, 3254, 301, 500}}},
	{Key{PM10, Avg24h}, 0, [][4]int64{{0, 54, 0, 50}, {55, 154, 51, 100}, {155, 254, 101, 150}, {255, 354, 151, 200}, {355, 424, 201, 300}, {425, 604, 301, 500}}},
	{Key{CO, Avg8h}, 1, [][4]int64{{0, 44, 0, 50}, {45, 94, 51, 100}, {95, 124, 101, 150}, {125, 154, 151, 200}, {155, 304, 201, 300}, {305, 504, 301, 500}}},
	{Key{SO2, Avg1h}, 0, [][4]int64{{0, 35, 0, 50}, {36, 75, 51, 100}, {76, 185, 101, 150}, {186, 304, 151, 200}}},
	{Key{SO2, Avg24h}, 0, [][4]int64{{305, 604, 201, 300}, {605, 1004, 301, 500}}},
	{Key{NO2, Avg1h}, 0, [][4]int64{{0, 53, 0, 50}, {54, 100, 51, 100}, {101, 360, 101, 150}, {361, 649, 151, 200}, {650, 1249, 201, 300}, {1250, 2049, 301, 500}}},
}

// refUS is an independent integer-only US index of c units of 10^-d (truncated).
func refUS(segs [][4]int64, c int64) int64 {
	for _, s := range segs {
		if c <= s[1] {
			// nearest, .5 up: ⌊(2·ΔI·(c−lo) + ΔC) / (2·ΔC)⌋
			return s[2] + (2*(s[3]-s[2])*(c-s[0])+(s[1]-s[0]))/(2*(s[1]-s[0]))
		}
	}
	return -1
}

func TestUSColumns(t *testing.T) {
	m := Method{Edition: USEPA2024}
	for _, col := range usColumns {
		unit := math.Pow10(-col.d)
		for i, s := range col.segs {
			checkIAQI(t, m, col.key.Pollutant, col.key.Averaging, float64(s[0])*unit, int(s[2]))
			checkIAQI(t, m, col.key.Pollutant, col.key.Averaging, float64(s[1])*unit, int(s[3]))
			// Truncation: anything below the next breakpoint stays in this segment.
			if i+1 < len(col.segs) {
				checkIAQI(t, m, col.key.Pollutant, col.key.Averaging, (float64(s[1])+0.99)*unit, int(s[3]))
				checkIAQI(t, m, col.key.Pollutant, col.key.Averaging, float64(s[1]+1)*unit, int(col.segs[i+1][2]))
			}
		}
		lo, hi := col.segs[0][0], col.segs[len(col.segs)-1][1]
		for c := lo; c <= hi; c++ {
			checkIAQI(t, m, col.key.Pollutant, col.key.Averaging, float64(c)*unit, int(refUS(col.segs, c)))
		}
	}
}

func TestBeyondTheTables(t *testing.T) {
	cn26, cn12, us := Method{Edition: HJ633_2026}, Method{Edition: HJ633_2012}, Method{Edition: USEPA2024}
	beyond := func(m Method, p Pollutant, avg Averaging, c float64, want int, wantBeyond bool) {
		t.Helper()
		if idx := checkIAQI(t, m, p, avg, c, want); idx.BeyondScale != wantBeyond {
			t.Errorf("%s IAQI(%s, %s, %v).BeyondScale = %v, want %v", m.Edition, p, avg, c, idx.BeyondScale, wantBeyond)
		}
	}
	// HJ 633-2026 rules ᵇ and ᶜ; rounding first: 800.4 is 800, inside the table.
	beyond(cn26, SO2, Avg1h, 800, 200, false)
	beyond(cn26, SO2, Avg1h, 800.4, 200, false)
	beyond(cn26, SO2, Avg1h, 800.6, 200, true)
	beyond(cn26, SO2, Avg1h, 5000, 200, true)
	beyond(cn26, O3, Avg8h, 800, 300, false)
	beyond(cn26, O3, Avg8h, 801, 300, true)
	// Above the 500 breakpoint [U]: capped by default, extrapolated on request.
	beyond(cn26, PM25, Avg24h, 500, 500, false)
	beyond(cn26, PM25, Avg24h, 501, 500, true)
	beyond(cn26, PM25, Avg24h, 800, 500, true)
	ext := Method{Edition: HJ633_2026, AboveTop: Extrapolate}
	beyond(ext, PM25, Avg24h, 501, 501, true) // 500 + 100/150 → 501
	beyond(ext, PM25, Avg24h, 800, 700, true)
	beyond(ext, SO2, Avg1h, 900, 200, true) // the footnote still rules
	beyond(cn12, CO, Avg1h, 150.01, 500, true)

	// HJ 633-2012 sends SO2 1-h > 800 to the 24-h mean, O3 8-h > 800 to the 1-h mean.
	for _, c := range []struct {
		p        Pollutant
		avg, use Averaging
	}{{SO2, Avg1h, Avg24h}, {O3, Avg8h, Avg1h}} {
		checkIAQI(t, cn12, c.p, c.avg, 800, 200+100*btoi(c.p == O3))
		_, err := cn12.IAQI(c.p, c.avg, 800.01)
		var use *UseError
		if !errors.As(err, &use) || use.Use != c.use || use.Key != (Key{c.p, c.avg}) {
			t.Errorf("2012 IAQI(%s, %s, 800.01) error = %v, want a UseError to %s", c.p, c.avg, err, c.use)
		}
	}

	// US: SO2 1-h ≥ 305 ppb → the 24-h mean; 24-h below 305 → 200.
	checkIAQI(t, us, SO2, Avg1h, 304.9, 200)
	_, err := us.IAQI(SO2, Avg1h, 305)
	var use *UseError
	if !errors.As(err, &use) || use.Use != Avg24h {
		t.Errorf("US IAQI(SO2, 1h, 305) error = %v, want a UseError to 24h", err)
	}
	checkIAQI(t, us, SO2, Avg24h, 200, 200)
	checkIAQI(t, us, SO2, Avg24h, 304.9, 200)
	checkIAQI(t, us, SO2, Avg24h, 305, 201)
	// O3 8-h above 0.200 ppm → the 1-h index; 1-h O3 below 0.125 ppm is not defined.
	checkIAQI(t, us, O3, Avg8h, 0.2009, 300)
	if _, err := us.IAQI(O3, Avg8h, 0.201); !errors.As(err, &use) || use.Use != Avg1h {
		t.Errorf("US IAQI(O3, 8h, 0.201) error = %v, want a UseError to 1h", err)
	}
	if _, err := us.IAQI(O3, Avg1h, 0.1249); !errors.Is(err, ErrNotDefined) {
		t.Errorf("US IAQI(O3, 1h, 0.1249) error = %v, want ErrNotDefined", err)
	}
	// Above the AQI-500 concentration: the 301–500 segment extended.
	beyond(us, PM25, Avg24h, 325.4, 500, false)
	beyond(us, PM25, Avg24h, 400, 649, true) // 301 + 199/99.9·174.5 = 648.59
	beyond(us, O3, Avg1h, 0.704, 600, true)  // 500 + 199/0.199·0.1 = 600
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The traps of docs/standards.md §2.3.
func TestRoundingTraps(t *testing.T) {
	cn26, cn12 := Method{Edition: HJ633_2026}, Method{Edition: HJ633_2012}
	// 50.01 → 51, 50.00 → 50.
	checkIAQI(t, cn12, PM25, Avg24h, 35, 50)
	checkIAQI(t, cn12, PM25, Avg24h, 35.008, 51) // 50 + 25/40·0.008 = 50.005
	checkIAQI(t, cn26, PM25, Avg24h, 35, 50)     // not 51
	// Float noise: naive float64 gives 50/35·4.9 = 7.000000000000001 → ceiling 8, and
	// 50/325·(2120.8−2100)+400 = 404.00000000000006 → 405. Exact: 7 and 404.
	di, dc, c := 50.0, 35.0, 4.9 // variables: constant arithmetic would be exact
	if f := di / dc * c; math.Ceil(f) != 8 {
		t.Fatalf("float64 50/35·4.9 = %v: the trap has moved", f)
	}
	checkIAQI(t, cn12, PM25, Avg24h, 4.9, 7)
	checkIAQI(t, cn12, PM25, Avg24h, 32.2, 46)
	checkIAQI(t, cn12, PM25, Avg24h, 135.3, 179)
	checkIAQI(t, cn12, SO2, Avg24h, 2120.8, 404)
	checkIAQI(t, cn12, SO2, Avg24h, 2105.2, 401)
	checkIAQI(t, cn12, NO2, Avg1h, 100.2, 51) // 50 + 50/100·0.2 = 50.1 → 51
	// GB/T 8170 before the IAQI (2026): exactly half → even, more than half → up.
	for _, c := range []struct {
		p    Pollutant
		avg  Averaging
		in   float64
		conc float64
	}{
		{PM25, Avg24h, 34.5, 34}, {PM25, Avg24h, 35.5, 36}, {PM25, Avg24h, 34.51, 35},
		{PM25, Avg24h, 34.4999, 34}, {PM10, Avg24h, 120.5, 120}, {PM10, Avg24h, 121.5, 122},
		{CO, Avg24h, 2.25, 2.2}, {CO, Avg24h, 2.35, 2.4}, {CO, Avg24h, 2.251, 2.3},
		{CO, Avg1h, 0.15, 0.2}, {CO, Avg1h, 0.05, 0}, {SO2, Avg1h, 0.5, 0},
	} {
		idx, err := cn26.IAQI(c.p, c.avg, c.in)
		if err != nil || idx.Concentration != c.conc {
			t.Errorf("2026 IAQI(%s, %s, %v): concentration %v, %v; want %v", c.p, c.avg, c.in, idx.Concentration, err, c.conc)
		}
	}
	checkIAQI(t, cn26, CO, Avg24h, 2.25, 55)  // 2.2 → 50 + 25·0.2
	checkIAQI(t, cn26, CO, Avg24h, 2.251, 58) // 2.3 → 57.5 → 58
	// US truncation, not rounding: 35.49 → 35.4, 9.09 → 9.0.
	us := Method{Edition: USEPA2024}
	checkIAQI(t, us, PM25, Avg24h, 35.49, 100)
	checkIAQI(t, us, PM25, Avg24h, 9.09, 50)
	checkIAQI(t, us, PM25, Avg24h, 35.9, 102) // 35.9 is 35.899999… in binary: still 35.9
}

func TestIAQIErrors(t *testing.T) {
	for _, c := range []struct {
		e   Edition
		p   Pollutant
		avg Averaging
		v   float64
		err error
	}{
		{HJ633_2012, PM25, Avg1h, 30, ErrNotDefined}, // 2012 rates PM by 24-h means only
		{HJ633_2026, CO, Avg8h, 1, ErrNotDefined},
		{HJ633_2026, O3, Avg24h, 1, ErrNotDefined},
		{HJ633_2026, PM25, AvgNowCast, 1, ErrNotDefined},
		{USEPA2024, PM25, Avg1h, 30, ErrNotDefined},
		{USEPA2024, CO, Avg1h, 1, ErrNotDefined},
		{HJ633_2026, PM25, Avg24h, -1, ErrConcentration},
		{HJ633_2026, PM25, Avg24h, math.NaN(), ErrConcentration},
		{USEPA2024, NO2, Avg1h, math.Inf(1), ErrConcentration},
	} {
		if _, err := IAQI(c.e, c.p, c.avg, c.v); !errors.Is(err, c.err) {
			t.Errorf("IAQI(%s, %s, %s, %v) error = %v, want %v", c.e, c.p, c.avg, c.v, err, c.err)
		}
	}
	if _, err := IAQI(Edition(9), PM25, Avg24h, 1); err == nil || !strings.Contains(err.Error(), "edition") {
		t.Errorf("IAQI(edition 9) error = %v, want unknown edition", err)
	}
	if idx, err := IAQI(HJ633_2026, PM25, Avg24h, math.Copysign(0, -1)); err != nil || idx.Value != 0 {
		t.Errorf("IAQI(-0) = %+v, %v; want 0", idx, err)
	}
}

// randomConcentration returns a concentration in p's table unit, up to beyond the top,
// with a random number of decimals.
func randomConcentration(r *rand.Rand, e Edition, p Pollutant) float64 {
	top := map[Pollutant]float64{SO2: 3000, NO2: 4000, CO: 160, O3: 1300, PM10: 700, PM25: 600}[p]
	if e == USEPA2024 {
		top = map[Pollutant]float64{SO2: 1200, NO2: 2500, CO: 60, O3: 0.8, PM10: 700, PM25: 400}[p]
	}
	v := r.Float64() * top
	switch r.IntN(3) {
	case 0:
		return math.Round(v)
	case 1:
		return math.Round(v*1000) / 1000
	}
	return v
}

// IAQI is non-decreasing in the concentration wherever it is defined.
func TestIAQIMonotonic(t *testing.T) {
	r := rand.New(rand.NewPCG(633, 2026))
	for _, e := range Editions() {
		for k := range tables[e] {
			for range 400 {
				a, b := randomConcentration(r, e, k.Pollutant), randomConcentration(r, e, k.Pollutant)
				if a > b {
					a, b = b, a
				}
				ia, errA := IAQI(e, k.Pollutant, k.Averaging, a)
				ib, errB := IAQI(e, k.Pollutant, k.Averaging, b)
				if errA == nil && errB == nil && ia.Value > ib.Value {
					t.Errorf("%s %s: IAQI(%v) = %d > IAQI(%v) = %d", e, k, a, ia.Value, b, ib.Value)
				}
				// Once a value is sent elsewhere (beyond the table), every larger one is too.
				var use *UseError
				if errors.As(errA, &use) && errB == nil {
					t.Errorf("%s %s: %v sent to %s but larger %v rated %d", e, k, a, use.Use, b, ib.Value)
				}
			}
		}
	}
}

func TestEditionText(t *testing.T) {
	for _, e := range Editions() {
		b, err := e.MarshalText()
		var back Edition
		if err != nil || back.UnmarshalText(b) != nil || back != e {
			t.Errorf("edition %d: MarshalText %q, %v; round trip %d", e, b, err, back)
		}
	}
	if _, err := ParseEdition("cn-2019"); err == nil || !strings.Contains(err.Error(), "cn-2026, cn-2012, us-2024") {
		t.Errorf("ParseEdition(cn-2019) = %v, want an error listing the editions", err)
	}
	var zero Edition
	if zero != HJ633_2026 || zero.Title() != "HJ 633-2026" {
		t.Errorf("zero Edition = %v (%s), want HJ 633-2026", zero, zero.Title())
	}
	var p Pollutant
	if err := p.UnmarshalText([]byte("pm25")); err != nil || p != PM25 || p.String() != "PM2.5" {
		t.Errorf("UnmarshalText(pm25) = %v, %v", p, err)
	}
	if err := p.UnmarshalText([]byte("pm2.5")); err == nil {
		t.Errorf("UnmarshalText(pm2.5) = nil, want error")
	}
	for _, c := range []struct {
		e    Edition
		p    Pollutant
		unit string
	}{{HJ633_2026, CO, "mg/m3"}, {HJ633_2012, SO2, "ug/m3"}, {USEPA2024, O3, "ppm"}, {USEPA2024, CO, "ppm"},
		{USEPA2024, NO2, "ppb"}, {USEPA2024, PM25, "ug/m3"}} {
		if got := c.e.Unit(c.p); got != c.unit {
			t.Errorf("%s.Unit(%s) = %q, want %q", c.e, c.p, got, c.unit)
		}
	}
}
