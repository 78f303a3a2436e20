package air

import (
	"math"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// constantDay feeds one sample of quantity q every cfg.Sample (default 1 min) through
// day0 with value v in unit (the reading as a driver would hand it over when conv is
// false, or converted first with reading.Convert, as the Modbus and MQTT drivers and
// replay do, when conv is true), then ends the day. It returns what was derived.
func constantDay(t *testing.T, a *Aggregator, q string, v float64, unit string, conv bool) derivedSet {
	t.Helper()
	r := raw(day0, q, v)
	r.Unit = unit
	if conv {
		c, err := reading.Convert(q, v, unit)
		if err != nil {
			t.Fatalf("reading.Convert(%s, %v, %s): %v", q, v, unit, err)
		}
		r = raw(day0, q, c)
	}
	step := a.Config().Sample
	var out []reading.Reading
	for at := day0; at.Before(day0.Add(24 * time.Hour)); at = at.Add(step) {
		r.Time = at.UTC()
		out = append(out, a.Add(r)...)
	}
	out = append(out, a.Tick(a.FlushTime(day0))...)
	if l := a.Now(day0); l.Rejected != 0 || l.Late != 0 {
		t.Fatalf("%s %v %s: %d rejected, %d late", q, v, unit, l.Rejected, l.Late)
	}
	set := derivedSet{}
	for _, r := range out {
		set[key(r.Quantity, r.Time)] = r
	}
	return set
}

// exactly checks one derived reading's value for equality (no tolerance).
func (s derivedSet) exactly(t *testing.T, quantity string, at time.Time, want float64) {
	t.Helper()
	r, ok := s[key(quantity, at)]
	if !ok {
		t.Errorf("no %s for %v", quantity, at)
		return
	}
	if r.Value != want {
		t.Errorf("%s@%v = %v, want exactly %v", quantity, at.Format("15:04"), r.Value, want)
	}
}

// Issue 11, defect 1: a day of constant CO 4.45 mg/m³ has the daily mean 4.45 exactly,
// which HJ 633-2026 rounds by GB/T 8170 to 4.4 (a 5 with nothing after it: keep the
// even digit), so IAQI = 100 + (150−100)/(14−4)·(4.4−4) = 102 exactly (ceiling 102).
// A plain float sum of the 1440 samples gave 4.450000000000002 → 4.5 → 102.5 → 103.
// Samples every 1 s, 1 min, 5 min and 1 h (the old sums drifted up or down by the count).
func TestExactDailyMeanCOTie(t *testing.T) {
	for _, step := range samplings {
		a := newAgg(t, func(c *Config) { c.Method.Plan = []Pollutant{CO}; c.Sample = step })
		set := constantDay(t, a, "co", 4.45, "mg/m3", false)
		set.exactly(t, QuantityCODaily, day0, 4.45)
		set.exactly(t, QuantityCOHourly, day0.Add(13*time.Hour), 4.45)
		set.exactly(t, QuantityIAQICODaily, day0, 102)
		set.exactly(t, QuantityAQIDaily, day0, 102)
		// The hourly report rates the 1-h mean with the 1-h column: 4.4 → 50·4.4/5 = 44.
		set.exactly(t, QuantityIAQICOHourly, day0.Add(13*time.Hour), 44)
	}
}

// samplings are the sample intervals of the regression tests.
var samplings = []time.Duration{time.Second, time.Minute, 5 * time.Minute, time.Hour}

// Issue 11, defect 1: a day of constant PM2.5 9.1 µg/m³ has the daily mean 9.1; the US
// method truncates it to one decimal, 9.1, which is in the 9.1–35.4 row: sub-index 51
// exactly (the row's low end), "Moderate". A float mean 9.099999999999998 truncated
// to 9.0 gave 50 "Good". The NowCast of twelve hours of 9.1 is 9.1 too: 51.
func TestExactDailyMeanPM25US(t *testing.T) {
	for _, step := range samplings {
		a := newAgg(t, func(c *Config) {
			c.Method = Method{Edition: USEPA2024, Plan: []Pollutant{PM25}}
			c.Sample = step
		})
		set := constantDay(t, a, "pm25", 9.1, "ug/m3", false)
		set.exactly(t, QuantityPM25Daily, day0, 9.1)
		set.exactly(t, QuantityIAQIPM25Daily, day0, 51)
		set.exactly(t, QuantityAQIDaily, day0, 51)
		set.exactly(t, QuantityLevelDaily, day0, 2)
		set.exactly(t, QuantityPM25NowCast, day0.Add(23*time.Hour), 9.1)
		set.exactly(t, QuantityIAQIPM25Hourly, day0.Add(23*time.Hour), 51)
	}
}

// Issue 11, defect 1: SO2 of 200 ppb (a Modbus point with `unit: ppb`, converted at the
// edge to 200·64.07/24.4654… µg/m³) must reach the US table as 200 ppb exactly:
// (200−186)·(200−151)/(304−186) + 151 = 151 + 686/118 = 156.81 → 157. The old inverse
// factor gave 199.99999999999997 → truncated 199 → 156.40 → 156. Both the driver path
// (reading.Convert, as live and replay do) and a reading handed over in ppb are checked.
func TestExactGasRoundTripUS(t *testing.T) {
	for _, conv := range []bool{true, false} {
		a := newAgg(t, func(c *Config) {
			c.Method = Method{Edition: USEPA2024, Plan: []Pollutant{SO2}}
			c.Sample = 10 * time.Minute
		})
		set := constantDay(t, a, "so2", 200, "ppb", conv)
		for h := range 24 {
			set.exactly(t, QuantityIAQISO2Hourly, day0.Add(time.Duration(h)*time.Hour), 157)
		}
		set.exactly(t, QuantityIAQISO2Daily, day0, 157)
	}
	// And the conversion on its own: 200 ppb there and back is 200.
	ug, err := reading.Convert("so2", 200, "ppb")
	if err != nil {
		t.Fatal(err)
	}
	if back, err := (Reference{}).Express("so2", ug, "ppb"); err != nil || back != 200 {
		t.Errorf("Express(so2, %v ug/m3, ppb) = %v, %v; want exactly 200", ug, back, err)
	}
}

// The exact mean keeps MeanDigits (15) significant digits, rounded by GB/T 8170.
func TestExactSumMean(t *testing.T) {
	for _, c := range []struct {
		values []float64
		want   float64
	}{
		{[]float64{4.45, 4.45, 4.45}, 4.45},
		{[]float64{0.1, 0.2}, 0.15},                                             // 0.3/2; float (0.1+0.2)/2 = 0.15000000000000002
		{[]float64{1, 2, 2}, 1.66666666666667},                                  // 5/3 to 15 digits
		{[]float64{2, 2, 1}, 1.66666666666667},                                  // order does not matter
		{[]float64{1e-5, 3e-5}, 2e-5},                                           // small
		{[]float64{-4.45, -4.45}, -4.45},                                        // negative
		{[]float64{9.1, 9.1, 9.1, 9.1, 9.1, 9.1}, 9.1},                          // float sum/6 = 9.099999999999998
		{[]float64{1.00000000000001, 1.00000000000002}, 1.00000000000002},       // …015: half, odd 1 → 2
		{[]float64{1.00000000000002, 1.00000000000003}, 1.00000000000002},       // …025: half, even 2 stays
		{[]float64{999.999999999999, 999.999999999999, 1000}, 999.999999999999}, // 2999.999999999998/3 = 999.9999999999993 → 15 digits
		{[]float64{0, 0}, 0},
	} {
		var s exactSum
		for _, v := range c.values {
			s.add(v)
		}
		if got := s.mean(); got != c.want {
			t.Errorf("mean%v = %v, want %v", c.values, got, c.want)
		}
	}
	var s exactSum
	if !math.IsNaN(s.mean()) {
		t.Errorf("mean of nothing = %v, want NaN", s.mean())
	}
	s.add(1)
	s.add(math.Inf(1))
	if !math.IsInf(s.mean(), 1) {
		t.Errorf("mean(1, +Inf) = %v, want +Inf", s.mean())
	}
}
