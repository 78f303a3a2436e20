package air

import (
	"math"
	"strings"
	"testing"
	"time"
)

var cst = time.FixedZone("CST", 8*3600)

// minutes returns n samples at 1-min intervals from start + offset, value v.
func minutes(start time.Time, offset time.Duration, n int, v float64) []Sample {
	var s []Sample
	for i := range n {
		s = append(s, Sample{Time: start.Add(offset + time.Duration(i)*time.Minute), Value: v})
	}
	return s
}

func valid(n int, v float64) []Average {
	a := make([]Average, n)
	for i := range a {
		a[i] = Average{Value: v, N: 60, Valid: true}
	}
	return a
}

func TestHourValidity(t *testing.T) {
	v := DefaultValidity()
	h := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	// GB 3095-2026 Table 4: ≥ 45 min of sampling in the hour.
	for _, c := range []struct {
		n     int
		valid bool
	}{{44, false}, {45, true}, {60, true}, {0, false}} {
		a := v.Hour(h, time.Minute, minutes(h, 0, c.n, 30))
		if a.Valid != c.valid || a.N != float64(c.n) || (c.n > 0 && a.Value != 30) || (c.n == 0 && !math.IsNaN(a.Value)) {
			t.Errorf("Hour(%d one-minute samples) = %+v, want valid %v, N %d", c.n, a, c.valid, c.n)
		}
	}
	// 44 min 59 s is not 45 min: 45 one-minute samples from 15:01, the last clipped at
	// the hour's end to 59 s.
	if a := v.Hour(h, time.Minute, minutes(h, 15*time.Minute+time.Second, 45, 30)); a.Valid || math.Abs(a.N-(44+59.0/60)) > 1e-9 {
		t.Errorf("Hour(44 min 59 s) = %+v, want invalid", a)
	}
	if a := v.Hour(h, time.Minute, minutes(h, 15*time.Minute, 45, 30)); !a.Valid || a.N != 45 {
		t.Errorf("Hour(45 min ending at the hour's end) = %+v, want valid", a)
	}
	// Samples every 5 min: Sample = 5 min covers the hour; Sample = 1 min only 12 minutes.
	var five []Sample
	for i := range 12 {
		five = append(five, Sample{Time: h.Add(time.Duration(5*i) * time.Minute), Value: float64(i)})
	}
	if a := v.Hour(h, 5*time.Minute, five); !a.Valid || a.N != 60 || a.Value != 5.5 {
		t.Errorf("Hour(12 samples, 5 min) = %+v, want valid, 60 min, mean 5.5", a)
	}
	if a := v.Hour(h, time.Minute, five); a.Valid || a.N != 12 {
		t.Errorf("Hour(12 samples, 1 min) = %+v, want invalid, 12 min", a)
	}
	// Overlapping samples count once; the last minute's sample is clipped to the hour;
	// samples outside the hour, NaN and Inf are ignored.
	s := append(minutes(h, 30*time.Second, 60, 10), minutes(h, 0, 10, 10)...)
	s = append(s, Sample{Time: h.Add(-time.Second), Value: 1e6}, Sample{Time: h.Add(time.Hour), Value: 1e6},
		Sample{Time: h, Value: math.NaN()}, Sample{Time: h, Value: math.Inf(1), Suspect: true})
	if a := v.Hour(h, time.Minute, s); a.N != 60 || a.Value != 10 || !a.Valid || a.Suspect {
		t.Errorf("Hour(overlaps, outliers) = %+v, want 60 min of 10", a)
	}
	s[3].Suspect = true
	if a := v.Hour(h, time.Minute, s); !a.Suspect {
		t.Errorf("Hour(one Suspect sample) = %+v, want Suspect", a)
	}
	// Configurable.
	if a := (Validity{MinCoverage: 30 * time.Minute}).Hour(h, time.Minute, minutes(h, 0, 30, 1)); !a.Valid {
		t.Errorf("Hour(30 min, MinCoverage 30m) = %+v, want valid", a)
	}
}

