package noise

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// hourly feeds a meter's own hourly LAeq values (laeq_period 1 h) from t0 on, one an
// hour; a NaN level is a missing hour. It returns what was derived, without flushing.
func hourly(a *Aggregator, t0 time.Time, levels []float64) []reading.Reading {
	var out []reading.Reading
	for i, l := range levels {
		if !math.IsNaN(l) {
			out = append(out, a.Add(laeq(t0.Add(time.Duration(i)*time.Hour), l))...)
		}
	}
	return out
}

// round1 checks the one-decimal display value (GB/T 8170) of a derived reading.
func (s derivedSet) round1(t *testing.T, quantity string, at time.Time, want float64) {
	t.Helper()
	if got := reading.RoundHalfEven(s[key(quantity, at)].Value, 1); got != want {
		t.Errorf("%s@%v rounds to %v, want %v", quantity, at, got, want)
	}
}

// Issue 11, the report quantities: LAeq over a calendar day and the GB 3096 exceedance
// per day and per night period, from a meter's hourly LAeq (laeq_period 1 h), zone 1
// (55/45 dB(A)). From 2026-06-01 00:00 to 2026-06-02 05:00 (30 hours):
//
//	00:00–05:00  50 (the end of the night of 2026-05-31)
//	06:00–21:00  60, except 08:00 at 70 (the day: 15 × 60, 1 × 70)
//	22:00–05:00  50, except 02:00 on 06-02 at 60 (the night: 7 × 50, 1 × 60)
//
// Ld  = 10·lg((15·10^6 + 10^7)/16) = 10·lg(1 562 500) = 60 + 10·lg 1.5625 = 61.938… → 61.9
// exceedance_day = Ld − 55 = 6.938… → 6.9 dB
// Ln  = 10·lg((7·10^5 + 10^6)/8) = 10·lg(212 500) = 53.273… → 53.3
// exceedance_night = Ln − 45 = 8.273… → 8.3 dB
// laeq_24h of 2026-06-01 (00:00–24:00: 8 × 50, 15 × 60, 1 × 70; the 60 at 02:00 is the
// next day's) = 10·lg((8·10^5 + 15·10^6 + 10^7)/24) = 10·lg(25 800 000/24)
// = 10·lg(1 075 000) = 60 + 10·lg 1.075 = 60.314… → 60.3, vdr_24h 100 %.
// Hourly exceedance at 08:00 is 70 − 55 = 15, as before.
func TestAggregatorDayNightExceedanceAndLAeq24h(t *testing.T) {
	a := newAgg(t, func(c *Config) { c.LaeqPeriod = time.Hour })
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	var levels []float64
	for h := range 30 {
		l := 50.0
		switch {
		case h == 8:
			l = 70
		case h >= 6 && h < 22:
			l = 60
		case h == 24+2:
			l = 60
		}
		levels = append(levels, l)
	}
	out := hourly(a, t0, levels)
	set := collect(t, nil, append(out, a.Tick(a.FlushTime(t0.Add(29*time.Hour)))...))

	day, night := t0.Add(6*time.Hour), t0.Add(22*time.Hour)
	ld := 10 * math.Log10(1_562_500)
	ln := 10 * math.Log10(212_500)
	set.want(t, QuantityLd, day, ld, reading.Good)
	set.want(t, QuantityExceedanceDay, day, ld-55, reading.Good)
	set.round1(t, QuantityLd, day, 61.9)
	set.round1(t, QuantityExceedanceDay, day, 6.9)
	set.want(t, QuantityLn, night, ln, reading.Good)
	set.want(t, QuantityExceedanceNight, night, ln-45, reading.Good)
	set.round1(t, QuantityLn, night, 53.3)
	set.round1(t, QuantityExceedanceNight, night, 8.3)
	set.want(t, QuantityExceedanceHourly, t0.Add(8*time.Hour), 15, reading.Good)

	set.want(t, QuantityLAeqDaily, t0, 10*math.Log10(1_075_000), reading.Good)
	set.round1(t, QuantityLAeqDaily, t0, 60.3)
	set.want(t, QuantityVDRDaily, t0, 100, reading.Good)
	// The flush closes 2026-06-02 too: 6 of its 24 hours, 25 %, Suspect.
	// 10·lg((5·10^5 + 10^6)/6) is 00:00–06:00 of 06-02: 50, 50, 60, 50, 50, 50.
	d1 := t0.AddDate(0, 0, 1)
	set.want(t, QuantityLAeqDaily, d1, 10*math.Log10((5*1e5+1e6)/6), reading.Suspect)
	set.want(t, QuantityVDRDaily, d1, 100*6/24.0, reading.Good)
	// The night of 05-31 is only its last 6 hours here: 75 %, not below 0.75, Good.
	set.want(t, QuantityExceedanceNight, t0.Add(-2*time.Hour), 50-45, reading.Good)
	if n := set.count(QuantityExceedanceDay) + set.count(QuantityExceedanceNight); n != 3 {
		t.Errorf("%d period exceedances, want 3 (one per ld or ln)", n)
	}
}

