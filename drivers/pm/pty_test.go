package pm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/envgate/envgate/gateway/reading"
)

// ptyRig plays a sensor on USB: each open hands out a fresh pty pair, the Sensor gets
// the slave through OpenSerial and the fake sensor serves the master. unplug closes the
// master, as pulling the adapter does; until plug, opening fails.
type ptyRig struct {
	fake *fakeSensor

	mu      sync.Mutex
	plugged bool
	master  *os.File
	readers sync.WaitGroup
	done    chan struct{} // stops the fake's stream
}

func newPTYRig(t *testing.T, fake *fakeSensor) *ptyRig {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pty on this machine: %v", err)
		}
		t.Skipf("no pty on this machine: %v", err)
	}
	ptmx.Close()
	tty.Close()
	r := &ptyRig{fake: fake, plugged: true, done: make(chan struct{})}
	t.Cleanup(func() {
		close(r.done)
		r.mu.Lock()
		if r.master != nil {
			r.master.Close()
		}
		r.mu.Unlock()
		r.readers.Wait()
	})
	return r
}

// open is the Sensor's open function.
func (r *ptyRig) open(path string) (Port, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.plugged {
		return nil, fmt.Errorf("open %s: %w", path, fs.ErrNotExist)
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, err
	}
	p, err := OpenSerial(tty.Name())
	// The port has its own descriptor now; a second one would keep the line up after
	// the port closes, and the master would never see the hangup (docs/engineering-notes.md §8).
	tty.Close()
	if err != nil {
		ptmx.Close()
		return nil, err
	}
	master, err := pollable(ptmx)
	if err != nil {
		p.Close()
		return nil, err
	}
	r.master = master
	r.fake.mu.Lock()
	r.fake.write = func(b []byte) error { _, err := master.Write(b); return err }
	r.fake.in = nil
	r.fake.mu.Unlock()
	r.readers.Go(func() {
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				r.fake.feed(buf[:n])
			}
			if err != nil {
				return // EIO once the port closes, or the master was closed
			}
		}
	})
	return p, nil
}

func (r *ptyRig) unplug() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plugged = false
	r.master.Close()
}

func (r *ptyRig) plug() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plugged = true
}

// pollable returns a copy of the pty master that Go's poller manages, so that Close
// interrupts a blocked Read. creack/pty calls Fd() on the master, which switches it to
// blocking mode, and Close on a blocking *os.File waits for the Read to finish.
func pollable(ptmx *os.File) (*os.File, error) {
	defer ptmx.Close()
	fd, err := syscall.Dup(int(ptmx.Fd()))
	if err != nil {
		return nil, fmt.Errorf("dup pty master: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("set pty master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "ptmx"), nil
}

// waitFor waits until cond holds for what rec has seen, or fails after 10 s.
func waitFor(t *testing.T, rec *recorder, what string, cond func(obs []obsEvent, batches []reading.Batch) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if cond(rec.snapshot()) {
			return
		}
		select {
		case <-rec.changed:
		case <-deadline:
			obs, batches := rec.snapshot()
			t.Fatalf("timed out waiting for %s; obs %+v, %d batches", what, obs, len(batches))
		}
	}
}

func atLeast(n int) func([]obsEvent, []reading.Batch) bool {
	return func(_ []obsEvent, b []reading.Batch) bool { return len(b) >= n }
}

