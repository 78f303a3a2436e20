package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
