package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/envgate/envgate/gateway/reading"
)

var t0 = time.Date(2026, 11, 28, 8, 0, 0, 500_000_000, time.UTC) // 1795852800.5 s

// allNames lists every envgate metric the package documents.
var allNames = []string{
	"envgate_build_info",
	"envgate_reading_value",
	"envgate_reading_timestamp_seconds",
	"envgate_readings_invalid_total",
	"envgate_device_polls_total",
	"envgate_device_poll_duration_seconds",
	"envgate_device_up",
	"envgate_device_last_success_timestamp_seconds",
	"envgate_buffer_bytes",
	"envgate_buffer_segments",
	"envgate_buffer_appended_total",
	"envgate_buffer_dropped_total",
	"envgate_buffer_quarantined_records_total",
	"envgate_buffer_quarantined_bytes_total",
	"envgate_buffer_degraded",
	"envgate_buffer_memory_readings",
	"envgate_buffer_quarantine_removed_files_total",
	"envgate_buffer_sync_in_progress_seconds",
	"envgate_sink_unsent_readings",
	"envgate_sink_oldest_unsent_age_seconds",
	"envgate_sink_written_total",
	"envgate_sink_retried_total",
	"envgate_sink_rejected_total",
	"envgate_sink_dead_lettered_total",
	"envgate_sink_last_success_timestamp_seconds",
	"envgate_sink_failing",
	"envgate_sink_persistent_failure",
	"envgate_sink_probes_total",
	"envgate_sink_live_written_total",
	"envgate_sink_rate_limited_seconds_total",
}

// populated returns Metrics with a value in every metric.
func populated() *Metrics {
	m := New()
	m.now = func() time.Time { return t0 }
	m.SetInfo("1.2.3", "gw-hz-01")
	m.ObserveReading(reading.New(t0, "canal-east", "noise-1", "la", 55.2))
	m.ObserveReading(reading.New(t0, "canal-east", "air-1", "co", 0.84))
	bad := reading.New(t0, "canal-east", "air-1", "pm25", 99999)
	bad.Quality = reading.Bad
	m.ObserveReading(bad)
	m.CountInvalid("air-1", "invalid")
	m.ObservePoll("noise-1", 12*time.Millisecond, nil)
	m.ObservePoll("air-1", 3*time.Second, errors.New("no reply"))
	m.AddBuffer(func() BufferStats {
		return BufferStats{Bytes: 4096, Segments: 2, Appended: 100, Dropped: 3,
			QuarantinedRecords: 1, QuarantinedBytes: 57, Degraded: true, MemoryReadings: 12}
	})
	m.AddSink("influx", func() SinkStats {
		return SinkStats{Unsent: 40, OldestUnsentAge: 90 * time.Second, Written: 60, Retried: 5, Rejected: 1,
			DeadLettered: 2, LastSuccess: t0, Failing: true, Persistent: true}
	})
	m.AddSink("backup", func() SinkStats { return SinkStats{} })
	return m
}

