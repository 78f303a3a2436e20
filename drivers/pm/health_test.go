package pm

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Regression tests for the review of the run loop: readings of duty cycles whose work
// after the warm-up is shorter than the interval, the reopen back-off, waking a stale
// sensor again, and logging read failures.

// sentFrame is a frame the fake sent: its number and when.
type sentFrame struct {
	at time.Time
	i  int
}

// recordFrames makes fake send its frames as usual and remember them.
func recordFrames(fake *fakeSensor) func() []sentFrame {
	var (
		mu   sync.Mutex
		sent []sentFrame
	)
	fake.emit = func(write func([]byte) error, i int) error {
		mu.Lock()
		sent = append(sent, sentFrame{time.Now(), i})
		mu.Unlock()
		return write(fake.frame(i))
	}
	return func() []sentFrame {
		mu.Lock()
		defer mu.Unlock()
		return append([]sentFrame(nil), sent...)
	}
}

// TestRunDutyCycleShortWindow is the review's bug 1: with work − warmup shorter than
// the interval, no interval tick falls in the part of the work period after the warm-up,
// and the driver emitted nothing while reporting the sensor up. Now each work period
// yields exactly one reading, the mean of the samples after the warm-up, and nothing is
// reported while the sensor sleeps.
func TestRunDutyCycleShortWindow(t *testing.T) {
	for _, c := range []struct {
		model Model
		mode  string
		work  time.Duration
		key   string // the quantity whose value is the frame number
	}{
		{SDS011, ModeQuery, 40 * time.Second, "pm10"},
		{PMS5003, ModePassive, 40 * time.Second, "pm1"},
		{PMS5003, ModeActive, 35 * time.Second, "pm1"},
	} {
		t.Run(string(c.model)+"-"+c.mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const (
					interval = time.Minute
					warmup   = 30 * time.Second
					cycle    = 2 * time.Minute // work + sleep
				)
				start := time.Now()
				frame := pmsFrame
				if c.model == SDS011 {
					frame = func(i int) []byte { return encodeSDS(SDSFrame{PM25: 12.3, PM10: float64(i)}) }
				}
				fake := newFakeSensor(c.model, frame)
				frames := recordFrames(fake)
				port := newMemPort()
				attach(fake, port)
				// Stale is shorter than the sleep: sleeping must not count as silence.
				cfg := Config{Model: c.model, Mode: c.mode, Interval: interval, Warmup: warmup, Stale: 30 * time.Second}
				cfg.DutyCycle.Work, cfg.DutyCycle.Sleep = c.work, cycle-c.work
				s := mustNew(t, cfg, func(string) (Port, error) { return port, nil })
				done := make(chan struct{})
				defer close(done)
				if c.mode == ModeActive {
					go func() {
						time.Sleep(500 * time.Millisecond)
						fake.stream(time.Second, done)
					}()
				}
				rec, stop := run(t, s)
				time.Sleep(3*cycle + 10*time.Second) // three whole work periods, and a fourth begun
				stop()

				obs, batches := rec.snapshot()
				if len(batches) != 3 {
					t.Fatalf("%d batches in 3 work periods, want one each: %v", len(batches), batches)
				}
				sent := frames()
				for k, b := range batches {
					wake := time.Duration(k) * cycle
					// The samples: frames sent after the warm-up, before the work ends.
					var sum, n int
					for _, f := range sent {
						if at := f.at.Sub(start); at >= wake+warmup && at < wake+c.work {
							sum, n = sum+f.i, n+1
						}
					}
					if n == 0 {
						t.Fatalf("work period %d: the fake sent no frame after the warm-up", k)
					}
					got := map[string]float64{}
					for _, r := range b.Readings {
						got[r.Quantity] = r.Value
						if r.Quality != reading.Good || r.Validate() != nil {
							t.Errorf("reading %+v, want a valid Good one", r)
						}
					}
					if want := float64(sum) / float64(n); got[c.key] != want {
						t.Errorf("work period %d: %s = %g, want %g, the mean of the %d samples after the warm-up", k, c.key, got[c.key], want, n)
					}
					if at := b.Readings[0].Time.Sub(start); at < wake+warmup || at > wake+c.work {
						t.Errorf("work period %d: reading measured at %v, want within %v-%v", k, at, wake+warmup, wake+c.work)
					}
				}
				for _, o := range obs {
					at := o.at.Sub(start)
					if phase := at % cycle; phase > c.work {
						t.Errorf("obs at %v while the sensor sleeps: a planned sleep is no poll", at)
					}
					if o.err != nil {
						t.Errorf("obs at %v = %v, want nil", at, o.err)
					}
				}
			})
		})
	}
}

