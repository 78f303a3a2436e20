package air

import (
	"math"
	"slices"
	"testing"
	"time"
)

// days returns the Days of month m of year y, each made by fill (nil: no figures).
func monthDays(y int, m time.Month, fill func(d *Day)) []Day {
	var out []Day
	for i := 1; i <= daysIn(y, m); i++ {
		d := NoDay(Date{y, m, i})
		if fill != nil {
			fill(&d)
		}
		out = append(out, d)
	}
	return out
}

func wantAvg(t *testing.T, what string, got Average, value, n float64, valid bool) {
	t.Helper()
	if got.Valid != valid || got.N != n || (!math.IsNaN(value) || !math.IsNaN(got.Value)) && got.Value != value {
		t.Errorf("%s = %+v, want value %v, N %v, valid %v", what, got, value, n, valid)
	}
}

// Worked example, monthly mean (docs/standards.md §2.9a): June 2026 has 30 days; the
// PM2.5 daily means are 35.1 on days 1–10, 40.2 on days 11–20, 52.4 on days 21–30.
//
//	sum  = 10·35.1 + 10·40.2 + 10·52.4 = 351 + 402 + 524 = 1277
//	mean = 1277 / 30 = 42.5666…  → 15 significant digits (GB/T 8170): 42.5666666666667
//
// 30 valid daily means ≥ 27: valid. SO2 has the same days but only 26 of them valid
// (4 without a daily mean): 26 < 27, not valid, N = 26.
func TestMonthStatsMean(t *testing.T) {
	days := monthDays(2026, time.June, func(d *Day) {
		d.Mean[PM25] = []float64{35.1, 40.2, 52.4}[(d.Date.Day-1)/10]
		if d.Date.Day > 4 {
			d.Mean[SO2] = 10
		}
	})
	s := MonthStats(2026, time.June, days, Validity{})
	wantAvg(t, "PM2.5 June", s.Mean[PM25], 42.5666666666667, 30, true)
	wantAvg(t, "SO2 June", s.Mean[SO2], 10, 26, false)
	wantAvg(t, "NO2 June", s.Mean[NO2], math.NaN(), 0, false)
	wantAvg(t, "CO P95 June", s.COP95, math.NaN(), 0, false)
}

// Worked example, yearly mean: every day of 2026 (365 days) has a PM2.5 daily mean of
// 10·m in month m.
//
//	sum  = 31·10 + 28·20 + 31·30 + 30·40 + 31·50 + 30·60 + 31·70 + 31·80 + 30·90
//	       + 31·100 + 30·110 + 31·120
//	     = 310 + 560 + 930 + 1200 + 1550 + 1800 + 2170 + 2480 + 2700 + 3100 + 3300 + 3720
//	     = 23820
//	mean = 23820 / 365 = 4764/73 = 65.26027397260273972…
//	     → 15 significant digits: 65.2602739726027 (the 16th digit is 3: down)
func TestYearStatsMean(t *testing.T) {
	var days []Day
	for m := time.January; m <= time.December; m++ {
		days = append(days, monthDays(2026, m, func(d *Day) { d.Mean[PM25] = 10 * float64(m) })...)
	}
	days = append(days, monthDays(2027, time.January, func(d *Day) { d.Mean[PM25] = 1000 })...) // another year: ignored
	s := YearStats(2026, days, Validity{})
	wantAvg(t, "PM2.5 2026", s.Mean[PM25], 65.2602739726027, 365, true)
}

// Worked example, CO 95th percentile of 20 daily means (docs/standards.md §2.9a), given
// unsorted; sorted they are
//
//	x(1..20) = 0.4 0.5 0.6 0.6 0.7 0.8 0.8 0.9 1.0 1.0 1.1 1.2 1.2 1.3 1.4 1.5 1.6 1.7 1.8 2.6
//	k  = 1 + (20 − 1)·95/100 = 1 + 18.05 = 19.05;  s = 19;  k − s = 0.05
//	X95 = x(19) + (x(20) − x(19))·0.05 = 1.8 + (2.6 − 1.8)·0.05 = 1.8 + 0.04 = 1.84 mg/m³
//
// 20 valid days of 31 < 27: the statistic is computed (N 20) but not valid for the month.
func TestMonthStatsCOP95(t *testing.T) {
	co := []float64{1.2, 0.4, 2.6, 0.8, 1.0, 1.5, 0.6, 1.3, 1.8, 0.7, 1.1, 0.9, 1.6, 0.5, 1.2, 1.0, 0.8, 1.7, 1.4, 0.6}
	if got := Percentile(co, 95); got != 1.84 {
		t.Errorf("Percentile(co, 95) = %v, want 1.84", got)
	}
	days := monthDays(2026, time.July, func(d *Day) {
		if d.Date.Day <= len(co) {
			d.Mean[CO] = co[d.Date.Day-1]
		}
	})
	wantAvg(t, "CO P95 July", MonthStats(2026, time.July, days, Validity{}).COP95, 1.84, 20, false)
	// 20 is enough with min_days_month 20.
	wantAvg(t, "CO P95 July, 20 days", MonthStats(2026, time.July, days, Validity{MinDaysMonth: 20}).COP95, 1.84, 20, true)
}

