package reading

import (
	"errors"
	"math"
	"math/big"
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

// Conversions are exact on the decimal the device sent (issue 11): each result is the
// float64 nearest the exact value, worked by hand.
func TestConvertExact(t *testing.T) {
	for _, c := range []struct {
		q, unit string
		v, want float64
	}{
		{"pm25", "mg/m3", 0.0049, 4.9},   // 0.0049·1000; float ×1000 gave 4.8999999999999995
		{"pm10", "mg/m3", 0.0082, 8.2},   // float gave 8.200000000000001
		{"co", "ug/m3", 4450, 4.45},      // 4450/1000
		{"temperature", "degF", 77, 25},  // (77−32)·5/9 = 45·5/9 = 25
		{"temperature", "K", 300.15, 27}, // 300.15 − 273.15
		{"wind_speed", "km/h", 36, 10},   // 36·5/18
		{"tp", "ug/L", 200, 0.2},         // 200/1000
		// 1 ppm CO = 28.01·101325/(8.314462618·298.15·1000) mg/m3
		// = 2838113.25/2478967.0295567 = 1.14487… (the float nearest; see below).
	} {
		got, err := Convert(c.q, c.v, c.unit)
		if err != nil || got != c.want {
			t.Errorf("Convert(%s, %v, %s) = %v, %v; want exactly %v", c.q, c.v, c.unit, got, err, c.want)
		}
	}
	// The gas factor is the exact fraction; the result its nearest float64.
	exact := new(big.Rat).SetFrac64(2801*101325, 100)               // 28.01·101325
	exact.Quo(exact, new(big.Rat).SetFrac64(8314462618*29815, 1e8)) // 8.314462618·298.15·1000
	want, _ := exact.Float64()
	if got, err := Convert("co", 1, "ppm"); err != nil || got != want {
		t.Errorf("Convert(co, 1, ppm) = %v, %v; want %v", got, err, want)
	}
}
