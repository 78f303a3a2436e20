package air

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"time"
)

// Defaults of Validity: GB 3095-2026 Table 4 [T] (docs/standards.md §2.8) unless marked.
const (
	DefaultMinCoverage = 45 * time.Minute // 1-h mean: ≥ 45 min of sampling in the hour
	DefaultMinHours    = 20               // daily mean: ≥ 20 hourly means in the day
	DefaultMin8h       = 6                // 8-h mean: ≥ 6 hourly means of the 8
	// DefaultMinWindows: a day's largest 8-h mean needs this many valid 8-h means among
	// the day's windows. [U] (docs/standards.md §2.8): HJ 663-2013 as commonly cited (14 of
	// the 17 windows ending 08:00…24:00); its text was not read. Configurable.
	DefaultMinWindows = 14
	// DefaultDayFirst8h and DefaultDayLast8h: the 8-h windows of a day are those starting
	// 00:00 to 16:00 local time (ending 08:00 to 24:00), docs/standards.md §2.8 [U] (HJ 663-2013,
	// not read). Configurable.
	DefaultDayFirst8h = 0
	DefaultDayLast8h  = 16 * time.Hour
	// DefaultMinDaysMonth and DefaultMinDaysFebruary: a month's mean or percentile needs
	// this many valid daily values (docs/standards.md §2.9a [U]: GB 3095-2012 and HJ
	// 663-2013 as remembered; for the annual mean Table 4 asks the same of each month
	// [T]). Configurable.
	DefaultMinDaysMonth    = 27
	DefaultMinDaysFebruary = 25
	// DefaultMinDaysYear: an annual mean needs 324 valid daily means in the year and
	// the monthly minimum in each month (GB 3095-2026 Table 4 [T], docs/standards.md
	// §2.8); the same rule is applied to the yearly percentiles of CO and O3 [U].
	DefaultMinDaysYear = 324
)

// Largest values of the period minimums: each month must be able to reach its minimum
// (every month but February has at least 30 days, February 28), and a year 365.
const (
	MaxMinDaysMonth    = 30
	MaxMinDaysFebruary = 28
	MaxMinDaysYear     = 365
)

// Validity holds the data-validity thresholds (GB 3095-2026 Table 4, docs/standards.md §2.8).
// A zero field selects its default.
type Validity struct {
	// MinCoverage is the sampling time a valid 1-h mean needs in its hour: 45 min.
	// Table 4 gives it for SO2, NO2, CO and O3; PM has no 1-h row (GB 3095 has no 1-h
	// PM limit), and the same rule is applied to its 1-h means, which HJ 633-2026 rates
	// in the real-time report and GB 3095 counts towards the daily mean.
	MinCoverage time.Duration
	// MinHours is the number of valid hourly means a daily mean needs in its day: 20.
	// The same rule is applied to 24-h moving means and to a day's largest 1-h mean.
	MinHours int
	// Min8h is the number of valid hourly means an 8-h mean needs of its 8: 6.
	Min8h int
	// MinWindows is the number of valid 8-h means among the day's windows the day's
	// largest 8-h mean needs: 14 [U].
	MinWindows int
	// DayFirst8h and DayLast8h are the starts, as offsets from local midnight in whole
	// hours, of the first and last 8-h window belonging to a day: 0 and 16h [U]. With
	// DayFirst8h = −7h the windows of a day are the 24 ending 01:00…24:00.
	DayFirst8h, DayLast8h time.Duration
	// MinDaysMonth is the number of valid daily values (daily means; for O3 the day's
	// largest 8-h means) a month's mean or percentile needs: 27 [U]; MinDaysFebruary
	// the same for February: 25 [U] (docs/standards.md §2.9a).
	MinDaysMonth, MinDaysFebruary int
	// MinDaysYear is the number of valid daily values a year's mean or percentile needs,
	// besides the monthly minimum in each month: 324 (GB 3095-2026 Table 4).
	MinDaysYear int
}

// DefaultValidity returns the GB 3095-2026 thresholds.
func DefaultValidity() Validity { return Validity{}.norm() }

func (v Validity) norm() Validity {
	if v.MinCoverage == 0 {
		v.MinCoverage = DefaultMinCoverage
	}
	if v.MinHours == 0 {
		v.MinHours = DefaultMinHours
	}
	if v.Min8h == 0 {
		v.Min8h = DefaultMin8h
	}
	if v.MinWindows == 0 {
		v.MinWindows = DefaultMinWindows
	}
	if v.DayFirst8h == 0 && v.DayLast8h == 0 {
		v.DayFirst8h, v.DayLast8h = DefaultDayFirst8h, DefaultDayLast8h
	}
	if v.MinDaysMonth == 0 {
		v.MinDaysMonth = DefaultMinDaysMonth
	}
	if v.MinDaysFebruary == 0 {
		v.MinDaysFebruary = DefaultMinDaysFebruary
	}
	if v.MinDaysYear == 0 {
		v.MinDaysYear = DefaultMinDaysYear
	}
	return v
}