// A calendar day is judged like a period: below min_valid_period of the day covered, or
// with bad weather in it, laeq_24h is Suspect; without any data there is only vdr_24h 0.
// Here 12 hours at 60 of 2026-06-01 (00:00–11:00): laeq_24h = 60, vdr_24h = 50 %.
func TestAggregatorLAeq24hValidity(t *testing.T) {
	a := newAgg(t, func(c *Config) { c.LaeqPeriod = time.Hour })
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	out := hourly(a, t0, []float64{60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60})
	out = append(out, a.Tick(t0.Add(48*time.Hour+DefaultLateness))...)
	set := collect(t, nil, out)
	set.want(t, QuantityLAeqDaily, t0, 60, reading.Suspect)
	set.want(t, QuantityVDRDaily, t0, 50, reading.Good)
	set.absent(t, QuantityLAeqDaily, t0.AddDate(0, 0, 1))
	set.want(t, QuantityVDRDaily, t0.AddDate(0, 0, 1), 0, reading.Good)

	// A full day with one minute of rain above rain_max: Suspect.
	b := newAgg(t, func(c *Config) { c.LaeqPeriod = time.Hour; c.RainMax = 1 })
	var full []float64
	for range 24 {
		full = append(full, 60)
	}
	out = hourly(b, t0, full[:20])
	b.Add(weather(t0.Add(20*time.Hour+30*time.Minute), "rain_rate", 3))
	out = append(out, hourly(b, t0.Add(20*time.Hour), full[20:])...)
	set = collect(t, nil, append(out, b.Tick(t0.Add(24*time.Hour+DefaultLateness))...))
	set.want(t, QuantityLAeqDaily, t0, 60, reading.Suspect)
	set.want(t, QuantityVDRDaily, t0, 100, reading.Good)
}

