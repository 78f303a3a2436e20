package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// byGateway puts the box's gateway id (envgate_build_info, docs/metrics.md "Build info")
// on a series and keeps the boxes the gateway variable selects.
func byGateway(expr string) string {
	return `(` + expr + `) * on (instance) group_left (gateway) envgate_build_info{gateway=~"$gateway"}`
}

func fleetSeries(title, desc, unit string, queries ...string) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Description(desc).Unit(unit).Height(8).Span(12).
		ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true))
	for i := 0; i+1 < len(queries); i += 2 {
		p.WithTarget(prom(string(rune('A'+i/2)), queries[i], queries[i+1]))
	}
	return p
}

func fleet() (dashboard.Dashboard, error) {
	d := newDashboard("envgate-fleet", "envgate · Fleet and gateway health",
		"Per box: the durable buffer and what it still owes each InfluxDB sink, forwarder errors and the last successful write, devices up or down, poll latency, data set aside or lost, and the clock. From Prometheus scraping each box's /metrics (docs/metrics.md).",
		"now-6h").Refresh("1m").
		Variables([]cog.Builder[dashboard.VariableModel]{
			promVariable("gateway", "Gateway", `label_values(envgate_build_info, gateway)`),
			promVariable("site", "Site", `label_values(envgate_reading_value, site)`),
			promVariable("device", "Device", `label_values(envgate_device_up, device)`),
		})

	d.WithRow(dashboard.NewRowBuilder("Buffer and forwarders"))
	d.WithPanel(fleetSeries("Buffer size",
		"Bytes in each box's durable buffer (envgate_buffer_bytes) and its bound (envgate_buffer_max_bytes, dashed). It grows while a sink is down and shrinks a segment at a time once it catches up; what the derivations keep is envgate_buffer_kept_bytes.",
		"bytes",
		"{{gateway}} buffer", byGateway(`envgate_buffer_bytes`),
		"{{gateway}} max", byGateway(`envgate_buffer_max_bytes`)).
		OverrideByRegexp(".* max", []dashboard.DynamicConfigValue{{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}}}))
	d.WithPanel(fleetSeries("Oldest unsent reading",
		"Age of the oldest reading each sink has not acknowledged (envgate_sink_oldest_unsent_age_seconds); 0 when caught up. Over 15 minutes (red line) the district's view is behind.",
		"s",
		"{{gateway}} {{sink}}", byGateway(`envgate_sink_oldest_unsent_age_seconds`)).
		Thresholds(thresholds(base("green"), at(900, "red"))).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)))
	d.WithPanel(fleetSeries("Forwarder errors",
		"Failed write attempts per second (rate of envgate_sink_retried_total) and requests the server refused (envgate_sink_rejected_total); each retried write stays in the buffer.",
		"reqps",
		"{{gateway}} {{sink}} retried", byGateway(`rate(envgate_sink_retried_total[$__rate_interval])`),
		"{{gateway}} {{sink}} rejected", byGateway(`rate(envgate_sink_rejected_total[$__rate_interval])`)))
	d.WithPanel(fleetSeries("Since the last successful write",
		"Seconds since each sink last stored a batch (time() − envgate_sink_last_success_timestamp_seconds); sinks that never succeeded since the start are left out.",
		"s",
		"{{gateway}} {{sink}}", byGateway(`time() - (envgate_sink_last_success_timestamp_seconds > 0)`)))

	d.WithRow(dashboard.NewRowBuilder("Devices"))
	d.WithPanel(statetimeline.NewPanelBuilder().Title("Device up").
		Description("1 when the device's last poll succeeded, 0 when it failed (envgate_device_up). The log has one `device down` line with the error.").
		Height(8).Span(12).ShowValue(common.VisibilityModeNever).MergeValues(true).
		Mappings([]dashboard.ValueMapping{valueMap("1", "up", "green", "0", "down", "red")}).
		WithTarget(prom("A", "{{gateway}} {{device}}", byGateway(`envgate_device_up{device=~"$device"}`))))
	d.WithPanel(fleetSeries("Poll latency, 95th percentile",
		"95th percentile of each device's poll duration (envgate_device_poll_duration_seconds). Close to the device's timeout it will start failing.",
		"s",
		"{{gateway}} {{device}}", byGateway(`histogram_quantile(0.95, sum by (instance, device, le) (rate(envgate_device_poll_duration_seconds_bucket{device=~"$device"}[$__rate_interval])))`)))
	d.WithPanel(table.NewPanelBuilder().Title("Latest readings").
		Description("The latest value of every channel (envgate_reading_value) and how old it is (envgate_reading_timestamp_seconds), per site and device.").
		Height(9).Span(24).
		WithTarget(promInstant("A", byGateway(`envgate_reading_value{site=~"$site", device=~"$device"}`))).
		WithTransformation(transform("organize", map[string]any{"excludeByName": map[string]bool{"Time": true, "__name__": true, "job": true}})))

	d.WithRow(dashboard.NewRowBuilder("Data set aside or lost, clock"))
	d.WithPanel(table.NewPanelBuilder().Title("Dead letters and lost readings in the range").
		Description("Over the dashboard's range: readings set aside in each sink's dead-letter file because InfluxDB rejected them (envgate_sink_dead_lettered_total), and readings dropped by the buffer's bounds (envgate_buffer_dropped_total). Both should be 0.").
		Height(8).Span(12).Decimals(0).
		WithTarget(promInstant("A", byGateway(`increase(envgate_sink_dead_lettered_total[$__range])`))).
		WithTarget(promInstant("B", byGateway(`increase(envgate_buffer_dropped_total[$__range])`))).
		WithTransformation(transform("merge", map[string]any{})).
		WithTransformation(transform("organize", map[string]any{"excludeByName": map[string]bool{"Time": true, "job": true},
			"renameByName": map[string]string{"Value #A": "dead-lettered", "Value #B": "dropped by the buffer"}})).
		Thresholds(thresholds(base("green"), at(1, "red"))))
	d.WithPanel(stat.NewPanelBuilder().Title("Clock synchronised").
		Description("1 when the kernel reports the box's clock synchronised (envgate_clock_synchronized): readings are stamped and day/night limits applied with this clock.").
		Height(8).Span(6).
		Mappings([]dashboard.ValueMapping{valueMap("1", "synchronised", "green", "0", "NOT synchronised", "red")}).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		WithTarget(promInstant("A", byGateway(`envgate_clock_synchronized`)).LegendFormat("{{gateway}}")))
	d.WithPanel(fleetSeries("Clock maximum error",
		"The kernel's estimate of the clock's maximum error (envgate_clock_max_error_seconds).",
		"s",
		"{{gateway}}", byGateway(`envgate_clock_max_error_seconds`)).Span(6))
	return d.Build()
}
