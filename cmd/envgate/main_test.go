package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// These tests drive envgate the way an operator does: through its subcommands, exit
// codes, stdout/stderr, signals, /healthz and /metrics. The in-process run() covers what
// needs no process of its own; the built binary covers signals, exit codes and serving.

// cli runs the command line args in-process and returns the exit code, stdout and stderr.
func cli(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-v"} {
		code, out, errOut := cli(arg)
		if want := "envgate " + version + "\n"; code != 0 || out != want || errOut != "" {
			t.Errorf("envgate %s = %d, stdout %q, stderr %q; want 0, %q, nothing", arg, code, out, errOut, want)
		}
	}
}

func TestUsage(t *testing.T) {
	code, out, errOut := cli()
	if code != 2 || out != "" || errOut != usage {
		t.Errorf("envgate (no args) = %d, stdout %q, stderr %q; want 2, nothing, the usage", code, out, errOut)
	}
	for _, arg := range []string{"help", "-h", "--help"} {
		code, out, errOut := cli(arg)
		if code != 0 || out != usage || errOut != "" {
			t.Errorf("envgate %s = %d, stdout %q, stderr %q; want 0, the usage, nothing", arg, code, out, errOut)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	code, out, errOut := cli("frobnicate", "-c", "x.yaml")
	if code != 2 || out != "" {
		t.Errorf("envgate frobnicate = %d, stdout %q; want 2, nothing", code, out)
	}
	if !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "usage:") {
		t.Errorf("envgate frobnicate: stderr %q does not name the command and show the usage", errOut)
	}
}

func TestSubcommandUsageErrors(t *testing.T) {
	check := func(wantCode int, wantErr string, args ...string) {
		t.Helper()
		code, out, errOut := cli(args...)
		if code != wantCode || out != "" || !strings.Contains(errOut, wantErr) {
			t.Errorf("envgate %q = %d, stdout %q, stderr %q; want %d, nothing, stderr containing %q",
				args, code, out, errOut, wantCode, wantErr)
		}
	}
	check(2, "envgate check: -c FILE is required", "check")
	check(2, "flag provided but not defined: -bogus", "check", "-bogus")
	check(2, "envgate run: -c FILE is required", "run")
	check(2, "flag provided but not defined: -bogus", "run", "-bogus")
	check(2, "flag provided but not defined: -bogus", "demo", "-bogus")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	check(1, "envgate run: config "+missing+":\n  read config: open "+missing+": no such file or directory\n",
		"run", "-c", missing)
}

// exampleEnv sets the environment variables the files in config/examples read, with
// secret as the token, both inline and in a token file.
func exampleEnv(t *testing.T, secret string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "influx-token")
	if err := os.WriteFile(tokenFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INFLUX_URL", "http://127.0.0.1:8086")
	t.Setenv("ENVGATE_INFLUX_TOKEN_FILE", tokenFile)
	t.Setenv("INFLUX_TOKEN", secret)
	// check reads the certificate files as run does, so they must exist.
	ca := testsvc.NewTestCA(t)
	cert, key := ca.Issue(t, "box023", false)
	t.Setenv("ENVGATE_MQTT_CA_FILE", ca.CertFile)
	t.Setenv("ENVGATE_MQTT_CERT_FILE", cert)
	t.Setenv("ENVGATE_MQTT_KEY_FILE", key)
}

// TestCheckExamples checks every example config with `envgate check`: exit 0 and one
// summary line naming the gateway and counting devices and sinks, and no token in it.
func TestCheckExamples(t *testing.T) {
	const secret = "example-s3cr3t-token"
	exampleEnv(t, secret)
	files, err := filepath.Glob("../../config/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	for _, path := range files {
		cfg, err := config.Load(path)
		if err != nil {
			t.Errorf("config.Load(%s): %v", path, err)
			continue
		}
		code, out, errOut := cli("check", "-c", path)
		want := fmt.Sprintf("%s: ok (gateway %s, %d device(s), %d sink(s))\n", path, cfg.Gateway.ID, deviceCount(cfg), len(cfg.Sinks))
		if code != 0 || out != want || errOut != "" {
			t.Errorf("envgate check -c %s = %d, stdout %q, stderr %q; want 0, %q, nothing", path, code, out, errOut, want)
		}
		if strings.Contains(out+errOut, secret) {
			t.Errorf("envgate check -c %s shows the token", path)
		}
	}
}

// brokenEnv sets the environment config/testdata/broken/config.yaml expects (as the
// config package's golden test does), with secret as its token.
func brokenEnv(t *testing.T, secret string) {
	t.Helper()
	t.Setenv("ENVGATE_TEST_TOKEN", secret)
	t.Setenv("ENVGATE_TEST_UNSET", "") // restores the variable after the test
	os.Unsetenv("ENVGATE_TEST_UNSET")
}

// wantLines returns the lines of the golden file at path.
func wantLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// TestCheckBroken checks that `envgate check` prints every problem of the broken
// config, prefixed with the file's path, then the count, exits 1, and never shows the
// token that came from the environment. `envgate run` refuses the same file with the
// same problems on stderr.
func TestCheckBroken(t *testing.T) {
	const secret = "broken-s3cr3t-token"
	brokenEnv(t, secret)
	const path = "../../config/testdata/broken/config.yaml"
	lines := wantLines(t, "../../config/testdata/broken/want.err")

	var want strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&want, "%s: %s\n", path, l)
	}
	fmt.Fprintf(&want, "%s: %d problem(s)\n", path, len(lines))
	code, out, errOut := cli("check", "-c", path)
	if code != 1 || errOut != "" {
		t.Errorf("envgate check -c %s = %d, stderr %q; want 1, nothing", path, code, errOut)
	}
	if out != want.String() {
		t.Errorf("envgate check -c %s stdout:\n%s\nwant:\n%s", path, out, want.String())
	}
	if strings.Contains(out+errOut, secret) {
		t.Errorf("envgate check shows the token:\n%s%s", out, errOut)
	}

	want.Reset()
	fmt.Fprintf(&want, "envgate run: config %s:\n", path)
	for _, l := range lines {
		fmt.Fprintf(&want, "  %s\n", l)
	}
	code, out, errOut = cli("run", "-c", path)
	if code != 1 || out != "" || errOut != want.String() {
		t.Errorf("envgate run -c %s = %d, stdout %q, stderr:\n%s\nwant 1, nothing, stderr:\n%s", path, code, out, errOut, want.String())
	}
	if strings.Contains(errOut, secret) {
		t.Errorf("envgate run shows the token:\n%s", errOut)
	}
}

