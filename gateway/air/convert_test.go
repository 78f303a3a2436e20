package air

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/envgate/envgate/gateway/reading"
)

func TestConvert(t *testing.T) {
	vm := GasConstant * 298.15 / 101325 * 1000
	if math.Abs(vm-24.4654) > 1e-4 || math.Abs(Reference{}.MolarVolume()-vm) > 1e-12 {
		t.Fatalf("molar volume %v, want 24.4654 L/mol", Reference{}.MolarVolume())
	}
	for _, c := range []struct {
		q    string
		v    float64
		unit string
		want float64
	}{
		{"pm25", 35, "ug/m3", 35},
		{"pm25", 35, "µg/m³", 35},
		{"pm25", 35, "μg/m3", 35}, // Greek mu
		{"pm10", 0.15, "mg/m3", 150},
		{"pm1", 2, " UG/M^3 ", 2},
		{"so2", 100, "ppb", 100 * 64.07 / vm}, // 261.9
		{"so2", 0.1, "ppm", 100 * 64.07 / vm},
		{"no2", 1, "nmol/mol", 46.01 / vm},
		{"o3", 1, "ppbv", 48.00 / vm},
		{"o3", 0.2, "mg/m3", 200},
		{"co", 1, "ppm", 28.01 / vm}, // 1.145 mg/m3
		{"co", 1000, "ppb", 28.01 / vm},
		{"co", 1500, "ug/m3", 1.5},
		{"co", 1.5, "mg/m3", 1.5},
		{"temperature", 21.5, "degC", 21.5}, // other catalog quantities: their own unit only
	} {
		got, err := Convert(c.q, c.v, c.unit)
		if err != nil || math.Abs(got-c.want) > 1e-9*math.Max(1, c.want) {
			t.Errorf("Convert(%s, %v, %q) = %v, %v; want %v", c.q, c.v, c.unit, got, err, c.want)
		}
	}
	// The usual rules of thumb.
	for _, c := range []struct {
		q      string
		factor float64
	}{{"so2", 2.62}, {"no2", 1.88}, {"o3", 1.96}} {
		if got, _ := Convert(c.q, 1, "ppb"); math.Abs(got-c.factor) > 0.005 {
			t.Errorf("Convert(%s, 1 ppb) = %v, want ≈ %v", c.q, got, c.factor)
		}
	}
	if got, _ := Convert("co", 1, "ppm"); math.Abs(got-1.145) > 0.0005 {
		t.Errorf("Convert(co, 1 ppm) = %v, want 1.145", got)
	}
	// Another reference state: 273.15 K (GB 3095-2012 before 2018).
	cold := Reference{Temperature: 273.15}
	if got, _ := cold.Convert("so2", 1, "ppb"); math.Abs(got-64.07/(GasConstant*273.15/101325*1000)) > 1e-12 {
		t.Errorf("Convert at 273.15 K = %v", got)
	}
}

func TestConvertErrors(t *testing.T) {
	for _, c := range []struct {
		q, unit string
		v       float64
		err     error
		text    string
	}{
		{"so2", "ppt", 1, ErrUnknownUnit, `convert so2: unknown unit "ppt" (known: ug/m3, mg/m3, ppb, ppm)`},
		{"pm25", "ppb", 1, ErrUnknownUnit, `convert pm25: unknown unit "ppb" (known: ug/m3, mg/m3)`},
		{"co", "", 1, ErrUnknownUnit, `unknown unit ""`},
		{"temperature", "K", 1, ErrUnknownUnit, `unknown unit "K" (known: degC)`},
		{"benzene", "ug/m3", 1, ErrUnknownQuantity, `convert "benzene": unknown quantity`},
		{"pm25", "ug/m3", math.NaN(), nil, "not a finite number"},
		{"pm25", "mg/m3", math.MaxFloat64, nil, "out of range"},
	} {
		_, err := Convert(c.q, c.v, c.unit)
		if err == nil || (c.err != nil && !errors.Is(err, c.err)) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("Convert(%s, %v, %q) error = %v, want %v containing %q", c.q, c.v, c.unit, err, c.err, c.text)
		}
	}
	if err := (Reference{Temperature: -1, Pressure: math.NaN()}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "temperature: -1") || !strings.Contains(err.Error(), "pressure: NaN") {
		t.Errorf("Reference.Validate(bad) = %v", err)
	}
}

func TestExpress(t *testing.T) {
	var r Reference
	for _, c := range []struct {
		q, unit string
		v       float64
	}{{"so2", "ppb", 261.9}, {"o3", "ppm", 160}, {"co", "ppm", 4}, {"no2", "ppb", 200}, {"pm25", "mg/m3", 75}} {
		x, err := r.Express(c.q, c.v, c.unit)
		back, err2 := r.Convert(c.q, x, c.unit)
		// Express keeps 12 significant digits: back is within half a unit of the 12th.
		if err != nil || err2 != nil || math.Abs(back-c.v) > 5e-12*c.v {
			t.Errorf("Express(%s, %v, %s) = %v, back %v (%v, %v)", c.q, c.v, c.unit, x, back, err, err2)
		}
	}
	// GB 3095 O3 1-h limit 200 µg/m³ is 0.1020 ppm.
	if x, _ := r.Express("o3", 200, "ppm"); math.Abs(x-0.10194) > 1e-5 {
		t.Errorf("Express(o3, 200 ug/m3, ppm) = %v, want 0.1019", x)
	}
}

// reading.Convert (what drivers use at the edge, standard library only) and Convert
// (this package's, with a configurable reference state) agree at the GB 3095-2026
// reference state.
func TestConvertAgreesWithReading(t *testing.T) {
	for _, q := range []string{"so2", "no2", "o3", "co", "pm25", "pm10"} {
		for _, u := range []string{"ug/m3", "mg/m3", "ppb", "ppm", "µg/m³", "PPBV", "umol/mol"} {
			a, aerr := Convert(q, 12.5, u)
			r, rerr := reading.Convert(q, 12.5, u)
			if (aerr == nil) != (rerr == nil) || math.Abs(a-r) > 1e-9*math.Max(1, math.Abs(a)) {
				t.Errorf("%s %q: air %v (%v), reading %v (%v)", q, u, a, aerr, r, rerr)
			}
		}
	}
}
