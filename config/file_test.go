package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/envgate/envgate/internal/testsvc"
)

// withTimeout runs f and fails the test if it has not returned within d: the old
// Load blocked forever on a FIFO (issue 10). On timeout it opens fifo for writing and
// closes it, which ends a blocked open or read, so the test ends too.
func withTimeout(t *testing.T, d time.Duration, fifo string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("still blocked after %v on the FIFO %s", d, fifo)
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-done
	}
}

// TestLoadRefusesWhatIsNotARegularFile is the regression test of issue 10: "-c
// /dev/zero" ran out of memory, a FIFO as the config, token_file, password_file or
// profile file hung forever, and a 50 MB config took 2.6 GB.
func TestLoadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("gateway: {id: a}\n"+strings.Repeat("# padding\n", int(MaxConfigFile)/10)), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(path, want string) {
		t.Helper()
		withTimeout(t, 10*time.Second, fifo, func() {
			_, err := Load(path)
			if err == nil || err.Error() != want {
				t.Errorf("Load(%s) = %v, want %s", path, err, want)
			}
		})
	}
	check(fifo, "read config: "+fifo+" is a named pipe (FIFO), not a regular file")
	check("/dev/zero", "read config: /dev/zero is a device, not a regular file")
	check(dir, "read config: "+dir+" is a directory, not a regular file")
	check(big, "read config: "+big+" is larger than 1MiB")

	// Every file the config names goes through the same check.
	cfg := filepath.Join(dir, "envgate.yaml")
	writeConfig := func(s string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(`gateway: {id: a}
sinks:
  - name: s
    influxdb: {url: "http://h:8086", bucket: b, token_file: fifo}
mqtt:
  - name: m
    broker: tcp://h:1883
    client_id: c
    username: u
    password_file: fifo
    subscriptions:
      - {topic: "a/b", device: d, site: s, format: number, quantity: noise_laeq}
profile_files: [fifo]
`)
	withTimeout(t, 10*time.Second, fifo, func() {
		_, err := Load(cfg)
		got := errLines(err)
		for _, want := range []string{
			"sinks[0].influxdb.token_file (line 4): cannot read token: " + fifo + " is a named pipe (FIFO), not a regular file\n",
			"mqtt[0].password_file (line 10): cannot read password: " + fifo + " is a named pipe (FIFO), not a regular file\n",
			"profile_files[0] (line 13): cannot read profile: " + fifo + " is a named pipe (FIFO), not a regular file\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("problems lack %q; got:\n%s", want, got)
			}
		}
	})
}

// TestReadFile checks the shared reader at its limit.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("12345678"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 8); err != nil || string(b) != "12345678" {
		t.Errorf("ReadFile(8 bytes, limit 8) = %q, %v", b, err)
	}
	if _, err := ReadFile(p, 7); err == nil || err.Error() != p+" is larger than 7B" {
		t.Errorf("ReadFile(8 bytes, limit 7) = %v, want larger than 7B", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(link, 8); err != nil || string(b) != "12345678" {
		t.Errorf("ReadFile(symlink to a regular file) = %q, %v", b, err)
	}
	if _, err := ReadFile(filepath.Join(dir, "nope"), 8); err == nil || !strings.HasPrefix(err.Error(), "open ") {
		t.Errorf("ReadFile(missing) = %v, want an open error", err)
	}
}

// TestOpenFileSwappedForATerminal replaces a regular file with a link to a terminal
// between OpenFile's check of the path and its open (issue 10 review). The open must
// not block, must not make the terminal the process's controlling terminal (which a
// service, a session leader without one, would acquire by a plain open), and the file
// must be refused without a read. It runs in a child process that is a session leader
// without a controlling terminal, as envgate is under systemd.
func TestOpenFileSwappedForATerminal(t *testing.T) {
	if os.Getenv("ENVGATE_TEST_CTTY_CHILD") == "" {
		cmd := testsvc.SelfCommand(t, "-test.run=^TestOpenFileSwappedForATerminal$", "-test.v")
		cmd.Env = append(os.Environ(), "ENVGATE_TEST_CTTY_CHILD=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("child: %v\n%s", err, out)
		} else if strings.Contains(string(out), "SKIP") {
			testsvc.SkipOrFail(t, "child skipped:\n%s", out)
		}
		return
	}
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testsvc.SkipOrFail(t, "no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock pty: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	tty := fmt.Sprintf("/dev/pts/%d", n)
	if f, err := os.Open("/dev/tty"); err == nil {
		f.Close()
		t.Fatal("the child has a controlling terminal before the test")
	}

	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	afterStat = func(name string) {
		if err := os.Remove(name); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(tty, name); err != nil {
			t.Error(err)
		}
	}
	defer func() { afterStat = nil }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := ReadFile(p, MaxSecretFile); err == nil || err.Error() != p+" is a device, not a regular file" {
			t.Errorf("ReadFile(swapped for %s) = %v, want %s is a device, not a regular file", tty, err, p)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile still blocked after 10s on a terminal")
	}
	if f, err := os.Open("/dev/tty"); err == nil {
		f.Close()
		t.Errorf("opening %s made it the controlling terminal", tty)
	}
}
