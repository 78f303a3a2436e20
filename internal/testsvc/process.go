package testsvc

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// process is a server binary run for one test: started with its output appended to a
// log file, ready once its check passes, stopped with SIGTERM (once per entry of
// stopWaits, waiting that long after each) and, if it ignores them, SIGKILL. Mosquitto,
// InfluxDB, socat, Prometheus and Alertmanager all run as one.
type process struct {
	name string // for messages: "mosquitto on tcp://...", "influxd on http://..."
	bin  string
	args []string
	log  string

	// ready reports nil once the server serves; logStart is the size of the log before
	// this start, so that only this run's lines count.
	ready        func(logStart int64) error
	readyTimeout time.Duration
	stopWaits    []time.Duration
	// checkExit reports a non-zero exit status after SIGTERM as an error (influxd's is
	// not: a second SIGTERM ends it with status 1 on purpose).
	checkExit bool
	logTail   int

	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd has been waited for
	logFile *os.File
}

// run starts the process for the rest of test t: stop (the service's own Stop, which
// may do more than p.stop) runs in t.Cleanup, and after it, if the test failed, the
// tail of the log is printed under label.
func (p *process) run(t testing.TB, label string, stop func(testing.TB)) {
	t.Helper()
	// Cleanups run last-in first-out: stop the server first, then show its log.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log %s (last %d lines):\n%s", label, p.log, p.logTail, tail(p.log, p.logTail))
		}
	})
	t.Cleanup(func() { stop(t) })
	p.start(t)
}

// running reports whether the process has been started and not stopped.
func (p *process) running() bool { return p.cmd != nil }

// start starts the process and waits until it is ready; on failure it kills it and
// fails the test with the log's tail.
func (p *process) start(t testing.TB) {
	t.Helper()
	if p.cmd != nil {
		t.Fatalf("%s: start while running", p.name)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: open log: %v", p.name, err)
	}
	logStart, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		t.Fatalf("%s: open log: %v", p.name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", p.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is reported by the readiness check or stop
		close(exited)
	}()
	p.cmd, p.exited, p.logFile = cmd, exited, f
	if err := p.waitReady(logStart); err != nil {
		_ = p.cmd.Process.Kill() // it may have exited already
		<-p.exited
		p.release()
		t.Fatalf("%s: %v; log %s:\n%s", p.name, err, p.log, tail(p.log, p.logTail))
	}
}

func (p *process) waitReady(logStart int64) error {
	deadline := time.NewTimer(p.readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := p.ready(logStart)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited during start: %v", p.cmd.ProcessState)
		case <-deadline.C:
			return fmt.Errorf("not ready within %v: %v", p.readyTimeout, err)
		case <-tick.C:
		}
	}
}

func (p *process) release() {
	p.logFile.Close()
	p.cmd, p.exited, p.logFile = nil, nil, nil
}

// stop stops the process as described on process; stopping a stopped one does nothing.
func (p *process) stop(t testing.TB) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	defer p.release()
	select {
	case <-p.exited:
		t.Errorf("%s had exited before stop: %v", p.name, p.cmd.ProcessState)
		return
	default:
	}
	for n, wait := range p.stopWaits {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("stop %s: %v", p.name, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-p.exited:
			timer.Stop()
			if p.checkExit && !p.cmd.ProcessState.Success() {
				t.Errorf("%s: %v after SIGTERM", p.name, p.cmd.ProcessState)
			}
			return
		case <-timer.C:
		}
		if n+1 < len(p.stopWaits) {
			t.Logf("%s still running %v after SIGTERM #%d", p.name, wait, n+1)
		}
	}
	t.Errorf("%s ignored SIGTERM; killing it", p.name)
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// httpReady returns a readiness check: url answers with status want.
func httpReady(client *http.Client, url string, want int) func(int64) error {
	return func(int64) error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}
