package main

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// TestRemoteWriteEndToEnd is issue 15, item 1, through the real binary: a box with a
// simulated sound level meter and a noise site pushes to a real Prometheus 2.42
// receiver the raw readings, the derived ones (the LAeq of each clock minute) and its
// own health readings, each series labelled gateway, site, device, quantity and unit.
func TestRemoteWriteEndToEnd(t *testing.T) {
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true})
	// The pushed samples carry the gateway's clock (400 days off in scripts/test.sh's
	// fakeclock runs): the queries look at that time, not the server's.
	prom.Now = clock.Now
	bin := buildBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-rw
  site: canal-rw
  state_dir: %s
  listen: %s
  health_interval: 1s
sinks:
  - name: central
    prometheus_remote_write:
      url: %s/api/v1/write
      flush_interval: 200ms
      # No metrics push: it is stamped with the real clock, and in the fakeclock runs
      # (readings 400 days off) its samples would put the readings out of the TSDB's
      # bounds. TestQuietDistrictAlertPushed tests the push.
      metrics_interval: 0s
devices:
  - {name: meter-1, interval: 1s, sim: {kind: noise}}
noise:
  sites:
    - {device: meter-1, zone: "1"}
`, filepath.Join(dir, "state"), loopback(t), prom.URL))
	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	}()
	g.start()
	defer g.stop(syscall.SIGTERM)

	some := func(s []testsvc.Sample) bool { return len(s) > 0 }
	for _, sel := range []string{
		`envgate_reading_value{gateway="box-rw", site="canal-rw", device="meter-1", quantity="la", unit="dB(A)"}`,
		`envgate_reading_value{gateway="box-rw", site="canal-rw", device="gateway", quantity="uptime", unit="s"}`,
		`envgate_reading_value{gateway="box-rw", site="canal-rw", device="gateway", quantity="buffer_unsent"}`,
		// The first clock minute closes within 60 s of the start.
		`envgate_reading_value{gateway="box-rw", site="canal-rw", device="meter-1", quantity="laeq_1m", unit="dB(A)"}`,
	} {
		prom.WaitQuery(t, "last_over_time("+sel+"[5m])", 90*time.Second, some)
	}
	// The minute's LAeq keeps the time the derivation gave it, on a clock minute, not
	// the time it was pushed.
	got := prom.Series(t, `envgate_reading_value{gateway="box-rw", quantity="laeq_1m"}`, 5*time.Minute, clock.Now())
	for key, points := range got {
		for _, p := range points {
			if p.T%60000 != 0 {
				t.Errorf("%s: sample at %d ms, want a clock minute", key, p.T)
			}
		}
	}
}
