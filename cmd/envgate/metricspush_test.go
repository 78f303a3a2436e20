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
// with 204 and the metrics pushes after hang (0: at once), and records both.
type pushReceiver struct {
	hang time.Duration

	mu           sync.Mutex
	readings     []time.Time // arrival of each reading request
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
		p.metricsSizes = append(p.metricsSizes, len(raw))
		p.metricSeries = append(p.metricSeries, len(req.Timeseries))
	} else {
		p.readings = append(p.readings, time.Now())
	}
	p.mu.Unlock()
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

// TestMetricsPushNeverStallsReadings: a receiver that takes the readings but hangs on
// every metrics push (until the push's timeout) does not slow the readings: their
// requests keep coming at the flush interval, and the failed pushes are counted on
// /metrics, not retried.
func TestMetricsPushNeverStallsReadings(t *testing.T) {
	recv := &pushReceiver{hang: time.Minute}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	bin := buildBinary(t)
	dir := t.TempDir()
	listen := loopback(t)
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-hang
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
`, filepath.Join(dir, "state"), listen, srv.URL))
	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	}()
	g.start()
	defer g.stop(syscall.SIGTERM)

	failed := `envgate_sink_metrics_pushes_total{result="failed",sink="central"}`
	for deadline := time.Now().Add(30 * time.Second); scrapeValue(t, listen, failed) < 2; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 30s, want at least 2", failed, scrapeValue(t, listen, failed))
		}
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
	// One request per push: failed ones are not sent again (a push that overruns the
	// interval makes the next tick wait: one a second at most).
	if n, elapsed := len(recv.metricsSizes), recv.readings[len(recv.readings)-1].Sub(recv.readings[0]); float64(n) > elapsed.Seconds()+2 {
		t.Errorf("%d metrics pushes in %v, want at most one a second: failed pushes must not be retried", n, elapsed)
	}
}

// TestMetricsPushSize measures one metrics push with the default list for a box with
// one noise, one air and one water device (docs/remote-write.md quotes it): the request
// body, snappy-compressed protobuf, as it goes over the uplink (plus HTTP and TLS).
func TestMetricsPushSize(t *testing.T) {
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
