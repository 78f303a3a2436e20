//go:build linux

package bench_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/testsvc"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every
// Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo; `getconf CLK_TCK`).
const clockTick = 10 * time.Millisecond

// meter times a sub-benchmark's measured sections and adds up the CPU used in them by
// this process (envgate's side: sources, writer, buffer, forwarder, sink encoding, HTTP
// client) and by influxd.
type meter struct {
	b     *testing.B
	pid   int  // influxd; 0 if unknown
	timed bool // start and stop the benchmark timer too

	cpu0, inf0     time.Duration
	began          time.Time
	infOK          bool
	cpu, influxCPU time.Duration
	elapsed, last  time.Duration // all measured sections; the latest one
}

func (m *meter) start() {
	m.infOK = m.pid != 0
	if m.infOK {
		var err error
		if m.inf0, err = procCPU(m.pid); err != nil {
			m.b.Logf("influxd CPU: %v", err)
			m.infOK = false
		}
	}
	m.cpu0 = selfCPU(m.b)
	m.began = time.Now()
	if m.timed {
		m.b.StartTimer()
	}
}

func (m *meter) stop() {
	if m.timed {
		m.b.StopTimer()
	}
	m.last = time.Since(m.began)
	m.elapsed += m.last
	m.cpu += selfCPU(m.b) - m.cpu0
	if m.infOK {
		inf, err := procCPU(m.pid)
		if err != nil {
			m.b.Logf("influxd CPU: %v", err)
			m.pid = 0
			return
		}
		m.influxCPU += inf - m.inf0
	}
}

// result returns readings/s and CPU per reading over b.N measured sections of n readings.
func (m *meter) result(n int) result {
	total := float64(m.b.N * n)
	r := result{
		perSec: total / m.elapsed.Seconds(),
		cpu:    float64(m.cpu.Microseconds()) / total,
	}
	if m.pid != 0 {
		r.influxCPU, r.influxKnown = float64(m.influxCPU.Microseconds())/total, true
	}
	return r
}

// report reports result(n) as the benchmark's metrics and returns it.
func (m *meter) report(n int) result {
	r := m.result(n)
	m.b.ReportMetric(r.perSec, "readings/s")
	m.b.ReportMetric(r.cpu, "cpu-µs/reading")
	if r.influxKnown {
		m.b.ReportMetric(r.influxCPU, "influxd-cpu-µs/reading")
	}
	return r
}

// selfCPU returns the user plus system CPU time this process has used.
func selfCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns the user plus system CPU time process pid has used, from
// /proc/<pid>/stat (proc(5): utime and stime are fields 14 and 15, in clock ticks).
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Field 2, the command name, is in parentheses and may contain spaces.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, strconv.ErrSyntax
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, strconv.ErrSyntax
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, strconv.ErrSyntax
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// startInflux starts InfluxDB for a benchmark and finds its process (0 if not found,
// logged: its CPU is then not reported).
func startInflux(b *testing.B) (*testsvc.Influx, int) {
	b.Helper()
	inf := testsvc.StartInflux(b)
	pid := influxdPID(inf.Dir)
	if pid == 0 {
		b.Logf("influxd's pid not found under /proc; its CPU is not reported")
	}
	return inf, pid
}

// influxdPID finds the influxd that testsvc.StartInflux started with its files in dir;
// see childPID.
func influxdPID(dir string) int { return childPID("influxd", dir) }

// childPID finds a server that testsvc started with its files in dir: a child of this
// process whose executable's name ends in name and whose command line names a path
// under dir. testsvc does not expose the process, and dir (a t.TempDir) is unique to
// it. It returns 0 if none is found.
func childPID(name, dir string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) < 2 || !strings.HasSuffix(args[0], name) || parentPID(pid) != self {
			continue
		}
		for _, a := range args[1:] {
			if strings.HasPrefix(a, dir+"/") {
				return pid
			}
		}
	}
	return 0
}

// parentPID returns the parent of pid (field 4 of /proc/<pid>/stat), or -1.
func parentPID(pid int) int {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return ppid
}
