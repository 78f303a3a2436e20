package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// TestQuietDistrictAlertPushed is issue 15's "the quiet-district rule fires on pushed
// data through a real Alertmanager": a box behind NAT (nothing scrapes it) with a
// simulated sound level meter at a quiet-district site over its limit pushes its
// readings and, every second, its own metrics to a real Prometheus 2.42 receiver, which
// evaluates the shipped alerts/noise.rules.yml unchanged but for shortened durations
// and sends to a real Alertmanager, whose webhook receiver is the test.
//
// The metrics carry the gather time on the real clock (internal/clock: the metrics
// read time.Now), so the server evaluates at its own now, in the fakeclock runs too;
// the day and night periods are the gateway's (dayNow), which envgate_noise_night
// reports.
func TestQuietDistrictAlertPushed(t *testing.T) {
	hook, am := startOnCall(t, "site")
	dir := t.TempDir()
	root, _ := filepath.Abs("../..")
	rules := shortenRules(t, dir, filepath.Join(root, "alerts/noise.rules.yml"))
	// The readings carry the gateway's clock and the metrics the real one; in the
	// fakeclock runs of scripts/test.sh the two are 400 days apart, and without a wide
	// out-of-order window whichever reached the TSDB first would put the other out of
	// its bounds (in a release build they are one clock). The rules read only metrics;
	// the readings are queried at the gateway's clock.
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true, RuleFiles: rules,
		AlertmanagerURL: am.URL, EvalInterval: time.Second, OutOfOrderTimeWindow: 500 * 24 * time.Hour})
	prom.Now = clock.Now
	bin := buildBinary(t)
	dayStart, nightStart := dayNow()
	cfgPath := filepath.Join(dir, "box.yaml")
	// The simulated meter reads about 57 dB(A) by day and 43 at night, on its own clock:
	// over a limit of 30 in either period.
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-nat
  site: canal-quiet
  state_dir: %s
  listen: %s
  health_interval: 1h
sinks:
  - name: central
    prometheus_remote_write:
      url: %s/api/v1/write
      flush_interval: 200ms
      metrics_interval: 1s
devices:
  - {name: meter-1, interval: 500ms, sim: {kind: noise}}
noise:
  day_start: "%s"
  night_start: "%s"
  sites:
    - {device: meter-1, zone: "1", day_limit: 30, night_limit: 30, quiet_district: true, sample: 500ms}
`, filepath.Join(dir, "state"), loopback(t), prom.URL, dayStart, nightStart))
	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	}()
	g.start()
	defer g.stop(syscall.SIGTERM)

	// The labels are those of a scrape, instance being the gateway ID: the rule's
	// one-to-one matches on (job, instance, site, device) keep only those, so the pushed
	// gateway label is not among them.
	_, fired := hook.WaitAlert(t, 90*time.Second, "QuietDistrictNoiseDay", "firing")
	for k, want := range map[string]string{"site": "canal-quiet", "device": "meter-1", "severity": "page",
		"job": "envgate", "instance": "box-nat", "zone": "1"} {
		if fired.Labels[k] != want {
			t.Errorf("firing alert label %s = %q, want %q (labels %v)", k, fired.Labels[k], want, fired.Labels)
		}
	}
	desc := fired.Annotations["description"] + " " + fired.Annotations["summary"]
	for _, want := range []string{"canal-quiet", "limit of 30 dB(A)"} {
		if !strings.Contains(desc, want) {
			t.Errorf("annotations lack %q: %v", want, fired.Annotations)
		}
	}
	if strings.Contains(desc, "(unknown)") {
		t.Errorf("an annotation's query found nothing in the pushed series: %v", fired.Annotations)
	}
	t.Logf("fired: %s", fired.Annotations["summary"])
	// The readings are pushed as before, beside the metrics.
	if got := prom.Query(t, `count(last_over_time(envgate_reading_value{gateway="box-nat", quantity="la"}[1h]))`); len(got) != 1 {
		t.Errorf("no pushed la readings: %v", got)
	}
}