func TestDayAndEightHourValidity(t *testing.T) {
	v := DefaultValidity()
	day := func(validHours int) []Average {
		return append(valid(validHours, 40), make([]Average, 24-validHours)...)
	}
	// ≥ 20 hourly means in the day.
	if a := v.Day(day(19)); a.Valid || a.N != 19 || a.Value != 40 {
		t.Errorf("Day(19 valid hours) = %+v, want invalid, 19, mean 40", a)
	}
	if a := v.Day(day(20)); !a.Valid || a.N != 20 || a.Value != 40 {
		t.Errorf("Day(20 valid hours) = %+v, want valid", a)
	}
	// The mean of the valid hours only; an invalid hour's value does not count.
	hours := valid(24, 10)
	hours[0] = Average{Value: 1000, N: 30, Valid: false}
	hours[1].Value = 33
	if a := v.Day(hours); a.Value != (22*10+33)/23.0 || a.N != 23 {
		t.Errorf("Day(one invalid hour) = %+v, want mean of the 23 valid", a)
	}
	// ≥ 6 of the 8 hours.
	eight := func(n int) []Average { return append(valid(n, 100), make([]Average, 8-n)...) }
	if a := v.EightHour(eight(5)); a.Valid {
		t.Errorf("EightHour(5 of 8) = %+v, want invalid", a)
	}
	if a := v.EightHour(eight(6)); !a.Valid || a.Value != 100 {
		t.Errorf("EightHour(6 of 8) = %+v, want valid 100", a)
	}
	// The day's largest 8-h mean: ≥ 14 valid windows [U].
	windows := func(n int) []Average {
		w := append(valid(n, 50), make([]Average, 17-n)...)
		w[0].Value, w[0].Suspect = 90, true
		return w
	}
	if a := v.MaxEightHour(windows(13)); a.Valid || a.N != 13 {
		t.Errorf("MaxEightHour(13 of 17) = %+v, want invalid", a)
	}
	if a := v.MaxEightHour(windows(14)); !a.Valid || a.Value != 90 || !a.Suspect {
		t.Errorf("MaxEightHour(14 of 17) = %+v, want valid 90, Suspect", a)
	}
	if a := (Validity{MinWindows: 1}).MaxEightHour(windows(1)); !a.Valid {
		t.Errorf("MaxEightHour(1, MinWindows 1) = %+v, want valid", a)
	}
	if a := v.MaxHour(day(20)); !a.Valid || a.Value != 40 {
		t.Errorf("MaxHour(20 valid) = %+v, want valid 40", a)
	}
	if a := v.Day(nil); a.Valid || !math.IsNaN(a.Value) {
		t.Errorf("Day(nil) = %+v, want NaN, invalid", a)
	}
}

func TestNowCast(t *testing.T) {
	// Constant: the NowCast is the constant.
	if a := NowCast(valid(12, 20)); !a.Valid || math.Abs(a.Value-20) > 1e-12 || a.N != 12 {
		t.Errorf("NowCast(12 × 20) = %+v", a)
	}
	// Rising fast: w = 10/120 → 0.5; the current hour weighs most.
	hours := []Average{{Value: 120, Valid: true}, {Value: 10, Valid: true}, {Value: 10, Valid: true}}
	want := (120 + 0.5*10 + 0.25*10) / (1 + 0.5 + 0.25)
	if a := NowCast(hours); !a.Valid || math.Abs(a.Value-want) > 1e-12 {
		t.Errorf("NowCast(120, 10, 10) = %+v, want %v", a, want)
	}
	// w = min/max when above 0.5.
	hours = []Average{{Value: 40, Valid: true}, {Value: 30, Valid: true}}
	w := 0.75
	if a := NowCast(hours); math.Abs(a.Value-(40+w*30)/(1+w)) > 1e-12 {
		t.Errorf("NowCast(40, 30) = %+v", a)
	}
	// 2 of the 3 most recent hours must be valid.
	hours = append([]Average{{}, {}}, valid(10, 5)...)
	if a := NowCast(hours); a.Valid {
		t.Errorf("NowCast(first two invalid) = %+v, want invalid", a)
	}
	hours = append([]Average{{}}, valid(11, 5)...)
	if a := NowCast(hours); !a.Valid {
		t.Errorf("NowCast(first invalid, then valid) = %+v, want valid", a)
	}
	if a := NowCast(nil); a.Valid || !math.IsNaN(a.Value) {
		t.Errorf("NowCast(nil) = %+v", a)
	}
	if a := NowCast(valid(3, 0)); !a.Valid || a.Value != 0 {
		t.Errorf("NowCast(zeros) = %+v, want 0", a)
	}
}

func TestValidityValidate(t *testing.T) {
	if err := (Validity{}).Validate(); err != nil {
		t.Errorf("Validate(defaults) = %v", err)
	}
	if err := (Validity{DayFirst8h: -7 * time.Hour, DayLast8h: 16 * time.Hour, MinWindows: 18}).Validate(); err != nil {
		t.Errorf("Validate(24 windows ending 01:00…24:00) = %v", err)
	}
	err := Validity{MinCoverage: 2 * time.Hour, MinHours: 25, Min8h: 9, DayFirst8h: 90 * time.Minute, DayLast8h: 17 * time.Hour}.Validate()
	for _, w := range []string{"min_coverage: 2h0m0s", "min_hours: 25", "min_8h: 9", "day_first_8h: 1h30m0s", "day_last_8h: 17h0m0s"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate(bad) = %v, want %q", err, w)
		}
	}
	if err := (Validity{MinWindows: 18}).Validate(); err == nil || !strings.Contains(err.Error(), "min_windows: 18") {
		t.Errorf("Validate(18 of 17 windows) = %v", err)
	}
}