// windows8h returns the number of 8-h windows of a day.
func (v Validity) windows8h() int { return int((v.DayLast8h-v.DayFirst8h)/time.Hour) + 1 }

// Validate reports every problem of v after defaults.
func (v Validity) Validate() error {
	v = v.norm()
	var errs []error
	if v.MinCoverage < 0 || v.MinCoverage > time.Hour {
		errs = append(errs, fmt.Errorf("min_coverage: %v is not within 0 to 1h", v.MinCoverage))
	}
	if v.MinHours < 0 || v.MinHours > 24 {
		errs = append(errs, fmt.Errorf("min_hours: %d is not within 1 to 24", v.MinHours))
	}
	if v.Min8h < 0 || v.Min8h > 8 {
		errs = append(errs, fmt.Errorf("min_8h: %d is not within 1 to 8", v.Min8h))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"day_first_8h", v.DayFirst8h}, {"day_last_8h", v.DayLast8h}} {
		// A day's windows must have ended by its midnight and lie within the 48 hours
		// of history the Aggregator keeps.
		if d.v%time.Hour != 0 || d.v < -16*time.Hour || d.v > 16*time.Hour {
			errs = append(errs, fmt.Errorf("%s: %v is not a whole hour within -16h to 16h", d.name, d.v))
		}
	}
	if v.DayLast8h < v.DayFirst8h {
		errs = append(errs, fmt.Errorf("day_last_8h: %v is before day_first_8h %v", v.DayLast8h, v.DayFirst8h))
	} else if v.MinWindows < 0 || v.MinWindows > v.windows8h() {
		errs = append(errs, fmt.Errorf("min_windows: %d is not within 1 to the %d windows of a day", v.MinWindows, v.windows8h()))
	}
	for _, d := range []struct {
		name   string
		v, max int
	}{
		{"min_days_month", v.MinDaysMonth, MaxMinDaysMonth},
		{"min_days_february", v.MinDaysFebruary, MaxMinDaysFebruary},
		{"min_days_year", v.MinDaysYear, MaxMinDaysYear},
	} {
		if d.v < 0 || d.v > d.max {
			errs = append(errs, fmt.Errorf("%s: %d is not within 1 to %d", d.name, d.v, d.max))
		}
	}
	return errors.Join(errs...)
}

// Average is a statistic with the data behind it.
type Average struct {
	Value float64 // the mean (or maximum) of the data there is; NaN without any
	// N is the amount of data: minutes of sampling for a 1-h mean, valid hourly means
	// for a daily, 24-h, 8-h mean or daily maximum 1-h mean, valid 8-h means for a daily
	// maximum 8-h mean, valid hours used for a NowCast.
	N       float64
	Valid   bool // N meets the threshold: the standard's statistic exists
	Suspect bool // some input was Suspect (reading.Suspect)
}

// none is the Average of no data.
var none = Average{Value: math.NaN()}

// Sample is one raw concentration.
type Sample struct {
	Time    time.Time
	Value   float64
	Suspect bool
}

// Hour returns the 1-h mean of the samples in [start, start+1h): the arithmetic mean of
// their values (GB 3095-2026 §3.7). Each sample stands for [Time, Time+sample) of
// sampling, clipped to the hour; N is the minutes the union of those spans covers
// (whole seconds), and the mean is valid if they reach MinCoverage. Samples outside the
// hour and non-finite values are ignored.
func (v Validity) Hour(start time.Time, sample time.Duration, samples []Sample) Average {
	var acc hourAcc
	for _, s := range samples {
		acc.add(start, sample, s)
	}
	return acc.average(v.norm())
}

// hourAcc accumulates one pollutant's samples of one hour.
type hourAcc struct {
	sum     exactSum
	cov     coverage
	suspect bool
}

func (a *hourAcc) add(start time.Time, sample time.Duration, s Sample) bool {
	off := s.Time.Sub(start)
	if off < 0 || off >= time.Hour || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return false
	}
	a.sum.add(s.Value)
	a.suspect = a.suspect || s.Suspect
	from := int(off / time.Second)
	to := int(min(off+sample, time.Hour) / time.Second)
	a.cov.mark(from, max(to, from+1))
	return true
}

func (a *hourAcc) average(v Validity) Average {
	if a.sum.n == 0 {
		return none
	}
	secs := a.cov.seconds()
	return Average{
		Value:   a.sum.mean(),
		N:       float64(secs) / 60,
		Valid:   time.Duration(secs)*time.Second >= v.MinCoverage,
		Suspect: a.suspect,
	}
}

// coverage is a set of the 3600 seconds of an hour.
type coverage [(3600 + 63) / 64]uint64

