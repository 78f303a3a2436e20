package remotewrite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/envgate/envgate/gateway/derive" // registers exceedance_1h and the other derived quantities
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// pushRules writes alerts/push.rules.yml with its durations shortened for a test:
// [24h] to [60s], [10m] to [5s], [2h] to [20s], every for: to 1s.
func pushRules(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../alerts/push.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("[24h]", "[60s]", "[10m]", "[5s]", "[2h]", "[20s]", "for: 5m", "for: 1s").Replace(string(b))
	p := filepath.Join(t.TempDir(), "push.rules.yml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// alertOf returns the state of the alert name with the label device (or gateway) value
// in prom, "" if none.
func alertOf(t *testing.T, prom *testsvc.Prometheus, name, label, value string) string {
	t.Helper()
	for _, a := range prom.Alerts(t) {
		if a.Labels["alertname"] == name && a.Labels[label] == value {
			return a.State
		}
	}
	return ""
}

// waitAlert waits until alertOf is want.
func waitAlert(t *testing.T, prom *testsvc.Prometheus, name, label, value, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); alertOf(t, prom, name, label, value) != want; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s=%q}: state %q after 30s, want %q", name, label, value, alertOf(t, prom, name, label, value), want)
		}
	}
}

// TestPushRulesOnPushedSeries runs alerts/push.rules.yml (durations shortened) in a
// real Prometheus 2.42 on series the sink pushes, with a real Alertmanager notifying
// a webhook: a box that stops pushing is reported silent; an hour over the limit
// fires and resolves with the next hour's value; and an hour over the limit replayed
// from an older backlog fires nothing.
func TestPushRulesOnPushedSeries(t *testing.T) {
	hook := testsvc.StartWebhook(t)
	am := testsvc.StartAlertmanager(t, fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, gateway, device]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: true}]
`, hook.URL+"/oncall"))
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true,
		RuleFiles: []string{pushRules(t)}, EvalInterval: 500 * time.Millisecond, AlertmanagerURL: am.URL})
	s := newSink(t, prom, t.TempDir())
	write := func(rs ...reading.Reading) {
		t.Helper()
		if err := s.Write(t.Context(), rs); err != nil {
			t.Fatal(err)
		}
	}

	// The box pushes its health readings every 200 ms, then stops.
	for start := time.Now(); time.Since(start) < 2*time.Second; time.Sleep(200 * time.Millisecond) {
		write(reading.New(time.Now(), "park-3", reading.HealthDevice, "uptime", time.Since(start).Seconds()))
		if st := alertOf(t, prom, "PushedBoxSilent", "gateway", "box-7"); st != "" {
			t.Fatalf("PushedBoxSilent %s while the box pushes", st)
		}
	}
	waitAlert(t, prom, "PushedBoxSilent", "gateway", "box-7", "firing")
	if _, a := hook.WaitAlert(t, 30*time.Second, "PushedBoxSilent", "firing"); a.Labels["gateway"] != "box-7" || a.Labels["site"] != "park-3" {
		t.Errorf("PushedBoxSilent notified with labels %v, want gateway box-7, site park-3", a.Labels)
	}

	// An hour over the limit, then the next hour under it.
	write(reading.New(time.Now(), "park-3", "noise-1", "exceedance_1h", 4))
	waitAlert(t, prom, "PushedNoiseHourOverLimit", "device", "noise-1", "firing")
	hook.WaitAlert(t, 30*time.Second, "PushedNoiseHourOverLimit", "firing")
	write(reading.New(time.Now(), "park-3", "noise-1", "exceedance_1h", -1))
	waitAlert(t, prom, "PushedNoiseHourOverLimit", "device", "noise-1", "")
	hook.WaitAlert(t, 30*time.Second, "PushedNoiseHourOverLimit", "resolved")

	// A backlog: noise-2's hour over the limit, stamped beyond the rule's range, arrives
	// with noise-3's current one. noise-3 fires; noise-2 never does.
	write(reading.New(time.Now().Add(-30*time.Second), "park-3", "noise-2", "exceedance_1h", 5),
		reading.New(time.Now(), "park-3", "noise-3", "exceedance_1h", 6))
	waitAlert(t, prom, "PushedNoiseHourOverLimit", "device", "noise-3", "firing")
	hook.Wait(t, 30*time.Second, func(msgs []testsvc.WebhookMessage) bool {
		for _, m := range msgs {
			for _, a := range m.Alerts {
				if a.Labels["device"] == "noise-3" {
					return true
				}
			}
		}
		return false
	})
	if st := alertOf(t, prom, "PushedNoiseHourOverLimit", "device", "noise-2"); st != "" {
		t.Errorf("PushedNoiseHourOverLimit %s for an hour replayed from an older backlog", st)
	}
	for _, m := range hook.Messages() {
		for _, a := range m.Alerts {
			if a.Labels["device"] == "noise-2" {
				t.Errorf("notified %s for an hour replayed from an older backlog: %v", a.Status, a.Labels)
			}
		}
	}
	if st := s.Stats(); st.DeadLettered != 0 {
		t.Errorf("Stats() = %+v, want nothing dead-lettered", st)
	}
}
