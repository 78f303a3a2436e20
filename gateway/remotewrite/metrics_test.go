package remotewrite

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"go.yaml.in/yaml/v3"
)

// seriesString renders a pushed series as name{k="v",...} value @ms, labels in their order.
func seriesString(ts prompb.TimeSeries) string {
	var name string
	var ls []string
	for _, l := range ts.Labels {
		if l.Name == "__name__" {
			name = l.Value
			continue
		}
		ls = append(ls, l.Name+"="+`"`+l.Value+`"`)
	}
	var vs []string
	for _, s := range ts.Samples {
		vs = append(vs, strconv.FormatFloat(s.Value, 'g', -1, 64)+" @"+strconv.FormatInt(s.Timestamp, 10))
	}
	return name + "{" + strings.Join(ls, ",") + "} " + strings.Join(vs, " ")
}

// TestConvert: counters, gauges and untyped metrics of the allowed families become one
// sample each at the gather time; histograms and families not allowed are left out;
// every series gets job, instance, gateway and site, except a label the metric has of
// its own (site of a per-device metric), which keeps its value; labels are sorted.
func TestConvert(t *testing.T) {
	reg := prometheus.NewRegistry()
	energy := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "envgate_noise_energy_seconds_total", Help: "h"}, []string{"site", "device"})
	energy.WithLabelValues("canal-east", "noise-1").Add(12.5)
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "envgate_device_up", Help: "h"}, []string{"device"})
	up.WithLabelValues("noise-1").Set(1)
	bufferBytes := prometheus.NewGauge(prometheus.GaugeOpts{Name: "envgate_buffer_bytes", Help: "h"})
	bufferBytes.Set(4096)
	untyped := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "envgate_clock_synchronized", Help: "h"}, func() float64 { return 1 })
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "envgate_device_poll_duration_seconds", Help: "h"})
	hist.Observe(0.1)
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "envgate_buffer_segments", Help: "h"})
	reg.MustRegister(energy, up, bufferBytes, untyped, hist, other)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allow := map[string]bool{}
	for _, n := range []string{"envgate_noise_energy_seconds_total", "envgate_device_up", "envgate_buffer_bytes",
		"envgate_clock_synchronized", "envgate_device_poll_duration_seconds"} {
		allow[n] = true
	}
	at := time.UnixMilli(1_760_000_000_123)
	got := Convert(mfs, allow, IdentityLabels{Job: "envgate", Instance: "box-7", Gateway: "box-7", Site: "park-3"}, at)
	var lines []string
	for _, ts := range got {
		if !slices.IsSortedFunc(ts.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("labels not sorted: %v", ts.Labels)
		}
		lines = append(lines, seriesString(ts))
	}
	want := []string{
		`envgate_buffer_bytes{gateway="box-7",instance="box-7",job="envgate",site="park-3"} 4096 @1760000000123`,
		`envgate_clock_synchronized{gateway="box-7",instance="box-7",job="envgate",site="park-3"} 1 @1760000000123`,
		`envgate_device_up{device="noise-1",gateway="box-7",instance="box-7",job="envgate",site="park-3"} 1 @1760000000123`,
		`envgate_noise_energy_seconds_total{device="noise-1",gateway="box-7",instance="box-7",job="envgate",site="canal-east"} 12.5 @1760000000123`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("Convert =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// Without a site (gateway.site unset) no site label is added.
	got = Convert(mfs, map[string]bool{"envgate_buffer_bytes": true}, IdentityLabels{Job: "envgate", Instance: "box-7", Gateway: "box-7"}, at)
	if len(got) != 1 || seriesString(got[0]) != `envgate_buffer_bytes{gateway="box-7",instance="box-7",job="envgate"} 4096 @1760000000123` {
		t.Errorf("Convert without a site = %v", got)
	}
}

// TestDefaultMetrics is issue 15's guard: DefaultMetrics is exactly the set of
// envgate_* metrics the shipped rule files read in an expression or an annotation,
// less envgate_reading_value (pushed as readings). A rule that starts reading a metric
// the list lacks would never fire on pushed data; a name no rule reads costs bytes
// on every push.
func TestDefaultMetrics(t *testing.T) {
	files, err := filepath.Glob("../../alerts/*.rules.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in ../../alerts (%v)", err)
	}
	name := regexp.MustCompile(`\benvgate_[a-z0-9_]*[a-z0-9]\b`)
	used := map[string]string{} // metric → the rule that reads it
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf struct {
			Groups []struct {
				Rules []struct {
					Alert, Record, Expr string
					Annotations         map[string]string
				}
			}
		}
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				text := r.Expr
				for _, a := range r.Annotations {
					text += "\n" + a
				}
				for _, m := range name.FindAllString(text, -1) {
					used[m] = filepath.Base(f) + " " + r.Alert + r.Record
				}
			}
		}
	}
	if len(used) == 0 {
		t.Fatal("the rule files read no envgate_* metric")
	}
	for m, rule := range used {
		if m != MetricName && !slices.Contains(DefaultMetrics, m) {
			t.Errorf("%s reads %s, which DefaultMetrics lacks: the rule cannot work on pushed data", rule, m)
		}
	}
	for _, m := range DefaultMetrics {
		if _, ok := used[m]; !ok {
			t.Errorf("DefaultMetrics has %s, which no shipped rule reads", m)
		}
		if msg := CheckMetricName(m); msg != "" {
			t.Errorf("DefaultMetrics has %s: %s", m, msg)
		}
	}
	if !slices.IsSorted(DefaultMetrics) || len(slices.Compact(slices.Clone(DefaultMetrics))) != len(DefaultMetrics) {
		t.Error("DefaultMetrics is not sorted, or lists a name twice")
	}
}

