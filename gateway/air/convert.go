package air

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/envgate/envgate/gateway/reading"
)

// Units: the catalog's ASCII spellings and the mixing ratios of the US tables.
const (
	unitUG  = "ug/m3"
	unitMG  = "mg/m3"
	unitPPB = "ppb"
	unitPPM = "ppm"
)

// GasConstant is the molar gas constant R in J/(mol·K) (CODATA 2018, exact).
const GasConstant = 8.314462618

// The reference state of GB 3095-2026 for gases (docs/standards.md §2.1: §3.14/§4.3 [T]).
const (
	DefaultTemperature = 298.15  // K
	DefaultPressure    = 1013.25 // hPa
)

// ErrUnknownUnit means Convert does not know the unit for that quantity.
var ErrUnknownUnit = errors.New("unknown unit")

// ErrUnknownQuantity means the quantity is not in the reading catalog.
var ErrUnknownQuantity = errors.New("unknown quantity")

// Reference is the reference state at which gas mass concentrations are expressed, and
// so the molar volume that converts them to mixing ratios. The zero value is the
// GB 3095-2026 state, 298.15 K and 1013.25 hPa (24.4654 L/mol). It is configurable for
// historical data at another state: GB 3095-2012 before its 2018 amendment used
// 273.15 K for gases.
type Reference struct {
	Temperature float64 // K; 0 selects 298.15
	Pressure    float64 // hPa; 0 selects 1013.25
}

func (r Reference) norm() Reference {
	if r.Temperature == 0 {
		r.Temperature = DefaultTemperature
	}
	if r.Pressure == 0 {
		r.Pressure = DefaultPressure
	}
	return r
}

// Validate reports a temperature or pressure that is not a positive finite number.
func (r Reference) Validate() error {
	r = r.norm()
	var errs []error
	if !(r.Temperature > 0 && r.Temperature < 1000) {
		errs = append(errs, fmt.Errorf("temperature: %v K is not within 0 to 1000 K", r.Temperature))
	}
	if !(r.Pressure > 0 && r.Pressure < 2000) {
		errs = append(errs, fmt.Errorf("pressure: %v hPa is not within 0 to 2000 hPa", r.Pressure))
	}
	return errors.Join(errs...)
}

// MolarVolume returns the volume of one mole of ideal gas at r, in L/mol: R·T/p.
func (r Reference) MolarVolume() float64 {
	r = r.norm()
	return GasConstant * r.Temperature / (r.Pressure * 100) * 1000
}

// Convert converts v from unit to the catalog unit of quantity at the GB 3095-2026
// reference state; see Reference.Convert.
func Convert(quantity string, v float64, unit string) (float64, error) {
	return Reference{}.Convert(quantity, v, unit)
}

// Convert converts v, measured in unit, to the catalog unit of quantity: µg/m³ for
// particulates and gases, mg/m³ for CO. It accepts the catalog unit and, for the air
// quantities, mg/m³ and µg/m³ (µ, μ or u; m3, m³ or m^3; any case), and for gases ppb
// and ppm (also ppbv, ppmv, nmol/mol, umol/mol), converted with the molar mass M
// (SO2 64.07, NO2 46.01, O3 48.00, CO 28.01 g/mol) and r's molar volume Vm:
// µg/m³ = ppb·M/Vm, mg/m³ = ppm·M/Vm. The product is exact (v as its shortest
// decimal, the factor as the fraction of the decimal constants) and the result is the
// float64 nearest to it. Other catalog quantities take only their own unit. An unknown
// unit is an error naming it and the known ones; so are an unknown quantity and a
// value that is not finite (before or after conversion).
func (r Reference) Convert(quantity string, v float64, unit string) (float64, error) {
	f, err := r.factor(quantity, unit)
	if err != nil {
		return 0, err
	}
	if err := finite(quantity, v); err != nil {
		return 0, err
	}
	if f.Cmp(one) == 0 {
		return v, nil
	}
	return inRange(quantity, v, unit, toFloat(new(big.Rat).Mul(decimal(v), f)))
}