// mangle sends PMS frames the way a noisy line does: garbage before every third frame,
// each frame in three writes, every fifth frame with a broken checksum and other values.
func mangle(write func([]byte) error, i int) error {
	frame := pmsFrame(10)
	if i%5 == 0 {
		frame = pmsFrame(900)
		frame[31] ^= 0xFF
	}
	if i%3 == 0 {
		if err := write([]byte{0x00, 0x42, 0xFF, 0x4D}); err != nil {
			return err
		}
	}
	for _, part := range [][]byte{frame[:5], frame[5:20], frame[20:]} {
		if err := write(part); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

func TestPTYActivePMS(t *testing.T) {
	fake := newFakeSensor(PMS5003, nil)
	fake.emit = mangle
	rig := newPTYRig(t, fake)
	go fake.stream(30*time.Millisecond, rig.done)
	s := mustNew(t, Config{Model: PMS5003, Interval: 200 * time.Millisecond, Warmup: 100 * time.Millisecond, Stale: 2 * time.Second}, rig.open)
	rec, stop := run(t, s)
	waitFor(t, rec, "4 batches", atLeast(4))
	stop()

	obs, batches := rec.snapshot()
	for _, b := range batches {
		if got := values(b); got != "pm1=10 pm25=11 pm10=12" {
			t.Errorf("batch %s, want pm1=10 pm25=11 pm10=12 (the frames with a good checksum)", got)
		}
	}
	for _, o := range obs {
		if o.err != nil {
			t.Errorf("obs error %v, want none", o.err)
		}
	}
	var cmds []string
	for _, c := range fake.commands() {
		cmds = append(cmds, fmt.Sprintf("% X", c.b))
	}
	checkLines(t, "commands", cmds, []string{"42 4D E4 00 01 01 74", "42 4D E1 00 01 01 71"})
	st := s.Stats()
	if st.Frames < 4 || st.ChecksumErrors == 0 || st.GarbageBytes == 0 || st.Resyncs == 0 || st.Reopens != 0 {
		t.Errorf("Stats() = %+v, want frames, checksum errors, garbage and resyncs", st)
	}
	t.Logf("stats %+v, %d batches", st, len(batches))
}

func TestPTYPassivePMS(t *testing.T) {
	fake := newFakeSensor(PMS5003, pmsFrame)
	rig := newPTYRig(t, fake)
	s := mustNew(t, Config{Model: PMS5003, Mode: ModePassive, Values: ValuesCF1, Interval: 200 * time.Millisecond, Warmup: -1}, rig.open)
	rec, stop := run(t, s)
	waitFor(t, rec, "3 batches", atLeast(3))
	stop()

	_, batches := rec.snapshot()
	// Frame i answers the i-th read; its CF=1 values are i+100, i+101, i+102.
	for i, b := range batches {
		if got, want := values(b), fmt.Sprintf("pm1=%d pm25=%d pm10=%d", i+101, i+102, i+103); got != want {
			t.Errorf("batch %d = %s, want %s", i, got, want)
		}
	}
	var cmds []string
	reads := 0
	for _, c := range fake.commands() {
		cmds = append(cmds, fmt.Sprintf("% X", c.b))
		if c.b[2] == PMSCmdRead {
			reads++
		}
	}
	if len(cmds) < 3 || cmds[0] != "42 4D E4 00 01 01 74" || cmds[1] != "42 4D E1 00 00 01 70" || cmds[2] != "42 4D E2 00 00 01 71" {
		t.Errorf("commands = %q, want wake, passive mode, then reads", cmds)
	}
	fake.mu.Lock()
	sent := fake.next
	fake.mu.Unlock()
	if sent != reads || reads < 3 {
		t.Errorf("the sensor sent %d frames for %d read commands, want one per read", sent, reads)
	}
}

func TestPTYQuerySDS(t *testing.T) {
	fake := newFakeSensor(SDS011, func(int) []byte { return encodeSDS(sdsExample1Frame) })
	rig := newPTYRig(t, fake)
	go fake.stream(30*time.Millisecond, rig.done) // until it is switched to query mode
	s := mustNew(t, Config{Model: SDS011, Interval: 200 * time.Millisecond, Warmup: -1}, rig.open)
	rec, stop := run(t, s)
	waitFor(t, rec, "3 batches", atLeast(3))
	stop()

	obs, batches := rec.snapshot()
	for _, b := range batches {
		if got := values(b); got != "pm25=12.3 pm10=45.6" {
			t.Errorf("batch %s, want pm25=12.3 pm10=45.6", got)
		}
	}
	for _, o := range obs {
		if o.err != nil || o.d <= 0 || o.d > 100*time.Millisecond {
			t.Errorf("obs = %v, %v; want a short query round trip and no error", o.d, o.err)
		}
	}
	cmds := fake.commands()
	if len(cmds) < 3 || cmds[0].b[2] != SDSCmdSleepWork || cmds[1].b[2] != SDSCmdReportMode || cmds[1].b[4] != 1 || cmds[2].b[2] != SDSCmdQuery {
		t.Errorf("commands = %v, want work, query mode, then queries", cmdLog(cmds, cmds[0].at))
	}
}

// TestPTYDutyCycle runs a duty cycle whose work after the warm-up (500 ms) is shorter
// than the interval (2 s): each work period still yields one reading, and nothing is
// down. Phases are read off the commands the fake received, with margins of hundreds of
// milliseconds, so scheduling noise cannot fail the test; TestRunDutyCycleShortWindow
// checks the timing and the averaging exactly.
func TestPTYDutyCycle(t *testing.T) {
	fake := newFakeSensor(PMS5003, pmsFrame)
	rig := newPTYRig(t, fake)
	go fake.stream(20*time.Millisecond, rig.done)
	const ms = time.Millisecond
	cfg := Config{Model: PMS5003, Interval: 2 * time.Second, Warmup: 300 * ms, Stale: 5 * time.Second}
	cfg.DutyCycle.Work, cfg.DutyCycle.Sleep = 800*ms, 300*ms
	s := mustNew(t, cfg, rig.open)
	rec, stop := run(t, s)
	waitFor(t, rec, "3 readings", atLeast(3))
	stop()

	const wake, sleep = "42 4D E4 00 01 01 74", "42 4D E4 00 00 01 73"
	var wakes []time.Time
	prev := sleep
	for _, c := range fake.commands() {
		switch got := fmt.Sprintf("% X", c.b); got {
		case wake, sleep:
			if got == prev {
				t.Errorf("%s twice in a row; want wake-up and sleep to alternate", got)
			}
			prev = got
			if got == wake {
				wakes = append(wakes, c.at)
			}
		}
	}
	obs, batches := rec.snapshot()
	// Each reading comes from its own work period. (A reading is stamped with its newest
	// sample, at least 300 ms after the driver's wake-up; the fake notes the wake-up when
	// it has read it, a little later.)
	period := -1
	for _, b := range batches {
		at := b.Readings[0].Time
		k := len(wakes) - 1
		for k >= 0 && wakes[k].After(at) {
			k--
		}
		switch {
		case k < 0:
			t.Errorf("reading measured at %v, before the first wake-up", at)
		case k == period:
			t.Errorf("two readings in work period %d; want one per work period", k)
		}
		period = k
	}
	for _, o := range obs {
		if o.err != nil {
			t.Errorf("obs error %v, want none: a sleeping sensor is not down", o.err)
		}
	}
	t.Logf("%d readings, %d wake-ups, %d obs", len(batches), len(wakes), len(obs))
}

func TestPTYUnplug(t *testing.T) {
	fake := newFakeSensor(PMS5003, pmsFrame)
	rig := newPTYRig(t, fake)
	go fake.stream(20*time.Millisecond, rig.done)
	s := mustNew(t, Config{Model: PMS5003, Interval: 100 * time.Millisecond, Warmup: -1, Stale: time.Second}, rig.open)
	rec, stop := run(t, s)
	waitFor(t, rec, "2 batches", atLeast(2))

	rig.unplug()
	obs, _ := rec.snapshot()
	before := len(obs)
	waitFor(t, rec, "obs errors after the unplug", func(obs []obsEvent, _ []reading.Batch) bool {
		errs := 0
		for _, o := range obs[before:] {
			if o.err != nil {
				errs++
			}
		}
		return errs >= 2
	})
	_, batches := rec.snapshot()
	plugged := len(batches)
	if s.Stats().Reopens != 0 {
		t.Errorf("Reopens = %d while unplugged, want 0", s.Stats().Reopens)
	}

	rig.plug()
	waitFor(t, rec, "readings after the replug", atLeast(plugged+2))
	stop()
	if st := s.Stats(); st.Reopens != 1 {
		t.Errorf("Stats().Reopens = %d, want 1", st.Reopens)
	}
	obs, _ = rec.snapshot()
	var errs []string
	for _, o := range obs[before:] {
		if o.err != nil {
			errs = append(errs, o.err.Error())
			if !errors.Is(o.err, fs.ErrNotExist) && !strings.Contains(o.err.Error(), "serial port /dev/ttyPM lost") {
				t.Errorf("obs error %v, want the lost port or the failed open", o.err)
			}
		}
	}
	t.Logf("errors while unplugged: %q", errs)
	if last := obs[len(obs)-1]; last.err != nil {
		t.Errorf("last obs = %v, want nil once readings flow again", last.err)
	}
}

func TestPTYStale(t *testing.T) {
	fake := newFakeSensor(PMS5003, pmsFrame)
	rig := newPTYRig(t, fake)
	go fake.stream(20*time.Millisecond, rig.done)
	s := mustNew(t, Config{Model: PMS5003, Interval: 100 * time.Millisecond, Warmup: -1, Stale: 300 * time.Millisecond}, rig.open)
	rec, stop := run(t, s)
	waitFor(t, rec, "a batch", atLeast(1))

	fake.setMute(true)
	waitFor(t, rec, "a stale report", func(obs []obsEvent, _ []reading.Batch) bool {
		return len(obs) > 0 && errors.Is(obs[len(obs)-1].err, ErrStale)
	})
	// The stale sensor is sent its wake-up and mode commands again.
	deadline := time.Now().Add(10 * time.Second)
	for len(fake.commands()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var cmds []string
	for _, c := range fake.commands() {
		cmds = append(cmds, fmt.Sprintf("% X", c.b))
	}
	checkLines(t, "commands", cmds[:min(4, len(cmds))], []string{
		"42 4D E4 00 01 01 74", "42 4D E1 00 01 01 71", // at the start
		"42 4D E4 00 01 01 74", "42 4D E1 00 01 01 71", // on the stale report
	})
	_, batches := rec.snapshot()
	n := len(batches)
	waitFor(t, rec, "two more stale reports", func(obs []obsEvent, _ []reading.Batch) bool {
		k := len(obs)
		return k >= 3 && errors.Is(obs[k-1].err, ErrStale) && errors.Is(obs[k-2].err, ErrStale) && errors.Is(obs[k-3].err, ErrStale)
	})
	if _, batches := rec.snapshot(); len(batches) != n {
		t.Errorf("%d batches while stale, want none", len(batches)-n)
	}

	fake.setMute(false)
	waitFor(t, rec, "readings again", atLeast(n+1))
	stop()
	if obs, _ := rec.snapshot(); obs[len(obs)-1].err != nil {
		t.Errorf("last obs = %v, want nil once frames are back", obs[len(obs)-1].err)
	}
}

func TestOpenSerialErrors(t *testing.T) {
	_, err := OpenSerial("/dev/ttyNOPE9")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "envgate ports") {
		t.Errorf("OpenSerial(missing) = %v, want fs.ErrNotExist and a hint to run `envgate ports`", err)
	}
	file := t.TempDir() + "/not-a-tty"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSerial(file); err == nil || !strings.Contains(err.Error(), "not a serial port") {
		t.Errorf("OpenSerial(regular file) = %v, want a 'not a serial port' hint", err)
	}
}
