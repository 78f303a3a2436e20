package noise

import (
	"errors"
	"fmt"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Default day/night boundaries (docs/standards.md §1.2: day 06:00 ≤ t < 22:00 local time,
// GB 12348-2008 §3.6 citing the noise law).
const (
	DefaultDayStart   = 6 * time.Hour
	DefaultNightStart = 22 * time.Hour
)

// Periods splits local time into day (昼间) and night (夜间) periods.
//
// A county-level (or higher) government may redefine the boundaries (docs/standards.md §1.2,
// GB 12348-2008 §3.6), so both are configurable. The zero value means the defaults:
// DayStart and NightStart both zero select 06:00 and 22:00, a nil Location selects
// Asia/Shanghai (fixed UTC+8).
type Periods struct {
	DayStart   time.Duration // offset of the day's start from local midnight, whole minutes
	NightStart time.Duration // offset of the night's start from local midnight, after DayStart, at most 24h
	Location   *time.Location
}

// DefaultPeriods returns 06:00/22:00 in Asia/Shanghai.
func DefaultPeriods() Periods {
	return Periods{DayStart: DefaultDayStart, NightStart: DefaultNightStart, Location: reading.ChinaStandardTime}
}

// norm fills in the defaults of a zero Periods.
func (p Periods) norm() Periods {
	if p.DayStart == 0 && p.NightStart == 0 {
		p.DayStart, p.NightStart = DefaultDayStart, DefaultNightStart
	}
	if p.Location == nil {
		p.Location = reading.ChinaStandardTime
	}
	return p
}

// Validate reports every problem of p after defaults: the boundaries must be whole
// minutes with 0 ≤ DayStart < NightStart ≤ 24h, and both periods must be non-empty.
func (p Periods) Validate() error {
	p = p.norm()
	var errs []error
	for _, b := range []struct {
		name string
		d    time.Duration
	}{{"day_start", p.DayStart}, {"night_start", p.NightStart}} {
		if b.d < 0 || b.d > 24*time.Hour {
			errs = append(errs, fmt.Errorf("%s: %v is not within 0 to 24h of local midnight", b.name, b.d))
		} else if b.d%time.Minute != 0 {
			// Windows are clock minutes; a boundary inside one would split it.
			errs = append(errs, fmt.Errorf("%s: %v is not a whole minute", b.name, b.d))
		}
	}
	if p.NightStart <= p.DayStart {
		errs = append(errs, fmt.Errorf("night_start: %v must be after day_start %v", p.NightStart, p.DayStart))
	} else if p.NightStart-p.DayStart >= 24*time.Hour {
		errs = append(errs, errors.New("night_start: the night must not be empty"))
	}
	return errors.Join(errs...)
}

// IsNight reports whether t falls in the night period. Boundaries are half-open and
// judged on the local wall clock (docs/standards.md §1.2): with the defaults 21:59:59.999 and
// 06:00:00 are day, 22:00:00 and 05:59:59.999 are night.
func (p Periods) IsNight(t time.Time) bool {
	p = p.norm()
	_, off := p.clock(t)
	return off < p.DayStart || off >= p.NightStart
}

// PeriodStart returns the start of the day or night period containing t. A night is
// labelled by the date it starts on (project convention, docs/standards.md §1.2): 2026-06-02
// 03:00 belongs to the night starting 2026-06-01 22:00.
func (p Periods) PeriodStart(t time.Time) time.Time {
	start, _, _ := p.norm().bounds(t)
	return start
}

// clock returns t in p's location and its wall-clock offset from local midnight.
func (p Periods) clock(t time.Time) (time.Time, time.Duration) {
	t = t.In(p.Location)
	h, m, s := t.Clock()
	return t, time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
}

// at returns the local wall time off after midnight of year-month-day (normalised, so
// day 0 is the last day of the previous month). p must be normalised.
func (p Periods) at(year int, month time.Month, day int, off time.Duration) time.Time {
	// Split off so that no field overflows a 32-bit int (ARM boxes).
	return time.Date(year, month, day, int(off/time.Hour), int(off%time.Hour/time.Minute),
		int(off%time.Minute/time.Second), int(off%time.Second), p.Location)
}

// bounds returns the period containing t: [start, end) and whether it is a night.
// p must be normalised.
func (p Periods) bounds(t time.Time) (start, end time.Time, night bool) {
	t, off := p.clock(t)
	y, m, d := t.Date()
	switch {
	case off < p.DayStart: // the night that started yesterday
		return p.at(y, m, d-1, p.NightStart), p.at(y, m, d, p.DayStart), true
	case off >= p.NightStart:
		return p.at(y, m, d, p.NightStart), p.at(y, m, d+1, p.DayStart), true
	}
	return p.at(y, m, d, p.DayStart), p.at(y, m, d, p.NightStart), false
}

// align returns the start of the clock interval of length d (a minute or an hour)
// containing t, aligned in p's location. p must be normalised.
func (p Periods) align(t time.Time, d time.Duration) time.Time {
	t = t.In(p.Location)
	_, off := t.Zone()
	shift := time.Duration(off) * time.Second
	return t.Add(shift).Truncate(d).Add(-shift)
}

// Default hours of the EU day, evening and night (Directive 2002/49/EC Annex I,
// docs/standards.md §1.3): 07:00–19:00, 19:00–23:00, 23:00–07:00 local time.
const (
	DefaultLdenDayStart     = 7 * time.Hour
	DefaultLdenEveningStart = 19 * time.Hour
	DefaultLdenNightStart   = 23 * time.Hour
)

// LdenPeriods splits the 24 hours of Lden into its day, evening and night, in the
// local time of Periods.Location. A member state may shorten the evening by 1 or 2 h
// and lengthen the day or night to match (docs/standards.md §1.3), so the three starts
// are configurable. The 24 hours run from DayStart to DayStart of the next day; the
// night runs from NightStart into the next morning. The zero value means the defaults
// 07:00/19:00/23:00.
type LdenPeriods struct {
	DayStart, EveningStart, NightStart time.Duration // offsets from local midnight, whole hours
}

// DefaultLdenPeriods returns 07:00/19:00/23:00.
func DefaultLdenPeriods() LdenPeriods {
	return LdenPeriods{DefaultLdenDayStart, DefaultLdenEveningStart, DefaultLdenNightStart}
}

// norm fills in the defaults of a zero LdenPeriods.
func (p LdenPeriods) norm() LdenPeriods {
	if p == (LdenPeriods{}) {
		return DefaultLdenPeriods()
	}
	return p
}

// Validate reports every problem of p after defaults, each starting with its key
// (lden_day_start, lden_evening_start, lden_night_start): the starts must be whole
// hours, since Lden is combined from hourly LAeq, with 0 ≤ DayStart < EveningStart <
// NightStart ≤ 24h, so that each of the three parts is at least an hour long.
func (p LdenPeriods) Validate() error {
	p = p.norm()
	var errs []error
	for _, b := range []struct {
		name string
		d    time.Duration
	}{{"lden_day_start", p.DayStart}, {"lden_evening_start", p.EveningStart}, {"lden_night_start", p.NightStart}} {
		if err := CheckLdenStart(b.d); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.name, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if p.EveningStart <= p.DayStart {
		errs = append(errs, fmt.Errorf("lden_evening_start: %s must be after lden_day_start %s", clockText(p.EveningStart), clockText(p.DayStart)))
	}
	if p.NightStart <= p.EveningStart {
		errs = append(errs, fmt.Errorf("lden_night_start: %s must be after lden_evening_start %s", clockText(p.NightStart), clockText(p.EveningStart)))
	} else if p.NightStart-p.DayStart >= 24*time.Hour {
		errs = append(errs, errors.New("lden_night_start: the night must not be empty"))
	}
	return errors.Join(errs...)
}

// CheckLdenStart reports whether d can start a part of Lden: a whole hour (each hourly
// LAeq belongs to one part, by the local hour it starts in) within 0 to 24h of local
// midnight. The config checks each key with it before LdenPeriods.Validate.
func CheckLdenStart(d time.Duration) error {
	switch {
	case d < 0 || d > 24*time.Hour:
		return fmt.Errorf("%v is not within 0 to 24h of local midnight", d)
	case d%time.Hour != 0:
		return fmt.Errorf("%s is not a whole hour (Lden is combined from hourly LAeq)", clockText(d))
	}
	return nil
}

// clockText formats an offset from local midnight as HH:MM, the form of the config.
func clockText(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// bounds returns the four boundaries of the Lden 24 hours starting on the local date of
// day: day, evening and night starts, and the next day's start. p must be normalised.
func (p LdenPeriods) bounds(loc Periods, day time.Time) [4]time.Time {
	y, m, d := day.In(loc.Location).Date()
	return [4]time.Time{
		loc.at(y, m, d, p.DayStart), loc.at(y, m, d, p.EveningStart),
		loc.at(y, m, d, p.NightStart), loc.at(y, m, d+1, p.DayStart),
	}
}