// TestRunDutyCycleNoFrame: a work period without a valid frame after the warm-up is a
// failure, reported by the end of the period at the latest; the sensor stays down
// through the following sleep (no report while asleep), and is up again when a work
// period goes well. The log has one line for each change.
func TestRunDutyCycleNoFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fake := newFakeSensor(SDS011, func(i int) []byte { return encodeSDS(SDSFrame{PM25: 12.3, PM10: float64(i)}) })
		port := newMemPort()
		attach(fake, port)
		cfg := Config{Model: SDS011, Interval: 10 * time.Second}
		cfg.DutyCycle.Work, cfg.DutyCycle.Sleep = time.Minute, 2*time.Minute
		var logs logRecorder
		s := mustNewLogged(t, cfg, func(string) (Port, error) { return port, nil }, logs.logger())
		rec, stop := run(t, s)
		time.Sleep(100 * time.Second) // asleep since 60 s
		fake.setMute(true)            // no answers in the work period 3m-4m
		time.Sleep(150 * time.Second) // asleep since 240 s
		fake.setMute(false)
		time.Sleep(175 * time.Second) // the work period 6m-7m goes well
		stop()

		obs, batches := rec.snapshot()
		var got []string
		for _, b := range batches {
			got = append(got, b.Readings[0].Time.Sub(start).String())
		}
		checkLines(t, "readings measured at", got, []string{"50s", "6m50s"})
		var failed, workFailed int
		for _, o := range obs {
			at := o.at.Sub(start)
			switch {
			case at%(3*time.Minute) > time.Minute+maxReplyWait:
				t.Errorf("obs at %v while the sensor sleeps", at)
			case at >= 3*time.Minute && at <= 4*time.Minute:
				if o.err == nil {
					t.Errorf("obs at %v = nil in the work period without answers, want an error", at)
					continue
				}
				failed++
				if at == 4*time.Minute && errors.Is(o.err, ErrStale) && strings.Contains(o.err.Error(), "after the warm-up") {
					workFailed++
				}
			case o.err != nil:
				t.Errorf("obs at %v = %v, want nil", at, o.err)
			}
		}
		if failed == 0 || workFailed != 1 {
			t.Errorf("%d failures in the silent work period, %d at its end; want some, and ErrStale \"after the warm-up\" at 4m0s: %+v", failed, workFailed, obs)
		}
		if last := obs[len(obs)-1]; last.err != nil || last.at.Sub(start) != 7*time.Minute {
			t.Errorf("last obs at %v = %v, want nil at the end of the good work period", last.at.Sub(start), last.err)
		}
		if d, u := len(logs.lines("device down")), len(logs.lines("device up")); d != 1 || u != 1 {
			t.Errorf(`logged "device down" %d times and "device up" %d times, want once each:\n%s`, d, u, &logs)
		}
	})
}

// TestRunReopenBackoff is the review's bug 2: a port that opens but fails at once (an
// adapter that enumerates and then errors) was reopened every second, because the
// back-off was reset as soon as the port opened. Now only a valid frame resets it, and
// the log has the state changes only.
func TestRunReopenBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fake := newFakeSensor(PMS5003, pmsFrame)
		var (
			mu       sync.Mutex
			attempts []string
			port     *memPort
		)
		open := func(string) (Port, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, time.Since(start).String())
			port = newMemPort()
			if len(attempts) <= 7 {
				port.unplug() // opens, then every read and write fails
				return port, nil
			}
			attach(fake, port)
			return port, nil
		}
		var logs logRecorder
		s := mustNewLogged(t, Config{Model: PMS5003, Interval: 10 * time.Second, Warmup: -1}, open, logs.logger())
		done := make(chan struct{})
		defer close(done)
		go func() {
			time.Sleep(500 * time.Millisecond)
			fake.stream(time.Second, done)
		}()
		rec, stop := run(t, s)
		time.Sleep(105 * time.Second) // a good port from 91 s
		mu.Lock()
		port.unplug()
		mu.Unlock()
		time.Sleep(10 * time.Second)
		stop()

		mu.Lock()
		// 1, 2, 4, 8, 16, 30 s apart while the port fails; 1 s after the working port is lost.
		checkLines(t, "open attempts", attempts, []string{"0s", "1s", "3s", "7s", "15s", "31s", "1m1s", "1m31s", "1m46s"})
		mu.Unlock()
		if d, u := len(logs.lines("device down")), len(logs.lines("device up")); d != 2 || u != 2 {
			t.Errorf(`logged "device down" %d times and "device up" %d times, want twice each:\n%s`, d, u, &logs)
		}
		for _, l := range logs.lines("device down") {
			if !strings.Contains(l.attrs["err"], "serial port /dev/ttyPM lost") {
				t.Errorf("device down: err=%q, want the lost port", l.attrs["err"])
			}
		}
		if n := len(logs.lines("read failed")); n != 2 { // at 1 s and 61 s; the rest suppressed
			t.Errorf(`logged "read failed" %d times in 115 s, want 2 (once a minute):\n%s`, n, &logs)
		}
		if st := s.Stats(); st.IOErrors != 8 || st.Reopens != 8 {
			t.Errorf("Stats() = %+v, want 8 I/O errors and 8 reopens", st)
		}
		obs, batches := rec.snapshot()
		if len(batches) == 0 || obs[len(obs)-1].err != nil {
			t.Errorf("%d batches, last obs %+v; want readings and up at the end", len(batches), obs[len(obs)-1])
		}
	})
}

