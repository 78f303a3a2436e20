package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// shortenRules rewrites the shipped rule files for a test that cannot wait a quarter of
// an hour: every range selector becomes [10s] and every `for:` 3s. Expressions,
// labels and annotations stay as shipped.
func shortenRules(t *testing.T, dir string, files ...string) []string {
	t.Helper()
	rangeRe := regexp.MustCompile(`\[\d+[smh]\]`)
	forRe := regexp.MustCompile(`(?m)^(\s*for:\s*)\d+[smh]\s*$`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := rangeRe.ReplaceAllString(string(b), "[10s]")
		s = forRe.ReplaceAllString(s, "${1}3s")
		p := filepath.Join(dir, filepath.Base(f))
		writeFile(t, p, s)
		out = append(out, p)
	}
	return out
}

// startOnCall starts the duty officer's end of an alert test: a webhook receiver and a
// real Alertmanager that sends it every alert, grouped by alertname and groupBy, with
// the waits cut to a second.
func startOnCall(t *testing.T, groupBy string) (*testsvc.Webhook, *testsvc.Alertmanager) {
	t.Helper()
	hook := testsvc.StartWebhook(t)
	am := testsvc.StartAlertmanager(t, fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, %s]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: true}]
`, groupBy, hook.URL+"/oncall"))
	return hook, am
}

// dayNow returns day_start and night_start that put now (Asia/Shanghai, by the
// gateway's clock) well inside a day period, so the test does not depend on the hour it
// runs at.
func dayNow() (dayStart, nightStart string) {
	h := clock.Now().In(reading.ChinaStandardTime).Hour()
	if h < 22 {
		return "00:00", "23:00"
	}
	return "01:00", "24:00"
}

// TestQuietDistrictAlertEndToEnd: a loud spell at a quiet-district site reaches the
// duty officer and clears when it is quiet. The real binary reads a meter over MQTT; a
// real Prometheus scrapes it with the shipped rules (durations shortened) and sends to
// a real Alertmanager, whose webhook receiver is the test.
func TestQuietDistrictAlertEndToEnd(t *testing.T) {
	broker := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{})
	hook, am := startOnCall(t, "site")
	bin := buildBinary(t)
	dir := t.TempDir()
	listen := loopback(t)
	dayStart, nightStart := dayNow()
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-quiet
  site: canal-quiet
  state_dir: %s
  listen: %s
  health_interval: 1h
mqtt:
  - name: meters
    broker: %s
    client_id: envgateTestQuiet
    subscriptions:
      - {topic: meter/+, template: "meter/{device}", format: number, quantity: la}
noise:
  day_start: "%s"
  night_start: "%s"
  sites:
    - {device: meter-1, zone: "1", day_limit: 50, quiet_district: true, sample: 100ms}
`, filepath.Join(dir, "state"), listen, broker.URL, dayStart, nightStart))
	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	}()
	g.start()
	defer g.stop(syscall.SIGTERM)

	root, _ := filepath.Abs("../..")
	rules := shortenRules(t, dir, filepath.Join(root, "alerts/noise.rules.yml"), filepath.Join(root, "alerts/gateway.rules.yml"))
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{Targets: []string{listen}, RuleFiles: rules,
		AlertmanagerURL: am.URL, ScrapeInterval: time.Second, EvalInterval: time.Second})

	// The meter: 10 samples a second at the level the test sets.
	var level atomic.Int64
	level.Store(75)
	pub := newPublisher(t, broker.URL)
	pub.waitSubscribed(listen, "meters", "meter/probe", "probe") // a number is expected: dead-lettered
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				tok := pub.c.Publish("meter/meter-1", 1, false, fmt.Sprint(level.Load()))
				tok.WaitTimeout(5 * time.Second)
			}
		}
	}()
	defer func() { close(stop); <-done }()

	_, fired := hook.WaitAlert(t, 90*time.Second, "QuietDistrictNoiseDay", "firing")
	if fired.Labels["site"] != "canal-quiet" || fired.Labels["device"] != "meter-1" || fired.Labels["severity"] != "page" {
		t.Errorf("firing alert labels = %v, want site canal-quiet, device meter-1, severity page", fired.Labels)
	}
	desc := fired.Annotations["description"] + " " + fired.Annotations["summary"]
	for _, want := range []string{"canal-quiet", "75.0 dB(A)", "limit of 50 dB(A)"} {
		if !strings.Contains(desc, want) {
			t.Errorf("annotations lack %q: %v", want, fired.Annotations)
		}
	}
	if fired.Annotations["runbook"] == "" {
		t.Errorf("no runbook annotation: %v", fired.Annotations)
	}
	t.Logf("fired: %s", fired.Annotations["summary"])

	level.Store(35)
	_, resolved := hook.WaitAlert(t, 90*time.Second, "QuietDistrictNoiseDay", "resolved")
	if resolved.Labels["site"] != "canal-quiet" {
		t.Errorf("resolved alert labels = %v", resolved.Labels)
	}
	if got := prom.Query(t, `envgate_noise_limit_dba{site="canal-quiet"}`); len(got) != 1 || got[0].Value != 50 {
		t.Errorf("envgate_noise_limit_dba = %v, want 50 (the override)", got)
	}
}
