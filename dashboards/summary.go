package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// goodShareQuery is the share of good days per site over the panel's range: the mean
// of the daily good_day flag (1 or 0), in percent. Summed over a month it is HJ 663's
// 优良天数比例 of the site: good days over days with a valid daily AQI.
const goodShareQuery = `SELECT mean("good_day") * 100 AS "good-day share" FROM "air" WHERE ` + whereSite + ` GROUP BY "site"`

// Titles of the summary panels whose numbers the verification test checks.
const (
	TitleGoodMonth    = "Good-day share, this month"
	TitleGoodYear     = "Good-day share, this year"
	TitleAQILevels    = "Days by AQI level"
	TitleQuietNoise   = "Quiet-district noise compliance"
	TitleWaterTargets = "Water sections against their target class"
	TitleOpenAlerts   = "Open alerts"
)

func goodShare(title, timeFrom, desc string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(desc).TimeFrom(timeFrom).
		Height(6).Span(6).Unit("percent").Decimals(1).Min(0).Max(100).
		Thresholds(thresholds(base("red"), at(80, "orange"), at(90, "green"))).ColorScheme(thresholdColors()).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
		WithTarget(influx("A", "$tag_site", goodShareQuery))
}

func summary() (dashboard.Dashboard, error) {
	vars := append(influxVariables(""), promVariable("quiet_site", "Quiet-district site",
		`label_values(envgate_noise_site_info{quiet_district="true"}, site)`))
	d := newDashboard("envgate-summary", "envgate · District summary",
		"What the district reports every month: the share of good-air days and the days by AQI level, whether each quiet-district site met its day and night limits, how many water sections met their target class, and the alerts open now.",
		"now/M").Refresh("15m").Variables(vars)

	d.WithRow(dashboard.NewRowBuilder("Air"))
	d.WithPanel(goodShare(TitleGoodMonth, "now/M",
		"Per site, the share of this month's days with a valid daily AQI that were good (AQI ≤ 100, good_day = 1), in percent: HJ 663's good-day rate (优良天数比例) so far this month. The month's closing figure is also stored as good_share_1mo when the month ends."))
	d.WithPanel(goodShare(TitleGoodYear, "now/y",
		"Per site, the share of good days (AQI ≤ 100) among this year's days with a valid daily AQI, in percent. The closing figure is stored as good_share_1y on 31 December."))
	d.WithPanel(barchart.NewPanelBuilder().Title(TitleAQILevels).
		Description("Site-days of the dashboard's range by the level of their daily AQI (aqi_level_1d), in the official level colours (docs/standards.md §2.5).").
		Height(6).Span(12).XField("level").ColorByField("level").ShowValue(common.VisibilityModeAlways).
		Mappings([]dashboard.ValueMapping{aqiLevelMapping()}).Decimals(0).
		WithTarget(influxTable("A", `SELECT "aqi_level_1d" AS "level", "aqi_1d" AS "days" FROM "air" WHERE `+whereSite)).
		WithTransformation(transform("groupBy", map[string]any{"fields": map[string]any{
			"level": map[string]any{"aggregations": []string{}, "operation": "groupby"},
			"days":  map[string]any{"aggregations": []string{"count"}, "operation": "aggregate"},
		}})).
		WithTransformation(transform("sortBy", map[string]any{"sort": []map[string]any{{"field": "level"}}})).
		WithTransformation(transform("organize", map[string]any{"renameByName": map[string]string{"days (count)": "days"}})).
		// A bar chart's x axis takes strings; the mapping still names and colours "1"…"6".
		WithTransformation(transform("convertFieldType", map[string]any{"conversions": []map[string]any{
			{"targetField": "level", "destinationType": "string"}}})))

	d.WithRow(dashboard.NewRowBuilder("Noise and water"))
	d.WithPanel(table.NewPanelBuilder().Title(TitleQuietNoise).
		Description("Per quiet-district site (envgate_noise_site_info{quiet_district=\"true\"}), the day periods (ld) and night periods (ln) of the range and the worst excess of a period's LAeq over its limit (exceedance_day, exceedance_night). The site complied when both are 0 or less (green); red when a period was over. The period levels are energy means computed by envgate; nothing is averaged here.").
		Height(8).Span(12).Decimals(1).
		WithTarget(influxTable("A", `SELECT count("ld") AS "day periods", max("exceedance_day") AS "worst day, dB over", count("ln") AS "night periods", max("exceedance_night") AS "worst night, dB over" FROM "noise" WHERE $timeFilter AND "gateway" =~ /^$gateway$/ AND "site" =~ /^$quiet_site$/ GROUP BY "site"`)).
		WithTransformation(transform("organize", map[string]any{"excludeByName": map[string]bool{"Time": true}})).
		OverrideByRegexp("worst .*", []dashboard.DynamicConfigValue{
			{Id: "unit", Value: "dB"},
			{Id: "custom.cellOptions", Value: map[string]any{"type": "color-background"}},
			{Id: "thresholds", Value: map[string]any{"mode": "absolute", "steps": []map[string]any{
				{"value": nil, "color": "green"}, {"value": 0.001, "color": "red"}}}},
		}).
		OverrideByRegexp(".* periods", []dashboard.DynamicConfigValue{{Id: "decimals", Value: 0}}))
	d.WithPanel(table.NewPanelBuilder().Title(TitleWaterTargets).
		Description("Per section, the class of its latest window in the range, its target class, and the evaluated parameters worse than the target (target_missed): 0 means the section meets its target.").
		Height(8).Span(12).Decimals(0).
		WithTarget(influxTable("A", `SELECT last("class") AS "class", last("target_class") AS "target", last("target_missed") AS "parameters over target" FROM "water" WHERE `+whereSite+` GROUP BY "site"`)).
		WithTransformation(transform("organize", map[string]any{"excludeByName": map[string]bool{"Time": true}, "renameByName": map[string]string{"site": "section"}})).
		OverrideByRegexp("^(class|target)$", []dashboard.DynamicConfigValue{
			{Id: "mappings", Value: []dashboard.ValueMapping{classMapping()}},
			{Id: "custom.cellOptions", Value: map[string]any{"type": "color-text"}},
		}).
		OverrideByName("parameters over target", []dashboard.DynamicConfigValue{
			{Id: "mappings", Value: []dashboard.ValueMapping{valueMap("0", "meets target", "green"), rangeMap(1, 100, "misses target", "red")}},
			{Id: "custom.cellOptions", Value: map[string]any{"type": "color-background"}},
		}))

	d.WithRow(dashboard.NewRowBuilder("Alerts"))
	d.WithPanel(stat.NewPanelBuilder().Title(TitleOpenAlerts).
		Description("Alerts firing now in Prometheus (ALERTS{alertstate=\"firing\"}), from the shipped rules of alerts/ (docs/alerts.md).").
		Height(7).Span(4).Decimals(0).
		Thresholds(thresholds(base("green"), at(1, "red"))).ColorScheme(thresholdColors()).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		WithTarget(promInstant("A", `count(ALERTS{alertstate="firing"}) or vector(0)`)))
	d.WithPanel(table.NewPanelBuilder().Title("Open alerts by name").
		Description("Each firing alert with its labels: site, device, severity. docs/alerts.md has the runbook of each.").
		Height(7).Span(20).
		WithTarget(promInstant("A", `ALERTS{alertstate="firing"}`)).
		WithTransformation(transform("organize", map[string]any{"excludeByName": map[string]bool{"Time": true, "Value": true, "__name__": true, "alertstate": true}})))
	return d.Build()
}