// TestRunStaleRewake is the review's bug 3: a sensor that stops sending (asleep after a
// missed wake-up command or a brown-out) got nothing but a stale report. Now the stale
// detection sends the wake-up and mode commands again, and the readings come back.
func TestRunStaleRewake(t *testing.T) {
	pmsWake, sdsWork := "42 4D E4 00 01 01 74", "AA B4 06 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 06 AB"
	for _, c := range []struct {
		model Model
		mode  string
		want  []string // the commands sent again
	}{
		{PMS5003, ModeActive, []string{pmsWake, "42 4D E1 00 01 01 71"}},
		{PMS5003, ModePassive, []string{pmsWake, "42 4D E1 00 00 01 70"}},
		{SDS011, ModeQuery, []string{sdsWork, "AA B4 02 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB"}},
		{SDS011, ModeActive, []string{sdsWork, "AA B4 02 01 00 00 00 00 00 00 00 00 00 00 00 FF FF 01 AB"}},
	} {
		t.Run(string(c.model)+"-"+c.mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				frame := pmsFrame
				if c.model == SDS011 {
					frame = func(i int) []byte { return encodeSDS(SDSFrame{PM25: 12.3, PM10: float64(i)}) }
				}
				fake := newFakeSensor(c.model, frame)
				port := newMemPort()
				attach(fake, port)
				var logs logRecorder
				s := mustNewLogged(t, Config{Model: c.model, Mode: c.mode, Interval: 10 * time.Second, Stale: 30 * time.Second, Warmup: -1},
					func(string) (Port, error) { return port, nil }, logs.logger())
				done := make(chan struct{})
				defer close(done)
				go func() {
					time.Sleep(500 * time.Millisecond)
					fake.stream(time.Second, done)
				}()
				rec, stop := run(t, s)
				time.Sleep(25 * time.Second)
				fake.fallAsleep()
				time.Sleep(50 * time.Second)
				stop()

				obs, batches := rec.snapshot()
				var staleAt time.Duration
				for _, o := range obs {
					if errors.Is(o.err, ErrStale) {
						staleAt = o.at.Sub(start)
						break
					}
				}
				if staleAt == 0 {
					t.Fatalf("no ErrStale report: %+v", obs)
				}
				var again []string
				for _, cmd := range fake.commands() {
					if at := cmd.at.Sub(start); at > time.Second && cmd.b[2] != PMSCmdRead && cmd.b[2] != SDSCmdQuery {
						again = append(again, fmt.Sprintf("%v % X", at, cmd.b))
					}
				}
				checkLines(t, "commands after the start", again, []string{
					fmt.Sprintf("%v %s", staleAt, c.want[0]), fmt.Sprintf("%v %s", staleAt+cmdGap, c.want[1]),
				})
				after := 0
				for _, b := range batches {
					if b.Readings[0].Time.Sub(start) > staleAt {
						after++
					}
				}
				if after == 0 || obs[len(obs)-1].err != nil {
					t.Errorf("%d batches after the stale report at %v, last obs %v; want readings and up again", after, staleAt, obs[len(obs)-1].err)
				}
				if d, u := len(logs.lines("device down")), len(logs.lines("device up")); d != 1 || u != 1 {
					t.Errorf(`logged "device down" %d times and "device up" %d times, want once each:\n%s`, d, u, &logs)
				}
			})
		})
	}
}

