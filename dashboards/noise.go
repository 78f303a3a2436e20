package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// dBA is Grafana's custom unit for A-weighted levels.
const dBA = "suffix: dB(A)"

// energyNote is said in the description of every panel showing levels: the dashboards
// never average decibels themselves.
const energyNote = " Every level here is computed by envgate as an energy mean, 10·lg(mean(10^(L/10))) (docs/data-model.md); the panel draws the stored values and never averages decibels itself, so zooming out shows more points, not arithmetic means of dB."

// nightRegion shades the GB 3096 night period (default 22:00–06:00, docs/config.md
// noise.night_start, day_start) on every time-series panel: Grafana's built-in time
// regions, in the dashboard's time zone.
func nightRegion() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().Name("Night (22:00–06:00)").Enable(true).
		Datasource(common.DataSourceRef{Type: ptr("datasource"), Uid: ptr("grafana")}).
		IconColor("rgba(0, 30, 120, 0.15)").
		Target(variants.NewUnknownDataqueryBuilderFromObject(variants.UnknownDataquery{"queryType": "timeRegions", "refId": "Anno", "timeRegion": map[string]any{
			"from": "22:00", "fromDayOfWeek": nil, "to": "06:00", "toDayOfWeek": nil, "timezone": "browser"}}))
}

// levelPanel is a time series of levels in dB(A) with the applicable limit drawn as a
// stepped line.
func levelPanel(title, desc string, targets ...string) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Description(desc+energyNote).Unit(dBA).Decimals(1).
		Height(9).Span(12).ShowPoints(common.VisibilityModeNever).
		InsertNulls(common.BoolOrFloat64{Float64: ptr(5400000.0)}).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)).
		OverrideByRegexp(".*limit.*", []dashboard.DynamicConfigValue{
			{Id: "custom.lineInterpolation", Value: "stepAfter"},
			{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
			{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}},
		})
	for i := 0; i+1 < len(targets); i += 2 {
		p.WithTarget(influx(string(rune('A'+i/2)), targets[i], targets[i+1]))
	}
	return p
}

// limitQuery is the limit that applied to each hour: laeq_1h − exceedance_1h
// (docs/data-model.md: exceedance_1h is laeq_1h minus the limit of the period the
// hour starts in), so the line steps between the day and the night limit.
const limitQuery = `SELECT "laeq_1h" - "exceedance_1h" AS "limit" FROM "noise" WHERE ` + where + ` GROUP BY "site", "device"`

