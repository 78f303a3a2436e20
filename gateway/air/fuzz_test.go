package air

import (
	"errors"
	"math"
	"testing"

	"github.com/envgate/envgate/gateway/reading"
)

// FuzzConvert: no panic; a result is finite; the catalog unit is the identity; Express
// inverts Convert; the result is linear in the value.
func FuzzConvert(f *testing.F) {
	for _, s := range []struct {
		q    string
		v    float64
		unit string
	}{
		{"so2", 100, "ppb"}, {"co", 1, "ppm"}, {"pm25", 35, "µg/m³"}, {"o3", 0.2, "MG/M3"},
		{"no2", 1e308, "ppm"}, {"pm10", -3, "ug/m3"}, {"co", 5e-324, "ppb"}, {"so2", 1, "ppt"},
		{"", 0, ""}, {"temperature", 20, "degC"}, {"o3", math.Inf(1), "ppb"}, {"pm25", 1, "μg/m^3"},
	} {
		f.Add(s.q, s.v, s.unit)
	}
	f.Fuzz(func(t *testing.T, q string, v float64, unit string) {
		out, err := Convert(q, v, unit)
		if err != nil {
			return
		}
		if math.IsNaN(out) || math.IsInf(out, 0) {
			t.Fatalf("Convert(%q, %v, %q) = %v, want finite", q, v, unit, out)
		}
		if normUnit(unit) == normUnit(canonical(q)) && out != v {
			t.Fatalf("Convert(%q, %v, catalog unit %q) = %v, want identity", q, v, unit, out)
		}
		back, err := Reference{}.Express(q, out, unit)
		if err == nil && math.Abs(back-v) > 1e-9*math.Abs(v)+1e-300 {
			t.Fatalf("Express(Convert(%q, %v, %q)) = %v", q, v, unit, back)
		}
		if math.Abs(v) < 1e300 {
			double, err := Convert(q, 2*v, unit)
			if err != nil || math.Abs(double-2*out) > 1e-9*math.Abs(out) {
				t.Fatalf("Convert(%q, 2·%v, %q) = %v, %v; want %v", q, v, unit, double, err, 2*out)
			}
		}
	})
}

// canonical returns the catalog unit of q, or a unit nobody writes for an unknown q.
func canonical(q string) string {
	if c, ok := reading.Lookup(q); ok {
		return c.Unit
	}
	return "\x00"
}

// FuzzIAQI: no panic, and IAQI is non-decreasing in the concentration wherever both
// values are rated; an index is never negative; a UseError is only above the table.
func FuzzIAQI(f *testing.F) {
	for _, s := range []struct {
		e, p, avg uint8
		a, b      float64
	}{
		{0, uint8(PM25), uint8(Avg24h), 34.5, 35.5}, {1, uint8(SO2), uint8(Avg1h), 800, 800.01},
		{2, uint8(O3), uint8(Avg8h), 0.054, 0.0549}, {2, uint8(SO2), uint8(Avg24h), 304, 305},
		{0, uint8(CO), uint8(Avg1h), 2.25, 2.35}, {2, uint8(PM25), uint8(AvgNowCast), 1e308, 5e-324},
		{0, uint8(O3), uint8(Avg8h), 800, 801}, {1, uint8(PM10), uint8(Avg1h), 1, 2}, {9, 9, 9, 1, 2},
		{2, uint8(O3), uint8(Avg1h), 0.1249, 0.125}, {0, uint8(NO2), uint8(Avg24h), math.NaN(), -1},
	} {
		f.Add(s.e, s.p, s.avg, s.a, s.b)
	}
	f.Fuzz(func(t *testing.T, e, p, avg uint8, a, b float64) {
		m := Method{Edition: Edition(e % 4), AboveTop: AboveTop(e / 4 % 2)}
		if a > b {
			a, b = b, a
		}
		ia, errA := m.IAQI(Pollutant(p%7), Averaging(avg%5), a)
		ib, errB := m.IAQI(Pollutant(p%7), Averaging(avg%5), b)
		if errA == nil && errB == nil && ia.Value > ib.Value {
			t.Fatalf("%s %s/%s: IAQI(%v) = %d > IAQI(%v) = %d", m.Edition, Pollutant(p%7), Averaging(avg%5), a, ia.Value, b, ib.Value)
		}
		if (errA == nil && ia.Value < 0) || (errB == nil && ib.Value < 0) {
			t.Fatalf("negative index: %+v %+v", ia, ib)
		}
		var use *UseError
		if errors.As(errA, &use) && errB == nil {
			t.Fatalf("%v sent to %s but larger %v rated %d", a, use.Use, b, ib.Value)
		}
		if errA == nil && (ia.Value > 500) != (ia.BeyondScale && ia.Value > 500) {
			t.Fatalf("index %d above 500 without BeyondScale", ia.Value)
		}
	})
}