// TestRunStaleRewakeRepeats: while the sensor stays silent, the wake-up and mode
// commands go out again once per Stale, not at every interval, and the stale state is
// logged once.
func TestRunStaleRewakeRepeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fake := newFakeSensor(PMS5003, pmsFrame)
		fake.setMute(true) // the sensor is not wired: nothing ever arrives
		port := newMemPort()
		attach(fake, port)
		var logs logRecorder
		s := mustNewLogged(t, Config{Model: PMS5003, Interval: 10 * time.Second, Stale: 30 * time.Second, Warmup: -1},
			func(string) (Port, error) { return port, nil }, logs.logger())
		rec, stop := run(t, s)
		time.Sleep(105 * time.Second)
		stop()

		var wakes []string
		for _, c := range fake.commands() {
			if c.b[2] == PMSCmdSleep {
				wakes = append(wakes, c.at.Sub(start).String())
			}
		}
		// At the start; at the first stale report (40 s); then every 30 s.
		checkLines(t, "wake-up commands", wakes, []string{"0s", "40s", "1m10s", "1m40s"})
		obs, _ := rec.snapshot()
		var states []string
		for _, o := range obs {
			states = append(states, fmt.Sprintf("%v %v", o.at.Sub(start), errors.Is(o.err, ErrStale)))
		}
		// No verdict before the first frame or Stale; then stale at every interval.
		checkLines(t, "obs (stale?)", states, []string{
			"40s true", "50s true", "1m0s true", "1m10s true", "1m20s true", "1m30s true", "1m40s true",
		})
		if d, u := len(logs.lines("device down")), len(logs.lines("device up")); d != 1 || u != 0 {
			t.Errorf(`logged "device down" %d times and "device up" %d times, want once and never:\n%s`, d, u, &logs)
		}
	})
}

// TestRunFailureLog is the review's bug 4: read failures were not logged. Now they are,
// once a minute per device with the number left out, and every one is counted.
func TestRunFailureLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeSensor(PMS5003, nil)
		fake.emit = func(write func([]byte) error, i int) error {
			f := pmsFrame(i)
			if i%10 != 0 { // 9 frames in 10 have a bad checksum; the rest keep the sensor up
				f[31]++
			}
			return write(f)
		}
		port := newMemPort()
		attach(fake, port)
		var logs logRecorder
		s := mustNewLogged(t, Config{Model: PMS5003, Interval: 10 * time.Second, Warmup: -1},
			func(string) (Port, error) { return port, nil }, logs.logger())
		done := make(chan struct{})
		defer close(done)
		go func() {
			time.Sleep(500 * time.Millisecond)
			fake.stream(time.Second, done) // frame i at i+0.5 s
		}()
		_, stop := run(t, s)
		time.Sleep(150 * time.Second) // frames 1 to 149
		stop()

		lines := logs.lines("read failed")
		var got []string
		for _, l := range lines {
			got = append(got, "suppressed="+l.attrs["suppressed"])
			if !strings.Contains(l.attrs["err"], "checksum") || l.attrs["device"] != "pm-1" {
				t.Errorf("read failed: %v, want a checksum error of device pm-1", l.attrs)
			}
		}
		// Logged: frames 1 (1.5 s), 61 and 121; between them 59 frames, 53 of them bad.
		// The rest of each bad frame is skipped as garbage: counted, but no extra failure.
		checkLines(t, "read failed lines", got, []string{"suppressed=0", "suppressed=53", "suppressed=53"})
		if st := s.Stats(); st.ChecksumErrors != 135 || st.Resyncs != 135 || st.Frames != 14 {
			t.Errorf("Stats() = %+v, want 135 checksum errors and resyncs, 14 frames", st)
		}
		if n := len(logs.lines("device down")); n != 0 {
			t.Errorf(`logged "device down" %d times, want none: a valid frame every 10 s keeps the sensor up`, n)
		}
	})
}