// TestCheckHidesSecretsFromEnv feeds a value from the environment into fields that
// fail to decode or validate, and into the token, and checks the value shows nowhere.
func TestCheckHidesSecretsFromEnv(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	t.Setenv("ENVGATE_CLI_SECRET", secret)
	t.Setenv("ENVGATE_CLI_SECRET_URL", "ftp://user:"+secret+"@influx.example")
	path := filepath.Join(t.TempDir(), "box.yaml")
	writeFile(t, path, `gateway:
  id: box-1
  site: site-1
  state_dir: ${ENVGATE_CLI_SECRET}
sinks:
  - name: city
    influxdb:
      url: ${ENVGATE_CLI_SECRET_URL}
      bucket: envgate
      token: ${ENVGATE_CLI_SECRET}
      timeout: ${ENVGATE_CLI_SECRET}
      batch_size: ${ENVGATE_CLI_SECRET}
      precision: ${ENVGATE_CLI_SECRET}
devices:
  - name: noise-1
    interval: ${ENVGATE_CLI_SECRET}
    sim: {kind: noise}
`)
	code, out, errOut := cli("check", "-c", path)
	if code != 1 || !strings.Contains(out, "problem(s)") {
		t.Fatalf("envgate check -c %s = %d, stdout:\n%s\nwant 1 and problems", path, code, out)
	}
	if strings.Contains(out+errOut, secret) {
		t.Errorf("envgate check shows the secret:\n%s%s", out, errOut)
	}
	if code, _, errOut := cli("run", "-c", path); code != 1 || strings.Contains(errOut, secret) {
		t.Errorf("envgate run -c %s = %d, stderr:\n%s\nwant 1 and no secret", path, code, errOut)
	}
}

// ---- the binary ----

// skipSubprocess skips a test that runs the envgate binary under -short, unless CI=true.
func skipSubprocess(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("runs the envgate binary; skipped with -short")
	}
}

// waitFor polls cond every 50ms until it returns true or timeout passes, and reports
// whether it returned true.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-deadline.C:
			return cond()
		case <-t.Context().Done():
			return false
		case <-tick.C:
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cleanEnv returns this process's environment without the ENVGATE_* variables, which
// envgate reads, plus kv ("NAME=value"). The shift of a fakeclock build stays: the
// binary and the test share one clock.
func cleanEnv(kv ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "ENVGATE_") || strings.HasPrefix(e, clock.EnvOffset+"=") {
			env = append(env, e)
		}
	}
	return append(env, kv...)
}

