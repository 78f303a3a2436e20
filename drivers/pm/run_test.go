package pm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

func mustNew(t *testing.T, cfg Config, open func(string) (Port, error)) *Sensor {
	t.Helper()
	return mustNewLogged(t, cfg, open, nil)
}

// mustNewLogged is mustNew with a logger (nil: none).
func mustNewLogged(t *testing.T, cfg Config, open func(string) (Port, error), log *slog.Logger) *Sensor {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "pm-1"
	}
	if cfg.Site == "" {
		cfg.Site = "canal-east-3"
	}
	if cfg.Port == "" {
		cfg.Port = "/dev/ttyPM"
	}
	s, err := New(cfg, open, log)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	return s
}

// run starts s.Run with a recorder; stop cancels it and checks it returned nil.
func run(t *testing.T, s *Sensor) (rec *recorder, stop func()) {
	t.Helper()
	rec = newRecorder()
	out := make(chan reading.Batch)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	runErr := make(chan error, 1)
	s.cfg.Observe = rec.observe
	go func() { runErr <- s.Run(ctx, out) }()
	go rec.collect(out, done)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-runErr; err != nil {
				t.Errorf("Run = %v, want nil after ctx is done", err)
			}
			close(done)
		})
	}
	t.Cleanup(stop)
	return rec, stop
}

// values returns quantity=value pairs of a batch, for comparisons.
func values(b reading.Batch) string {
	var parts []string
	for _, r := range b.Readings {
		parts = append(parts, fmt.Sprintf("%s=%g", r.Quantity, r.Value))
	}
	return strings.Join(parts, " ")
}

// cmdLog renders commands with their time since start, e.g. "0s 42 4D E4 00 01 01 74".
func cmdLog(cmds []sentCmd, start time.Time) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, fmt.Sprintf("%v % X", c.at.Sub(start), c.b))
	}
	return out
}

func checkLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunActivePMS streams a frame every second into a PMS5003 in active mode: no
// readings during the 30 s warm-up, then the latest frame of each 10 s interval.
func TestRunActivePMS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fake := newFakeSensor(PMS5003, pmsFrame)
		port := newMemPort()
		attach(fake, port)
		s := mustNew(t, Config{Model: PMS5003, Interval: 10 * time.Second}, func(string) (Port, error) { return port, nil })
		done := make(chan struct{})
		defer close(done)
		go func() {
			time.Sleep(500 * time.Millisecond)
			fake.stream(time.Second, done) // frame i at i+0.5 s
		}()
		rec, stop := run(t, s)
		time.Sleep(55 * time.Second)
		stop()

		checkLines(t, "commands", cmdLog(fake.commands(), start), []string{
			"0s 42 4D E4 00 01 01 74",    // wake
			"100ms 42 4D E1 00 01 01 71", // active mode
		})
		obs, batches := rec.snapshot()
		var got []string
		for _, b := range batches {
			got = append(got, fmt.Sprintf("%v %s", b.Readings[0].Time.Sub(start), values(b)))
			for _, r := range b.Readings {
				if err := r.Validate(); err != nil || r.Quality != reading.Good || r.Device != "pm-1" || r.Site != "canal-east-3" || r.Unit != "ug/m3" {
					t.Errorf("reading %+v: %v, want a valid Good reading of pm-1 at canal-east-3 in ug/m3", r, err)
				}
			}
			if b.Durable != nil {
				t.Errorf("batch has a Durable callback, want nil")
			}
		}
		checkLines(t, "batches", got, []string{
			"39.5s pm1=39 pm25=40 pm10=41",
			"49.5s pm1=49 pm25=50 pm10=51",
		})
		if len(obs) != 5 {
			t.Fatalf("obs called %d times in 55 s, want once per 10 s interval: %+v", len(obs), obs)
		}
		for i, o := range obs {
			if want := time.Duration(i+1) * 10 * time.Second; o.at.Sub(start) != want || o.err != nil || o.d != 500*time.Millisecond {
				t.Errorf("obs #%d at %v = %v, %v; want at %v: 500ms since the last frame, nil", i, o.at.Sub(start), o.d, o.err, want)
			}
		}
		if st := s.Stats(); st.Frames != 54 || st.GarbageBytes != 0 || st.ChecksumErrors != 0 || st.Reopens != 0 {
			t.Errorf("Stats() = %+v, want 54 frames and nothing else", st)
		}
	})
}

