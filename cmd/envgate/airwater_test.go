package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/testsvc"
)

// TestAirWaterReplayIntoInflux: a recorded day of an air monitor and a water section
// goes through `envgate replay`, its line protocol into a real InfluxDB, and the
// bureau's numbers come back out: the worked examples of docs/standards.md §2.11 (PM2.5 24-h
// 80 µg/m³ → AQI 119 by HJ 633-2026, not a good day) and §3.3 (a river section II,
// then IV with DO 4.0, then 劣V with DO 1.9, against target III).
func TestAirWaterReplayIntoInflux(t *testing.T) {
	inf := testsvc.StartInflux(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "box.yaml")
	writeFile(t, cfg, `gateway: {id: box-aw, site: canal}
air:
  sites:
    - {device: air-1, sample: 1h, pollutants: [pm25]}
water:
  sections:
    - {site: lock, waterbody: river, target: III}
screening: {off: true} # the worked examples' constant levels are flatlines to it
`)
	cst := time.FixedZone("CST", 8*3600)
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, cst)
	var in strings.Builder
	in.WriteString("time,site,device,quantity,value\n")
	for h := range 24 {
		// Local times (no offset): read in the air section's zone, Asia/Shanghai.
		fmt.Fprintf(&in, "%s,canal,air-1,pm25,80\n", day.Add(time.Duration(h)*time.Hour).Format("2006-01-02 15:04:05"))
	}
	for w, do := range []float64{6.5, 4.0, 1.9} { // one station cycle per 4-h window
		ts := day.Add(time.Duration(w)*4*time.Hour + 30*time.Minute).Format(time.RFC3339)
		for _, q := range []struct {
			name string
			v    float64
		}{{"ph", 7.5}, {"do", do}, {"codmn", 3.5}, {"nh3n", 0.40}, {"tp", 0.08}} {
			fmt.Fprintf(&in, "%s,lock,station-1,%s,%v\n", ts, q.name, q.v)
		}
	}
	input := filepath.Join(dir, "day.csv")
	writeFile(t, input, in.String())
	var stdout, stderr bytes.Buffer
	if code := run([]string{"replay", "-c", cfg, input}, &stdout, &stderr); code != 0 {
		t.Fatalf("replay exit %d: %s", code, stderr.String())
	}

	// Into InfluxDB as the sink writes it: millisecond precision.
	u := inf.URL + "/write?" + url.Values{"db": {inf.DB}, "precision": {"ms"}}.Encode()
	resp, err := http.Post(u, "text/plain", &stdout)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("InfluxDB refused replay's output: %s: %s", resp.Status, body)
	}

	pts := inf.Points(t)
	at := func(measurement, device, site, field string, ts time.Time) (float64, bool) {
		v, ok := pts[testsvc.Point{Measurement: measurement, Device: device, Site: site, Field: field, Time: ts.UnixMilli()}]
		return v, ok
	}
	check := func(what string, got float64, found bool, want float64) {
		t.Helper()
		if !found || got != want {
			t.Errorf("%s = %v (found %v), want %v", what, got, found, want)
		}
	}
	v, ok := at("air", "air-1", "canal", "aqi_1d", day)
	check("aqi_1d", v, ok, 119)
	v, ok = at("air", "air-1", "canal", "good_day", day)
	check("good_day", v, ok, 0)
	v, ok = at("air", "air-1", "canal", "pm25_1d", day)
	check("pm25_1d", v, ok, 80)
	v, ok = at("air", "air-1", "canal", "aqi_1h", day.Add(5*time.Hour))
	check("aqi_1h at 05:00", v, ok, 119)
	for w, want := range []float64{2, 4, 6} {
		start := day.Add(time.Duration(w) * 4 * time.Hour)
		v, ok = at("water", "section", "lock", "class", start)
		check(fmt.Sprintf("water class of window %d", w), v, ok, want)
		v, ok = at("water", "section", "lock", "target_missed", start)
		check(fmt.Sprintf("target_missed of window %d", w), v, ok, map[float64]float64{2: 0, 4: 1, 6: 1}[want])
	}
	v, ok = at("water", "section", "lock", "worst_param", day.Add(4*time.Hour))
	check("worst_param of the DO 4.0 window (1009 = DO, HJ 212 w01009)", v, ok, 1009)
	if t.Failed() {
		t.Logf("replay output:\n%.4000s", stdout.String())
	}
}