// Issue 11, the parts of Lden with a configured evening: lden_day_start 07:00,
// lden_evening_start 19:00, lden_night_start 22:00 (the evening shortened to 3 h and
// the night lengthened to 9 h, docs/standards.md §1.3), so the weights are 12/3/9.
// Hourly LAeq from 2026-06-01 07:00 to 2026-06-02 06:00:
//
//	day     07:00–18:00  10 × 60, 2 × 70 (08:00, 15:00)
//	evening 19:00–21:00  50, 50, 60
//	night   22:00–06:00  8 × 40, 1 × 50 (03:00)
//
// Lday     = 10·lg((10·10^6 + 2·10^7)/12) = 10·lg(2 500 000) = 63.979… → 64.0
// Levening = 10·lg((2·10^5 + 10^6)/3)   = 10·lg(400 000)   = 56.020… → 56.0
// Lnight   = 10·lg((8·10^4 + 10^5)/9)   = 10·lg(20 000)    = 43.010… → 43.0
// Lden     = 10·lg((12·2 500 000 + 3·400 000·10^0.5 + 9·20 000·10^1)/24)
//
//	= 10·lg(1 250 000 + 50 000·√10 + 75 000) = 10·lg(1 483 113.88…) = 61.711… → 61.7
//
// With the default hours (07/19/23) the same data give another Lden; with the evening
// hour 20:00 missing, Levening = 10·lg((10^5 + 10^6)/2) = 10·lg(550 000) = 57.403… (2 of
// its 3 hours, below 0.75: Suspect) and Lden is Suspect.
func TestAggregatorLdenPartsConfiguredEvening(t *testing.T) {
	ldenHours := LdenPeriods{DayStart: 7 * time.Hour, EveningStart: 19 * time.Hour, NightStart: 22 * time.Hour}
	t0 := time.Date(2026, 6, 1, 7, 0, 0, 0, cst)
	levels := func(evening20 float64) []float64 {
		var ls []float64
		for h := range 24 {
			at := (7 + h) % 24
			switch {
			case at == 8 || at == 15:
				ls = append(ls, 70)
			case at < 19 && at >= 7:
				ls = append(ls, 60)
			case at == 19:
				ls = append(ls, 50)
			case at == 20:
				ls = append(ls, evening20)
			case at == 21:
				ls = append(ls, 60)
			case at == 3:
				ls = append(ls, 50)
			default:
				ls = append(ls, 40)
			}
		}
		return ls
	}
	evening, night := t0.Add(12*time.Hour), t0.Add(15*time.Hour)

	a := newAgg(t, func(c *Config) { c.LaeqPeriod = time.Hour; c.Lden = ldenHours })
	// Each part is emitted as soon as its last hour closes: Lday and Levening at 22:00,
	// before the night has ended.
	all := levels(50)
	out := append(hourly(a, t0, all[:15]), a.Tick(night.Add(DefaultLateness))...)
	early := collect(t, nil, out)
	if early.count(QuantityLdenDay) != 1 || early.count(QuantityLdenEvening) != 1 || early.count(QuantityLdenNight) != 0 || early.count(QuantityLden) != 0 {
		t.Errorf("at 22:00: %d lden_day, %d lden_evening, %d lden_night, %d lden; want 1, 1, 0, 0",
			early.count(QuantityLdenDay), early.count(QuantityLdenEvening), early.count(QuantityLdenNight), early.count(QuantityLden))
	}
	out = append(out, hourly(a, night, all[15:])...)
	set := collect(t, nil, append(out, a.Tick(t0.Add(24*time.Hour+DefaultLateness))...))
	set.want(t, QuantityLdenDay, t0, 10*math.Log10(2_500_000), reading.Good)
	set.want(t, QuantityLdenEvening, evening, 10*math.Log10(400_000), reading.Good)
	set.want(t, QuantityLdenNight, night, 10*math.Log10(20_000), reading.Good)
	lden := 10 * math.Log10(1_250_000+50_000*math.Sqrt(10)+75_000)
	set.want(t, QuantityLden, t0, lden, reading.Good)
	set.round1(t, QuantityLdenDay, t0, 64.0)
	set.round1(t, QuantityLdenEvening, evening, 56.0)
	set.round1(t, QuantityLdenNight, night, 43.0)
	set.round1(t, QuantityLden, t0, 61.7)

	// The default hours (07/19/23, 12/4/8) split the same data differently: evening
	// 19:00–22:00 = 50, 50, 60, 40 → (2·10^5 + 10^6 + 10^4)/4 = 302 500; night
	// 23:00–06:00 = 7 × 40, 1 × 50 → (7·10^4 + 10^5)/8 = 21 250;
	// Lden = 10·lg((12·2 500 000 + 4·302 500·√10 + 8·21 250·10)/24)
	//      = 10·lg(1 250 000 + 50 416.6…·√10 + 70 833.3…) = 61.703…
	d := newAgg(t, func(c *Config) { c.LaeqPeriod = time.Hour })
	def := collect(t, nil, append(hourly(d, t0, levels(50)), d.Tick(t0.Add(24*time.Hour+DefaultLateness))...))
	def.want(t, QuantityLdenEvening, evening, 10*math.Log10(302_500), reading.Good)
	def.want(t, QuantityLdenNight, t0.Add(16*time.Hour), 10*math.Log10(21_250), reading.Good)
	def.want(t, QuantityLden, t0, 10*math.Log10((30e6+1.21e6*math.Sqrt(10)+1.7e6)/24), reading.Good)

	// 20:00 missing: the evening has 2 of its 3 hours.
	b := newAgg(t, func(c *Config) { c.LaeqPeriod = time.Hour; c.Lden = ldenHours })
	set = collect(t, nil, append(hourly(b, t0, levels(math.NaN())), b.Tick(t0.Add(24*time.Hour+DefaultLateness))...))
	set.want(t, QuantityLdenEvening, evening, 10*math.Log10(550_000), reading.Suspect)
	set.want(t, QuantityLdenDay, t0, 10*math.Log10(2_500_000), reading.Good)
	set.want(t, QuantityLden, t0, Lden(10*math.Log10(2_500_000), 10*math.Log10(550_000), 10*math.Log10(20_000), 12, 3, 9), reading.Suspect)
}

