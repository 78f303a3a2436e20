package noise

import (
	"strings"
	"testing"
	"time"
)

var cst = time.FixedZone("UTC+8", 8*60*60)

func TestIsNightDefault(t *testing.T) {
	var p Periods // the zero value is 06:00/22:00 Asia/Shanghai
	for _, c := range []struct {
		t     time.Time
		night bool
	}{
		{time.Date(2026, 6, 1, 21, 59, 59, 999e6, cst), false},
		{time.Date(2026, 6, 1, 22, 0, 0, 0, cst), true},
		{time.Date(2026, 6, 2, 5, 59, 59, 999e6, cst), true},
		{time.Date(2026, 6, 2, 6, 0, 0, 0, cst), false},
		{time.Date(2026, 6, 2, 0, 0, 0, 0, cst), true},
		{time.Date(2026, 6, 2, 12, 0, 0, 0, cst), false},
		// The same instants in UTC: 22:00 CST is 14:00 UTC, 06:00 CST is 22:00 UTC.
		{time.Date(2026, 6, 1, 13, 59, 59, 999999999, time.UTC), false},
		{time.Date(2026, 6, 1, 14, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 6, 1, 21, 59, 59, 999e6, time.UTC), true},
		{time.Date(2026, 6, 1, 22, 0, 0, 0, time.UTC), false},
	} {
		if got := p.IsNight(c.t); got != c.night {
			t.Errorf("IsNight(%v) = %v, want %v", c.t, got, c.night)
		}
		if got := DefaultPeriods().IsNight(c.t); got != c.night {
			t.Errorf("DefaultPeriods().IsNight(%v) = %v, want %v", c.t, got, c.night)
		}
	}
}

func TestIsNightOverridden(t *testing.T) {
	p := Periods{DayStart: 7 * time.Hour, NightStart: 23*time.Hour + 30*time.Minute, Location: time.UTC}
	for _, c := range []struct {
		t     time.Time
		night bool
	}{
		{time.Date(2026, 6, 1, 6, 59, 59, 999e6, time.UTC), true},
		{time.Date(2026, 6, 1, 7, 0, 0, 0, time.UTC), false},
		{time.Date(2026, 6, 1, 23, 29, 59, 999e6, time.UTC), false},
		{time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC), true},
		{time.Date(2026, 6, 1, 22, 0, 0, 0, time.UTC), false},
		// 07:00 UTC is 15:00 in Shanghai: the location decides, not the time's zone.
		{time.Date(2026, 6, 1, 15, 0, 0, 0, cst), false},
		{time.Date(2026, 6, 1, 14, 59, 0, 0, cst), true},
	} {
		if got := p.IsNight(c.t); got != c.night {
			t.Errorf("IsNight(%v) = %v, want %v", c.t, got, c.night)
		}
	}
}

func TestPeriodStart(t *testing.T) {
	p := DefaultPeriods()
	d := func(day, h, m, s, ns int) time.Time { return time.Date(2026, 6, day, h, m, s, ns, cst) }
	for _, c := range []struct{ t, want time.Time }{
		{d(1, 6, 0, 0, 0), d(1, 6, 0, 0, 0)},
		{d(1, 12, 0, 0, 0), d(1, 6, 0, 0, 0)},
		{d(1, 21, 59, 59, 999e6), d(1, 6, 0, 0, 0)},
		{d(1, 22, 0, 0, 0), d(1, 22, 0, 0, 0)},
		{d(1, 23, 59, 0, 0), d(1, 22, 0, 0, 0)},
		{d(2, 3, 0, 0, 0), d(1, 22, 0, 0, 0)}, // the night of 2026-06-01
		{d(2, 5, 59, 59, 999e6), d(1, 22, 0, 0, 0)},
		{time.Date(2026, 7, 1, 2, 0, 0, 0, cst), time.Date(2026, 6, 30, 22, 0, 0, 0, cst)}, // across a month
	} {
		if got := p.PeriodStart(c.t); !got.Equal(c.want) {
			t.Errorf("PeriodStart(%v) = %v, want %v", c.t, got, c.want)
		}
	}
	q := Periods{DayStart: 7 * time.Hour, NightStart: 23 * time.Hour, Location: cst}
	if got, want := q.PeriodStart(d(2, 6, 30, 0, 0)), d(1, 23, 0, 0, 0); !got.Equal(want) {
		t.Errorf("PeriodStart(06:30) with 07/23 = %v, want %v", got, want)
	}
	if got, want := q.PeriodStart(d(2, 22, 30, 0, 0)), d(2, 7, 0, 0, 0); !got.Equal(want) {
		t.Errorf("PeriodStart(22:30) with 07/23 = %v, want %v", got, want)
	}
}

func TestPeriodsValidate(t *testing.T) {
	for _, p := range []Periods{{}, DefaultPeriods(), {DayStart: 0, NightStart: 20 * time.Hour}, {DayStart: 7 * time.Hour, NightStart: 24 * time.Hour}} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", p, err)
		}
	}
	for _, c := range []struct {
		p    Periods
		want []string
	}{
		{Periods{DayStart: 22 * time.Hour, NightStart: 6 * time.Hour}, []string{"night_start: 6h0m0s must be after day_start"}},
		{Periods{DayStart: 6*time.Hour + time.Second, NightStart: 25 * time.Hour}, []string{"day_start: 6h0m1s is not a whole minute", "night_start: 25h0m0s is not within"}},
		{Periods{DayStart: 0, NightStart: 24 * time.Hour}, []string{"night must not be empty"}},
	} {
		err := c.p.Validate()
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Validate(%+v) = %v, want error containing %q", c.p, err, w)
			}
		}
	}
}
