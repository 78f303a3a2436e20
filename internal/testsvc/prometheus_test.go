package testsvc

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const promWait = 30 * time.Second // for something that takes a few scrapes and evaluations

// testAlertmanagerConfig sends everything to one webhook at once and repeats rarely.
const testAlertmanagerConfig = `route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s/hook
        send_resolved: true
`

// testRules: one alert that always fires, one that follows a scraped gauge.
const testRules = `groups:
  - name: testsvc
    rules:
      - alert: TestAlwaysFiring
        expr: vector(1)
        labels:
          severity: info
        annotations:
          summary: 'always {{ $value }}'
      - alert: TestGaugeHigh
        expr: testsvc_gauge > 0
        for: 1s
        labels:
          severity: warning
        annotations:
          summary: 'gauge of {{ $labels.instance }} is {{ $value }}'
`

// TestPrometheusAlertmanagerWebhook runs the whole chain: Prometheus scrapes a target
// and evaluates rules, Alertmanager routes the alerts, the webhook receives firing and
// resolved notifications.
func TestPrometheusAlertmanagerWebhook(t *testing.T) {
	var gauge atomic.Int64
	gauge.Store(1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP testsvc_gauge A gauge the test sets.\n# TYPE testsvc_gauge gauge\ntestsvc_gauge %d\n", gauge.Load())
	}))
	t.Cleanup(target.Close)
	rules := filepath.Join(t.TempDir(), "test.rules.yml")
	if err := os.WriteFile(rules, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}

	hook := StartWebhook(t)
	am := StartAlertmanager(t, fmt.Sprintf(testAlertmanagerConfig, hook.URL))
	prom := StartPrometheus(t, PrometheusOptions{
		Targets:         []string{HostPort(t, target.URL)},
		RuleFiles:       []string{rules},
		AlertmanagerURL: am.URL,
	})
	// The rule file was copied: changing the original changes nothing.
	if err := os.Remove(rules); err != nil {
		t.Fatal(err)
	}

	up := prom.WaitQuery(t, `up{job="envgate"}`, promWait, func(s []Sample) bool { return len(s) == 1 && s[0].Value == 1 })
	if got := up[0].Labels["instance"]; got != HostPort(t, target.URL) {
		t.Errorf(`up{job="envgate"} instance = %q, want %q`, got, HostPort(t, target.URL))
	}
	if got := prom.Query(t, "1 + 1"); len(got) != 1 || got[0].Value != 2 || len(got[0].Labels) != 0 {
		t.Errorf("Query(1 + 1) = %+v, want one sample 2 without labels", got)
	}
	if got := prom.Query(t, `vector(3) * on () group_left testsvc_gauge`); len(got) != 1 || got[0].Value != 3 {
		t.Errorf("Query(vector(3) * gauge) = %+v, want one sample 3", got)
	}

	msg, alert := hook.WaitAlert(t, promWait, "TestAlwaysFiring", "firing")
	if msg.Path != "/hook" || msg.Receiver != "hook" || msg.Status != "firing" || msg.Version != "4" {
		t.Errorf("notification path %q receiver %q status %q version %q; want /hook hook firing 4",
			msg.Path, msg.Receiver, msg.Status, msg.Version)
	}
	if alert.Labels["severity"] != "info" || alert.Annotations["summary"] != "always 1" {
		t.Errorf("TestAlwaysFiring labels %v annotations %v; want severity info, summary \"always 1\"",
			alert.Labels, alert.Annotations)
	}
	if alert.StartsAt.IsZero() || time.Since(alert.StartsAt) > time.Minute || !strings.Contains(alert.GeneratorURL, "/graph") {
		t.Errorf("TestAlwaysFiring startsAt %v generatorURL %q; want about now and a Prometheus link",
			alert.StartsAt, alert.GeneratorURL)
	}

	// The gauge alert fires after its 1s "for", and resolves when the gauge drops.
	_, high := hook.WaitAlert(t, promWait, "TestGaugeHigh", "firing")
	wantSummary := "gauge of " + HostPort(t, target.URL) + " is 1"
	if high.Annotations["summary"] != wantSummary || high.Labels["job"] != PrometheusJob {
		t.Errorf("TestGaugeHigh annotations %v labels %v; want summary %q and job %q",
			high.Annotations, high.Labels, wantSummary, PrometheusJob)
	}
	var seen bool
	for _, a := range prom.Alerts(t) {
		if a.Labels["alertname"] == "TestGaugeHigh" {
			seen = true
			if a.State != "firing" || a.ActiveAt.IsZero() || a.Value != "1e+00" {
				t.Errorf("Alerts(): TestGaugeHigh %+v; want firing, activeAt set, value 1e+00", a)
			}
		}
	}
	if !seen {
		t.Errorf("Alerts(): no TestGaugeHigh")
	}
	gauge.Store(0)
	_, resolved := hook.WaitAlert(t, promWait, "TestGaugeHigh", "resolved")
	if resolved.EndsAt.Before(resolved.StartsAt) || resolved.EndsAt.After(time.Now()) {
		t.Errorf("resolved TestGaugeHigh startsAt %v endsAt %v; want endsAt after start, not in the future",
			resolved.StartsAt, resolved.EndsAt)
	}
}