// TestRunStale stops a streaming sensor: once no valid frame came for Stale, obs gets
// ErrStale and nothing is emitted; when frames resume, so do the readings.
func TestRunStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fake := newFakeSensor(PMS5003, pmsFrame)
		port := newMemPort()
		attach(fake, port)
		s := mustNew(t, Config{Model: PMS5003, Interval: 10 * time.Second, Stale: 30 * time.Second, Warmup: -1},
			func(string) (Port, error) { return port, nil })
		done := make(chan struct{})
		defer close(done)
		go func() {
			time.Sleep(500 * time.Millisecond)
			fake.stream(time.Second, done)
		}()
		rec, stop := run(t, s)
		time.Sleep(19700 * time.Millisecond)
		fake.setMute(true) // last frame at 19.5 s
		time.Sleep(45 * time.Second)
		fake.setMute(false) // frames again from 65.5 s
		time.Sleep(10 * time.Second)
		stop()

		obs, batches := rec.snapshot()
		var got []string
		for _, b := range batches {
			got = append(got, fmt.Sprintf("%v %s", b.Readings[0].Time.Sub(start), values(b)))
		}
		checkLines(t, "batches", got, []string{
			"9.5s pm1=9 pm25=10 pm10=11",
			"19.5s pm1=19 pm25=20 pm10=21",
			"1m9.5s pm1=24 pm25=25 pm10=26",
		})
		var states []string
		for _, o := range obs {
			state := "up"
			if errors.Is(o.err, ErrStale) {
				state = "stale"
			} else if o.err != nil {
				state = o.err.Error()
			}
			states = append(states, fmt.Sprintf("%v %v %s", o.at.Sub(start), o.d, state))
		}
		checkLines(t, "obs", states, []string{
			"10s 500ms up", "20s 500ms up", "30s 10.5s up", "40s 20.5s up",
			"50s 30.5s stale", "1m0s 40.5s stale", "1m10s 500ms up",
		})
	})
}

// TestRunDutyCycleSDS runs an SDS011 in query mode with a 60 s work, 120 s sleep cycle:
// sleep and work commands at the phase boundaries, queries only while awake, one reading
// per work period (the mean of the answers after the warm-up, emitted as it ends), and
// a sleeping sensor is neither down nor polled.
func TestRunDutyCycleSDS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fake := newFakeSensor(SDS011, func(i int) []byte { return encodeSDS(SDSFrame{PM25: 12.3, PM10: float64(i), ID: 0xA160}) })
		port := newMemPort()
		attach(fake, port)
		cfg := Config{Model: SDS011, Interval: 10 * time.Second}
		cfg.DutyCycle.Work, cfg.DutyCycle.Sleep = time.Minute, 2*time.Minute
		s := mustNew(t, cfg, func(string) (Port, error) { return port, nil })
		rec, stop := run(t, s)
		time.Sleep(245 * time.Second)
		stop()

		const (
			work  = "AA B4 06 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 06 AB"
			sleep = "AA B4 06 01 00 00 00 00 00 00 00 00 00 00 00 FF FF 05 AB"
			mode  = "AA B4 02 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB"
			query = "AA B4 04 00 00 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB"
		)
		checkLines(t, "commands", cmdLog(fake.commands(), start), []string{
			"0s " + work, "100ms " + mode,
			"10s " + query, "20s " + query, "30s " + query, "40s " + query, "50s " + query,
			"1m0s " + sleep,
			"3m0s " + work, "3m0.1s " + mode, "3m0.2s " + query,
			"3m10s " + query, "3m20s " + query, "3m30s " + query, "3m40s " + query, "3m50s " + query,
			"4m0s " + sleep,
		})
		obs, batches := rec.snapshot()
		var got []string
		for _, b := range batches {
			got = append(got, fmt.Sprintf("%v %s", b.Readings[0].Time.Sub(start), values(b)))
		}
		// Answers 3, 4, 5 (at 30, 40, 50 s) and 9, 10, 11 (3m30s to 3m50s), stamped with
		// the newest.
		checkLines(t, "batches", got, []string{"50s pm25=12.3 pm10=4", "3m50s pm25=12.3 pm10=10"})
		var at []string
		for _, o := range obs {
			at = append(at, o.at.Sub(start).String())
			if o.err != nil {
				t.Errorf("obs at %v = %v, want nil (sleeping and warming up are not down)", o.at.Sub(start), o.err)
			}
		}
		// Each answered query, and the end of each work period; nothing while asleep.
		checkLines(t, "obs times", at, []string{
			"10s", "20s", "30s", "40s", "50s", "1m0s",
			"3m0.2s", "3m10s", "3m20s", "3m30s", "3m40s", "3m50s", "4m0s",
		})
	})
}