// proc is a running envgate binary.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr testsvc.LogBuffer
	done           chan struct{} // closed when the process has exited
}

// startEnvgate starts bin with args and env; t.Cleanup kills it if it still runs.
func startEnvgate(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start envgate %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		_ = p.cmd.Wait() // the exit status is read from ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("envgate %s stderr:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process to exit by itself and returns its exit
// code and how long the wait took. Past timeout it kills the process and fails the test.
func (p *proc) wait(t *testing.T, timeout time.Duration) (code int, took time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("envgate still running %v later; killed it", timeout)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// stop sends SIGTERM and returns the exit code and how long the process took to exit.
// A process still running after limit is killed and fails the test.
func (p *proc) stop(t *testing.T, limit time.Duration) (code int, took time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	return p.wait(t, limit)
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// get returns the status and body of GET url; status 0 when there was no answer.
func get(url string) (int, string) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// waitMetrics waits until the gateway at addr answers /healthz with 200 and its
// /metrics satisfies ok, and returns that /metrics body. It fails the test if the
// process exits first or timeout passes.
func (p *proc) waitMetrics(t *testing.T, addr string, timeout time.Duration, ok func(metrics string) bool) string {
	t.Helper()
	var body string
	up := waitFor(t, timeout, func() bool {
		if p.exited() {
			return true
		}
		if code, _ := get("http://" + addr + "/healthz"); code != http.StatusOK {
			return false
		}
		var code int
		code, body = get("http://" + addr + "/metrics")
		return code == http.StatusOK && ok(body)
	})
	if p.exited() {
		t.Fatalf("envgate exited (%v) before serving on %s", p.cmd.ProcessState, addr)
	}
	if !up {
		t.Fatalf("no healthy gateway with the expected metrics on %s within %v; last /metrics:\n%s", addr, timeout, body)
	}
	return body
}

// metricValue returns the value of the sample series (name and labels exactly as
// exposed, e.g. `envgate_sink_failing{sink="city"}`) in a /metrics body.
func metricValue(body, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// segments returns the segment files of the buffer in state that hold data.
func segments(t *testing.T, state string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(state, "buffer", "segments", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	var full []string
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() > 0 {
			full = append(full, f)
		}
	}
	return full
}

type runDevice struct{ name, kind, interval string }

var runDevices = []runDevice{
	{"noise-1", "noise", "100ms"},
	{"air-1", "air", "200ms"},
	{"water-1", "water", "300ms"},
}

// runConfig is a small box: the devices of runDevices, state in state, HTTP on listen,
// and sinks (a YAML list, "" for none).
func runConfig(state, listen string, shutdown time.Duration, sinks string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `gateway:
  id: box-cli
  site: canal-cli
  state_dir: %s
  listen: %s
  shutdown_timeout: %v
  health_interval: 1s
buffer:
  sync_interval: 100ms
  cursor_interval: 100ms
  segment_bytes: 64KiB
`, state, listen, shutdown)
	if sinks != "" {
		b.WriteString("sinks:\n" + sinks)
	}
	b.WriteString("devices:\n")
	for _, d := range runDevices {
		fmt.Fprintf(&b, "  - name: %s\n    interval: %s\n    sim: {kind: %s}\n", d.name, d.interval, d.kind)
	}
	return b.String()
}

func loopback(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t)) }

// TestBinaryExitCodes checks that the exit codes reach the shell.
func TestBinaryExitCodes(t *testing.T) {
	skipSubprocess(t)
	bin := buildBinary(t)
	check := func(want int, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = cleanEnv("ENVGATE_TEST_TOKEN=x")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("envgate %q: %v", args, err)
		}
		if code := cmd.ProcessState.ExitCode(); code != want {
			t.Errorf("envgate %q exited %d, want %d; output:\n%s", args, code, want, out)
		}
	}
	check(0, "version")
	check(2)
	check(2, "frobnicate")
	check(0, "check", "-c", "../../config/examples/demo.yaml")
	check(1, "check", "-c", "../../config/testdata/broken/config.yaml")
	check(1, "run", "-c", filepath.Join(t.TempDir(), "missing.yaml"))
	check(2, "run")
}

