// Package alerts holds no Go code: it ships Prometheus rule files and an example
// Alertmanager configuration (docs/alerts.md). These tests check them with the real
// tools: promtool (syntax, templates, unit tests in tests/) and amtool (configuration,
// routing), plus a real Alertmanager for the inhibit rules, and the conventions the
// rules keep (annotations, documented, tested, rewritable durations).
package alerts

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/envgate/envgate/internal/testsvc"
)

const (
	alertmanagerExample = "alertmanager.example.yml"
	alertsDoc           = "../docs/alerts.md"
)

// ruleFile is the part of a Prometheus rule file these tests look at.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ruleFiles returns the shipped rule files, *.rules.yml.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.rules.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no *.rules.yml in alerts/ (%v)", err)
	}
	return files
}

// testFiles returns the promtool unit test files, tests/*.test.yml.
func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("tests", "*.test.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no tests/*.test.yml in alerts/ (%v)", err)
	}
	return files
}

// rules returns every rule of the shipped files, with the file it is in.
func rules(t *testing.T) map[string][]rule {
	t.Helper()
	out := map[string][]rule{}
	for _, f := range ruleFiles(t) {
		var rf ruleFile
		readYAML(t, f, &rf)
		for _, g := range rf.Groups {
			out[f] = append(out[f], g.Rules...)
		}
	}
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// run runs a tool and returns its standard output; it fails the test with both
// outputs when the tool fails. Standard error is left out of the result: amtool
// warns there about settings from /etc/amtool/config.yml.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, &stdout, &stderr)
	}
	return stdout.String()
}

func promtool(t *testing.T) string {
	t.Helper()
	return testsvc.Binary(t, "promtool", testsvc.PrometheusInstallHint)
}

func amtool(t *testing.T) string {
	t.Helper()
	return testsvc.Binary(t, "amtool", testsvc.AlertmanagerInstallHint)
}

func TestRulesCheck(t *testing.T) {
	out := run(t, promtool(t), append([]string{"check", "rules"}, ruleFiles(t)...)...)
	t.Logf("promtool check rules:\n%s", out)
}

func TestRulesUnitTests(t *testing.T) {
	out := run(t, promtool(t), append([]string{"test", "rules"}, testFiles(t)...)...)
	t.Logf("promtool test rules:\n%s", out)
}

func TestAlertmanagerConfigCheck(t *testing.T) {
	out := run(t, amtool(t), "check-config", alertmanagerExample)
	t.Logf("amtool check-config:\n%s", out)
}

// TestAlertmanagerRoutes checks which receivers the example sends each kind of alert to.
func TestAlertmanagerRoutes(t *testing.T) {
	bin := amtool(t)
	check := func(labels, want string) {
		t.Helper()
		args := append([]string{"config", "routes", "test", "--config.file=" + alertmanagerExample}, strings.Fields(labels)...)
		if got := strings.TrimSpace(run(t, bin, args...)); got != want {
			t.Errorf("route %s = %q, want %q", labels, got, want)
		}
	}
	check("alertname=QuietDistrictNoiseNight severity=page site=qd-1", "oncall")
	check("alertname=GatewayDown severity=page instance=gw1:9273", "oncall")
	check("alertname=NoisePeriodExceedance severity=warning site=road-2", "noise-team")
	check("alertname=NoisePeriodExceedance severity=warning site=canal-east-3", "canal-district-team,noise-team")
	check("alertname=SinkFailing severity=warning instance=gw1:9273", "noise-team")
	check("alertname=NoiseNightBurst severity=info site=road-2", "noise-log")
	check("alertname=Unknown", "noise-team")
}

