package dashboards

// What Grafana does to a query before it sends it, as far as these dashboards use it.
// The rules are written out in dashboards/README.md ("How the queries are verified");
// this file implements them for the verification test.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// board is the part of a dashboard's JSON the verification reads.
type board struct {
	UID   string `json:"uid"`
	Title string `json:"title"`
	Time  struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type          string   `json:"type"`
	Title         string   `json:"title"`
	TimeFrom      string   `json:"timeFrom"`
	Interval      string   `json:"interval"`
	MaxDataPoints float64  `json:"maxDataPoints"`
	Targets       []target `json:"targets"`
	Panels        []panel  `json:"panels"` // a row's panels
}

type target struct {
	RefID      string `json:"refId"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	// InfluxDB
	Query        string `json:"query"`
	RawQuery     bool   `json:"rawQuery"`
	ResultFormat string `json:"resultFormat"`
	Alias        string `json:"alias"`
	// Prometheus
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Instant      bool   `json:"instant"`
	Range        bool   `json:"range"`
	Format       string `json:"format"`
}

type variable struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Query      any    `json:"query"` // a string, or {query: ...} for Prometheus
	Multi      bool   `json:"multi"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
}

func (v variable) text() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

// loadBoards reads the committed dashboards.
func loadBoards(t *testing.T) map[string]board {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("grafana", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in grafana/ (%v)", err)
	}
	out := map[string]board{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b board
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// flatPanels returns the panels with queries, rows opened.
func flatPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		if p.Type == "row" {
			out = append(out, flatPanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// datasourceIntervals reads jsonData.timeInterval of each provisioned datasource by
// uid: Grafana's lower limit of $__interval and the scrape interval of $__rate_interval.
func datasourceIntervals(t *testing.T) map[string]time.Duration {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("provisioning", "datasources", "envgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			JSONData struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Duration{}
	for _, d := range f.Datasources {
		iv, err := time.ParseDuration(d.JSONData.TimeInterval)
		if err != nil {
			t.Fatalf("datasource %s: timeInterval %q: %v", d.UID, d.JSONData.TimeInterval, err)
		}
		out[d.UID] = iv
	}
	return out
}

// parseGrafanaTime evaluates Grafana's relative time syntax ("now", "now-24h",
// "now/M", "now-1d/d") against now, rounding in loc: "/u" rounds down to the start of
// the unit for a from, up to its end for a to. Units: s m h d w M y.
func parseGrafanaTime(expr string, now time.Time, loc *time.Location, isTo bool) (time.Time, error) {
	if !strings.HasPrefix(expr, "now") {
		return time.Time{}, fmt.Errorf("time %q: only relative times are used", expr)
	}
	t := now.In(loc)
	rest := expr[3:]
	re := regexp.MustCompile(`^([+-])(\d+)([smhdwMy])|^/([smhdwMy])`)
	for rest != "" {
		m := re.FindStringSubmatch(rest)
		if m == nil {
			return time.Time{}, fmt.Errorf("time %q: cannot parse %q", expr, rest)
		}
		rest = rest[len(m[0]):]
		if m[4] != "" {
			t = roundTo(t, m[4], isTo)
			continue
		}
		n, _ := strconv.Atoi(m[2])
		if m[1] == "-" {
			n = -n
		}
		switch m[3] {
		case "s":
			t = t.Add(time.Duration(n) * time.Second)
		case "m":
			t = t.Add(time.Duration(n) * time.Minute)
		case "h":
			t = t.Add(time.Duration(n) * time.Hour)
		case "d":
			t = t.AddDate(0, 0, n)
		case "w":
			t = t.AddDate(0, 0, 7*n)
		case "M":
			t = t.AddDate(0, n, 0)
		case "y":
			t = t.AddDate(n, 0, 0)
		}
	}
	return t, nil
}

func roundTo(t time.Time, unit string, end bool) time.Time {
	y, mo, d := t.Date()
	loc := t.Location()
	var start, next time.Time
	switch unit {
	case "s":
		start = t.Truncate(time.Second)
		next = start.Add(time.Second)
	case "m":
		start = time.Date(y, mo, d, t.Hour(), t.Minute(), 0, 0, loc)
		next = start.Add(time.Minute)
	case "h":
		start = time.Date(y, mo, d, t.Hour(), 0, 0, 0, loc)
		next = start.Add(time.Hour)
	case "d":
		start = time.Date(y, mo, d, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 0, 1)
	case "w": // weeks start on Monday (ISO), Grafana's default outside the US locale
		start = time.Date(y, mo, d, 0, 0, 0, 0, loc)
		start = start.AddDate(0, 0, -((int(start.Weekday()) + 6) % 7))
		next = start.AddDate(0, 0, 7)
	case "M":
		start = time.Date(y, mo, 1, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 1, 0)
	case "y":
		start = time.Date(y, 1, 1, 0, 0, 0, 0, loc)
		next = start.AddDate(1, 0, 0)
	}
	if end {
		return next.Add(-time.Millisecond)
	}
	return start
}

// roundInterval is Grafana's rounding of a computed interval to a readable one.
func roundInterval(d time.Duration) time.Duration {
	ms := d.Milliseconds()
	table := []struct{ below, to int64 }{
		{15, 10}, {35, 20}, {75, 50}, {150, 100}, {350, 200}, {750, 500},
		{1500, 1000}, {3500, 2000}, {7500, 5000}, {12500, 10000}, {17500, 15000},
		{25000, 20000}, {45000, 30000}, {90000, 60000}, {210000, 120000},
		{450000, 300000}, {750000, 600000}, {1050000, 900000}, {1500000, 1200000},
		{2700000, 1800000}, {5400000, 3600000}, {9000000, 7200000},
		{16200000, 10800000}, {32400000, 21600000}, {86400000, 43200000},
		{604800000, 86400000}, {1814400000, 604800000}, {3628800000, 2592000000},
	}
	for _, r := range table {
		if ms < r.below {
			return time.Duration(r.to) * time.Millisecond
		}
	}
	return 365 * 24 * time.Hour
}

// interval is $__interval: the range over the panel's max data points (1000 when the
// panel sets none: Grafana uses the panel's width in pixels), raised to the lower limit
// (the panel's interval, else the datasource's timeInterval), then rounded.
func interval(from, to time.Time, p panel, dsMin time.Duration) time.Duration {
	points := p.MaxDataPoints
	if points <= 0 {
		points = 1000
	}
	low := dsMin
	if p.Interval != "" {
		if d, err := time.ParseDuration(p.Interval); err == nil {
			low = d
		}
	}
	iv := time.Duration(float64(to.Sub(from)) / points)
	if iv < low {
		iv = low
	}
	return roundInterval(iv)
}

// grafanaDuration writes a duration as Grafana's interval text: 10m, 20s, 1h, 1d, 500ms.
func grafanaDuration(d time.Duration) string {
	ms := d.Milliseconds()
	for _, u := range []struct {
		ms   int64
		name string
	}{{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}} {
		if ms%u.ms == 0 && ms >= u.ms {
			return strconv.FormatInt(ms/u.ms, 10) + u.name
		}
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

// influxRegexEscape escapes a value for an InfluxQL regex literal, as Grafana's
// InfluxDB datasource does for a multi-value or All variable.
func influxRegexEscape(s string) string {
	return regexp.MustCompile(`[\\^$*+?.()|{}\[\]/]`).ReplaceAllString(s, `\$0`)
}

// promRegexEscape escapes a value for a regex inside a PromQL string literal: the
// regex backslash is itself escaped.
func promRegexEscape(s string) string {
	return regexp.MustCompile(`[\\^$*+?.()|{}\[\]]`).ReplaceAllString(s, `\\$0`)
}

// formatVariable renders a multi-value or All variable's values for a query of the
// given datasource type: (a|b) of escaped values, one escaped value alone.
func formatVariable(dsType string, values []string) string {
	esc := influxRegexEscape
	if dsType == "prometheus" {
		esc = promRegexEscape
	}
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = esc(v)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, "|") + ")"
}

// interpolate replaces $name and ${name} of the dashboard's variables, longest names
// first, formatted for dsType.
func interpolate(q, dsType string, vars map[string][]string) string {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	// longest first, so that $site does not eat $site_x
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if len(names[j]) > len(names[i]) {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	for _, n := range names {
		val := formatVariable(dsType, vars[n])
		q = strings.ReplaceAll(q, "${"+n+"}", val)
		q = regexp.MustCompile(`\$`+regexp.QuoteMeta(n)+`\b`).ReplaceAllLiteralString(q, val)
	}
	return q
}

// influxMacros replaces the InfluxDB datasource's macros: $timeFilter and
// $__timeFilter with the absolute range in milliseconds, $__interval and
// $__interval_ms.
func influxMacros(q string, from, to time.Time, iv time.Duration) string {
	filter := fmt.Sprintf("time >= %dms and time <= %dms", from.UnixMilli(), to.UnixMilli())
	r := strings.NewReplacer("$__timeFilter", filter, "$timeFilter", filter,
		"$__interval_ms", strconv.FormatInt(iv.Milliseconds(), 10), "$__interval", grafanaDuration(iv))
	return r.Replace(q)
}

// promMacros replaces the Prometheus datasource's macros: $__interval, $__rate_interval
// = max($__interval + scrape interval, 4 × scrape interval), $__range (whole seconds,
// "86400s"), $__range_s and $__range_ms.
func promMacros(q string, from, to time.Time, iv, scrape time.Duration) string {
	rate := max(iv+scrape, 4*scrape)
	rng := to.Sub(from)
	secs := int64(math.Round(rng.Seconds()))
	r := strings.NewReplacer(
		"$__rate_interval_ms", strconv.FormatInt(rate.Milliseconds(), 10),
		"$__rate_interval", grafanaDuration(rate),
		"$__interval_ms", strconv.FormatInt(iv.Milliseconds(), 10),
		"$__interval", grafanaDuration(iv),
		"$__range_ms", strconv.FormatInt(rng.Milliseconds(), 10),
		"$__range_s", strconv.FormatInt(secs, 10),
		"$__range", strconv.FormatInt(secs, 10)+"s",
	)
	return r.Replace(q)
}

// leftover finds a $ that no rule replaced (outside InfluxQL regex anchors /^...$/).
func leftover(q string) string {
	return regexp.MustCompile(`\$[A-Za-z_{][A-Za-z0-9_]*`).FindString(q)
}

func TestGrafanaTime(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 3, 15, 10, 30, 0, 0, loc)
	check := func(expr string, isTo bool, want time.Time) {
		t.Helper()
		got, err := parseGrafanaTime(expr, now, loc, isTo)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseGrafanaTime(%q, to=%v) = %v, %v; want %v", expr, isTo, got, err, want)
		}
	}
	check("now", false, now)
	check("now-24h", false, now.Add(-24*time.Hour))
	check("now/M", false, time.Date(2026, 3, 1, 0, 0, 0, 0, loc))
	check("now/y", false, time.Date(2026, 1, 1, 0, 0, 0, 0, loc))
	check("now-1d/d", false, time.Date(2026, 3, 14, 0, 0, 0, 0, loc))
	check("now/d", true, time.Date(2026, 3, 15, 23, 59, 59, 999e6, loc))
	for _, c := range []struct {
		in   time.Duration
		want string
	}{{86400 * time.Millisecond, "1m"}, {40 * time.Millisecond, "50ms"}, {21600 * time.Millisecond, "20s"}, {604800 * time.Millisecond, "10m"}, {3 * time.Minute, "2m"}, {6 * time.Minute, "5m"}} {
		if got := grafanaDuration(roundInterval(c.in)); got != c.want {
			t.Errorf("roundInterval(%v) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := formatVariable("influxdb", []string{"a.b", "c"}); got != `(a\.b|c)` {
		t.Errorf("formatVariable influx = %s", got)
	}
	if got := formatVariable("prometheus", []string{"a.b"}); got != `a\\.b` {
		t.Errorf("formatVariable prometheus = %s", got)
	}
	if got := promMacros("rate(x[$__rate_interval]) $__range", now.Add(-time.Hour), now, 5*time.Second, 15*time.Second); got != "rate(x[1m]) 3600s" {
		t.Errorf("promMacros = %s", got)
	}
}