// TestRunServesStopsAndResumes runs a box with simulated devices and no sink: /healthz
// and /metrics serve the devices' readings; SIGTERM stops it with exit 0 well within
// gateway.shutdown_timeout and leaves the buffer on disk; a restart with --listen
// serves on the new address, keeps every reading of the first run and appends more.
func TestRunServesStopsAndResumes(t *testing.T) {
	skipSubprocess(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	addr := loopback(t)
	const shutdown = 5 * time.Second
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, runConfig(state, addr, shutdown, ""))

	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath)
	body := p.waitMetrics(t, addr, 20*time.Second, func(m string) bool {
		for _, d := range runDevices {
			if !strings.Contains(m, `envgate_reading_value{device="`+d.name+`",`) {
				return false
			}
		}
		n, _ := metricValue(m, "envgate_buffer_appended_total")
		return n > 0
	})
	for _, d := range runDevices {
		series := fmt.Sprintf(`envgate_device_up{device=%q}`, d.name)
		if v, ok := metricValue(body, series); !ok || v != 1 {
			t.Errorf("/metrics: %s = %v (found %v), want 1", series, v, ok)
		}
	}
	if v, ok := metricValue(body, fmt.Sprintf(`envgate_build_info{gateway="box-cli",version=%q}`, "dev")); !ok || v != 1 {
		t.Errorf("/metrics: envgate_build_info for box-cli = %v (found %v), want 1", v, ok)
	}
	code, took := p.stop(t, shutdown+5*time.Second)
	if code != 0 || took > shutdown {
		t.Errorf("after SIGTERM envgate exited %d after %v; want 0 within %v", code, took, shutdown)
	}
	if logs := p.stderr.String(); !strings.Contains(logs, "stopped; unsent readings stay in the buffer") {
		t.Errorf("no clean-stop log line:\n%s", logs)
	}
	if segs := segments(t, state); len(segs) == 0 {
		t.Fatalf("no buffer segment with data under %s after the first run", state)
	}
	first := snapshot(t, state)
	if len(first) == 0 {
		t.Fatal("the buffer holds no readings after the first run")
	}

	// Resume on the same state directory; --listen overrides gateway.listen.
	addr2 := loopback(t)
	p = startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath, "--listen", addr2)
	p.waitMetrics(t, addr2, 20*time.Second, func(m string) bool {
		n, _ := metricValue(m, "envgate_buffer_appended_total")
		return n >= 10
	})
	if code, _ := get("http://" + addr + "/healthz"); code != 0 {
		t.Errorf("gateway.listen %s still answers (%d) with --listen %s", addr, code, addr2)
	}
	if code, took := p.stop(t, shutdown+5*time.Second); code != 0 || took > shutdown {
		t.Errorf("second run: after SIGTERM envgate exited %d after %v; want 0 within %v", code, took, shutdown)
	}
	second := snapshot(t, state)
	lost := 0
	for pt, v := range first {
		if got, ok := second[pt]; !ok || got != v {
			lost++
			if lost <= 5 {
				t.Errorf("reading %+v = %v of the first run: after the restart %v (present %v)", pt, v, got, ok)
			}
		}
	}
	if len(second) <= len(first) {
		t.Errorf("the buffer holds %d readings after the restart, %d before: the second run appended nothing", len(second), len(first))
	}
	t.Logf("first run buffered %d readings, both runs %d", len(first), len(second))
}

