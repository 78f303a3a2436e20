package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/envgate/envgate/gateway/remotewrite"
)

// pushReceiver is a remote-write receiver that tells the sink's reading requests from
// its metrics pushes (series other than envgate_reading_value), answers the readings
// with 204 and the metrics pushes with 204, or with 503 after hang, at once if fail,
// and records both.
type pushReceiver struct {
	hang time.Duration
	fail bool

	mu           sync.Mutex
	readings     []time.Time // arrival of each reading request
	metricsAt    []time.Time // arrival of each metrics push
	metricsSizes []int       // body bytes (snappy-compressed protobuf) of each metrics push
	metricSeries []int
}

func (p *pushReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	body, err := snappy.Decode(nil, raw)
	var req prompb.WriteRequest
	if err == nil {
		err = req.Unmarshal(body)
	}
	if err != nil || len(req.Timeseries) == 0 {
		http.Error(w, fmt.Sprint(err), http.StatusBadRequest)
		return
	}
	metricsPush := req.Timeseries[0].Labels[0].Value != remotewrite.MetricName
	p.mu.Lock()
	if metricsPush {
		p.metricsAt = append(p.metricsAt, time.Now())
		p.metricsSizes = append(p.metricsSizes, len(raw))
		p.metricSeries = append(p.metricSeries, len(req.Timeseries))
	} else {
		p.readings = append(p.readings, time.Now())
	}
	p.mu.Unlock()
	if metricsPush && p.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if metricsPush && p.hang > 0 {
		select {
		case <-r.Context().Done():
		case <-time.After(p.hang):
		}
		http.Error(w, "hung", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// metricsPushBox starts a gateway whose sink central sends to url, its metrics pushed
// every second, with one noise meter polled every 200 ms; it returns its listen address.
// The gateway is stopped at the test's cleanup, before the cleanups registered earlier
// (the receiver's).
func metricsPushBox(t *testing.T, id, url string) string {
	t.Helper()
	bin := buildBinary(t)
	dir := t.TempDir()
	listen := loopback(t)
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: %s
  site: canal
  state_dir: %s
  listen: %s
  health_interval: 1h
sinks:
  - name: central
    prometheus_remote_write:
      url: %s/api/v1/write
      flush_interval: 200ms
      timeout: 5s
      metrics_interval: 1s
devices:
  - {name: meter-1, interval: 200ms, sim: {kind: noise}}
`, id, filepath.Join(dir, "state"), listen, url))
	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	t.Cleanup(func() { // after the stop
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	})
	g.start()
	t.Cleanup(func() { g.stop(syscall.SIGTERM) })
	return listen
}

// failedPushes is the metric counting the failed metrics pushes of sink central.
const failedPushes = `envgate_sink_metrics_pushes_total{result="failed",sink="central"}`

// TestMetricsPushNeverStallsReadings: a receiver that takes the readings but hangs on
// every metrics push (until the push's timeout) does not slow the readings: their
// requests keep coming at the flush interval, and the failed pushes are counted on
// /metrics.
func TestMetricsPushNeverStallsReadings(t *testing.T) {
	skipSubprocess(t)
	recv := &pushReceiver{hang: time.Minute}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	listen := metricsPushBox(t, "box-hang", srv.URL)
	if !waitFor(t, 30*time.Second, func() bool { return scrapeValue(t, listen, failedPushes) >= 2 }) {
		t.Fatalf("%s = %v after 30s, want at least 2", failedPushes, scrapeValue(t, listen, failedPushes))
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	// From the first reading request on, while pushes hung for 5 s each (the sink's
	// timeout): reading requests every second or so (the buffer's group commit, 1 s,
	// makes readings sendable), never a gap near the push timeout.
	if len(recv.readings) < 6 {
		t.Fatalf("%d reading requests while the metrics pushes hung, want at least 6", len(recv.readings))
	}
	var worst time.Duration
	for i := 1; i < len(recv.readings); i++ {
		worst = max(worst, recv.readings[i].Sub(recv.readings[i-1]))
	}
	if worst > 2500*time.Millisecond {
		t.Errorf("longest gap between reading requests %v while the metrics pushes hung 5 s each, want at most 2.5s", worst)
	}
}

// TestMetricsPushNotRetried: a receiver that answers every metrics push with 503 at
// once gets one request per push, one a second (metrics_interval): a failed push is
// counted and dropped, not retried (the remote-write library retries a 503 itself
// unless told not to).
func TestMetricsPushNotRetried(t *testing.T) {
	skipSubprocess(t)
	recv := &pushReceiver{fail: true}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	listen := metricsPushBox(t, "box-503", srv.URL)
	if !waitFor(t, 30*time.Second, func() bool { return scrapeValue(t, listen, failedPushes) >= 5 }) {
		t.Fatalf("%s = %v after 30s, want at least 5", failedPushes, scrapeValue(t, listen, failedPushes))
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	// At most one request a second from the first to the last, plus one for the first
	// and one for a tick that came late.
	n := len(recv.metricsAt)
	span := recv.metricsAt[n-1].Sub(recv.metricsAt[0])
	if limit := int(span/time.Second) + 2; n > limit {
		t.Errorf("%d metrics push requests in %v, want at most %d (one a second): a failed push must not be retried", n, span, limit)
	}
}

// TestMetricsPushSize measures one metrics push with the default list for a box with
// one noise, one air and one water device (docs/remote-write.md quotes it): the request
// body, snappy-compressed protobuf, as it goes over the uplink (plus HTTP and TLS).
func TestMetricsPushSize(t *testing.T) {
	skipSubprocess(t)
	recv := &pushReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-0042
  site: canal-east
  state_dir: %s
  listen: %s
  health_interval: 1h
sinks:
  - name: central
    prometheus_remote_write:
      url: %s/api/v1/write
      metrics_interval: 1s
devices:
  - {name: noise-1, interval: 1s, sim: {kind: noise}}
  - {name: air-1, interval: 1s, sim: {kind: air}}
  - {name: water-1, interval: 1s, sim: {kind: water}}
noise:
  sites:
    - {device: noise-1, zone: "1", quiet_district: true}
air:
  sites:
    - {device: air-1}
water:
  sections:
    - {site: canal-east, waterbody: river, target: III}
`, filepath.Join(dir, "state"), loopback(t), srv.URL))
	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	}()
	g.start()
	defer g.stop(syscall.SIGTERM)
	// Every device polled a few times, so its series exist: wait for the third push.
	pushes := func() int {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return len(recv.metricsSizes)
	}
	if !waitFor(t, 30*time.Second, func() bool { return pushes() >= 3 }) {
		t.Fatalf("%d metrics pushes in 30 s, want at least 3", pushes())
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	last := len(recv.metricsSizes) - 1
	size, series := recv.metricsSizes[last], recv.metricSeries[last]
	t.Logf("one metrics push: %d series, %d bytes (snappy protobuf body); at 15s: %.0f KiB/day", series, size, float64(size)*5760/1024)
	if size > 8<<10 {
		t.Errorf("one metrics push is %d bytes, want at most 8 KiB (docs/remote-write.md)", size)
	}
}
