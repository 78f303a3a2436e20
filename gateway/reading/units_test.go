package reading

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestConvert(t *testing.T) {
	for _, c := range []struct {
		quantity, unit string
		v, want        float64
	}{
		{"pm25", "", 35, 35},
		{"pm25", "ug/m3", 35, 35},
		{"pm25", "mg/m3", 0.035, 35},
		{"co", "ug/m3", 1500, 1.5},
		{"so2", "ppb", 10, 26.188}, // 10·64.07/24.4654 at the GB 3095-2026 reference state
		{"do", "mg/L", 6.5, 6.5},
		{"do", "g/m3", 6.5, 6.5},
		{"tp", "ug/L", 80, 0.08},
		{"nh3n", "PPB", 400, 0.4},
		{"temperature", "degF", 212, 100},
		{"water_temperature", "K", 273.15, 0},
		{"conductivity", "mS/cm", 1.2, 1200},
		{"pressure", "kPa", 101.325, 1013.25},
		{"pressure", "Pa", 101325, 1013.25},
		{"wind_speed", "km/h", 36, 10},
		{"rain_rate", "mm/min", 0.5, 30},
	} {
		got, err := Convert(c.quantity, c.v, c.unit)
		if err != nil || math.Abs(got-c.want) > 1e-6*math.Max(1, c.want) {
			t.Errorf("Convert(%s, %v, %q) = %v, %v; want %v", c.quantity, c.v, c.unit, got, err, c.want)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	for _, c := range []struct{ quantity, unit, want string }{
		{"la", "dB", `unknown unit "dB" for la: want dB(A)`},
		{"ph", "mg/L", `unknown unit "mg/L" for ph: want pH`},
		{"pm25", "ppb", `unknown unit "ppb" for pm25: want ug/m3, mg/m3`}, // a particle has no molar mass
		{"do", "%", `unknown unit "%" for do: want mg/L, g/m3, ppb, ppm, ug/l`},
		{"nope", "", `unknown quantity "nope"`},
	} {
		_, err := Convert(c.quantity, 1, c.unit)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Convert(%s, %q) error = %v, want prefix %q", c.quantity, c.unit, err, c.want)
		}
		if c.quantity != "nope" && !errors.Is(err, ErrUnknownUnit) {
			t.Errorf("Convert(%s, %q) error %v does not wrap ErrUnknownUnit", c.quantity, c.unit, err)
		}
	}
	if _, err := Convert("pressure", math.Inf(1), "kPa"); err == nil {
		t.Error("an infinite value converted")
	}
}

func FuzzConvert(f *testing.F) {
	f.Add("so2", 10.0, "ppb")
	f.Add("do", 6.5, "ug/L")
	f.Add("temperature", -40.0, "°F")
	f.Add("pm25", math.NaN(), "mg/m³")
	f.Fuzz(func(t *testing.T, quantity string, v float64, unit string) {
		out, err := Convert(quantity, v, unit)
		if err != nil {
			return
		}
		if _, ok := Lookup(quantity); !ok {
			t.Fatalf("converted an unknown quantity %q", quantity)
		}
		if unit != "" && !math.IsNaN(v) && (math.IsNaN(out) || math.IsInf(out, 0)) && !math.IsInf(v, 0) {
			t.Fatalf("Convert(%q, %v, %q) = %v", quantity, v, unit, out)
		}
	})
}
