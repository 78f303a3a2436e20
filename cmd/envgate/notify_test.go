package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/testsvc"
)

// notifyListener is the service manager's end of $NOTIFY_SOCKET: every datagram
// received, in order.
type notifyListener struct {
	name string
	msgs chan string
}

func listenNotify(t *testing.T, name string) *notifyListener {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	l := &notifyListener{name: name, msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(l.msgs)
				return
			}
			l.msgs <- string(buf[:n])
		}
	}()
	return l
}

// next returns the next message that has a line with the given prefix, failing the
// test after limit; skipped messages are passed to seen, if set.
func (l *notifyListener) next(t *testing.T, prefix string, limit time.Duration, seen func(string)) string {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case m, ok := <-l.msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %s", prefix)
			}
			for _, line := range strings.Split(m, "\n") {
				if strings.HasPrefix(line, prefix) {
					return m
				}
			}
			if seen != nil {
				seen(m)
			}
		case <-deadline:
			t.Fatalf("no %s on the notify socket within %v", prefix, limit)
		}
	}
}

// Issue 13: run as a Type=notify service, envgate sends READY=1 only once its HTTP
// listener answers, a STATUS= line with each sink's backlog, WATCHDOG=1 at half of
// $WATCHDOG_USEC while it runs, and STOPPING=1 on SIGTERM.
func TestNotifyProtocol(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	l := listenNotify(t, filepath.Join(dir, "notify"))
	addr := loopback(t)
	cfg := filepath.Join(dir, "envgate.yaml")
	// A sink nobody listens on: its backlog grows and shows in STATUS=.
	sinks := fmt.Sprintf("  - name: lab\n    influxdb: {url: http://%s, bucket: b}\n", loopback(t))
	if err := os.WriteFile(cfg, []byte(runConfig(filepath.Join(dir, "state"), addr, 5*time.Second, sinks)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "NOTIFY_SOCKET="+l.name, "WATCHDOG_USEC=400000")
	p := startEnvgate(t, bin, env, "run", "-c", cfg)

	l.next(t, "READY=1", 30*time.Second, func(m string) { t.Errorf("message before READY=1: %q", m) })
	// The listener is bound when READY=1 is sent: a connection succeeds at once.
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("READY=1 came, but the HTTP listener does not accept: %v", err)
	}
	c.Close()
	if code, body := get("http://" + addr + "/healthz"); code != 200 {
		t.Errorf("/healthz after READY=1 = %d %q, want 200", code, body)
	}
	status := l.next(t, "STATUS=", 10*time.Second, nil)
	if !strings.Contains(status, "lab: ") || !strings.Contains(status, " unsent") {
		t.Errorf("STATUS line %q does not name the sink lab and its unsent readings", status)
	}
	// Keep-alives keep coming, about every 200 ms.
	for range 5 {
		l.next(t, "WATCHDOG=1", 5*time.Second, nil)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	l.next(t, "STOPPING=1", 10*time.Second, nil)
	if code, _ := p.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

// Without $NOTIFY_SOCKET nothing is sent, and $WATCHDOG_PID of another process turns
// the watchdog off (sd_watchdog_enabled(3)).
func TestWatchdogEvery(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"60000000", "", 30 * time.Second, false},
		{"60000000", me, 30 * time.Second, false},
		{"60000000", "1", 0, false},
		{"400000", "", 200 * time.Millisecond, false},
		{"0", "", 0, true},
		{"soon", "", 0, true},
	} {
		got, err := watchdogEvery(c.usec, c.pid)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("watchdogEvery(%q, %q) = %v, %v; want %v, error %v", c.usec, c.pid, got, err, c.want, c.err)
		}
	}
	if s, err := newNotifySocket(""); s != nil || err != nil {
		t.Errorf("newNotifySocket(\"\") = %v, %v; want nil, nil", s, err)
	}
	if _, err := newNotifySocket("vsock:2:1234"); err == nil {
		t.Error("newNotifySocket(vsock:...) = nil error, want one naming the unsupported kind")
	}
	var s *notifySocket
	if err := s.send("READY=1"); err != nil {
		t.Errorf("send without a socket = %v, want nil", err)
	}
}

// A NOTIFY_SOCKET in the abstract namespace ('@' for the NUL byte) is reached too.
func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@envgate-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	l := listenNotify(t, name)
	s, err := newNotifySocket(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.send("READY=1"); err != nil {
		t.Fatal(err)
	}
	l.next(t, "READY=1", 5*time.Second, nil)
}

// Issue 13: WATCHDOG=1 stops while the pipeline is wedged (a hung fsync, a wedged
// forwarder or bus: gateway.Pipeline.Wedged, tested in gateway/liveness_test.go),
// STATUS= says why, and the keep-alives resume once it progresses again.
func TestWatchdogWithheldWhileWedged(t *testing.T) {
	l := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	sock, err := newNotifySocket(l.name)
	if err != nil {
		t.Fatal(err)
	}
	n := &notifier{sock: sock, log: slog.New(slog.DiscardHandler), stop: make(chan struct{})}
	var wedged atomic.Bool
	var checks atomic.Int64
	n.wg.Go(func() {
		n.watchdog(20*time.Millisecond, func() error {
			checks.Add(1)
			if wedged.Load() {
				return errors.New("writer stalled for 31s in sync")
			}
			return nil
		})
	})
	defer n.close()
	l.next(t, "WATCHDOG=1", 5*time.Second, nil)
	wedged.Store(true)
	l.next(t, "STATUS=wedged", 5*time.Second, nil)
	// No keep-alive over many more checks.
	from := checks.Load()
	for checks.Load() < from+10 {
		select {
		case m := <-l.msgs:
			t.Fatalf("got %q while wedged", m)
		case <-time.After(10 * time.Millisecond):
		}
	}
	wedged.Store(false)
	l.next(t, "WATCHDOG=1", 5*time.Second, nil)
}