// TestAlertmanagerExampleInhibits runs a real Alertmanager with the example
// configuration, its receivers pointed at a test webhook and its intervals shortened,
// and checks the inhibit rules and the delivery paths.
func TestAlertmanagerExampleInhibits(t *testing.T) {
	raw, err := os.ReadFile(alertmanagerExample)
	if err != nil {
		t.Fatal(err)
	}
	hook := testsvc.StartWebhook(t)
	conf := strings.ReplaceAll(string(raw), "http://alert-relay.example.invalid", hook.URL)
	conf = regexp.MustCompile(`(group_wait|group_interval): \S+`).ReplaceAllString(conf, "${1}: 1s")
	am := testsvc.StartAlertmanager(t, conf)

	alert := func(name, severity string, kv ...string) testsvc.AlertmanagerAlert {
		l := map[string]string{"alertname": name, "severity": severity}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return testsvc.AlertmanagerAlert{Labels: l}
	}
	// The sources first: an inhibition holds once its source is known.
	am.Post(t,
		alert("QuietDistrictNoiseNight", "page", "site", "qd-1", "instance", "gw1:9273"),
		alert("BufferDegraded", "page", "instance", "gw1:9273"),
		alert("SinkPersistentFailure", "warning", "instance", "gw3:9273", "sink", "influx"),
	)
	am.Post(t,
		// Same site and box as the page: inhibited.
		alert("NoisePeriodExceedance", "warning", "site", "qd-1", "instance", "gw1:9273"),
		// Another site: delivered.
		alert("NoisePeriodExceedance", "warning", "site", "road-2", "instance", "gw1:9273"),
		// Gateway warning of the paged box: inhibited; of another box: delivered.
		alert("BufferFilling", "warning", "instance", "gw1:9273"),
		alert("BufferFilling", "warning", "instance", "gw2:9273"),
		// Refused credentials explain failing writes of the same sink only.
		alert("SinkFailing", "warning", "instance", "gw3:9273", "sink", "influx"),
		alert("SinkFailing", "warning", "instance", "gw3:9273", "sink", "backup"),
		// Info is never inhibited, and goes to the log.
		alert("NoiseNightBurst", "info", "site", "qd-1", "instance", "gw1:9273"),
	)

	key := func(l map[string]string) string {
		return l["alertname"] + "/" + l["site"] + "/" + l["instance"] + "/" + l["sink"]
	}
	want := map[string]string{
		"QuietDistrictNoiseNight/qd-1/gw1:9273/": "active",
		"BufferDegraded//gw1:9273/":              "active",
		"SinkPersistentFailure//gw3:9273/influx": "active",
		"NoisePeriodExceedance/qd-1/gw1:9273/":   "suppressed",
		"NoisePeriodExceedance/road-2/gw1:9273/": "active",
		"BufferFilling//gw1:9273/":               "suppressed",
		"BufferFilling//gw2:9273/":               "active",
		"SinkFailing//gw3:9273/influx":           "suppressed",
		"SinkFailing//gw3:9273/backup":           "active",
		"NoiseNightBurst/qd-1/gw1:9273/":         "active",
	}
	// Alertmanager's inhibitor learns of the sources asynchronously: poll briefly.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		states := map[string]string{}
		for _, a := range am.Alerts(t) {
			states[key(a.Labels)] = a.Status
		}
		if maps.Equal(states, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert states:\n got %v\nwant %v", states, want)
		}
		<-tick.C
	}

	// Every active alert reaches its receiver, each exactly where the routes say.
	wantPath := map[string]string{
		"QuietDistrictNoiseNight/qd-1/gw1:9273/": "/oncall",
		"BufferDegraded//gw1:9273/":              "/oncall",
		"SinkPersistentFailure//gw3:9273/influx": "/noise-team",
		"NoisePeriodExceedance/road-2/gw1:9273/": "/noise-team",
		"BufferFilling//gw2:9273/":               "/noise-team",
		"SinkFailing//gw3:9273/backup":           "/noise-team",
		"NoiseNightBurst/qd-1/gw1:9273/":         "/noise-log",
	}
	delivered := func(msgs []testsvc.WebhookMessage) map[string][]string {
		got := map[string][]string{}
		for _, m := range msgs {
			for _, a := range m.Alerts {
				got[key(a.Labels)] = append(got[key(a.Labels)], m.Path)
			}
		}
		return got
	}
	msgs := hook.Wait(t, 30*time.Second, func(msgs []testsvc.WebhookMessage) bool {
		return len(delivered(msgs)) >= len(wantPath)
	})
	for k, paths := range delivered(msgs) {
		if w, ok := wantPath[k]; !ok || slices.ContainsFunc(paths, func(p string) bool { return p != w }) {
			t.Errorf("%s delivered to %v, want only %q", k, paths, w)
		}
	}
	if t.Failed() {
		t.Logf("notifications:\n%s", testsvc.Summarize(msgs))
	}
}