func TestReadingExposition(t *testing.T) {
	m := populated()
	want := `
# HELP envgate_reading_value Latest value of each quantity a device reported, in the unit named by the unit label.
# TYPE envgate_reading_value gauge
envgate_reading_value{device="air-1",quantity="co",site="canal-east",unit="mg/m3"} 0.84
envgate_reading_value{device="noise-1",quantity="la",site="canal-east",unit="dB(A)"} 55.2
# HELP envgate_reading_timestamp_seconds Measurement time of the latest value of each quantity, in seconds since the Unix epoch.
# TYPE envgate_reading_timestamp_seconds gauge
envgate_reading_timestamp_seconds{device="air-1",quantity="co",site="canal-east"} 1.7958528005e+09
envgate_reading_timestamp_seconds{device="noise-1",quantity="la",site="canal-east"} 1.7958528005e+09
# HELP envgate_readings_invalid_total Readings rejected before storage, by device and reason, as a count of readings.
# TYPE envgate_readings_invalid_total counter
envgate_readings_invalid_total{device="air-1",reason="bad_quality"} 1
envgate_readings_invalid_total{device="air-1",reason="invalid"} 1
# HELP envgate_build_info Build and identity of this gateway: always 1, labelled with the version and the gateway ID.
# TYPE envgate_build_info gauge
envgate_build_info{gateway="gw-hz-01",version="1.2.3"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"envgate_reading_value", "envgate_reading_timestamp_seconds", "envgate_readings_invalid_total", "envgate_build_info"); err != nil {
		t.Error(err)
	}
}

func TestPollExposition(t *testing.T) {
	m := populated()
	want := `
# HELP envgate_device_polls_total Polls of each device by result (ok or error), as a count of polls.
# TYPE envgate_device_polls_total counter
envgate_device_polls_total{device="air-1",result="error"} 1
envgate_device_polls_total{device="air-1",result="ok"} 0
envgate_device_polls_total{device="noise-1",result="error"} 0
envgate_device_polls_total{device="noise-1",result="ok"} 1
# HELP envgate_device_up Whether the last poll of each device succeeded: 1 if it did, 0 if it failed.
# TYPE envgate_device_up gauge
envgate_device_up{device="air-1"} 0
envgate_device_up{device="noise-1"} 1
# HELP envgate_device_last_success_timestamp_seconds Time of the last successful poll of each device, in seconds since the Unix epoch.
# TYPE envgate_device_last_success_timestamp_seconds gauge
envgate_device_last_success_timestamp_seconds{device="noise-1"} 1.7958528005e+09
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"envgate_device_polls_total", "envgate_device_up", "envgate_device_last_success_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.pollDuration, "envgate_device_poll_duration_seconds"); n != 2 {
		t.Errorf("%d poll duration histograms, want 2", n)
	}
	// The 3 s poll lands in the le=5 bucket, not le=2.5.
	wantHist := `
# HELP envgate_device_poll_duration_seconds Duration of each device poll, in seconds.
# TYPE envgate_device_poll_duration_seconds histogram
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.001"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.0025"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.005"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.01"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.025"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.05"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.1"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.25"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="0.5"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="1"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="2.5"} 0
envgate_device_poll_duration_seconds_bucket{device="air-1",le="5"} 1
envgate_device_poll_duration_seconds_bucket{device="air-1",le="10"} 1
envgate_device_poll_duration_seconds_bucket{device="air-1",le="30"} 1
envgate_device_poll_duration_seconds_bucket{device="air-1",le="+Inf"} 1
envgate_device_poll_duration_seconds_sum{device="air-1"} 3
envgate_device_poll_duration_seconds_count{device="air-1"} 1
`
	m2 := New()
	m2.ObservePoll("air-1", 3*time.Second, errors.New("timeout"))
	if err := testutil.CollectAndCompare(m2.pollDuration, strings.NewReader(wantHist)); err != nil {
		t.Error(err)
	}
}