// TestAlertmanagerPostAndInhibit posts alerts straight to Alertmanager: routing by
// label to two webhook paths, and an inhibit rule keeping one of them quiet.
func TestAlertmanagerPostAndInhibit(t *testing.T) {
	hook := StartWebhook(t)
	am := StartAlertmanager(t, strings.ReplaceAll(`route:
  receiver: team
  group_by: [alertname, site]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="page"']
      receiver: oncall
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="warning"']
    equal: [site]
receivers:
  - name: oncall
    webhook_configs: [{url: HOOK/oncall}]
  - name: team
    webhook_configs: [{url: HOOK/team}]
`, "HOOK", hook.URL))

	// The page first: an inhibition only holds once its source is known.
	am.Post(t, AlertmanagerAlert{Labels: map[string]string{"alertname": "Loud", "severity": "page", "site": "a"}})
	hook.WaitAlert(t, promWait, "Loud", "firing")
	am.Post(t,
		AlertmanagerAlert{Labels: map[string]string{"alertname": "Warm", "severity": "warning", "site": "a"}},
		AlertmanagerAlert{Labels: map[string]string{"alertname": "Warm", "severity": "warning", "site": "b"},
			Annotations: map[string]string{"summary": "warm at b"}},
	)
	msgs := hook.Wait(t, promWait, func(msgs []WebhookMessage) bool {
		for _, m := range msgs {
			if m.Path == "/team" && m.CommonLabels["site"] == "b" {
				return true
			}
		}
		return false
	})
	for _, m := range msgs {
		switch {
		case m.Path == "/oncall" && m.CommonLabels["alertname"] == "Loud":
		case m.Path == "/team" && m.CommonLabels["alertname"] == "Warm" && m.CommonLabels["site"] == "b":
			if m.CommonAnnotations["summary"] != "warm at b" || len(m.Alerts) != 1 {
				t.Errorf("team notification %+v; want one alert, summary \"warm at b\"", m)
			}
		default:
			t.Errorf("unexpected notification: %s", Summarize([]WebhookMessage{m}))
		}
	}
	states := map[string]string{}
	for _, a := range am.Alerts(t) {
		states[a.Labels["alertname"]+"/"+a.Labels["site"]] = a.Status
	}
	want := map[string]string{"Loud/a": "active", "Warm/a": "suppressed", "Warm/b": "active"}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("Alerts() states %v, want %v", states, want)
	}
}

// TestWebhookDecodes posts a recorded Alertmanager 0.25 payload to the webhook.
func TestWebhookDecodes(t *testing.T) {
	hook := StartWebhook(t)
	payload := `{"receiver":"oncall","status":"resolved","alerts":[{"status":"resolved",
"labels":{"alertname":"GatewayDown","instance":"gw1:9273","severity":"page"},
"annotations":{"summary":"Gateway gw1:9273 unreachable for 5 minutes"},
"startsAt":"2026-11-28T08:00:00.000+08:00","endsAt":"2026-11-28T08:10:30.5Z",
"generatorURL":"http://prom/graph?g0.expr=up","fingerprint":"a1b2c3"}],
"groupLabels":{"alertname":"GatewayDown"},"commonLabels":{"alertname":"GatewayDown"},
"commonAnnotations":{},"externalURL":"http://am:9093","version":"4",
"groupKey":"{}:{alertname=\"GatewayDown\"}","truncatedAlerts":0}`
	resp, err := http.Post(hook.URL+"/oncall", "application/json", bytes.NewBufferString(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST payload: %s", resp.Status)
	}
	msgs := hook.Wait(t, time.Second, func(m []WebhookMessage) bool { return len(m) == 1 })
	m := msgs[0]
	if m.Path != "/oncall" || m.Status != "resolved" || m.Receiver != "oncall" || len(m.Alerts) != 1 ||
		m.GroupLabels["alertname"] != "GatewayDown" || m.GroupKey == "" {
		t.Fatalf("decoded %+v", m)
	}
	a := m.Alerts[0]
	wantStart := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	wantEnd := time.Date(2026, 11, 28, 8, 10, 30, 500e6, time.UTC)
	if a.Status != "resolved" || a.Labels["instance"] != "gw1:9273" || a.Fingerprint != "a1b2c3" ||
		!a.StartsAt.Equal(wantStart) || !a.EndsAt.Equal(wantEnd) ||
		a.Annotations["summary"] != "Gateway gw1:9273 unreachable for 5 minutes" {
		t.Errorf("decoded alert %+v", a)
	}
	if got := hook.Messages(); len(got) != 1 {
		t.Errorf("Messages() = %d messages, want 1", len(got))
	}
}

func TestPrometheusConfig(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(t.TempDir(), "a.yml")
	if err := os.WriteFile(rules, []byte("groups: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := prometheusConfig(dir, PrometheusOptions{
		Targets:         []string{"127.0.0.1:9273"},
		RuleFiles:       []string{rules},
		AlertmanagerURL: "http://127.0.0.1:9093/am/",
		ScrapeInterval:  1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `global:
    scrape_interval: 1500ms
    scrape_timeout: 1500ms
    evaluation_interval: 1000ms
rule_files:
    - ` + filepath.Join(dir, "rules", "00-a.yml") + `
alerting:
    alertmanagers:
        - scheme: http
          path_prefix: /am
          static_configs:
            - targets:
                - 127.0.0.1:9093
scrape_configs:
    - job_name: envgate
      static_configs:
        - targets:
            - 127.0.0.1:9273
`
	if string(raw) != want {
		t.Errorf("prometheusConfig =\n%s\nwant\n%s", raw, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "rules", "00-a.yml")); err != nil {
		t.Errorf("rule file not copied: %v", err)
	}
	if _, err := prometheusConfig(t.TempDir(), PrometheusOptions{AlertmanagerURL: "127.0.0.1:9093"}); err == nil {
		t.Errorf("prometheusConfig accepted an Alertmanager URL without scheme")
	}
}
