// Package dashboards builds envgate's Grafana dashboards as code (docs/operations.md,
// "Dashboards"). Generate returns the JSON of every dashboard; `go run ./dashboards/gen`
// writes it to dashboards/grafana/, and the tests check that the committed files are
// what Generate returns and run every query of them against a real InfluxDB and
// Prometheus.
package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// The datasource UIDs the dashboards refer to; provisioning/datasources/envgate.yaml
// creates datasources with these UIDs.
const (
	InfluxUID     = "envgate-influxdb"
	PrometheusUID = "envgate-prometheus"
)

// Dir is where the generated JSON lives, relative to the repository root.
const Dir = "dashboards/grafana"

func ptr[T any](v T) *T { return &v }

var (
	influxDS = common.DataSourceRef{Type: ptr("influxdb"), Uid: ptr(InfluxUID)}
	promDS   = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr(PrometheusUID)}
)

// InfluxQuery is the target of a Grafana InfluxDB panel in raw InfluxQL mode. The SDK has
// no InfluxDB query type, so this implements its Dataquery interface; the JSON fields
// are the ones Grafana's InfluxDB datasource stores for a raw query.
type InfluxQuery struct {
	RefID        string                `json:"refId"`
	Datasource   *common.DataSourceRef `json:"datasource,omitempty"`
	Query        string                `json:"query"`
	RawQuery     bool                  `json:"rawQuery"`
	ResultFormat string                `json:"resultFormat"` // time_series or table
	Alias        string                `json:"alias,omitempty"`
}

// ImplementsDataqueryVariant marks InfluxQuery as a query of the SDK.
func (InfluxQuery) ImplementsDataqueryVariant() {}

// DataqueryType names the datasource type.
func (InfluxQuery) DataqueryType() string { return "influxdb" }

// Equals reports whether other is the same query.
func (q InfluxQuery) Equals(other variants.Dataquery) bool { return reflect.DeepEqual(q, other) }

// Validate checks that the query has a text and a known result format.
func (q InfluxQuery) Validate() error {
	if q.Query == "" {
		return errors.New("influx query: empty")
	}
	if q.ResultFormat != "time_series" && q.ResultFormat != "table" {
		return fmt.Errorf("influx query %q: result format %q", q.Query, q.ResultFormat)
	}
	return nil
}

type queryBuilder struct{ q variants.Dataquery }

func (b queryBuilder) Build() (variants.Dataquery, error) { return b.q, b.q.Validate() }

// influx returns a raw InfluxQL time-series target.
func influx(ref, alias, q string) cog.Builder[variants.Dataquery] {
	return queryBuilder{InfluxQuery{RefID: ref, Datasource: &influxDS, Query: q, RawQuery: true, ResultFormat: "time_series", Alias: alias}}
}

// influxTable returns a raw InfluxQL target in table format.
func influxTable(ref, q string) cog.Builder[variants.Dataquery] {
	return queryBuilder{InfluxQuery{RefID: ref, Datasource: &influxDS, Query: q, RawQuery: true, ResultFormat: "table"}}
}

// prom returns a PromQL range query.
func prom(ref, legend, expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(ref).Datasource(promDS).Expr(expr).LegendFormat(legend).Range()
}

// promInstant returns a PromQL instant query in table format.
func promInstant(ref, expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(ref).Datasource(promDS).Expr(expr).Instant().Format(prometheus.PromQueryFormatTable)
}

// step is one threshold: from value on (nil: from −∞), colour.
type step struct {
	from  *float64
	color string
}

func at(v float64, color string) step { return step{ptr(v), color} }
func base(color string) step          { return step{nil, color} }

func thresholds(steps ...step) *dashboard.ThresholdsConfigBuilder {
	var out []dashboard.Threshold
	for _, s := range steps {
		out = append(out, dashboard.Threshold{Value: s.from, Color: s.color})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(out)
}

// valueMap maps exact values to texts and colours: pairs of value, text, colour.
func valueMap(triples ...string) dashboard.ValueMapping {
	opts := map[string]dashboard.ValueMappingResult{}
	for i := 0; i+2 < len(triples); i += 3 {
		opts[triples[i]] = dashboard.ValueMappingResult{Text: ptr(triples[i+1]), Color: ptr(triples[i+2]), Index: ptr(int32(i / 3))}
	}
	return dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}
}

