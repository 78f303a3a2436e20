// Package testsvc starts real services (InfluxDB, ...) for integration tests: each on
// free loopback ports, with its files in t.TempDir(), stopped by t.Cleanup.
//
// A missing service binary skips the test locally and fails it under CI=true, so a CI
// image that lost a binary cannot turn the integration suite green by skipping it.
package testsvc

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// inCI reports whether the tests run under CI, where a missing service is a failure.
func inCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test, or fails it under CI=true: a component the test needs is
// missing, and in CI that is a failure, never a skip.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Binary finds the executable of a service: on PATH, then in $GOBIN,
// $(go env GOPATH)/bin and /root/go/bin. If it is missing, Binary fails the test under
// CI=true and skips it otherwise; both messages carry installHint.
func Binary(t testing.TB, name, installHint string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := goPath(); d != "" {
		for _, p := range filepath.SplitList(d) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	dirs = append(dirs, "/root/go/bin")
	seen := map[string]bool{}
	dirs = slices.DeleteFunc(dirs, func(d string) bool { defer func() { seen[d] = true }(); return seen[d] })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	SkipOrFail(t, "%s not found on PATH or in %s; install it: %s", name, strings.Join(dirs, ", "), installHint)
	return ""
}

// goPath returns $(go env GOPATH), or $GOPATH when the go command is not available.
func goPath() string {
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" {
			return p
		}
	}
	return os.Getenv("GOPATH")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, outside the
// ephemeral range (portRange), and reserved for this process until it exits: never
// returned again by FreePort, here or in another test process (the packages' test
// binaries run side by side). A service stopped and started again on its port (a broker
// or InfluxDB restarted by a test) finds it still free, unless something that does not
// ask FreePort took it.
func FreePort(t testing.TB) int {
	t.Helper()
	low, high := portRange()
	for range 500 {
		port := low + rand.IntN(high-low)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		if !reservePort(port) {
			continue // another test process holds it
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // in use
		}
		l.Close()
		return port
	}
	t.Fatalf("no free loopback port in %d..%d", low, high)
	return 0
}

// handedOut is every port FreePort tried in this process.
var handedOut sync.Map

// reserved holds the lock files of the ports this process reserved, open (and
// flock(2)ed) until it exits, when the kernel releases the locks.
var reserved []*os.File

// reservePort takes an exclusive lock on a file named after port in a directory shared
// by the test processes of this machine; it reports false if another live process holds
// it. A file left by a process that exited is unlocked and taken again.
func reservePort(port int) bool {
	dir := filepath.Join(os.TempDir(), "envgate-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true // no reservation possible: the bind check alone decides
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	reservedMu.Lock()
	reserved = append(reserved, f)
	reservedMu.Unlock()
	return true
}

var reservedMu sync.Mutex

// portRange is where FreePort looks: below the kernel's ephemeral range, which the
// source ports of outgoing connections come from. A port taken from that range (by
// listening on port 0) can be given to a connection some other test opens between
// FreePort's return and the service's bind ("address already in use"). The range is
// 20000 up to the ephemeral range's start (32768 by default).
func portRange() (low, high int) {
	low, high = 20000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var from, to int
		if _, err := fmt.Sscan(string(b), &from, &to); err == nil && from > 0 {
			high = from
		}
	}
	if high-low < 1000 { // an unusual ephemeral range: take what is below it
		low = max(1024, high-5000)
	}
	return low, high
}

// tail returns the last n lines of the file at path, or a note why it cannot.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