// A night without any hourly LAeq gives no lden_night and no Lden, but the day and the
// evening are still reported.
func TestAggregatorLdenMissingPart(t *testing.T) {
	a := newAgg(t, func(c *Config) { c.LaeqPeriod = time.Hour })
	t0 := time.Date(2026, 6, 1, 7, 0, 0, 0, cst)
	var ls []float64
	for range 16 { // 07:00–22:00
		ls = append(ls, 55)
	}
	set := collect(t, nil, append(hourly(a, t0, ls), a.Tick(t0.Add(24*time.Hour+DefaultLateness))...))
	set.want(t, QuantityLdenDay, t0, 55, reading.Good)
	set.want(t, QuantityLdenEvening, t0.Add(12*time.Hour), 55, reading.Good)
	set.absent(t, QuantityLdenNight, t0.Add(16*time.Hour))
	set.absent(t, QuantityLden, t0)
}

func TestLdenPeriodsValidate(t *testing.T) {
	h := time.Hour
	for _, ok := range []LdenPeriods{{}, DefaultLdenPeriods(), {7 * h, 18 * h, 23 * h}, {6 * h, 18 * h, 22 * h}, {0, 20 * h, 24*h - h}, {8 * h, 20 * h, 24 * h}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v", ok, err)
		}
	}
	for p, want := range map[LdenPeriods]string{
		{7*h + 30*time.Minute, 19 * h, 23 * h}: "lden_day_start: 07:30 is not a whole hour",
		{7 * h, 19 * h, 25 * h}:                "lden_night_start: 25h0m0s is not within 0 to 24h",
		{7 * h, 7 * h, 23 * h}:                 "lden_evening_start: 07:00 must be after lden_day_start 07:00",
		{7 * h, 19 * h, 18 * h}:                "lden_night_start: 18:00 must be after lden_evening_start 19:00",
		{0, 19 * h, 24 * h}:                    "lden_night_start: the night must not be empty",
		{-h, 19 * h, 23 * h}:                   "lden_day_start: -1h0m0s is not within",
	} {
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v.Validate() = %v, want %q", p, err, want)
		}
	}
	if _, err := NewAggregator(Config{Site: "s", Device: "d", Zone: Zone1, Lden: LdenPeriods{7 * h, 19 * h, 19 * h}}); err == nil ||
		!strings.Contains(err.Error(), "lden_night_start:") {
		t.Errorf("NewAggregator(evening = night) = %v, want an lden_night_start error", err)
	}
}