func TestStateExposition(t *testing.T) {
	m := populated()
	want := `
# HELP envgate_buffer_bytes Size of the durable buffer on disk, in bytes.
# TYPE envgate_buffer_bytes gauge
envgate_buffer_bytes 4096
# HELP envgate_buffer_degraded Alarm: 1 while disk errors keep the buffer in memory only, 0 otherwise.
# TYPE envgate_buffer_degraded gauge
envgate_buffer_degraded 1
# HELP envgate_buffer_dropped_total Readings dropped by the buffer's size or age bounds since the gateway started, as a count of readings.
# TYPE envgate_buffer_dropped_total counter
envgate_buffer_dropped_total 3
# HELP envgate_buffer_memory_readings Readings held in memory because the disk failed, as a count of readings.
# TYPE envgate_buffer_memory_readings gauge
envgate_buffer_memory_readings 12
# HELP envgate_buffer_quarantined_bytes_total Corrupt buffer data quarantined since the gateway started, in bytes.
# TYPE envgate_buffer_quarantined_bytes_total counter
envgate_buffer_quarantined_bytes_total 57
# HELP envgate_sink_oldest_unsent_age_seconds Age of the oldest reading the sink has not yet acknowledged, in seconds; 0 when it is caught up.
# TYPE envgate_sink_oldest_unsent_age_seconds gauge
envgate_sink_oldest_unsent_age_seconds{sink="backup"} 0
envgate_sink_oldest_unsent_age_seconds{sink="influx"} 90
# HELP envgate_sink_last_success_timestamp_seconds Time of the sink's last successful write, in seconds since the Unix epoch; 0 if it never succeeded.
# TYPE envgate_sink_last_success_timestamp_seconds gauge
envgate_sink_last_success_timestamp_seconds{sink="backup"} 0
envgate_sink_last_success_timestamp_seconds{sink="influx"} 1.7958528005e+09
# HELP envgate_sink_persistent_failure Alarm: 1 while the sink fails with an error an operator must fix (credentials, missing bucket), 0 otherwise.
# TYPE envgate_sink_persistent_failure gauge
envgate_sink_persistent_failure{sink="backup"} 0
envgate_sink_persistent_failure{sink="influx"} 1
# HELP envgate_sink_written_total Readings the sink stored since the gateway started, as a count of readings.
# TYPE envgate_sink_written_total counter
envgate_sink_written_total{sink="backup"} 0
envgate_sink_written_total{sink="influx"} 60
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"envgate_buffer_bytes", "envgate_buffer_degraded", "envgate_buffer_dropped_total",
		"envgate_buffer_memory_readings", "envgate_buffer_quarantined_bytes_total",
		"envgate_sink_oldest_unsent_age_seconds", "envgate_sink_last_success_timestamp_seconds",
		"envgate_sink_persistent_failure", "envgate_sink_written_total"); err != nil {
		t.Error(err)
	}
}

func TestStateReadAtScrape(t *testing.T) {
	m := New()
	var bytes int64
	m.AddBuffer(func() BufferStats { return BufferStats{Bytes: bytes} })
	for _, b := range []int64{10, 20} {
		bytes = b
		want := fmt.Sprintf(`
# HELP envgate_buffer_bytes Size of the durable buffer on disk, in bytes.
# TYPE envgate_buffer_bytes gauge
envgate_buffer_bytes %d
`, b)
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "envgate_buffer_bytes"); err != nil {
			t.Error(err)
		}
	}
	// Replacing a sink's function replaces its series.
	m.AddSink("influx", func() SinkStats { return SinkStats{Written: 1} })
	m.AddSink("influx", func() SinkStats { return SinkStats{Written: 2} })
	if n := testutil.CollectAndCount(m.state, "envgate_sink_written_total"); n != 1 {
		t.Errorf("%d sink_written series, want 1", n)
	}
}

func TestAllNamesRegistered(t *testing.T) {
	m := populated()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range allNames {
		if !got[name] {
			t.Errorf("%s not gathered", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !got[name] {
			t.Errorf("%s not gathered: Go or process collector missing", name)
		}
	}
}

func TestLint(t *testing.T) {
	m := populated()
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body), rec.Result().Header
}

func TestHandler(t *testing.T) {
	m := populated()
	var health error
	h := m.Handler(func() error { return health })

	code, body, _ := get(t, h, "/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
	health = errors.New("buffer degraded: disk writes fail")
	code, body, _ = get(t, h, "/healthz")
	if code != http.StatusServiceUnavailable || body != "buffer degraded: disk writes fail\n" {
		t.Errorf("GET /healthz = %d %q, want 503 and the error", code, body)
	}

	code, body, hdr := get(t, h, "/metrics")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("GET /metrics = %d, Content-Type %q", code, hdr.Get("Content-Type"))
	}
	for _, name := range append(allNames, "go_goroutines") {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("GET /metrics: %s missing", name)
		}
	}

	code, body, _ = get(t, h, "/")
	if code != http.StatusOK || !strings.Contains(body, "/metrics") || !strings.Contains(body, "/healthz") {
		t.Errorf("GET / = %d %q, want an index", code, body)
	}
	if code, _, _ := get(t, h, "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}
}

func TestHandlerNilHealthy(t *testing.T) {
	if code, body, _ := get(t, New().Handler(nil), "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", code, body)
	}
}

// failing is a collector whose every scrape fails.
type failing struct{}

func (failing) Describe(chan<- *prometheus.Desc) {} // unchecked

func (failing) Collect(ch chan<- prometheus.Metric) {
	d := prometheus.NewDesc("test_failing", "A collector that fails, as a count of nothing.", nil, nil)
	ch <- prometheus.NewInvalidMetric(d, errors.New("sensor table locked"))
}

// TestContinueOnError checks that a failing collector does not hide the other metrics.
func TestContinueOnError(t *testing.T) {
	m := New()
	m.ObserveReading(reading.New(t0, "s", "d", "la", 50))
	m.Registry().MustRegister(failing{})
	code, body, _ := get(t, m.Handler(nil), "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "envgate_reading_value") {
		t.Errorf("GET /metrics with a failing collector = %d, body has reading value: %v", code, strings.Contains(body, "envgate_reading_value"))
	}
}

// Samples already counted (redeliveries) are exported per kind as result="duplicate".
func TestSamplesTotalExportsDuplicates(t *testing.T) {
	m := New()
	m.SetNoise(func() []NoiseState { return []NoiseState{{Site: "s", Device: "n", Duplicate: 3}} })
	m.SetAir(func() []AirState { return []AirState{{Site: "s", Device: "a", Duplicate: 4}} })
	m.SetWater(func() []WaterState { return []WaterState{{Site: "w", Duplicate: 5}} })
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "duplicate" {
					got[mf.GetName()] = mt.GetCounter().GetValue()
				}
			}
		}
	}
	want := map[string]float64{"envgate_noise_samples_total": 3, "envgate_air_samples_total": 4, "envgate_water_samples_total": 5}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s{result=\"duplicate\"} = %v, want %v (all: %v)", name, got[name], v, got)
		}
	}
}