// Worked example, O3 90th percentile of the 30 daily largest 8-h means of September
// 2026: 100, 101, …, 126 on days 1–27 (sorted x(1..27)), then 175, 160, 180 on days
// 28–30, so x(28) = 160, x(29) = 175, x(30) = 180:
//
//	k  = 1 + (30 − 1)·90/100 = 1 + 26.1 = 27.1;  s = 27;  k − s = 0.1
//	X90 = x(27) + (x(28) − x(27))·0.1 = 126 + (160 − 126)·0.1 = 126 + 3.4 = 129.4 µg/m³
//
// One Suspect day among them makes the statistic Suspect.
func TestMonthStatsO3P90(t *testing.T) {
	days := monthDays(2026, time.September, func(d *Day) {
		switch {
		case d.Date.Day <= 27:
			d.O3Max8h = float64(99 + d.Date.Day)
		default:
			d.O3Max8h = []float64{175, 160, 180}[d.Date.Day-28]
		}
		if d.Date.Day == 5 {
			d.Suspect |= SuspectO3Max8h
		}
	})
	s := MonthStats(2026, time.September, days, Validity{})
	wantAvg(t, "O3 P90 September", s.O3P90, 129.4, 30, true)
	if !s.O3P90.Suspect {
		t.Error("O3 P90 with a Suspect day is not Suspect")
	}
}

// The interpolation rule at its edges: one value; p = 0 is x(1), p = 100 is x(n)
// (k = n, s = n); non-finite values are ignored; an exact tie between two values.
//
//	P50 of 1, 2, 3, 4: k = 1 + 3·0.5 = 2.5, X = 2 + (3 − 2)·0.5 = 2.5
//	P95 of 0.1, 0.2 (n = 2): k = 1 + 0.95 = 1.95, X = 0.1 + 0.1·0.95 = 0.195
//	P95 of nineteen 0.1 and one 0.2: k = 19.05, X = 0.1 + (0.2 − 0.1)·0.05 = 0.105 exactly
//	(interpolated in float64 it is 0.10500000000000001)
func TestPercentile(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		p    int
		want float64
	}{
		{[]float64{7}, 95, 7},
		{[]float64{3, 1, 2}, 0, 1},
		{[]float64{3, 1, 2}, 100, 3},
		{[]float64{4, 3, 2, 1}, 50, 2.5},
		{[]float64{0.2, math.NaN(), 0.1, math.Inf(1)}, 95, 0.195},
		{append(slices.Repeat([]float64{0.1}, 19), 0.2), 95, 0.105},
		{nil, 50, math.NaN()},
		{[]float64{1}, 101, math.NaN()},
	} {
		got := Percentile(c.xs, c.p)
		if got != c.want && !(math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("Percentile(%v, %d) = %v, want %v", c.xs, c.p, got, c.want)
		}
	}
}

// Worked example, good days (docs/standards.md §2.9): February 2026, 28 days, all with a
// daily AQI; 25 of them ≤ 100 (100 itself is good), 3 above.
//
//	share = 25 / 28 × 100 % = 89.2857…% → one decimal: 89.3 %
//
// A day without an AQI counts in neither: 1 of 16 days is 6.25 %, a GB/T 8170 tie →
// 6.2 (even), and 3 of 16 = 18.75 → 18.8.
func TestMonthStatsGoodDays(t *testing.T) {
	days := monthDays(2026, time.February, func(d *Day) {
		d.AQI = 40
		switch d.Date.Day {
		case 3:
			d.AQI = 100
		case 10, 11, 12:
			d.AQI = 101 + float64(d.Date.Day)
		}
	})
	s := MonthStats(2026, time.February, days, Validity{})
	if s.GoodDays != 25 || s.AQIDays != 28 {
		t.Errorf("February: %d good of %d days, want 25 of 28", s.GoodDays, s.AQIDays)
	}
	wantAvg(t, "good share February", s.GoodShare, 89.3, 28, true)

	for _, c := range []struct {
		good, days int
		want       float64
	}{{1, 16, 6.2}, {3, 16, 18.8}, {86, 91, 94.5}, {0, 5, 0}, {5, 5, 100}, {0, 0, math.NaN()}} {
		if got := GoodShare(c.good, c.days); got != c.want && !(math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("GoodShare(%d, %d) = %v, want %v", c.good, c.days, got, c.want)
		}
	}
	none := MonthStats(2026, time.March, nil, Validity{})
	if none.GoodShare.Valid || none.AQIDays != 0 || !math.IsNaN(none.GoodShare.Value) {
		t.Errorf("a month without days: %+v, want no share", none)
	}
}