// TestRunQueryNoReply mutes an SDS011 in query mode: each unanswered query is a failed
// poll, reported after the reply wait.
func TestRunQueryNoReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fake := newFakeSensor(SDS011, func(int) []byte { return encodeSDS(sdsExample2Frame) })
		port := newMemPort()
		attach(fake, port)
		s := mustNew(t, Config{Model: SDS011, Interval: 10 * time.Second, Warmup: -1}, func(string) (Port, error) { return port, nil })
		rec, stop := run(t, s)
		time.Sleep(25 * time.Second)
		fake.setMute(true)
		time.Sleep(20 * time.Second)
		stop()

		obs, batches := rec.snapshot()
		if len(batches) != 2 || values(batches[0]) != "pm25=123.6 pm10=261.8" {
			t.Errorf("batches = %+v, want two of pm25=123.6 pm10=261.8", batches)
		}
		var states []string
		for _, o := range obs {
			state := "up"
			if errors.Is(o.err, ErrNoReply) {
				state = "no reply"
			} else if o.err != nil {
				state = o.err.Error()
			}
			states = append(states, fmt.Sprintf("%v %v %s", o.at.Sub(start), o.d, state))
		}
		checkLines(t, "obs", states, []string{"10s 0s up", "20s 0s up", "32s 2s no reply", "42s 2s no reply"})
	})
}

// TestRunReopen unplugs the port: the next read fails, obs reports the loss, the port is
// reopened with a doubling back-off once it is back, and the sensor is set up again.
func TestRunReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fake := newFakeSensor(PMS5003, pmsFrame)
		var (
			mu       sync.Mutex
			plugged  = true
			port     *memPort
			attempts []string
		)
		open := func(path string) (Port, error) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, time.Since(start).String())
			if !plugged {
				return nil, fmt.Errorf("open %s: %w", path, fs.ErrNotExist)
			}
			port = newMemPort()
			attach(fake, port)
			return port, nil
		}
		s := mustNew(t, Config{Model: PMS5003, Interval: 10 * time.Second, Warmup: -1}, open)
		done := make(chan struct{})
		defer close(done)
		go func() {
			time.Sleep(500 * time.Millisecond)
			fake.stream(time.Second, done)
		}()
		rec, stop := run(t, s)
		time.Sleep(15 * time.Second)
		mu.Lock()
		plugged = false
		port.unplug()
		mu.Unlock()
		time.Sleep(5 * time.Second)
		mu.Lock()
		plugged = true
		mu.Unlock()
		time.Sleep(15 * time.Second)
		stop()

		mu.Lock()
		checkLines(t, "open attempts", attempts, []string{"0s", "16s", "18s", "22s"})
		mu.Unlock()
		obs, batches := rec.snapshot()
		// At 20 s the port is missing: obs gets the latest reason, the failed open.
		if len(obs) != 3 || obs[0].err != nil || !errors.Is(obs[1].err, fs.ErrNotExist) || obs[2].err != nil {
			t.Errorf("obs = %+v, want up, the missing port's ErrNotExist, up", obs)
		}
		if len(batches) != 2 {
			t.Errorf("%d batches, want 2 (at 10 s and 30 s)", len(batches))
		}
		if st := s.Stats(); st.Reopens != 1 {
			t.Errorf("Stats().Reopens = %d, want 1", st.Reopens)
		}
		var after []string
		for _, c := range fake.commands() {
			if c.at.Sub(start) > 20*time.Second {
				after = append(after, fmt.Sprintf("%v % X", c.at.Sub(start), c.b))
			}
		}
		checkLines(t, "commands after the reopen", after, []string{"22s 42 4D E4 00 01 01 74", "22.1s 42 4D E1 00 01 01 71"})
	})
}

// TestRunGarbageStats feeds a stream with garbage, a bad checksum, a bad length and an
// acknowledgement, and checks the counters.
func TestRunGarbageStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeSensor(PMS5003, pmsFrame)
		port := newMemPort()
		attach(fake, port)
		s := mustNew(t, Config{Model: PMS5003, Interval: 10 * time.Second, Warmup: -1}, func(string) (Port, error) { return port, nil })
		rec, stop := run(t, s)
		time.Sleep(time.Second)
		bad := pmsFrame(7)
		bad[31]++
		for _, b := range [][]byte{
			{0x00, 0xFF, 0x42}, pmsFrame(1), // 3 garbage bytes
			bad, pmsFrame(2), // checksum error, 30 bytes skipped
			{0x42, 0x4D, 0x00, 0x10}, pmsFrame(3), // length error, 2 bytes skipped
			unhex(t, pmsAck), pmsFrame(4),
		} {
			for _, c := range b { // byte by byte, as a slow adapter delivers them
				port.push([]byte{c})
				time.Sleep(time.Millisecond)
			}
		}
		time.Sleep(10 * time.Second)
		stop()
		_, batches := rec.snapshot()
		if len(batches) != 1 || values(batches[0]) != "pm1=4 pm25=5 pm10=6" {
			t.Errorf("batches = %+v, want the last frame: pm1=4 pm25=5 pm10=6", batches)
		}
		want := Stats{Frames: 4, ChecksumErrors: 1, LengthErrors: 1, Resyncs: 3, GarbageBytes: 3 + 30 + 2}
		if st := s.Stats(); st != want {
			t.Errorf("Stats() = %+v, want %+v", st, want)
		}
	})
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		port := newMemPort()
		s := mustNew(t, Config{Model: SDS011}, func(string) (Port, error) { return port, nil })
		_, stop := run(t, s)
		time.Sleep(time.Second)
		if err := s.Run(t.Context(), make(chan reading.Batch)); err == nil {
			t.Errorf("second concurrent Run = nil, want an error")
		}
		stop()
	})
}