// TestRunSinkRefusesWrites runs a box whose InfluxDB answers every write with 401:
// /metrics raises envgate_sink_persistent_failure, the token shows in no log or
// metric, and SIGTERM still ends the process with exit 0 within
// gateway.shutdown_timeout, leaving the readings in the buffer.
func TestRunSinkRefusesWrites(t *testing.T) {
	skipSubprocess(t)
	const secret = "cli-s3cr3t-token"
	var writes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writes.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		// Echo the credentials, as a careless proxy might: envgate must not log them.
		fmt.Fprintf(w, `{"code":"unauthorized","message":"unauthorized access with %s"}`, r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)

	bin := buildBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	addr := loopback(t)
	const shutdown = 3 * time.Second
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, runConfig(state, addr, shutdown, fmt.Sprintf(`  - name: city
    influxdb:
      url: %s
      bucket: envgate
      token: ${ENVGATE_CLI_TEST_TOKEN}
      flush_interval: 50ms
      retry_initial: 50ms
      retry_max: 200ms
      auth_retry: 1m
`, srv.URL)))

	p := startEnvgate(t, bin, cleanEnv("ENVGATE_CLI_TEST_TOKEN="+secret), "run", "-c", cfgPath)
	body := p.waitMetrics(t, addr, 20*time.Second, func(m string) bool {
		v, _ := metricValue(m, `envgate_sink_persistent_failure{sink="city"}`)
		return v == 1
	})
	for series, want := range map[string]float64{
		`envgate_sink_failing{sink="city"}`:                        1,
		`envgate_sink_written_total{sink="city"}`:                  0,
		`envgate_sink_last_success_timestamp_seconds{sink="city"}`: 0,
	} {
		if v, ok := metricValue(body, series); !ok || v != want {
			t.Errorf("/metrics: %s = %v (found %v), want %v", series, v, ok, want)
		}
	}
	if v, _ := metricValue(body, `envgate_sink_unsent_readings{sink="city"}`); v <= 0 {
		t.Errorf(`/metrics: envgate_sink_unsent_readings{sink="city"} = %v, want > 0`, v)
	}
	if strings.Contains(body, secret) {
		t.Error("/metrics shows the token")
	}

	code, took := p.stop(t, shutdown+5*time.Second)
	if code != 0 || took > shutdown {
		t.Errorf("after SIGTERM envgate exited %d after %v; want 0 within gateway.shutdown_timeout %v", code, took, shutdown)
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, "sink refuses writes") {
		t.Errorf("no log line about the refusing sink:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("the logs show the token:\n%s", logs)
	}
	if writes.Load() == 0 {
		t.Error("the sink never tried to write")
	}
	if n := len(snapshot(t, state)); n == 0 {
		t.Error("the buffer is empty: the undelivered readings did not stay on disk")
	}
}

// TestDemo runs `envgate demo` without InfluxDB for 3 s: exit 0, a banner that says
// what it does and where, /metrics while it runs, and the buffer on disk.
func TestDemo(t *testing.T) {
	skipSubprocess(t)
	bin := buildBinary(t)
	state := filepath.Join(t.TempDir(), "demo-state")
	addr := loopback(t)
	p := startEnvgate(t, bin, cleanEnv(), "demo", "--duration", "3s", "--listen", addr, "--state", state)
	p.waitMetrics(t, addr, 3*time.Second, func(m string) bool {
		return strings.Contains(m, `envgate_reading_value{device="noise-1",quantity="la",`)
	})
	if code, _ := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("envgate demo exited %d, want 0", code)
	}
	out := p.stdout.String()
	for _, want := range []string{
		"simulated devices",
		"buffer:  " + filepath.Join(state, "buffer") + "\n",
		"http://" + addr + "/metrics",
		"no InfluxDB configured",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("envgate demo stdout lacks %q:\n%s", want, out)
		}
	}
	if segs := segments(t, state); len(segs) == 0 {
		t.Errorf("no buffer segment with data under %s", state)
	}
}

// TestDemoForwardsToInflux runs `envgate demo` for 4 s with ENVGATE_INFLUX_URL set to
// a real InfluxDB: after it exits, InfluxDB holds every noise level the demo buffered,
// with the same values.
func TestDemoForwardsToInflux(t *testing.T) {
	inf := testsvc.StartInflux(t)
	bin := buildBinary(t)
	state := filepath.Join(t.TempDir(), "demo-state")
	addr := loopback(t)
	p := startEnvgate(t, bin, cleanEnv("ENVGATE_INFLUX_URL="+inf.URL, "ENVGATE_INFLUX_BUCKET="+inf.Bucket),
		"demo", "--duration", "4s", "--listen", addr, "--state", state)
	if code, _ := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("envgate demo exited %d, want 0", code)
	}
	out := p.stdout.String()
	if want := "forwarding to InfluxDB " + inf.URL + ", bucket " + inf.Bucket; !strings.Contains(out, want) {
		t.Errorf("envgate demo stdout lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "no InfluxDB configured") {
		t.Errorf("envgate demo says no InfluxDB is configured:\n%s", out)
	}

	n := inf.Count(t, "noise", "la")
	if n == 0 {
		t.Fatal("InfluxDB holds no noise la points")
	}
	stored := inf.Points(t)
	buffered := 0
	for pt, v := range snapshot(t, state) {
		if pt.Measurement != "noise" || pt.Field != "la" {
			continue
		}
		buffered++
		if got, ok := stored[pt]; !ok || got != v {
			t.Errorf("buffered %+v = %v: InfluxDB has %v (present %v)", pt, v, got, ok)
		}
	}
	if n != buffered {
		t.Errorf("InfluxDB holds %d noise la points, the buffer %d", n, buffered)
	}
	t.Logf("InfluxDB holds %d noise la points", n)
}