// Validity boundaries (docs/standards.md §2.8, §2.9a): 26 valid daily means in a 31-day
// month are not enough, 27 are; February needs 25, in a common (2026) and a leap (2028)
// year alike.
func TestMonthStatsValidity(t *testing.T) {
	for _, c := range []struct {
		y     int
		m     time.Month
		n     int
		valid bool
	}{
		{2026, time.January, 26, false}, {2026, time.January, 27, true},
		{2026, time.April, 26, false}, {2026, time.April, 27, true},
		{2026, time.February, 24, false}, {2026, time.February, 25, true},
		{2028, time.February, 24, false}, {2028, time.February, 25, true}, {2028, time.February, 29, true},
	} {
		days := monthDays(c.y, c.m, func(d *Day) {
			if d.Date.Day <= c.n {
				d.Mean[NO2], d.Mean[CO], d.O3Max8h = 20, 1, 100
			}
		})
		s := MonthStats(c.y, c.m, days, Validity{})
		for what, a := range map[string]Average{"NO2 mean": s.Mean[NO2], "CO P95": s.COP95, "O3 P90": s.O3P90} {
			if a.Valid != c.valid || a.N != float64(c.n) {
				t.Errorf("%d-%02d with %d valid days: %s %+v, want valid %v", c.y, c.m, c.n, what, a, c.valid)
			}
		}
	}
}

// Validity of a year (GB 3095-2026 Table 4): 324 valid daily means and the monthly
// minimum in every month. Exactly the monthly minimum everywhere is 11·27 + 25 = 322
// days: not valid. Two more (in March) make 324: valid. 343 days with April at 26: not
// valid. Configured down to 300 a year, the 322 days are valid.
func TestYearStatsValidity(t *testing.T) {
	year := func(perMonth func(m time.Month) int) []Day {
		var days []Day
		for m := time.January; m <= time.December; m++ {
			n := perMonth(m)
			days = append(days, monthDays(2026, m, func(d *Day) {
				if d.Date.Day <= n {
					d.Mean[PM10] = 50
				}
			})...)
		}
		return days
	}
	minimum := func(m time.Month) int {
		if m == time.February {
			return 25
		}
		return 27
	}
	for _, c := range []struct {
		name     string
		perMonth func(time.Month) int
		v        Validity
		n        float64
		valid    bool
	}{
		{"monthly minimum", minimum, Validity{}, 322, false},
		{"monthly minimum, 2 more in March", func(m time.Month) int { return minimum(m) + 2*bool2int(m == time.March) }, Validity{}, 324, true},
		{"April 26", func(m time.Month) int {
			if m == time.April {
				return 26
			}
			return minimum(m) + 2
		}, Validity{}, 26 + 10*29 + 27, false},
		{"monthly minimum, min_days_year 300", minimum, Validity{MinDaysYear: 300}, 322, true},
	} {
		s := YearStats(2026, year(c.perMonth), c.v)
		if a := s.Mean[PM10]; a.Valid != c.valid || a.N != c.n {
			t.Errorf("%s: PM10 2026 = %+v, want N %v, valid %v", c.name, a, c.n, c.valid)
		}
	}
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestValidityPeriodBounds(t *testing.T) {
	for _, v := range []Validity{{MinDaysMonth: 31}, {MinDaysFebruary: 29}, {MinDaysYear: 366}, {MinDaysMonth: -1}} {
		if err := v.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", v)
		}
	}
	if err := (Validity{MinDaysMonth: 30, MinDaysFebruary: 28, MinDaysYear: 365}).Validate(); err != nil {
		t.Errorf("Validate(the largest) = %v", err)
	}
}
