package dashboards

import (
	"strconv"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The colours of the GB 3838 classes. Red for 劣V is the bulletins' usage
// (docs/standards.md §3.2, [S]); the others follow the common blue–green–yellow–orange
// order of the published water maps, not confirmed by a standard ([U]).
const (
	classI    = "#1F78C8"
	classII   = "#56A0E8"
	classIII  = "#37872D"
	classIV   = "#F2CC0C"
	classV    = "#FF780A"
	classVbad = "#C4162A"
)

// classMapping names the class numbers 1–6 (docs/data-model.md).
func classMapping() dashboard.ValueMapping {
	return valueMap("1", "I", classI, "2", "II", classII, "3", "III", classIII,
		"4", "IV", classIV, "5", "V", classV, "6", "劣V", classVbad)
}

// waterParam is a parameter with its GB 3838-2002 Table 1 limits for classes I–V of a
// river (docs/standards.md §3.1).
type waterParam struct {
	field, title, unit string
	limits             [5]float64
	higherBetter       bool // DO: a class is met at or above its limit
}

var waterParams = []waterParam{
	{"do", "Dissolved oxygen", "mg/L", [5]float64{7.5, 6, 5, 3, 2}, true},
	{"codmn", "Permanganate index CODMn", "mg/L", [5]float64{2, 4, 6, 10, 15}, false},
	{"nh3n", "Ammonia nitrogen NH3-N", "mg/L", [5]float64{0.15, 0.5, 1.0, 1.5, 2.0}, false},
	{"tp", "Total phosphorus TP (river limits)", "mg/L", [5]float64{0.02, 0.1, 0.2, 0.3, 0.4}, false},
	{"cod", "COD (dichromate)", "mg/L", [5]float64{15, 15, 20, 30, 40}, false},
	{"bod5", "BOD5", "mg/L", [5]float64{3, 3, 4, 6, 10}, false},
}

// classBands colours a parameter's value by the class it meets. Grafana colours a value
// from a step on (≥); for the ≤ limits a value exactly at a limit is drawn in the
// next class's colour, while the classification (class_<param>) counts it in the
// better one.
func (p waterParam) classBands() *dashboard.ThresholdsConfigBuilder {
	colors := []string{classI, classII, classIII, classIV, classV, classVbad}
	if p.higherBetter {
		steps := []step{base(classVbad)}
		for i := 4; i >= 0; i-- {
			steps = append(steps, at(p.limits[i], colors[i]))
		}
		return thresholds(steps...)
	}
	steps := []step{base(classI)}
	for i, l := range p.limits {
		if i > 0 && l == p.limits[i-1] {
			continue // COD, BOD5: classes I and II share a limit
		}
		steps = append(steps, at(l, colors[i+1]))
	}
	return thresholds(steps...)
}

func water() (dashboard.Dashboard, error) {
	d := newDashboard("envgate-water", "envgate · Water",
		"GB 3838-2002 class of each section over time, each parameter's window mean against its class limits, and target misses.",
		"now-7d").Refresh("5m").Variables(influxVariables("water"))

	d.WithPanel(statetimeline.NewPanelBuilder().Title("Section class").
		Description("Class of each section per evaluation window (class: the worst evaluated parameter, single-factor rule, docs/standards.md §3.2). I–V, 劣V worse than V. A window missing a required parameter is stored as suspect (class_quality = 1): its class is a lower bound.").
		Height(7).Span(16).ShowValue(common.VisibilityModeAlways).MergeValues(true).
		Mappings([]dashboard.ValueMapping{classMapping()}).
		WithTarget(influx("A", "$tag_site", `SELECT "class" FROM "water" WHERE `+whereSite+` GROUP BY "site"`)))
	d.WithPanel(timeseries.NewPanelBuilder().Title("Parameters worse than the target").
		Description("Evaluated parameters worse than the section's target class in each window (target_missed); 0 means the section met its target.").
		Height(7).Span(8).Min(0).Decimals(0).DrawStyle(common.GraphDrawStyleBars).FillOpacity(70).
		Thresholds(thresholds(base("green"), at(1, "red"))).ColorScheme(thresholdColors()).
		WithTarget(influx("A", "$tag_site missed", `SELECT "target_missed" FROM "water" WHERE `+whereSite+` GROUP BY "site"`)))

	d.WithRow(dashboard.NewRowBuilder("Parameters against their class limits"))
	for _, p := range waterParams {
		d.WithPanel(timeseries.NewPanelBuilder().Title(p.title).
			Description("Window mean (" + p.field + "_mean) per section, the background coloured by the class each level meets (GB 3838-2002 Table 1, docs/standards.md §3.1): " + limitsText(p) + ".").
			Height(7).Span(8).Unit(p.unit).Min(0).Decimals(2).
			Thresholds(p.classBands()).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea)).
			InsertNulls(common.BoolOrFloat64{Float64: ptr(6 * 3600000.0)}).ShowPoints(common.VisibilityModeAlways).PointSize(5).
			WithTarget(influx("A", "$tag_site", `SELECT "`+p.field+`_mean" FROM "water" WHERE `+whereSite+` GROUP BY "site"`)))
	}
	d.WithPanel(timeseries.NewPanelBuilder().Title("pH").
		Description("Window mean (ph_mean): inside 6–9 meets class I, outside it is 劣V (docs/standards.md §3.2).").
		Height(7).Span(8).Unit("none").Decimals(2).
		Thresholds(thresholds(base(classVbad), at(6, classI), at(9.0001, classVbad))).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea)).
		InsertNulls(common.BoolOrFloat64{Float64: ptr(6 * 3600000.0)}).ShowPoints(common.VisibilityModeAlways).PointSize(5).
		WithTarget(influx("A", "$tag_site", `SELECT "ph_mean" FROM "water" WHERE `+whereSite+` GROUP BY "site"`)))

	d.WithRow(dashboard.NewRowBuilder("Probe readings"))
	d.WithPanel(timeseries.NewPanelBuilder().Title("Probe readings").
		Description("The probes' own readings, arithmetic means per display interval ($__interval; concentrations, not levels, so an arithmetic mean is right), per device.").
		Height(8).Span(24).Decimals(2).ShowPoints(common.VisibilityModeNever).
		WithTarget(influx("A", "$tag_site $tag_device $col",
			`SELECT mean("do") AS "do", mean("codmn") AS "codmn", mean("nh3n") AS "nh3n", mean("tp") AS "tp" FROM "water" WHERE `+where+` GROUP BY time($__interval), "site", "device" fill(null)`)))
	return d.Build()
}

// limitsText lists a parameter's class limits.
func limitsText(p waterParam) string {
	names := []string{"I", "II", "III", "IV", "V"}
	var b strings.Builder
	op := "≤ "
	if p.higherBetter {
		op = "≥ "
	}
	for i, l := range p.limits {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(names[i] + " " + op + trimFloat(l))
	}
	b.WriteString(" " + p.unit)
	return b.String()
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