// TestMetricsPush: one request of the allowed families with the identity labels; a
// receiver that fails makes Push return an error (the caller counts and drops it), and
// Push never retries; after Close, ErrClosed.
func TestMetricsPush(t *testing.T) {
	f := &fakeReceiver{answers: []fakeAnswer{{status: http.StatusNoContent}, {status: http.StatusServiceUnavailable, body: "down\n" + strings.Repeat("x", 5000)}, {status: http.StatusNoContent}}}
	s := fakeSink(t, f, Config{})
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "envgate_buffer_bytes", Help: "h"})
	g.Set(7)
	reg.MustRegister(g)
	p, err := s.NewMetricsPush(MetricsConfig{Interval: time.Second, Job: "envgate", Site: "park-3", Names: []string{"envgate_buffer_bytes"}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Push(t.Context()); n != 1 || err != nil {
		t.Fatalf("Push = %d, %v; want 1, nil", n, err)
	}
	n, err := p.Push(t.Context())
	if n != 0 || err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Push to a receiver answering 503 = %d, %v; want an error naming 503", n, err)
	}
	// The receiver's message is trimmed and capped as a write's is (Sink.post).
	if msg := err.Error(); !strings.Contains(msg, "503 Service Unavailable: down xxx") ||
		strings.Contains(msg, "server returned HTTP status") || len(msg) > maxMessage+200 {
		t.Errorf("Push to a receiver answering 503 with a long body = %v; want its body on one line, cut at %d bytes", err, maxMessage)
	}
	f.mu.Lock()
	if len(f.requests) != 2 {
		t.Errorf("%d requests, want 2 (one attempt each, no retry)", len(f.requests))
	}
	got := seriesString(f.requests[0].Timeseries[0])
	f.mu.Unlock()
	if !strings.HasPrefix(got, `envgate_buffer_bytes{gateway="box-7",instance="box-7",job="envgate",site="park-3"} 7 @`) {
		t.Errorf("pushed %s", got)
	}
	s.Close()
	if _, err := p.Push(t.Context()); err == nil || !strings.Contains(err.Error(), ErrClosed.Error()) {
		t.Errorf("Push after Close = %v, want ErrClosed", err)
	}
	if _, err := s.NewMetricsPush(MetricsConfig{Names: []string{MetricName}}, reg); err == nil ||
		!strings.Contains(err.Error(), "metrics_interval") || !strings.Contains(err.Error(), "metrics[0]") || !strings.Contains(err.Error(), "metrics_job") {
		t.Errorf("NewMetricsPush with a bad config = %v, want every problem", err)
	}
}

// TestCheckMetricsConfig: the rules the config's keys and NewMetricsPush share, so
// that a push built in code cannot take what a config file may not (an interval out
// of bounds, a job that is not UTF-8, a name listed twice).
func TestCheckMetricsConfig(t *testing.T) {
	good := MetricsConfig{Interval: 15 * time.Second, Job: "envgate", Names: []string{"envgate_device_up"}}
	check := func(change func(*MetricsConfig), want ...string) {
		t.Helper()
		c := good
		c.Names = slices.Clone(good.Names)
		change(&c)
		var got []string
		for _, p := range CheckMetricsConfig(c) {
			got = append(got, p.Field+": "+p.Msg)
		}
		if len(got) != len(want) {
			t.Errorf("CheckMetricsConfig(%+v) = %q, want %d problems %q", c, got, len(want), want)
			return
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("CheckMetricsConfig(%+v)[%d] = %q, want %q...", c, i, got[i], want[i])
			}
		}
	}
	check(func(*MetricsConfig) {})
	check(func(c *MetricsConfig) { c.Interval = MinMetricsInterval })
	check(func(c *MetricsConfig) { c.Interval = MaxMetricsInterval })
	check(func(c *MetricsConfig) { c.Interval = 0 }, "metrics_interval: must be between 1s and 2m0s")
	check(func(c *MetricsConfig) { c.Interval = 500 * time.Millisecond }, "metrics_interval: must be between 1s and 2m0s")
	check(func(c *MetricsConfig) { c.Interval = 3 * time.Minute }, "metrics_interval: must be between 1s and 2m0s")
	check(func(c *MetricsConfig) { c.Job = "" }, "metrics_job: must be a non-empty UTF-8 string")
	check(func(c *MetricsConfig) { c.Job = "\xff" }, "metrics_job: must be a non-empty UTF-8 string")
	check(func(c *MetricsConfig) { c.Names = nil }, "metrics: must name at least one metric")
	check(func(c *MetricsConfig) { c.Names = append(c.Names, "bad name", MetricName, "envgate_device_up") },
		"metrics[1]: must be a Prometheus metric name", "metrics[2]: is pushed reading by reading already",
		"metrics[3]: envgate_device_up is listed twice")
	s := fakeSink(t, &fakeReceiver{answers: []fakeAnswer{{status: http.StatusNoContent}}}, Config{})
	bad := good
	bad.Interval = time.Hour
	if _, err := s.NewMetricsPush(bad, prometheus.NewRegistry()); err == nil || !strings.Contains(err.Error(), "metrics_interval: must be between") {
		t.Errorf("NewMetricsPush with a 1h interval = %v, want the bounds", err)
	}
	if _, err := s.NewMetricsPush(good, nil); err == nil || !strings.Contains(err.Error(), "no registry") {
		t.Errorf("NewMetricsPush without a registry = %v", err)
	}
}
