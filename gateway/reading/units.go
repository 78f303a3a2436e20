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
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// ErrUnknownUnit means the unit cannot be converted for that quantity.
var ErrUnknownUnit = errors.New("unknown unit")

// linear is v·scale + offset, exact fractions.
type linear struct{ scale, offset *big.Rat }

// lin parses a linear conversion from decimal or fraction constants ("5/9", "-273.15").
func lin(scale, offset string) linear {
	s, ok1 := new(big.Rat).SetString(scale)
	o, ok2 := new(big.Rat).SetString(offset)
	if !ok1 || !ok2 {
		panic("reading: bad conversion constant " + scale + ", " + offset)
	}
	return linear{s, o}
}

// waterConc are the water quantities that are mass concentrations in mg/L.
var waterConc = []string{"do", "codmn", "cod", "bod5", "nh3n", "tp", "tn"}

// Gas conversion at the GB 3095-2026 reference state (docs/standards.md §2.1, §2.10).
const (
	gasConstant = 8.314462618 // J/(mol·K)
	refKelvin   = 298.15
	refPascal   = 101325
	// MolarVolume is the volume of a mole of ideal gas at the reference state, L/mol
	// (24.4654).
	MolarVolume = gasConstant * refKelvin / refPascal * 1000
)

// molarMass is g/mol of the gases of the catalog.
var molarMass = map[string]string{"so2": "64.07", "no2": "46.01", "o3": "48.00", "co": "28.01"}

// table holds the conversions by quantity, then normalised unit.
var table = func() map[string]map[string]linear {
	t := map[string]map[string]linear{}
	mass := func() map[string]linear { return map[string]linear{"ug/m3": lin("1", "0"), "mg/m3": lin("1000", "0")} }
	for _, q := range []string{"pm1", "pm25", "pm10"} {
		t[q] = mass()
	}
	// ug/m3 per ppb = M/Vm = M·p/(R·T·1000), exactly.
	vm := lin("8.314462618", "0").scale
	vm.Mul(vm, lin("298.15", "0").scale)
	vm.Quo(vm, big.NewRat(refPascal, 1000))
	for q, m := range molarMass {
		ppb := lin(m, "0").scale
		ppb.Quo(ppb, vm)
		u := mass()
		for _, a := range []string{"ppb", "ppbv", "nmol/mol"} {
			u[a] = linear{ppb, new(big.Rat)}
		}
		for _, a := range []string{"ppm", "ppmv", "umol/mol"} {
			u[a] = linear{new(big.Rat).Mul(ppb, big.NewRat(1000, 1)), new(big.Rat)}
		}
		if q == "co" { // catalog unit mg/m3
			for k, v := range u {
				u[k] = linear{new(big.Rat).Quo(v.scale, big.NewRat(1000, 1)), v.offset}
			}
		}
		t[q] = u
	}
	for _, q := range waterConc {
		t[q] = map[string]linear{"mg/l": lin("1", "0"), "g/m3": lin("1", "0"), "ppm": lin("1", "0"), "ug/l": lin("0.001", "0"), "ppb": lin("0.001", "0")}
	}
	for _, q := range []string{"temperature", "water_temperature"} {
		f := lin("5/9", "-160/9") // (F−32)·5/9
		t[q] = map[string]linear{"degc": lin("1", "0"), "°c": lin("1", "0"), "c": lin("1", "0"), "degf": f, "°f": f, "f": f, "k": lin("1", "-273.15")}
	}
	t["conductivity"] = map[string]linear{"us/cm": lin("1", "0"), "ms/cm": lin("1000", "0")}
	t["pressure"] = map[string]linear{"hpa": lin("1", "0"), "mbar": lin("1", "0"), "kpa": lin("10", "0"), "pa": lin("0.01", "0")}
	t["wind_speed"] = map[string]linear{"m/s": lin("1", "0"), "km/h": lin("5/18", "0"), "kn": lin("0.514444", "0"), "knots": lin("0.514444", "0")}
	t["rain_rate"] = map[string]linear{"mm/h": lin("1", "0"), "mm/min": lin("60", "0")}
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
// and the catalog unit return v unchanged. The conversion is exact: v is taken as its
// shortest decimal (what the device sent), the factors as fractions of their decimal
// constants, and the result is the float64 nearest to the exact value; so 0.0049 mg/m3
// is 4.9 ug/m3 and not 4.8999999999999995, and a gas in ppb converted here and back to
// ppb by gateway/air (Reference.Express) is the value the device sent. An unknown quantity or unit, or a result
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
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s: %v %s is not a finite number", quantity, v, unit)
	}
	x, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'g', -1, 64))
	if !ok { // cannot happen for a finite float64
		x.SetFloat64(v)
	}
	x.Mul(x, conv.scale).Add(x, conv.offset)
	out, _ := x.Float64()
	if math.IsInf(out, 0) {
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