// Express is the inverse of Convert: it expresses v, in the catalog unit of quantity,
// in unit (e.g. µg/m³ of SO2 as ppb for the US tables). The quotient is exact and is
// rounded to ConcentrationDigits (12) significant digits, so that Express undoes
// Convert exactly: 200 ppb of SO2 converted to µg/m³ and expressed in ppb again is
// 200, not 199.99999999999997 (which the US method would truncate to 199).
func (r Reference) Express(quantity string, v float64, unit string) (float64, error) {
	f, err := r.factor(quantity, unit)
	if err != nil {
		return 0, err
	}
	if err := finite(quantity, v); err != nil {
		return 0, err
	}
	if f.Cmp(one) == 0 {
		return v, nil
	}
	return inRange(quantity, v, unit, toFloat(roundSig(new(big.Rat).Quo(decimal(v), f), ConcentrationDigits)))
}

var one = big.NewRat(1, 1)

func finite(quantity string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("convert %s: value %v is not a finite number", quantity, v)
	}
	return nil
}

func inRange(quantity string, v float64, unit string, out float64) (float64, error) {
	if math.IsInf(out, 0) {
		return 0, fmt.Errorf("convert %s: %v %s is out of range", quantity, v, unit)
	}
	return out, nil
}

// gasConstant is GasConstant as an exact fraction.
var gasConstant = rat("8.314462618")

// molarVolume returns R·T/p in L/mol as an exact fraction of the decimal constants.
func (r Reference) molarVolume() *big.Rat {
	r = r.norm()
	vm := new(big.Rat).Mul(gasConstant, decimal(r.Temperature))
	vm.Mul(vm, big.NewRat(10, 1)) // J/(mol·hPa) → L/mol: ·1000/100
	return vm.Quo(vm, decimal(r.Pressure))
}

// factor returns what a value in unit is multiplied by to give the catalog unit, as an
// exact fraction (one for the catalog unit, the common case: drivers and replay convert
// at the edge). The result must not be modified.
func (r Reference) factor(quantity, unit string) (*big.Rat, error) {
	q, ok := reading.Lookup(quantity)
	if !ok {
		return nil, fmt.Errorf("convert %q: %w", quantity, ErrUnknownQuantity)
	}
	u := normUnit(unit)
	if u == normUnit(q.Unit) {
		return one, nil
	}
	var gas *big.Rat
	if p, ok := PollutantOf(quantity); ok && pollutantInfo[p].molar > 0 {
		gas = decimal(pollutantInfo[p].molar)
	}
	mass := q.Domain == reading.Air && (q.Unit == unitUG || q.Unit == unitMG)
	known := []string{q.Unit}
	if mass {
		// toUG: the unit in µg/m³; the catalog unit is µg/m³ or mg/m³.
		toUG := map[string]*big.Rat{unitUG: one, unitMG: big.NewRat(1000, 1)}
		known = []string{unitUG, unitMG}
		if gas != nil {
			ugPerPPB := new(big.Rat).Quo(gas, r.molarVolume())
			ugPerPPM := new(big.Rat).Mul(ugPerPPB, big.NewRat(1000, 1))
			for _, alias := range []string{unitPPB, "ppbv", "nmol/mol"} {
				toUG[alias] = ugPerPPB
			}
			for _, alias := range []string{unitPPM, "ppmv", "umol/mol"} {
				toUG[alias] = ugPerPPM
			}
			known = append(known, unitPPB, unitPPM)
		}
		if f, ok := toUG[u]; ok {
			if q.Unit == unitMG {
				f = new(big.Rat).Quo(f, big.NewRat(1000, 1))
			}
			return f, nil
		}
	}
	return nil, fmt.Errorf("convert %s: %w %q (known: %s)", quantity, ErrUnknownUnit, unit, strings.Join(known, ", "))
}

// normUnit folds the spellings of a unit: case, spaces, µ/μ → u, ³/^3 → 3.
func normUnit(u string) string {
	return unitFolder.Replace(strings.ToLower(strings.TrimSpace(u)))
}

var unitFolder = strings.NewReplacer(" ", "", "µ", "u", "μ", "u", "³", "3", "^", "")
