package water

import (
	"slices"

	"github.com/envgate/envgate/gateway/reading"
)

// aggregated are the parameters the Aggregator averages and classifies: the Table 1
// parameters of the reading catalog (gateway/reading/quantity.go), in Params() order.
// Adding a parameter here (and to the catalog) is all the Aggregator needs: its
// windows, means, classes and section results iterate over this list.
var aggregated = []Param{ParamPH, ParamDO, ParamCODMn, ParamCOD, ParamBOD5, ParamNH3N, ParamTP, ParamTN}

// optional are the aggregated parameters a section does not require unless its
// Config.Required names them: they are averaged, classified and evaluated when a
// section reports them, but a window without them is not suspect. An automatic
// station measures the permanganate index; COD (dichromate) and BOD5 (five days of
// incubation) are laboratory methods that few stations run online (project choice).
var optional = []Param{ParamCOD, ParamBOD5}

// requiredByDefault reports whether p is required when Config.Required is nil: ph,
// do, codmn, nh3n and tp, and tn when it counts in the section class (r normalised).
func requiredByDefault(p Param, r Rules) bool {
	if slices.Contains(optional, p) {
		return false
	}
	return p != ParamTN || r.evaluated(ParamTN)
}

// Takes reports whether the Aggregator uses readings of quantity (ph, do, codmn, cod,
// bod5, nh3n, tp, tn); the site's other water quantities are ignored.
func Takes(quantity string) bool { return aggIndex(quantity) >= 0 }

// aggIndex returns the index of quantity in aggregated, or -1.
func aggIndex(quantity string) int { return slices.Index(aggregated, Param(quantity)) }

// Derived quantities the Aggregator emits, all in the water measurement and stamped
// with the start of their window. Quantities gives their catalog entries, which
// gateway/derive registers (reading.Register).
const (
	QuantityPHMean    = "ph_mean"    // pH: mean of the window
	QuantityDOMean    = "do_mean"    // mg/L: mean dissolved oxygen of the window
	QuantityCODMnMean = "codmn_mean" // mg/L: mean permanganate index of the window
	QuantityCODMean   = "cod_mean"   // mg/L: mean chemical oxygen demand (CODCr) of the window
	QuantityBOD5Mean  = "bod5_mean"  // mg/L: mean five-day biochemical oxygen demand of the window
	QuantityNH3NMean  = "nh3n_mean"  // mg/L: mean ammonia nitrogen of the window
	QuantityTPMean    = "tp_mean"    // mg/L: mean total phosphorus of the window
	QuantityTNMean    = "tn_mean"    // mg/L: mean total nitrogen of the window

	QuantityClassPH    = "class_ph"    // 1–6: GB 3838 class of ph_mean (1 or 6)
	QuantityClassDO    = "class_do"    // 1–6: class of do_mean
	QuantityClassCODMn = "class_codmn" // 1–6: class of codmn_mean
	QuantityClassCOD   = "class_cod"   // 1–6: class of cod_mean (never 2: classes I and II share 15 mg/L)
	QuantityClassBOD5  = "class_bod5"  // 1–6: class of bod5_mean (never 2: classes I and II share 3 mg/L)
	QuantityClassNH3N  = "class_nh3n"  // 1–6: class of nh3n_mean
	QuantityClassTP    = "class_tp"    // 1–6: class of tp_mean, by the water body's TP limits
	QuantityClassTN    = "class_tn"    // 1–6: class of tn_mean; lakes and reservoirs only

	QuantityClass         = "class"          // 1–6: section class, the worst evaluated parameter class
	QuantityTargetClass   = "target_class"   // 1–5: the configured target class
	QuantityTargetMissed  = "target_missed"  // count of evaluated parameters worse than the target
	QuantityWorstParam    = "worst_param"    // Param.Code of the worst evaluated parameter
	QuantityParamsMissing = "params_missing" // count of required parameters without a valid mean
)

// MeanQuantity returns the derived quantity holding the window mean of p ("do_mean"),
// or "" if the Aggregator does not average p.
func MeanQuantity(p Param) string {
	if aggIndex(string(p)) < 0 {
		return ""
	}
	return string(p) + "_mean"
}

// ClassQuantity returns the derived quantity holding the class of p ("class_do"), or
// "" if the Aggregator does not classify p.
func ClassQuantity(p Param) string {
	if aggIndex(string(p)) < 0 {
		return ""
	}
	return "class_" + string(p)
}

// unitCount is the catalog's dimensionless unit, used for classes, counts and codes.
const unitCount = "1"

// maxCode bounds the HJ 212 code numbers of worst_param (21011 is TP's).
const maxCode = 99999

// derived is the catalog entries of the derived quantities, in emission order.
var derived = func() []reading.Quantity {
	var qs []reading.Quantity
	for _, p := range aggregated {
		in, _ := reading.Lookup(string(p))
		qs = append(qs,
			reading.Quantity{Name: MeanQuantity(p), Unit: in.Unit, Domain: reading.Water, Min: in.Min, Max: in.Max,
				Doc: "arithmetic mean of " + in.Doc + " over the section's evaluation window (GB 3838-2002)"},
			reading.Quantity{Name: ClassQuantity(p), Unit: unitCount, Domain: reading.Water, Min: float64(ClassI), Max: float64(ClassWorseThanV),
				Doc: "GB 3838-2002 class of the window mean of " + in.Doc + ": 1-5 = I-V, 6 = worse than V"})
	}
	n := float64(len(aggregated))
	return append(qs,
		reading.Quantity{Name: QuantityClass, Unit: unitCount, Domain: reading.Water, Min: float64(ClassI), Max: float64(ClassWorseThanV),
			Doc: "GB 3838-2002 section class, the worst class of the evaluated parameters: 1-5 = I-V, 6 = worse than V"},
		reading.Quantity{Name: QuantityTargetClass, Unit: unitCount, Domain: reading.Water, Min: float64(ClassI), Max: float64(ClassV),
			Doc: "target class of the section from the water-function zoning: 1-5 = I-V"},
		reading.Quantity{Name: QuantityTargetMissed, Unit: unitCount, Domain: reading.Water, Min: 0, Max: n,
			Doc: "number of evaluated parameters whose class is worse than the target"},
		reading.Quantity{Name: QuantityWorstParam, Unit: unitCount, Domain: reading.Water, Min: 0, Max: maxCode,
			Doc: "HJ 212-2017 factor code number of the worst evaluated parameter, e.g. 1009 = w01009 dissolved oxygen"},
		reading.Quantity{Name: QuantityParamsMissing, Unit: unitCount, Domain: reading.Water, Min: 0, Max: n,
			Doc: "number of required parameters without a valid mean in the window"},
	)
}()

var derivedByName = func() map[string]reading.Quantity {
	m := make(map[string]reading.Quantity, len(derived))
	for _, q := range derived {
		m[q.Name] = q
	}
	return m
}()

// Quantities returns the catalog entries of the quantities the Aggregator derives, for
// the integrator to add to gateway/reading. Means keep their input's unit and range.
func Quantities() []reading.Quantity { return slices.Clone(derived) }