// TestRunTimeoutLog: unanswered queries are counted in Stats and logged (throttled),
// besides the device going down.
func TestRunTimeoutLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeSensor(SDS011, func(int) []byte { return encodeSDS(sdsExample2Frame) })
		port := newMemPort()
		attach(fake, port)
		var logs logRecorder
		s := mustNewLogged(t, Config{Model: SDS011, Interval: 10 * time.Second, Warmup: -1},
			func(string) (Port, error) { return port, nil }, logs.logger())
		_, stop := run(t, s)
		time.Sleep(25 * time.Second)
		fake.setMute(true)
		time.Sleep(60 * time.Second) // queries at 30, 40, ..., 80 s go unanswered
		stop()

		if st := s.Stats(); st.Timeouts != 6 {
			t.Errorf("Stats().Timeouts = %d, want 6", st.Timeouts)
		}
		lines := logs.lines("read failed")
		if len(lines) != 1 || !strings.Contains(lines[0].attrs["err"], ErrNoReply.Error()) {
			t.Errorf(`"read failed" lines %+v, want one about the missing reply (the others within the minute suppressed)`, lines)
		}
		if n := len(logs.lines("device down")); n != 1 {
			t.Errorf(`logged "device down" %d times, want once:\n%s`, n, &logs)
		}
	})
}

// TestNewRejectsDutyCycleWithoutReading: a duty cycle whose work period ends before the
// warm-up does can never produce a reading; New says so and names both fields.
func TestNewRejectsDutyCycleWithoutReading(t *testing.T) {
	for _, c := range []struct{ work, warmup time.Duration }{
		{40 * time.Second, 40 * time.Second},
		{20 * time.Second, time.Minute},
		{30 * time.Second, 0}, // the default warm-up, 30 s
	} {
		cfg := Config{Name: "pm-1", Site: "s", Port: "/dev/ttyPM", Model: SDS011, Warmup: c.warmup}
		cfg.DutyCycle.Work, cfg.DutyCycle.Sleep = c.work, time.Minute
		_, err := New(cfg, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "duty_cycle.work: must be longer than warmup") ||
			!strings.Contains(err.Error(), "no reading would ever be emitted") {
			t.Errorf("New(work %v, warmup %v) = %v, want an error naming duty_cycle.work and warmup", c.work, c.warmup, err)
		}
	}
	cfg := Config{Name: "pm-1", Site: "s", Port: "/dev/ttyPM", Model: SDS011, Interval: time.Minute}
	cfg.DutyCycle.Work, cfg.DutyCycle.Sleep = 31*time.Second, time.Minute // 1 s after the warm-up, less than the interval
	if _, err := New(cfg, nil, nil); err != nil {
		t.Errorf("New(work 31s, warmup 30s, interval 1m) = %v, want nil: each work period can yield a reading", err)
	}
}

func TestOpenFailureLogsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logRecorder
		s := mustNewLogged(t, Config{Model: PMS5003, Interval: 10 * time.Second},
			func(path string) (Port, error) { return nil, fmt.Errorf("open %s: %w", path, fs.ErrNotExist) }, logs.logger())
		_, stop := run(t, s)
		time.Sleep(3 * time.Minute)
		stop()
		if n := len(logs.lines("device down")); n != 1 {
			t.Errorf(`logged "device down" %d times while the port is missing, want once:\n%s`, n, &logs)
		}
	})
}

// TestRunResyncLog: lost frame alignment is a logged failure once the sensor has been
// heard from, but joining the stream mid-frame after the port opens is not.
func TestRunResyncLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		port := newMemPort()
		var logs logRecorder
		s := mustNewLogged(t, Config{Model: PMS5003, Interval: 10 * time.Second, Warmup: -1},
			func(string) (Port, error) { return port, nil }, logs.logger())
		_, stop := run(t, s)
		time.Sleep(time.Second)
		port.push(append(pmsFrame(1)[20:], pmsFrame(2)...)) // the tail of a frame, as at every start
		time.Sleep(time.Second)
		if n := len(logs.lines("read failed")); n != 0 {
			t.Errorf(`logged "read failed" %d times for the partial frame at the start, want 0`, n)
		}
		port.push(append([]byte{0x00, 0x11, 0x22}, pmsFrame(3)...))
		time.Sleep(time.Second)
		stop()
		lines := logs.lines("read failed")
		if len(lines) != 1 || !strings.Contains(lines[0].attrs["err"], "lost frame alignment") {
			t.Errorf(`"read failed" lines %+v, want one about the lost alignment`, lines)
		}
		if st := s.Stats(); st.Resyncs != 2 || st.GarbageBytes != 12+3 || st.Frames != 2 {
			t.Errorf("Stats() = %+v, want 2 resyncs, 15 garbage bytes, 2 frames", st)
		}
	})
}
