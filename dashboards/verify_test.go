package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// The recorded day's sites (config written by boxConfig).
const (
	quietSite  = "quiet-1" // noise, GB 3096 zone 1 (55/45 dB(A)), quiet district
	airGood    = "air-east"
	airBad     = "air-west"
	riverMeets = "river-a"
	riverMiss  = "river-b"
	gatewayID  = "box-dash"
)

// boxConfig is the configuration of the box, used both by `envgate replay` (the
// recorded day) and by `envgate run` (the live box Prometheus scrapes).
func boxConfig(dir, listen string, inf *testsvc.Influx) string {
	return fmt.Sprintf(`gateway:
  id: %s
  site: %s
  state_dir: %s
  listen: %s
  health_interval: 1s
sinks:
  - name: influx
    influxdb: {url: %s, bucket: %s, flush_interval: 100ms, retry_initial: 100ms, retry_max: 1s}
devices:
  - {name: noise-1, site: %s, interval: 1s, sim: {kind: noise, seed: 1}}
  - {name: air-1, site: %s, interval: 1s, sim: {kind: air, seed: 2}}
  - {name: air-2, site: %s, interval: 1s, sim: {kind: air, seed: 3}}
  - {name: water-1, site: %s, interval: 1s, sim: {kind: water, seed: 4}}
  - {name: water-2, site: %s, interval: 1s, sim: {kind: water, seed: 5}}
noise:
  sites:
    - {device: noise-1, zone: "1", quiet_district: true, sample: 10s}
air:
  sites:
    - {device: air-1, sample: 1m}
    - {device: air-2, sample: 1m}
water:
  sections:
    - {site: %s, waterbody: river, target: III}
    - {site: %s, waterbody: river, target: III}
# The recorded day holds its levels constant for hours, as sums are easy to check
# that way; the screening would flag that as flatlines (docs/data-model.md).
screening: {off: true}
`, gatewayID, quietSite, filepath.Join(dir, "state"), listen, inf.URL, inf.Bucket,
		quietSite, airGood, airBad, riverMeets, riverMiss, riverMeets, riverMiss)
}

// dayLevel is the recorded noise: 60 dB(A) by day (06–22) but 70 in the 12:00 hour,
// 50 at night but 60 in the 23:00 hour, and one 10-s sample of 80 at 23:30, a night
// burst (more than 45 + 15 dB(A)).
func dayLevel(t time.Time) float64 {
	h := t.Hour()
	switch {
	case h == 23 && t.Minute() == 30 && t.Second() == 0:
		return 80
	case h == 12:
		return 70
	case h == 23:
		return 60
	case h >= 6 && h < 22:
		return 60
	}
	return 50
}

