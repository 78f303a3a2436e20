package reading

// Unit conversion at the edge: a sensor's value is converted once to the catalog unit
// of its quantity, so InfluxDB and every derivation only ever see the units of
// docs/data-model.md. Drivers call Convert for a point or field configured with a
// `unit:` other than the catalog's.
//
// Conversions (docs/data-model.md, "Units at the edge"):
//
//	air      ug/m3 ↔ mg/m3 ×1000; gases ppb/ppm at the GB 3095-2026 reference state
//	         (298.15 K, 1013.25 hPa): ug/m3 = ppb·M/Vm
//	water    mg/L = g/m3 = ppm (dilute water, density 1 kg/L); ug/L = ppb ÷1000
//	         (concentrations; not ph, conductivity, turbidity, water_temperature)
//	temp     degF → (F−32)·5/9; K → K − 273.15 (temperature, water_temperature)
//	others   conductivity mS/cm ×1000; pressure kPa ×10, Pa ÷100;
//	         wind_speed km/h ÷3.6, knots ×0.514444; rain_rate mm/min ×60
//
// Units are matched after trimming, case-insensitively, with µ, μ and u alike and
// m³/m^3 for m3. gateway/air keeps its own converter for a configurable reference state
// (the US tables in ppb); a test there keeps the two in step.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrUnknownUnit means the unit cannot be converted for that quantity.
var ErrUnknownUnit = errors.New("unknown unit")

// linear is v·scale + offset.
type linear struct{ scale, offset float64 }

// waterConc are the water quantities that are mass concentrations in mg/L.
var waterConc = []string{"do", "codmn", "cod", "bod5", "nh3n", "tp", "tn"}

// Gas conversion at the GB 3095-2026 reference state (standards §2.1, §2.10).
const (
	gasConstant = 8.314462618 // J/(mol·K)
	refKelvin   = 298.15
	refPascal   = 101325
	// MolarVolume is the volume of a mole of ideal gas at the reference state, L/mol
	// (24.4654).
	MolarVolume = gasConstant * refKelvin / refPascal * 1000
)

// molarMass is g/mol of the gases of the catalog.
var molarMass = map[string]float64{"so2": 64.07, "no2": 46.01, "o3": 48.00, "co": 28.01}

// table holds the conversions by quantity, then normalised unit.
var table = func() map[string]map[string]linear {
	t := map[string]map[string]linear{}
	for _, q := range []string{"pm1", "pm25", "pm10"} {
		t[q] = map[string]linear{"ug/m3": {1, 0}, "mg/m3": {1000, 0}}
	}
	for q, m := range molarMass {
		ppb := m / MolarVolume // ug/m3 per ppb
		u := map[string]linear{"ug/m3": {1, 0}, "mg/m3": {1000, 0}}
		for _, a := range []string{"ppb", "ppbv", "nmol/mol"} {
			u[a] = linear{ppb, 0}
		}
		for _, a := range []string{"ppm", "ppmv", "umol/mol"} {
			u[a] = linear{1000 * ppb, 0}
		}
		if q == "co" { // catalog unit mg/m3
			for k, v := range u {
				u[k] = linear{v.scale / 1000, 0}
			}
		}
		t[q] = u
	}
	for _, q := range waterConc {
		t[q] = map[string]linear{"mg/l": {1, 0}, "g/m3": {1, 0}, "ppm": {1, 0}, "ug/l": {0.001, 0}, "ppb": {0.001, 0}}
	}
	for _, q := range []string{"temperature", "water_temperature"} {
		t[q] = map[string]linear{"degc": {1, 0}, "°c": {1, 0}, "c": {1, 0}, "degf": {5.0 / 9, -32 * 5.0 / 9}, "°f": {5.0 / 9, -32 * 5.0 / 9}, "f": {5.0 / 9, -32 * 5.0 / 9}, "k": {1, -273.15}}
	}
	t["conductivity"] = map[string]linear{"us/cm": {1, 0}, "ms/cm": {1000, 0}}
	t["pressure"] = map[string]linear{"hpa": {1, 0}, "mbar": {1, 0}, "kpa": {10, 0}, "pa": {0.01, 0}}
	t["wind_speed"] = map[string]linear{"m/s": {1, 0}, "km/h": {1 / 3.6, 0}, "kn": {0.514444, 0}, "knots": {0.514444, 0}}
	t["rain_rate"] = map[string]linear{"mm/h": {1, 0}, "mm/min": {60, 0}}
	return t
}()

// normalise folds the spellings of one unit together.
func normalise(u string) string {
	u = strings.ToLower(strings.TrimSpace(u))
	u = strings.NewReplacer("µ", "u", "μ", "u", "m³", "m3", "m^3", "m3", " ", "").Replace(u)
	return u
}

// CheckUnit reports whether unit can be converted to the catalog unit of quantity. The
// empty unit means the catalog unit.
func CheckUnit(quantity, unit string) error {
	_, err := Convert(quantity, 1, unit)
	return err
}

// Convert returns v, measured in unit, in the catalog unit of quantity. The empty unit
// and the catalog unit return v unchanged. An unknown quantity or unit, or a result
// that is not finite, is an error naming them.
func Convert(quantity string, v float64, unit string) (float64, error) {
	q, ok := Lookup(quantity)
	if !ok {
		return 0, fmt.Errorf("unknown quantity %q", quantity)
	}
	if unit == "" || unit == q.Unit {
		return v, nil
	}
	conv, ok := table[quantity][normalise(unit)]
	if !ok {
		return 0, fmt.Errorf("%w %q for %s: want %s", ErrUnknownUnit, unit, quantity, known(quantity, q.Unit))
	}
	out := v*conv.scale + conv.offset
	if math.IsNaN(out) || math.IsInf(out, 0) {
		return 0, fmt.Errorf("%s: %v %s is not a finite number", quantity, v, unit)
	}
	return out, nil
}

// known lists the units Convert takes for quantity.
func known(quantity, catalog string) string {
	us := []string{catalog}
	for u := range table[quantity] {
		if normalise(catalog) != u {
			us = append(us, u)
		}
	}
	slices.Sort(us[1:])
	return strings.Join(us, ", ")
}
