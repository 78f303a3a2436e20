package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The official AQI level colours of HJ 633 (docs/standards.md §2.5).
const (
	aqiGreen  = "#00E400"
	aqiYellow = "#FFFF00"
	aqiOrange = "#FF7E00"
	aqiRed    = "#FF0000"
	aqiPurple = "#99004C"
	aqiMaroon = "#7E0023"
)

// aqiThresholds colours an AQI by its level. The levels end at 50, 100, 150, 200 and
// 300 inclusive (docs/standards.md §2.5) and an AQI is an integer, so each colour
// starts one above: 50 is still green, 51 yellow.
func aqiThresholds() *dashboard.ThresholdsConfigBuilder {
	return thresholds(base(aqiGreen), at(51, aqiYellow), at(101, aqiOrange), at(151, aqiRed), at(201, aqiPurple), at(301, aqiMaroon))
}

// aqiLevelMapping names the levels 1–6 (aqi_level_1h, aqi_level_1d) with their colours.
func aqiLevelMapping() dashboard.ValueMapping {
	return valueMap(
		"1", "1 Excellent (优)", aqiGreen,
		"2", "2 Good (良)", aqiYellow,
		"3", "3 Lightly polluted", aqiOrange,
		"4", "4 Moderately polluted", aqiRed,
		"5", "5 Heavily polluted", aqiPurple,
		"6", "6 Severely polluted", aqiMaroon)
}

// gapNote says how gaps show.
const gapNote = " A mean or index without enough data (GB 3095-2026 Table 4) is not written, so an invalid hour or day is a gap in the line, never a zero."

func air() (dashboard.Dashboard, error) {
	d := newDashboard("envgate-air", "envgate · Air",
		"AQI with the official level colours, each pollutant, the primary pollutant, data validity and the daily good-day flag (HJ 633, GB 3095).",
		"now-7d").Refresh("5m").Variables(influxVariables("air"))

	d.WithPanel(timeseries.NewPanelBuilder().Title("AQI, hourly").
		Description("Real-time AQI of each clock hour (aqi_1h), coloured by level: 0–50 excellent, 51–100 good, 101–150 lightly, 151–200 moderately, 201–300 heavily, above 300 severely polluted (docs/standards.md §2.5)." + gapNote).
		Height(9).Span(16).Min(0).Decimals(0).Unit("none").
		Thresholds(aqiThresholds()).ColorScheme(thresholdColors()).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeArea)).
		InsertNulls(common.BoolOrFloat64{Float64: ptr(5400000.0)}).ShowPoints(common.VisibilityModeAlways).PointSize(4).
		WithTarget(influx("A", "$tag_site AQI", `SELECT "aqi_1h" FROM "air" WHERE `+where+` GROUP BY "site", "device"`)))
	d.WithPanel(timeseries.NewPanelBuilder().Title("AQI, daily").
		Description("Daily AQI (aqi_1d) of each local day, labelled by its midnight; a good day (优良天) is 100 or less." + gapNote).
		Height(9).Span(8).Min(0).Decimals(0).Unit("none").DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
		Thresholds(aqiThresholds()).ColorScheme(thresholdColors()).
		WithTarget(influx("A", "$tag_site daily AQI", `SELECT "aqi_1d" FROM "air" WHERE `+where+` GROUP BY "site", "device"`)))

	pollutant := func(title, unit, desc string, fields ...string) *timeseries.PanelBuilder {
		q := `SELECT `
		for i, f := range fields {
			if i > 0 {
				q += ", "
			}
			q += `"` + f + `_1h" AS "` + f + `"`
		}
		q += ` FROM "air" WHERE ` + where + ` GROUP BY "site", "device"`
		return timeseries.NewPanelBuilder().Title(title).Description(desc + gapNote).Height(8).Span(8).Unit(unit).Min(0).Decimals(1).
			InsertNulls(common.BoolOrFloat64{Float64: ptr(5400000.0)}).ShowPoints(common.VisibilityModeNever).
			WithTarget(influx("A", "$tag_site $col", q))
	}
	d.WithRow(dashboard.NewRowBuilder("Pollutants, 1-h means"))
	d.WithPanel(pollutant("PM2.5 and PM10", "conμgm3", "Valid 1-h means (pm25_1h, pm10_1h), µg/m³.", "pm25", "pm10"))
	d.WithPanel(pollutant("SO2, NO2 and O3", "conμgm3", "Valid 1-h means (so2_1h, no2_1h, o3_1h), µg/m³ at the GB 3095-2026 reference state.", "so2", "no2", "o3"))
	d.WithPanel(pollutant("CO", "conmgm3", "Valid 1-h means (co_1h), mg/m³.", "co"))

	d.WithRow(dashboard.NewRowBuilder("Primary pollutant, validity, good days"))
	d.WithPanel(statetimeline.NewPanelBuilder().Title("Primary pollutant, hourly").
		Description("Primary pollutant of each hour (primary_1h): the item with the largest IAQI when the AQI is above 50; none when the AQI is 50 or less. Two items tied show as the sum of their codes (docs/data-model.md).").
		Height(6).Span(12).ShowValue(common.VisibilityModeAuto).MergeValues(true).
		Mappings([]dashboard.ValueMapping{valueMap(
			"0", "none (AQI ≤ 50)", "transparent",
			"1", "SO2", "purple", "2", "NO2", "orange", "4", "CO", "brown",
			"8", "O3 1h", "blue", "16", "O3 8h", "dark-blue", "32", "PM10", "yellow", "64", "PM2.5", "red")}).
		WithTarget(influx("A", "$tag_site", `SELECT "primary_1h" FROM "air" WHERE `+where+` GROUP BY "site", "device"`)))
	d.WithPanel(statetimeline.NewPanelBuilder().Title("Good day").
		Description("Daily good-day flag (good_day): 1 when the daily AQI is 100 or less (优良天). A day without a valid daily AQI has no flag.").
		Height(6).Span(12).ShowValue(common.VisibilityModeAuto).
		Mappings([]dashboard.ValueMapping{valueMap("1", "good day", aqiGreen, "0", "not good", aqiOrange)}).
		WithTarget(influx("A", "$tag_site", `SELECT "good_day" FROM "air" WHERE `+where+` GROUP BY "site", "device"`)))
	d.WithPanel(timeseries.NewPanelBuilder().Title("Minutes of PM2.5 data per hour").
		Description("Sampling minutes of each hour (pm25_minutes_1h, always written): below 45 the hour has no valid mean and no AQI (GB 3095-2026 Table 4).").
		Height(6).Span(24).Unit("m").Min(0).Max(60).DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).
		Thresholds(thresholds(base("red"), at(45, "green"))).ColorScheme(thresholdColors()).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
		WithTarget(influx("A", "$tag_site", `SELECT "pm25_minutes_1h" FROM "air" WHERE `+where+` GROUP BY "site", "device"`)))
	return d.Build()
}