func noise() (dashboard.Dashboard, error) {
	d := newDashboard("envgate-noise", "envgate · Noise",
		"GB 3096 noise per site: LAeq against the limit that applies, statistical levels, Lmax and night bursts, and every day and night period against its limit. The night period is shaded.",
		"now-24h").Refresh("5m").Variables(influxVariables("noise")).Annotation(nightRegion())

	d.WithRow(dashboard.NewRowBuilder("Levels against the limit"))
	d.WithPanel(levelPanel("LAeq, 1 min",
		"Energy-averaged LAeq of each clock minute (laeq_1m), and the limit of the period each hour starts in (dashed).",
		"$tag_site $tag_device LAeq,1min", `SELECT "laeq_1m" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`,
		"$tag_site limit", limitQuery))
	d.WithPanel(levelPanel("LAeq, 1 h",
		"Energy-averaged LAeq of each clock hour (laeq_1h), and the limit of the period the hour starts in (dashed). Hours with a valid-data rate below min_valid_hour carry laeq_1h_quality = 1 (suspect).",
		"$tag_site $tag_device LAeq,1h", `SELECT "laeq_1h" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`,
		"$tag_site limit", limitQuery))
	d.WithPanel(levelPanel("L10, L50, L90 (1 h)",
		"Statistical levels of each clock hour: the level exceeded by 10, 50 and 90 % of the samples (nearest rank, docs/standards.md §1.4).",
		"$tag_site $col", `SELECT "l10_1h" AS "L10", "l50_1h" AS "L50", "l90_1h" AS "L90" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`))
	d.WithPanel(levelPanel("Lmax and night bursts",
		"Largest sample of each hour (lmax_1h) and, as red points, the peak of each night burst (lmax_burst: samples more than burst_margin above the night limit), stamped at the peak.",
		"$tag_site Lmax,1h", `SELECT "lmax_1h" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`,
		"$tag_site night burst", `SELECT "lmax_burst" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`).
		OverrideByRegexp(".*night burst", []dashboard.DynamicConfigValue{
			{Id: "custom.drawStyle", Value: "points"},
			{Id: "custom.pointSize", Value: 9},
			{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "dark-red"}},
		}))

	d.WithRow(dashboard.NewRowBuilder("Day and night periods"))
	d.WithPanel(levelPanel("Ld and Ln",
		"LAeq of each day period (ld, default 06–22) and night period (ln, 22–06, labelled by its start), and the limit of the period (dashed).",
		"$tag_site Ld", `SELECT "ld" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`,
		"$tag_site Ln", `SELECT "ln" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`,
		"$tag_site day limit", `SELECT "ld" - "exceedance_day" AS "day limit" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`,
		"$tag_site night limit", `SELECT "ln" - "exceedance_night" AS "night limit" FROM "noise" WHERE `+where+` GROUP BY "site", "device"`).
		DrawStyle(common.GraphDrawStyleBars).InsertNulls(common.BoolOrFloat64{Bool: ptr(false)}))
	d.WithPanel(ExceedanceTable())
	return d.Build()
}

// ExceedanceTable is the noise panel listing every day and night period: site, period,
// level, limit and dB over (negative when under), the periods over their limit first.
func ExceedanceTable() *table.PanelBuilder {
	over := []dashboard.DynamicConfigValue{
		{Id: "custom.cellOptions", Value: map[string]any{"type": "color-background"}},
		{Id: "thresholds", Value: map[string]any{"mode": "absolute", "steps": []map[string]any{
			{"value": nil, "color": "green"}, {"value": 0.001, "color": "red"}}}},
	}
	period := []dashboard.DynamicConfigValue{
		{Id: "mappings", Value: []dashboard.ValueMapping{valueMap("1", "day", "transparent", "2", "night", "transparent")}},
		{Id: "unit", Value: "none"},
		{Id: "decimals", Value: 0},
	}
	return table.NewPanelBuilder().Title("Exceedances by period").
		Description("Every day period (ld) and night period (ln) of the range: the period's LAeq, the limit that applied (the zone's, or the site's day_limit/night_limit), and dB over the limit (exceedance_day, exceedance_night; negative when under, red when over). The GB 3096 compliance table."+energyNote).
		Height(10).Span(12).Unit(dBA).Decimals(1).
		WithTarget(influxTable("A", `SELECT "ld" AS "level", "ld" - "exceedance_day" AS "limit", "exceedance_day" AS "dB over", "ld" * 0 + 1 AS "period" FROM "noise" WHERE `+where+` GROUP BY "site"`)).
		WithTarget(influxTable("B", `SELECT "ln" AS "level", "ln" - "exceedance_night" AS "limit", "exceedance_night" AS "dB over", "ln" * 0 + 2 AS "period" FROM "noise" WHERE `+where+` GROUP BY "site"`)).
		WithTransformation(transform("merge", map[string]any{})).
		WithTransformation(transform("organize", map[string]any{
			"indexByName":  map[string]int{"site": 0, "period": 1, "Time": 2, "level": 3, "limit": 4, "dB over": 5},
			"renameByName": map[string]string{"Time": "period start"},
		})).
		WithTransformation(transform("sortBy", map[string]any{"sort": []map[string]any{{"field": "dB over", "desc": true}}})).
		OverrideByName("dB over", over).
		OverrideByName("period", period).
		OverrideByName("site", []dashboard.DynamicConfigValue{{Id: "unit", Value: "string"}})
}