// TestRulesAnnotated checks that every alert can be acted on: a severity the routes
// know, and summary, description and runbook annotations, the runbook pointing at the
// alert's section of docs/alerts.md.
func TestRulesAnnotated(t *testing.T) {
	for file, rs := range rules(t) {
		for _, r := range rs {
			if r.Alert == "" {
				continue
			}
			where := fmt.Sprintf("%s: alert %s", file, r.Alert)
			if s := r.Labels["severity"]; s != "page" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q, want page, warning or info", where, s)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			if link := "docs/alerts.md#" + strings.ToLower(r.Alert); !strings.Contains(r.Annotations["runbook"], link) {
				t.Errorf("%s: runbook does not point to %s", where, link)
			}
		}
	}
}

// TestRulesDocumented checks that docs/alerts.md has a section for every alert and
// names every recording rule.
func TestRulesDocumented(t *testing.T) {
	b, err := os.ReadFile(alertsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for file, rs := range rules(t) {
		for _, r := range rs {
			switch {
			case r.Alert != "" && !strings.Contains(doc, "\n### "+r.Alert+"\n"):
				t.Errorf("%s: alert %s has no section \"### %s\" in %s", file, r.Alert, r.Alert, alertsDoc)
			case r.Record != "" && !strings.Contains(doc, "`"+r.Record+"`"):
				t.Errorf("%s: recording rule %s is not named in %s", file, r.Record, alertsDoc)
			}
		}
	}
}

// TestRulesHaveUnitTests checks that tests/*.test.yml has, for every alert, a case
// where it fires and one where it does not, and queries every recording rule.
func TestRulesHaveUnitTests(t *testing.T) {
	type testFile struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
			PromQLExprTest []struct {
				Expr string `yaml:"expr"`
			} `yaml:"promql_expr_test"`
		} `yaml:"tests"`
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	var exprs []string
	for _, f := range testFiles(t) {
		var tf testFile
		readYAML(t, f, &tf)
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
			for _, e := range tc.PromQLExprTest {
				exprs = append(exprs, e.Expr)
			}
		}
	}
	for file, rs := range rules(t) {
		for _, r := range rs {
			switch {
			case r.Alert != "" && !firing[r.Alert]:
				t.Errorf("%s: alert %s has no test case where it fires", file, r.Alert)
			case r.Alert != "" && !quiet[r.Alert]:
				t.Errorf("%s: alert %s has no test case where it does not fire", file, r.Alert)
			case r.Record != "" && !slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, r.Record) }):
				t.Errorf("%s: recording rule %s is not queried by any promql_expr_test", file, r.Record)
			}
		}
	}
}

// TestRulesRewritable keeps the rules easy to speed up for an end-to-end test that
// shortens durations by rewriting the text: every `for` and every range is one plain
// literal such as 15m (no 1h30m, no subqueries), and the recording rules use at most
// two distinct ranges.
func TestRulesRewritable(t *testing.T) {
	plain := regexp.MustCompile(`^[0-9]+[smh]$`)
	brackets := regexp.MustCompile(`\[[^\]]*\]`)
	for file, rs := range rules(t) {
		recordRanges := map[string]bool{}
		for _, r := range rs {
			name := r.Alert + r.Record
			if r.For != "" && !plain.MatchString(r.For) {
				t.Errorf("%s: %s: for: %q, want a plain literal like 10m", file, name, r.For)
			}
			for _, br := range brackets.FindAllString(r.Expr, -1) {
				if !plain.MatchString(strings.Trim(br, "[]")) {
					t.Errorf("%s: %s: range %s, want a plain literal like [15m]", file, name, br)
				}
				if r.Record != "" {
					recordRanges[br] = true
				}
			}
		}
		if len(recordRanges) > 2 {
			t.Errorf("%s: recording rules use ranges %v, want at most 2 distinct", file, slices.Sorted(maps.Keys(recordRanges)))
		}
	}
}

// TestRulesUseDocumentedMetrics keeps the rules in step with the gateway: every
// envgate_* metric a rule reads has a row in docs/metrics.md, which the metrics
// package's own test keeps in step with the registry. A renamed metric would otherwise
// leave an alert that can never fire.
func TestRulesUseDocumentedMetrics(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.rules.yml")
	name := regexp.MustCompile(`\benvgate_[a-z0-9_]*[a-z0-9]\b`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range slices.Compact(slices.Sorted(slices.Values(name.FindAllString(string(b), -1)))) {
			if !strings.Contains(string(doc), "| `"+m+"` |") {
				t.Errorf("%s reads %s, which docs/metrics.md does not list", f, m)
			}
		}
	}
}