// recordedDay writes the CSV of day (a local midnight): noise every 10 s at the quiet
// site from 06:00 (so that no night period of the day before is in it, whatever the
// date), air every minute at two sites (one clean, one with PM2.5 at 100 µg/m³), water
// every 10 minutes at two river sections (one class II, one class IV by its DO;
// docs/standards.md §3.3), with COD and BOD5 at class I.
func recordedDay(t *testing.T, path string, day time.Time) {
	t.Helper()
	var b strings.Builder
	b.WriteString("time,site,device,la,pm25,pm10,so2,no2,co,o3,ph,do,codmn,nh3n,tp,cod,bod5\n")
	ts := func(x time.Time) string { return x.Format(time.RFC3339) }
	end := day.AddDate(0, 0, 1)
	for x := day; x.Before(end); x = x.Add(10 * time.Second) {
		if x.Hour() >= 6 {
			fmt.Fprintf(&b, "%s,%s,noise-1,%g,,,,,,,,,,,,,\n", ts(x), quietSite, dayLevel(x))
		}
		if x.Second() == 0 {
			fmt.Fprintf(&b, "%s,%s,air-1,,20,30,5,20,0.5,60,,,,,,,\n", ts(x), airGood)
			fmt.Fprintf(&b, "%s,%s,air-2,,100,120,5,20,0.5,60,,,,,,,\n", ts(x), airBad)
			if x.Minute()%10 == 0 {
				fmt.Fprintf(&b, "%s,%s,water-1,,,,,,,,7.5,6.5,3.5,0.40,0.08,12,2.5\n", ts(x), riverMeets)
				fmt.Fprintf(&b, "%s,%s,water-2,,,,,,,,7.5,4.0,3.5,0.40,0.08,12,2.5\n", ts(x), riverMiss)
			}
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// energyMean is 10·lg of the mean of 10^(L/10) over the samples.
func energyMean(levels []float64) float64 {
	var s float64
	for _, l := range levels {
		s += math.Pow(10, l/10)
	}
	return 10 * math.Log10(s/float64(len(levels)))
}

// periodLevel is the expected LAeq of the samples of day in [from, to) hours.
func periodLevel(day time.Time, from, to int) float64 {
	var ls []float64
	for x := day.Add(time.Duration(from) * time.Hour); x.Before(day.Add(time.Duration(to) * time.Hour)); x = x.Add(10 * time.Second) {
		ls = append(ls, dayLevel(x))
	}
	return energyMean(ls)
}

// promAPI calls Prometheus's HTTP API and decodes data.
func promAPI(t *testing.T, base, path string, params url.Values, data any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Status != "success" {
		t.Fatalf("prometheus %s %v: %s: %s", path, params, resp.Status, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
}

// promResult is a query result: vector or matrix elements.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	Values [][2]any          `json:"values"`
}

// TestDashboardQueries runs every query of every committed dashboard, with its
// variables and macros substituted as Grafana does (dashboards/README.md), against a
// real InfluxDB 1.8 holding a recorded day (through `envgate replay`) and a real
// Prometheus scraping a live envgate, and checks that each returns data of the shape
// its panel needs; for the summary and the exceedance table it checks the numbers.
func TestDashboardQueries(t *testing.T) {
	inf := testsvc.StartInflux(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "envgate")
	if out, err := exec.Command("go", "build", "-tags="+clock.Tags, "-o", bin, "github.com/envgate/envgate/cmd/envgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	cfg := filepath.Join(dir, "box.yaml")
	if err := os.WriteFile(cfg, []byte(boxConfig(dir, listen, inf)), 0o644); err != nil {
		t.Fatal(err)
	}

	// The recorded day: yesterday on the gateway's clock, local (Asia/Shanghai) midnight
	// to midnight. The InfluxDB panels are evaluated as by a viewer at the last
	// millisecond of that day, so "now-24h", "this month" and "this year" all hold it,
	// whatever the date the test runs.
	loc := reading.ChinaStandardTime
	today := clock.Now().In(loc)
	day := time.Date(today.Year(), today.Month(), today.Day()-1, 0, 0, 0, 0, loc)
	influxNow := day.AddDate(0, 0, 1).Add(-time.Millisecond)
	csv := filepath.Join(dir, "day.csv")
	recordedDay(t, csv, day)
	var lp, stderr bytes.Buffer
	rep := exec.Command(bin, "replay", "-c", cfg, "--raw", csv)
	rep.Stdout, rep.Stderr = &lp, &stderr
	if err := rep.Run(); err != nil {
		t.Fatalf("envgate replay: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(lp.String()), "\n")
	for i := 0; i < len(lines); i += 5000 {
		batch := slices.Clone(lines[i:min(i+5000, len(lines))])
		for k, l := range batch {
			batch[k] = l + "000000" // replay writes milliseconds; /write takes nanoseconds
		}
		inf.Write(t, batch...)
	}
	t.Logf("recorded day %s: %d points", day.Format(time.DateOnly), len(lines))

	// The live box and a Prometheus scraping it every second, with one rule that fires
	// at once so that the alert panels have an alert to show.
	rules := filepath.Join(dir, "test.rules.yml")
	if err := os.WriteFile(rules, []byte(`groups:
  - name: dashboards-test
    rules:
      - alert: DashboardTestAlert
        expr: envgate_build_info > 0
        labels: {severity: info}
        annotations: {summary: "always fires while the box is scraped"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	box := exec.Command(bin, "run", "-c", cfg)
	var boxLog bytes.Buffer
	box.Stderr = &boxLog
	if err := box.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		box.Process.Signal(syscall.SIGTERM)
		box.Wait()
		if t.Failed() {
			t.Logf("envgate log:\n%s", boxLog.String())
		}
	})
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{Targets: []string{listen}, RuleFiles: []string{rules}})
	// Enough history for rate() over $__rate_interval and for every metric: 30 scrapes,
	// a successful sink write, a firing alert.
	prom.WaitQuery(t, `count_over_time(envgate_build_info[5m]) >= 30 and on() envgate_sink_last_success_timestamp_seconds > 0 and on() count(ALERTS{alertstate="firing"}) > 0`,
		2*time.Minute, func(s []testsvc.Sample) bool { return len(s) > 0 })
	promNow := time.Now()

	intervals := datasourceIntervals(t)
	boards := loadBoards(t)
	if len(boards) != len(All()) {
		t.Fatalf("%d dashboards in grafana/, %d generated", len(boards), len(All()))
	}
	results := map[string][]queryResult{} // by panel title
	queries := 0
	for file, b := range boards {
		// Variables, in order: each query sees the earlier ones; All is selected.
		vars := map[string][]string{}
		for _, v := range b.Templating.List {
			from, _ := parseGrafanaTime(b.Time.From, nowFor(v.Datasource.Type, influxNow, promNow), loc, false)
			to, _ := parseGrafanaTime(b.Time.To, nowFor(v.Datasource.Type, influxNow, promNow), loc, true)
			q := interpolate(v.text(), v.Datasource.Type, vars)
			if l := leftover(strings.ReplaceAll(q, "$/", "/")); l != "" {
				t.Errorf("%s: variable %s: %s left in %q", file, v.Name, l, q)
				continue
			}
			var values []string
			switch v.Datasource.Type {
			case "influxdb":
				for _, r := range inf.Query(t, q) {
					if s, ok := r.Values["value"].(string); ok {
						values = append(values, s)
					}
				}
			case "prometheus":
				values = labelValues(t, prom.URL, q, from, to)
			default:
				t.Errorf("%s: variable %s: datasource %q", file, v.Name, v.Datasource.Type)
			}
			if len(values) == 0 {
				t.Errorf("%s: variable %s (%s) has no values", file, v.Name, q)
				values = []string{"none"}
			}
			if !v.Multi || !v.IncludeAll {
				t.Errorf("%s: variable %s: want multi-value with All", file, v.Name)
			}
			vars[v.Name] = values
			t.Logf("%s: $%s = %v", file, v.Name, values)
		}
		for _, p := range flatPanels(b.Panels) {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", file, p.Title)
			}
			for _, tg := range p.Targets {
				ds := tg.Datasource.Type
				now := nowFor(ds, influxNow, promNow)
				fromExpr := b.Time.From
				if p.TimeFrom != "" {
					fromExpr = p.TimeFrom
				}
				from, err1 := parseGrafanaTime(fromExpr, now, loc, false)
				to, err2 := parseGrafanaTime(b.Time.To, now, loc, true)
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: panel %q: time: %v %v", file, p.Title, err1, err2)
				}
				iv := interval(from, to, p, intervals[tg.Datasource.UID])
				name := fmt.Sprintf("%s: panel %q query %s", file, p.Title, tg.RefID)
				var res queryResult
				switch ds {
				case "influxdb":
					if !tg.RawQuery {
						t.Errorf("%s: not a raw InfluxQL query", name)
					}
					q := influxMacros(interpolate(tg.Query, ds, vars), from, to, iv)
					if l := leftover(strings.ReplaceAll(q, "$/", "/")); l != "" {
						t.Errorf("%s: %s left in %q", name, l, q)
						continue
					}
					res = checkInflux(t, name, inf, q, tg)
				case "prometheus":
					q := promMacros(interpolate(tg.Expr, ds, vars), from, to, iv, intervals[tg.Datasource.UID])
					if l := leftover(q); l != "" {
						t.Errorf("%s: %s left in %q", name, l, q)
						continue
					}
					res = checkProm(t, name, prom.URL, q, tg, from, to, iv)
				default:
					t.Errorf("%s: datasource type %q", name, ds)
				}
				res.refID = tg.RefID
				queries++
				results[p.Title] = append(results[p.Title], res)
			}
		}
	}

	t.Logf("%d queries of %d panels run", queries, len(results))
	checkNumbers(t, results, day)
}

func nowFor(dsType string, influxNow, promNow time.Time) time.Time {
	if dsType == "prometheus" {
		return promNow
	}
	return influxNow
}

// queryResult is what a query returned, flattened: one row per point, with its
// series' tags (InfluxDB) or labels (Prometheus).
type queryResult struct {
	refID string
	rows  []map[string]any
}

var aliasTag = regexp.MustCompile(`\$tag_([A-Za-z0-9_]+)`)

// checkInflux runs q and checks its shape: rows with a time, at least one value,
// and the tags the alias names.
func checkInflux(t *testing.T, name string, inf *testsvc.Influx, q string, tg target) queryResult {
	t.Helper()
	rows := inf.Query(t, q)
	if len(rows) == 0 {
		t.Errorf("%s: no data from %s", name, q)
		return queryResult{}
	}
	var res queryResult
	nonNull := 0
	for _, r := range rows {
		row := map[string]any{"time": r.Time}
		for k, v := range r.Tags {
			row[k] = v
		}
		for k, v := range r.Values {
			row[k] = v
			if v != nil {
				nonNull++
			}
		}
		res.rows = append(res.rows, row)
		for _, m := range aliasTag.FindAllStringSubmatch(tg.Alias, -1) {
			if _, ok := r.Tags[m[1]]; !ok {
				t.Errorf("%s: alias %q names tag %s, not in the result's GROUP BY (%v)", name, tg.Alias, m[1], r.Tags)
				return res
			}
		}
	}
	if nonNull == 0 {
		t.Errorf("%s: only nulls from %s", name, q)
	}
	return res
}

// checkProm runs q as the panel would, a range query at the interval or an instant one
// at the range's end, and checks that it returns series with values.
func checkProm(t *testing.T, name, base, q string, tg target, from, to time.Time, iv time.Duration) queryResult {
	t.Helper()
	var data struct {
		ResultType string       `json:"resultType"`
		Result     []promResult `json:"result"`
	}
	step := iv.Seconds()
	if tg.Instant && !tg.Range {
		promAPI(t, base, "/api/v1/query", url.Values{"query": {q}, "time": {strconv.FormatInt(to.Unix(), 10)}}, &data)
		if data.ResultType != "vector" {
			t.Errorf("%s: instant result %s, want vector", name, data.ResultType)
		}
	} else {
		// Grafana aligns the range to the step.
		start := math.Floor(float64(from.Unix())/step) * step
		end := math.Floor(float64(to.Unix())/step) * step
		promAPI(t, base, "/api/v1/query_range", url.Values{"query": {q}, "start": {fmt.Sprint(start)}, "end": {fmt.Sprint(end)},
			"step": {strconv.FormatFloat(step, 'f', -1, 64)}}, &data)
		if data.ResultType != "matrix" {
			t.Errorf("%s: range result %s, want matrix", name, data.ResultType)
		}
	}
	var res queryResult
	for _, s := range data.Result {
		vals := s.Values
		if s.Value[0] != nil {
			vals = append(vals, s.Value)
		}
		for _, v := range vals {
			f, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
			row := map[string]any{"value": f}
			for k, l := range s.Metric {
				row[k] = l
			}
			res.rows = append(res.rows, row)
		}
		for _, m := range regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`).FindAllStringSubmatch(legendOf(tg), -1) {
			if _, ok := s.Metric[m[1]]; !ok {
				t.Errorf("%s: legend names label %s, not in the result %v", name, m[1], s.Metric)
			}
		}
	}
	if len(res.rows) == 0 {
		t.Errorf("%s: no data from %s", name, q)
	}
	return res
}

// legendOf is the legend format of a Prometheus target.
func legendOf(tg target) string { return tg.LegendFormat }

// checkNumbers checks the figures of the summary and the exceedance table against the
// recorded day.
func checkNumbers(t *testing.T, results map[string][]queryResult, day time.Time) {
	t.Helper()
	ld := periodLevel(day, 6, 22)
	ln := periodLevel(day, 22, 24)
	t.Logf("expected Ld %.2f, Ln %.2f", ld, ln)
	near := func(what string, got any, want float64) {
		t.Helper()
		f, ok := got.(float64)
		if !ok || math.Abs(f-want) > 0.005 {
			t.Errorf("%s = %v, want %.3f", what, got, want)
		}
	}
	bySite := func(title, ref string) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, r := range results[title] {
			if r.refID != ref {
				continue
			}
			for _, row := range r.rows {
				site, _ := row["site"].(string)
				out[site] = row
			}
		}
		if len(out) == 0 {
			t.Errorf("panel %q query %s: no rows", title, ref)
		}
		return out
	}

	// Good-day share: this month and this year, per site.
	for _, title := range []string{TitleGoodMonth, TitleGoodYear} {
		rows := bySite(title, "A")
		near(title+" "+airGood, rows[airGood]["good-day share"], 100)
		near(title+" "+airBad, rows[airBad]["good-day share"], 0)
	}
	// Days by level: the clean site's day is level 1, PM2.5 at 100 µg/m³ makes the other
	// level 3 (IAQI between 100 and 150, docs/standards.md §2.2).
	levels := map[float64]int{}
	for _, r := range results[TitleAQILevels] {
		for _, row := range r.rows {
			if l, ok := row["level"].(float64); ok {
				levels[l]++
			}
		}
	}
	if len(levels) != 2 || levels[1] != 1 || levels[3] != 1 {
		t.Errorf("%s: days by level %v, want level 1: 1, level 3: 1", TitleAQILevels, levels)
	}
	// Quiet-district compliance.
	q := bySite(TitleQuietNoise, "A")[quietSite]
	near("day periods", q["day periods"], 1)
	near("night periods", q["night periods"], 1)
	near("worst day, dB over", q["worst day, dB over"], ld-55)
	near("worst night, dB over", q["worst night, dB over"], ln-45)
	// Water sections.
	w := bySite(TitleWaterTargets, "A")
	near(riverMeets+" class", w[riverMeets]["class"], 2)
	near(riverMeets+" target", w[riverMeets]["target"], 3)
	near(riverMeets+" parameters over target", w[riverMeets]["parameters over target"], 0)
	near(riverMiss+" class", w[riverMiss]["class"], 4)
	near(riverMiss+" parameters over target", w[riverMiss]["parameters over target"], 1)
	// Open alerts: the test rule fires once.
	for _, r := range results[TitleOpenAlerts] {
		if len(r.rows) != 1 || r.rows[0]["value"] != 1.0 {
			t.Errorf("%s = %v, want 1", TitleOpenAlerts, r.rows)
		}
	}
	// The exceedance table: one day and one night period.
	periods := map[float64]map[string]any{}
	for _, r := range results["Exceedances by period"] {
		for _, row := range r.rows {
			if p, ok := row["period"].(float64); ok {
				if _, dup := periods[p]; dup {
					t.Errorf("exceedance table: period %v twice", p)
				}
				periods[p] = row
			}
		}
	}
	if d := periods[1]; d == nil {
		t.Errorf("exceedance table: no day period")
	} else {
		near("day level", d["level"], ld)
		near("day limit", d["limit"], 55)
		near("day dB over", d["dB over"], ld-55)
		if d["site"] != quietSite || d["time"] != day.Add(6*time.Hour).UnixMilli() {
			t.Errorf("exceedance table day row %v, want site %s at %v", d, quietSite, day.Add(6*time.Hour))
		}
	}
	if n := periods[2]; n == nil {
		t.Errorf("exceedance table: no night period")
	} else {
		near("night level", n["level"], ln)
		near("night limit", n["limit"], 45)
		near("night dB over", n["dB over"], ln-45)
		if n["time"] != day.Add(22*time.Hour).UnixMilli() {
			t.Errorf("exceedance table night row %v, want %v", n, day.Add(22*time.Hour))
		}
	}
}

// labelValues runs a Prometheus variable query, label_values(metric{...}, label) or
// label_values(label), over the range, as Grafana's series API call does.
func labelValues(t *testing.T, base, q string, from, to time.Time) []string {
	t.Helper()
	m := regexp.MustCompile(`^label_values\((?:(.*),\s*)?(\w+)\)$`).FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		t.Errorf("variable query %q: not label_values(...)", q)
		return nil
	}
	params := url.Values{"start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)}}
	var values []string
	if m[1] == "" {
		promAPI(t, base, "/api/v1/label/"+m[2]+"/values", params, &values)
		return values
	}
	params.Set("match[]", m[1])
	var series []map[string]string
	promAPI(t, base, "/api/v1/series", params, &series)
	seen := map[string]bool{}
	for _, s := range series {
		if v, ok := s[m[2]]; ok && !seen[v] {
			seen[v] = true
			values = append(values, v)
		}
	}
	slices.Sort(values)
	return values
}