// mark adds seconds [from, to), 0 ≤ from < to ≤ 3600.
func (c *coverage) mark(from, to int) {
	for s := from; s < to; {
		if s%64 == 0 && to-s >= 64 {
			c[s/64] = ^uint64(0)
			s += 64
			continue
		}
		c[s/64] |= 1 << (s % 64)
		s++
	}
}

func (c *coverage) seconds() int {
	n := 0
	for _, w := range c {
		n += bits.OnesCount64(w)
	}
	return n
}

// meanOf returns the mean of the valid averages (exact, see exactSum, then MeanDigits),
// with N their count and valid if N ≥ min.
func meanOf(avgs []Average, min int) Average {
	a := Average{Value: math.NaN()}
	var sum exactSum
	for _, h := range avgs {
		if !h.Valid {
			continue
		}
		sum.add(h.Value)
		a.N++
		a.Suspect = a.Suspect || h.Suspect
	}
	if a.N > 0 {
		a.Value = sum.mean()
	}
	a.Valid = a.N > 0 && a.N >= float64(min)
	return a
}

// maxOf returns the largest valid average, with N the count of valid ones and valid if
// N ≥ min; Suspect is the largest one's.
func maxOf(avgs []Average, min int) Average {
	a := Average{Value: math.NaN()}
	for _, h := range avgs {
		if !h.Valid {
			continue
		}
		a.N++
		if math.IsNaN(a.Value) || h.Value > a.Value {
			a.Value, a.Suspect = h.Value, h.Suspect
		}
	}
	a.Valid = a.N > 0 && a.N >= float64(min)
	return a
}

// Day returns the daily mean of a day's hourly means, or a 24-h moving mean of 24
// consecutive ones: the arithmetic mean of the valid ones (GB 3095-2026 §3.10), valid
// with at least MinHours of them.
func (v Validity) Day(hours []Average) Average { return meanOf(hours, v.norm().MinHours) }

// EightHour returns the 8-h mean of 8 consecutive hourly means: the mean of the valid
// ones (GB 3095-2026 §3.8), valid with at least Min8h of them.
func (v Validity) EightHour(hours []Average) Average { return meanOf(hours, v.norm().Min8h) }

// MaxHour returns a day's largest valid hourly mean, valid if the day has at least
// MinHours valid hourly means (our choice: Table 4 has no row for it).
func (v Validity) MaxHour(hours []Average) Average { return maxOf(hours, v.norm().MinHours) }

// MaxEightHour returns a day's largest valid 8-h mean (GB 3095-2026 §3.9) among its
// windows (see DayFirst8h), valid with at least MinWindows valid 8-h means [U].
func (v Validity) MaxEightHour(windows []Average) Average {
	return maxOf(windows, v.norm().MinWindows)
}

// NowCast returns the US NowCast of up to 12 hourly means, the most recent first
// (docs/standards.md §2.10): w = min/max of the valid ones, at least 0.5; NowCast =
// Σ wⁱ·cᵢ / Σ wⁱ over the valid hours i hours ago. It is valid if at least 2 of the 3
// most recent hours are valid. N is the number of valid hours used. The arithmetic is
// exact on the means as decimals; the result is rounded to MeanDigits significant
// digits, like a mean (twelve hours of 9.1 give 9.1, not 9.099999999999996).
func NowCast(hours []Average) Average {
	if len(hours) > 12 {
		hours = hours[:12]
	}
	recent := 0
	var lo, hi *big.Rat
	for i, h := range hours {
		if !h.Valid || math.IsNaN(h.Value) || math.IsInf(h.Value, 0) {
			continue
		}
		if i < 3 {
			recent++
		}
		c := decimal(h.Value)
		if lo == nil || c.Cmp(lo) < 0 {
			lo = c
		}
		if hi == nil || c.Cmp(hi) > 0 {
			hi = c
		}
	}
	a := Average{Value: math.NaN()}
	if lo == nil {
		return a
	}
	half := big.NewRat(1, 2)
	w := big.NewRat(1, 1)
	if hi.Sign() > 0 {
		w.Quo(lo, hi)
		if w.Cmp(half) < 0 {
			w.Set(half)
		}
	}
	num, den, wi := new(big.Rat), new(big.Rat), big.NewRat(1, 1)
	for i, h := range hours {
		if i > 0 {
			wi.Mul(wi, w)
		}
		if !h.Valid || math.IsNaN(h.Value) || math.IsInf(h.Value, 0) {
			continue
		}
		num.Add(num, new(big.Rat).Mul(wi, decimal(h.Value)))
		den.Add(den, wi)
		a.N++
		a.Suspect = a.Suspect || h.Suspect
	}
	a.Value = toFloat(roundSig(num.Quo(num, den), MeanDigits))
	a.Valid = recent >= 2
	return a
}