func TestSampleQuality(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		values string
		frame  []byte
		want   string
	}{
		{"", unhex(t, pmsExample), "pm1=11/good pm25=17/good pm10=21/good"},
		{ValuesCF1, unhex(t, pmsExample), "pm1=12/good pm25=18/good pm10=21/good"},
		{"", encodePMS(Frame{PM1: 2000, PM25: 2001, PM10: 5001}), "pm1=2000/good pm25=2001/bad pm10=5001/bad"},
	} {
		s := mustNew(t, Config{Model: PMS7003, Values: c.values}, nil)
		rs, n, err := s.sample(c.frame, at)
		var got []string
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%s=%g/%s", r.Quantity, r.Value, r.Quality))
			if r.Time != at || r.Validate() != nil {
				t.Errorf("reading %+v: time or validity wrong (%v)", r, r.Validate())
			}
		}
		if strings.Join(got, " ") != c.want || n != 32 || err != nil {
			t.Errorf("sample(% X) with values %q = %s, %d, %v; want %s", c.frame, c.values, got, n, err, c.want)
		}
	}
	s := mustNew(t, Config{Model: SDS011}, nil)
	rs, _, _ := s.sample(encodeSDS(SDSFrame{PM25: 2500, PM10: 300}), at)
	if len(rs) != 2 || rs[0].Quantity != "pm25" || rs[0].Quality != reading.Bad || rs[1].Quantity != "pm10" || rs[1].Quality != reading.Good {
		t.Errorf("SDS sample = %+v, want pm25 Bad, pm10 Good", rs)
	}
}

func TestConfig(t *testing.T) {
	s := mustNew(t, Config{Model: PMS5003}, nil)
	if c := s.cfg; c.Mode != ModeActive || c.Values != ValuesAtmospheric || c.Interval != 10*time.Second ||
		c.Stale != 30*time.Second || c.Warmup != 30*time.Second || c.dutyCycled() {
		t.Errorf("PMS defaults = %+v", c)
	}
	s = mustNew(t, Config{Model: SDS011, Interval: time.Minute, Warmup: -1}, nil)
	if c := s.cfg; c.Mode != ModeQuery || c.Values != "" || c.Stale != 3*time.Minute || c.Warmup != 0 {
		t.Errorf("SDS defaults = %+v", c)
	}

	bad := Config{Name: "pm 1", Site: "", Model: PMS5003, Mode: "query", Values: "raw", Interval: -time.Second}
	bad.DutyCycle.Work = time.Minute
	_, err := New(bad, nil, nil)
	for _, want := range []string{"name:", "site:", "port:", "mode: must be active or passive", "values:", "interval:", "duty_cycle: set both"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad) = %v, want it to mention %q", err, want)
		}
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Model: "sps30"}, "model: must be one of"},
		{Config{Model: SDS011, Mode: ModePassive}, "mode: must be query or active"},
		{Config{Model: SDS011, Values: ValuesCF1}, "values: the sds011 reports one set"},
		{Config{Model: PMS5003, DutyCycle: struct{ Work, Sleep time.Duration }{20 * time.Second, time.Minute}}, "duty_cycle.work: must be longer than warmup (30s)"},
		{Config{Model: PMS5003, Stale: -time.Second}, "stale:"},
	} {
		c.cfg.Name, c.cfg.Site, c.cfg.Port = "pm-1", "s", "/dev/ttyPM"
		if _, err := New(c.cfg, nil, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

func TestPortRecordsCommandsExactly(t *testing.T) {
	// The fake's command splitter relies on these lengths.
	if n := len(PMSCommand(PMSCmdRead, 0)); n != 7 {
		t.Errorf("len(PMSCommand) = %d, want 7", n)
	}
	if n := len(SDSCommand(SDSCmdQuery, [12]byte{}, SDSAnyID)); n != sdsCmdLen {
		t.Errorf("len(SDSCommand) = %d, want %d", n, sdsCmdLen)
	}
	if !bytes.HasPrefix(SDSCommand(SDSCmdQuery, [12]byte{}, SDSAnyID), []byte{sdsHead, sdsCmdHead}) {
		t.Errorf("SDSCommand does not start AA B4")
	}
}