// repoFile returns the path of a file at the repository's root.
func repoFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// systemdAnalyze finds systemd-analyze (Debian package systemd).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	return testsvc.Binary(t, "systemd-analyze", "apt-get install systemd")
}

// Issue 13: systemd-analyze verify accepts the unit without a single warning. It runs
// in a scratch root holding the stock units and executables /usr/bin/envgate and
// /bin/kill, as an installed box would; verify exits 0 on unknown keys and bad values,
// so any output fails the test.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := systemdAnalyze(t)
	stock := "/usr/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(stock, "multi-user.target")); err != nil {
		testsvc.SkipOrFail(t, "no stock systemd units in %s (Debian package systemd): %v", stock, err)
	}
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, stock), os.DirFS(stock)); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(repoFile(t, "systemd/envgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{"etc/systemd/system/envgate.service", unit, 0o644},
		{"usr/bin/envgate", []byte("#!/bin/sh\n"), 0o755},
		{"bin/kill", []byte("#!/bin/sh\n"), 0o755}, // ExecReload (procps on a box)
	} {
		p := filepath.Join(root, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", "--root="+root, "envgate.service").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify systemd/envgate.service: %v\n%s", err, out)
	}
}

// Issue 13: the unit's system-call filter lets the read-only adjtimex(2) behind
// envgate_clock_synchronized through (gateway/metrics/clock_linux.go calls
// unix.Adjtimex, which is SYS_ADJTIMEX on amd64, arm64 and arm): it is in an allowed
// set, in no denied set, and ProtectClock= (which denies all of @clock) is off. The
// sets are expanded by systemd-analyze syscall-filter, from systemd's own tables.
func TestSystemdUnitAllowsAdjtimex(t *testing.T) {
	analyze := systemdAnalyze(t)
	f, err := os.Open(repoFile(t, "systemd/envgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var allow, deny []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch {
		case !ok || strings.HasPrefix(key, "#"):
		case key == "ProtectClock" && val != "no" && val != "false":
			t.Errorf("ProtectClock=%s denies @clock, adjtimex included", val)
		case key == "SystemCallFilter" && strings.HasPrefix(val, "~"):
			deny = append(deny, strings.Fields(val[1:])...)
		case key == "SystemCallFilter":
			allow = append(allow, strings.Fields(val)...)
		}
	}
	expand := func(names []string) []string {
		t.Helper()
		var calls []string
		for _, n := range names {
			if !strings.HasPrefix(n, "@") {
				calls = append(calls, n)
				continue
			}
			out, err := exec.Command(analyze, "syscall-filter", n).Output()
			if err != nil {
				t.Fatalf("systemd-analyze syscall-filter %s: %v", n, err)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if w := strings.TrimSpace(line); w != "" && !strings.HasPrefix(w, "#") && !strings.HasPrefix(w, "@") {
					calls = append(calls, w)
				}
			}
		}
		return calls
	}
	if len(allow) == 0 {
		t.Fatal("the unit has no SystemCallFilter allow list")
	}
	if !slices.Contains(expand(allow), "adjtimex") {
		t.Errorf("adjtimex is not in the unit's allowed calls (%s)", strings.Join(allow, " "))
	}
	if slices.Contains(expand(deny), "adjtimex") {
		t.Errorf("adjtimex is in the unit's denied calls (%s)", strings.Join(deny, " "))
	}
	// The reason for the extra line: @system-service alone lacks it (systemd 252).
	if slices.Contains(expand([]string{"@system-service"}), "adjtimex") {
		t.Log("note: @system-service now contains adjtimex; the extra SystemCallFilter=adjtimex line is redundant")
	}
}

// udevRule is one KEY{attr}=="value" assignment or match of a udev rule.
var udevRule = regexp.MustCompile(`^[A-Z_]+(\{[^}]+\})?(==|!=|=|\+=|-=|:=)"[^"]*"$`)

// The example udev rules parse as udev's syntax (udevadm verify needs systemd 254),
// and each names a stable symlink or sets an attribute.
func TestUdevRulesSyntax(t *testing.T) {
	data, err := os.ReadFile(repoFile(t, "systemd/99-envgate-serial.rules"))
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rules++
		for _, tok := range strings.Split(line, ", ") {
			if !udevRule.MatchString(tok) {
				t.Errorf("line %d: %q is not KEY==\"value\" or KEY=\"value\"", i+1, tok)
			}
		}
		if !strings.Contains(line, `SYMLINK+="`) && !strings.Contains(line, `ATTR{`) {
			t.Errorf("line %d names no symlink and sets no attribute: %s", i+1, line)
		}
	}
	if rules == 0 {
		t.Error("no rules")
	}
}