// rangeMap maps [from, to] to a text and colour.
func rangeMap(from, to float64, text, color string) dashboard.ValueMapping {
	return dashboard.ValueMapping{RangeMap: &dashboard.RangeMap{Type: dashboard.MappingTypeRangeToText,
		Options: dashboard.DashboardRangeMapOptions{From: ptr(from), To: ptr(to), Result: dashboard.ValueMappingResult{Text: ptr(text), Color: ptr(color)}}}}
}

func thresholdColors() *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)
}

func transform(id string, options any) dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: id, Options: options}
}

// Dashboard is one generated dashboard: its file name under Dir and its builder.
type Dashboard struct {
	File  string
	Build func() (dashboard.Dashboard, error)
}

// All lists the dashboards, in the order of docs/operations.md.
func All() []Dashboard {
	return []Dashboard{
		{"envgate-summary.json", summary},
		{"envgate-noise.json", noise},
		{"envgate-air.json", air},
		{"envgate-water.json", water},
		{"envgate-fleet.json", fleet},
	}
}

// Generate returns the JSON of every dashboard by file name, formatted as committed.
func Generate() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, d := range All() {
		b, err := d.Build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.File, err)
		}
		numberPanels(&b)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(b); err != nil {
			return nil, fmt.Errorf("%s: %w", d.File, err)
		}
		out[d.File] = buf.Bytes()
	}
	return out, nil
}

// influxVariables returns the gateway, site and device variables of a dashboard on
// measurement m (all measurements when m is empty): multi-valued, with All.
func influxVariables(m string) []cog.Builder[dashboard.VariableModel] {
	from := ""
	if m != "" {
		from = fmt.Sprintf(`FROM "%s" `, m)
	}
	v := func(name, label, q string) cog.Builder[dashboard.VariableModel] {
		return dashboard.NewQueryVariableBuilder(name).Label(label).Datasource(influxDS).
			Query(dashboard.StringOrMap{String: ptr(q)}).Definition(q).
			Multi(true).IncludeAll(true).Refresh(dashboard.VariableRefreshOnDashboardLoad).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Current(dashboard.VariableOption{Selected: ptr(true), Text: dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
				Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}}})
	}
	return []cog.Builder[dashboard.VariableModel]{
		v("gateway", "Gateway", `SHOW TAG VALUES `+from+`WITH KEY = "gateway"`),
		v("site", "Site", `SHOW TAG VALUES `+from+`WITH KEY = "site" WHERE "gateway" =~ /^$gateway$/`),
		v("device", "Device", `SHOW TAG VALUES `+from+`WITH KEY = "device" WHERE "gateway" =~ /^$gateway$/ AND "site" =~ /^$site$/`),
	}
}

// promVariable returns a multi-valued Prometheus label_values variable with All.
func promVariable(name, label, q string) cog.Builder[dashboard.VariableModel] {
	return dashboard.NewQueryVariableBuilder(name).Label(label).Datasource(promDS).
		Query(dashboard.StringOrMap{Map: map[string]any{"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1}}).
		Definition(q).Multi(true).IncludeAll(true).Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Current(dashboard.VariableOption{Selected: ptr(true), Text: dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}}})
}

// where is the tag filter of every InfluxQL panel query: the time range and the
// dashboard's gateway, site and device variables.
const where = `$timeFilter AND "gateway" =~ /^$gateway$/ AND "site" =~ /^$site$/ AND "device" =~ /^$device$/`

// whereSite leaves the device out, for figures of a site or section (water classes
// carry the device "section").
const whereSite = `$timeFilter AND "gateway" =~ /^$gateway$/ AND "site" =~ /^$site$/`

// newDashboard starts a dashboard with the settings all five share.
func newDashboard(uid, title, desc, from string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).Uid(uid).Description(desc).
		Tags([]string{"envgate"}).Timezone(common.TimeZoneBrowser).Time(from, "now").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboard.NewDashboardLinkBuilder("envgate").Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"envgate"}).AsDropdown(true).IncludeVars(true).KeepTime(true))
}

// numberPanels gives every panel and row a stable id in layout order, so that links to
// a panel (viewPanel=N) survive regeneration.
func numberPanels(d *dashboard.Dashboard) {
	var id uint32
	for _, p := range d.Panels {
		id++
		switch {
		case p.Panel != nil:
			p.Panel.Id = ptr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
			for i := range p.RowPanel.Panels {
				id++
				p.RowPanel.Panels[i].Id = ptr(id)
			}
		}
	}
}
