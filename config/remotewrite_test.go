package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/remotewrite"
)

// remoteWriteConfig is a config with one remote-write sink whose block ends in block.
func remoteWriteConfig(block string) string {
	return `
gateway: {id: box-1, site: canal, state_dir: /var/lib/envgate}
sinks:
  - name: central
    prometheus_remote_write:
      url: http://prom.example:9090/api/v1/write
` + block
}

// Issue 15: a prometheus_remote_write sink gets the defaults of docs/config.md, reads
// its secret files, and every problem is reported at its key.
func TestRemoteWrite(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(remoteWriteConfig("      bearer_token_file: token\n      headers: [{name: X-Scope-OrgID, value: district-9}]\n")),
		filepath.Join(dir, "envgate.yaml"))
	if err != nil {
		t.Fatalf("Parse: %s", errLines(err))
	}
	x := cfg.Sinks[0].PrometheusRemoteWrite
	if x.BearerToken.Reveal() != "tok" || x.BatchSize != 1000 || x.Timeout != 10*time.Second || x.RetryMax != 2*time.Minute ||
		x.DeadLetter != "/var/lib/envgate/deadletter/central.lp" || x.DeadLetterKeep != 3 || len(x.Headers) != 1 {
		t.Errorf("defaults and token file: %+v", x)
	}

	check := func(block, want string) {
		t.Helper()
		_, err := Parse([]byte(remoteWriteConfig(block)), filepath.Join(dir, "envgate.yaml"))
		if err == nil || !strings.Contains(errLines(err), want) {
			t.Errorf("block %q: got\n%s\nwant a line containing %q", block, errLines(err), want)
		}
	}
	p := "sinks[0].prometheus_remote_write."
	check("      bearer_token: x\n      bearer_token_file: token\n", p+"bearer_token_file (line 8): set bearer_token or bearer_token_file, not both")
	check("      password: x\n      password_file: token\n", p+"password_file (line 8): set password or password_file, not both")
	check("      password: x\n", p+"password (line 7): only with username")
	check("      bearer_token: x\n      username: u\n", p+"username (line 8): set bearer_token or username, not both")
	check("      headers: [{name: Authorization, value: x}]\n", p+"headers[0].name (line 7): is set by the sink")
	check("      headers: [{name: \"bad name\", value: x}]\n", p+"headers[0].name (line 7): must be an HTTP header name")
	check("      bearer_token_file: missing\n", p+"bearer_token_file (line 7): cannot read token")
	check("      batch_size: 0\n", p+"batch_size (line 7): must be between 1 and 50000")
	check("      retry_initial: 1m\n      retry_max: 1s\n", p+"retry_max (line 8): must be >= retry_initial (1m0s)")
	check("    influxdb: {url: \"http://127.0.0.1:8086\", bucket: b}\n", "sinks[0] (line 4): has 2 sink kind blocks")

	for url, want := range map[string]string{
		"ftp://prom.example/api/v1/write":           "must be an http or https URL",
		"http://user:pw@prom.example/api/v1/write":  "must not hold a user or password",
		"http://prom.example/api/v1/write?tenant=a": "must not have a query",
	} {
		_, err := Parse([]byte(strings.Replace(remoteWriteConfig(""), "http://prom.example:9090/api/v1/write", url, 1)), "x.yaml")
		if err == nil || !strings.Contains(errLines(err), p+"url (line 6): "+want) {
			t.Errorf("url %s: got\n%s\nwant %q", url, errLines(err), want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("url %s: the error quotes the password: %v", url, err)
		}
	}
}

// Issue 15: the metrics push keys. Defaults: every 15 s, job envgate, the rules' list;
// metrics_interval: 0 is the one switch that turns it off (and then the other keys are
// not checked); every bad value is reported at its key.
func TestRemoteWriteMetricsPush(t *testing.T) {
	cfg, err := Parse([]byte(remoteWriteConfig("")), "x.yaml")
	if err != nil {
		t.Fatalf("Parse: %s", errLines(err))
	}
	x := cfg.Sinks[0].PrometheusRemoteWrite
	if x.MetricsInterval != 15*time.Second || x.MetricsJob != "envgate" || !slices.Equal(x.Metrics, remotewrite.DefaultMetrics) {
		t.Errorf("defaults: metrics_interval %v, metrics_job %q, metrics %v", x.MetricsInterval, x.MetricsJob, x.Metrics)
	}
	cfg, err = Parse([]byte(remoteWriteConfig("      metrics_interval: 0s\n      metrics: []\n      metrics_job: \"\"\n")), "x.yaml")
	if err != nil {
		t.Fatalf("metrics_interval 0 with empty metrics: %s", errLines(err))
	}
	if x := cfg.Sinks[0].PrometheusRemoteWrite; x.MetricsInterval != 0 {
		t.Errorf("metrics_interval: 0 became %v", x.MetricsInterval)
	}
	cfg, err = Parse([]byte(remoteWriteConfig("      metrics_interval: 1m\n      metrics_job: city\n      metrics: [envgate_device_up]\n")), "x.yaml")
	if err != nil {
		t.Fatalf("Parse: %s", errLines(err))
	}
	if x := cfg.Sinks[0].PrometheusRemoteWrite; x.MetricsInterval != time.Minute || x.MetricsJob != "city" || !slices.Equal(x.Metrics, []string{"envgate_device_up"}) {
		t.Errorf("set keys: %+v", x)
	}

	check := func(block, want string) {
		t.Helper()
		_, err := Parse([]byte(remoteWriteConfig(block)), "x.yaml")
		if err == nil || !strings.Contains(errLines(err), want) {
			t.Errorf("block %q: got\n%s\nwant a line containing %q", block, errLines(err), want)
		}
	}
	p := "sinks[0].prometheus_remote_write."
	check("      metrics_interval: -1s\n", p+"metrics_interval (line 7): must be 0 (no metrics push) or between 1s and 2m0s")
	check("      metrics_interval: 500ms\n", p+"metrics_interval (line 7): must be 0 (no metrics push) or between 1s and 2m0s")
	check("      metrics_interval: 6m\n", p+"metrics_interval (line 7): must be 0 (no metrics push) or between 1s and 2m0s")
	check("      metrics_job: \"\"\n", p+"metrics_job (line 7): must be a non-empty UTF-8 string")
	check("      metrics: []\n", p+"metrics (line 7): must name at least one metric (metrics_interval: 0 turns the metrics push off)")
	check("      metrics: [envgate_device_up, \"bad name\"]\n", p+"metrics[1] (line 7): must be a Prometheus metric name")
	check("      metrics: [envgate_reading_value]\n", p+"metrics[0] (line 7): is pushed reading by reading already")
	check("      metrics:\n        - envgate_device_up\n        - envgate_device_up\n", p+"metrics[1] (line 9): envgate_device_up is listed twice")
}
