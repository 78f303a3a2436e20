package air

import (
	"math"
	"math/big"
	"slices"
	"time"
)

// Period statistics of HJ 663 (docs/standards.md §2.8, §2.9, §2.9a): a month's or a
// year's means, percentiles and good days, computed from the valid daily figures of
// its days. Pure functions; the Ledger keeps the days and decides when a period ends.

// Percentile ranks of the period statistics (docs/standards.md §2.9a [U]). They are the
// statistic's definition and part of its name (co_p95_1mo), so they are not settings.
const (
	COPercentile = 95 // CO: the 95th percentile of the daily means
	O3Percentile = 90 // O3: the 90th percentile of the daily largest 8-h means
)

// Date is a local calendar date.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the calendar date of t in its own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// Valid reports whether d is a real date of the Gregorian calendar (years 1 to 9999).
func (d Date) Valid() bool {
	return d.Year >= 1 && d.Year <= 9999 && d.Month >= time.January && d.Month <= time.December &&
		d.Day >= 1 && d.Day <= daysIn(d.Year, d.Month)
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// String formats d as 2006-01-02.
func (d Date) String() string {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

// daysIn returns the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// Day is one closed local day's input to the period statistics: its valid daily
// figures. A figure the day does not have (not valid, or not in the plan) is NaN.
type Day struct {
	Date Date
	// Mean is the valid daily mean of each pollutant (GB 3095-2026 §3.10), in the
	// catalog unit (µg/m³, CO mg/m³); NaN if the day has none.
	Mean [nPollutants]float64
	// O3Max8h is the day's valid largest 8-h mean of O3 (o3_8h_max_1d); NaN if none.
	O3Max8h float64
	// AQI is the day's published daily AQI (aqi_1d); NaN if none.
	AQI float64
	// Suspect marks the figures above that came from a Suspect reading: bit p for
	// Mean[p], bit SuspectO3Max8h and bit SuspectAQI.
	Suspect uint16
}

// Suspect bits of Day beyond the pollutants' bits 0 to 5.
const (
	SuspectO3Max8h = 1 << (nPollutants + iota)
	SuspectAQI
)

// NoDay returns the Day of date d without any figure.
func NoDay(d Date) Day {
	day := Day{Date: d, O3Max8h: math.NaN(), AQI: math.NaN()}
	for p := range day.Mean {
		day.Mean[p] = math.NaN()
	}
	return day
}

// Stats is a month's or a year's statistics. Every Average has N, the number of valid
// daily values it used (emitted always, as <p>_days_1mo and the like), and is Valid
// when the period's validity rule holds (PeriodValid).
type Stats struct {
	// Mean is the arithmetic mean of the valid daily means of SO2, NO2, PM10 and PM2.5
	// (docs/standards.md §2.9a); the entries of CO and O3 are unused (NaN, N 0).
	Mean [nPollutants]Average
	// COP95 is the 95th percentile of the valid CO daily means (mg/m³).
	COP95 Average
	// O3P90 is the 90th percentile of the valid O3 daily largest 8-h means (µg/m³).
	O3P90 Average
	// GoodDays are the days with a daily AQI ≤ 100, AQIDays those with a daily AQI.
	GoodDays, AQIDays int
	// GoodShare is GoodDays / AQIDays in percent, rounded to one decimal by GB/T 8170
	// (docs/standards.md §2.9); N is AQIDays, valid when AQIDays > 0 (no minimum:
	// bulletins publish the share of any period; AQIDays says how many days it rests on).
	GoodShare Average
	// Suspect is true if a daily AQI counted in GoodDays or AQIDays was Suspect.
	Suspect bool
}

// meanPollutants are the pollutants of a period mean (docs/standards.md §2.9a).
var meanPollutants = []Pollutant{SO2, NO2, PM10, PM25}

// MonthStats computes the statistics of month m of year y from its days (days of other
// months are ignored; each date must appear at most once). The means and percentiles
// need v.MinDaysMonth valid daily values (v.MinDaysFebruary in February).
func MonthStats(y int, m time.Month, days []Day, v Validity) Stats {
	v = v.norm()
	var in []Day
	for _, d := range days {
		if d.Date.Year == y && d.Date.Month == m {
			in = append(in, d)
		}
	}
	return stats(in, func(n func(Day) bool) bool { return count(in, n) >= v.monthMin(m) })
}

// YearStats computes the statistics of year y from its days (days of other years are
// ignored; each date must appear at most once). The means and percentiles need
// v.MinDaysYear valid daily values in the year and the monthly minimum in each of its
// months (GB 3095-2026 Table 4, docs/standards.md §2.8).
func YearStats(y int, days []Day, v Validity) Stats {
	v = v.norm()
	var in []Day
	for _, d := range days {
		if d.Date.Year == y {
			in = append(in, d)
		}
	}
	return stats(in, func(has func(Day) bool) bool {
		if count(in, has) < v.MinDaysYear {
			return false
		}
		for m := time.January; m <= time.December; m++ {
			n := 0
			for _, d := range in {
				if d.Date.Month == m && has(d) {
					n++
				}
			}
			if n < v.monthMin(m) {
				return false
			}
		}
		return true
	})
}

// monthMin is the least number of valid daily values a month needs.
func (v Validity) monthMin(m time.Month) int {
	if m == time.February {
		return v.MinDaysFebruary
	}
	return v.MinDaysMonth
}

func count(days []Day, has func(Day) bool) int {
	n := 0
	for _, d := range days {
		if has(d) {
			n++
		}
	}
	return n
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// stats computes the statistics of days; valid says whether the days with a value (has)
// satisfy the period's validity rule.
func stats(days []Day, valid func(has func(Day) bool) bool) Stats {
	var s Stats
	for p := range s.Mean {
		s.Mean[p] = none
	}
	for _, p := range meanPollutants {
		has := func(d Day) bool { return isFinite(d.Mean[p]) }
		var sum exactSum
		a := Average{Value: math.NaN()}
		for _, d := range days {
			if has(d) {
				sum.add(d.Mean[p])
				a.N++
				a.Suspect = a.Suspect || d.Suspect&(1<<p) != 0
			}
		}
		if a.N > 0 {
			a.Value = sum.mean()
		}
		a.Valid = a.N > 0 && valid(has)
		s.Mean[p] = a
	}
	s.COP95 = percentileOf(days, valid, COPercentile,
		func(d Day) float64 { return d.Mean[CO] }, func(d Day) bool { return d.Suspect&(1<<CO) != 0 })
	s.O3P90 = percentileOf(days, valid, O3Percentile,
		func(d Day) float64 { return d.O3Max8h }, func(d Day) bool { return d.Suspect&SuspectO3Max8h != 0 })
	for _, d := range days {
		if !isFinite(d.AQI) {
			continue
		}
		s.AQIDays++
		if d.AQI <= 100 { // GoodDay
			s.GoodDays++
		}
		s.Suspect = s.Suspect || d.Suspect&SuspectAQI != 0
	}
	s.GoodShare = Average{Value: GoodShare(s.GoodDays, s.AQIDays), N: float64(s.AQIDays),
		Valid: s.AQIDays > 0, Suspect: s.Suspect}
	return s
}

func percentileOf(days []Day, valid func(func(Day) bool) bool, p int, value func(Day) float64, suspect func(Day) bool) Average {
	has := func(d Day) bool { return isFinite(value(d)) }
	var xs []float64
	a := Average{Value: math.NaN()}
	for _, d := range days {
		if has(d) {
			xs = append(xs, value(d))
			a.Suspect = a.Suspect || suspect(d)
		}
	}
	a.N = float64(len(xs))
	if len(xs) > 0 {
		a.Value = Percentile(xs, p)
	}
	a.Valid = len(xs) > 0 && valid(has)
	return a
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of xs by the interpolation rule
// of docs/standards.md §2.9a: with x(1) ≤ … ≤ x(n) sorted ascending, k = 1 + (n − 1)·p/100,
// s the integer part of k, Xp = x(s) + (x(s+1) − x(s))·(k − s), and Xp = x(n) when s = n.
// The arithmetic is exact on the values as their shortest decimals; the result is
// rounded to MeanDigits significant digits like a mean. NaN for no finite value
// (non-finite ones are ignored) or p outside 0 to 100. xs is not modified.
func Percentile(xs []float64, p int) float64 {
	var rs []*big.Rat
	for _, x := range xs {
		if isFinite(x) {
			rs = append(rs, decimal(x))
		}
	}
	if len(rs) == 0 || p < 0 || p > 100 {
		return math.NaN()
	}
	slices.SortFunc(rs, func(a, b *big.Rat) int { return a.Cmp(b) })
	n := int64(len(rs))
	k := big.NewRat(100+(n-1)*int64(p), 100) // 1 + (n−1)·p/100
	s := floorInt(k).Int64()                 // 1 ≤ s ≤ n
	if s >= n {
		return toFloat(roundSig(rs[n-1], MeanDigits))
	}
	lo, hi := rs[s-1], rs[s] // x(s), x(s+1)
	frac := new(big.Rat).Sub(k, new(big.Rat).SetInt64(s))
	x := new(big.Rat).Sub(hi, lo)
	x.Mul(x, frac).Add(x, lo)
	return toFloat(roundSig(x, MeanDigits))
}

// GoodShare returns good / days × 100 %, rounded exactly to one decimal by GB/T 8170
// (docs/standards.md §2.9): 25 of 28 days is 89.3. NaN without days.
func GoodShare(good, days int) float64 {
	if days <= 0 {
		return math.NaN()
	}
	return toFloat(halfEven(big.NewRat(int64(good)*100, int64(days)), 1))
}
