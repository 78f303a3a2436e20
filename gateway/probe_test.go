package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// probeSink is a Prober whose server is down until up is set. It records every call
// with the forwarder's back-off at that moment.
type probeSink struct {
	f        *forwarder
	writeErr error // what a write returns while down
	probeOK  bool  // the server answers its ping even while down (writes still fail)

	mu       sync.Mutex
	up       bool
	failedAt time.Time // the last failed write
	writes   []call
	probes   []call
	stored   int
}

// call is one Write or Probe: when, how long after the last failed write, and whether
// it came before that failure's back-off was over.
type call struct {
	at, failedAt time.Time
	early        bool
}

func (s *probeSink) record(list *[]call) {
	s.f.mu.Lock()
	next := s.f.nextRetry
	s.f.mu.Unlock()
	now := time.Now()
	*list = append(*list, call{at: now, failedAt: s.failedAt, early: !next.IsZero() && now.Before(next)})
}

func (s *probeSink) Write(_ context.Context, batch []reading.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(&s.writes)
	if s.up {
		s.stored += len(batch)
		return nil
	}
	s.failedAt = time.Now()
	return s.writeErr
}

func (s *probeSink) Probe(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(&s.probes)
	if s.up || s.probeOK {
		return nil
	}
	return errors.New("503 Service Unavailable")
}

func (s *probeSink) setUp() {
	s.mu.Lock()
	s.up = true
	s.mu.Unlock()
}

func (s *probeSink) calls() (writes, probes []call, stored int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.writes...), append([]call(nil), s.probes...), s.stored
}

// startProbed runs a forwarder over a buffer of 10 readings to sink inside a synctest
// bubble, and returns a function that stops it.
func startProbed(t *testing.T, sink *probeSink, spec SinkSpec) func() {
	t.Helper()
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := fillBacklog(t, q, 10, time.Now(), time.Millisecond)
	spec.Name, spec.Sink, spec.BatchSize = "sink", sink, 100
	f := newForwarder(spec, r, slog.New(slog.DiscardHandler))
	sink.f = f
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
	return func() {
		cancel()
		<-done
		q.Close()
	}
}

// TestProbeWhileDownAddsNoWrites: a server whose /ping fails (503, or no answer) is
// probed every 2.5 to 5 s while the forwarder backs off, and gets no write before the
// back-off is over: probing neither hammers a server that is down nor shortens the
// back-off.
func TestProbeWhileDownAddsNoWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &probeSink{writeErr: errors.New("503 Service Unavailable")}
		stop := startProbed(t, sink, SinkSpec{RetryInitial: time.Second, RetryMax: 2 * time.Minute, ProbeInterval: 5 * time.Second})
		const outage = 30 * time.Minute
		time.Sleep(outage)
		synctest.Wait()
		stop()
		writes, probes, _ := sink.calls()
		for i, w := range writes {
			if w.early {
				t.Errorf("write %d at +%v came before its back-off was over", i, w.at.Sub(writes[0].at))
			}
		}
		// 1+2+...+64 s, then one per 60 to 120 s.
		if len(writes) < 15 || len(writes) > 38 {
			t.Errorf("%d writes in %v with back-off from 1 s to 2 min, want 15 to 38", len(writes), outage)
		}
		if len(probes) < int(outage/(5*time.Second))*3/4 {
			t.Errorf("%d probes in %v, want about one every 2.5 to 5 s", len(probes), outage)
		}
		for i := 1; i < len(probes); i++ {
			if d := probes[i].at.Sub(probes[i-1].at); d < 2500*time.Millisecond && probes[i].failedAt.Equal(probes[i-1].failedAt) {
				t.Errorf("probes %d and %d only %v apart, want at least 2.5 s", i-1, i, d)
			}
		}
		if st := sink.f.stats(); st.ProbesFailed != uint64(len(probes)) || st.ProbesOK != 0 {
			t.Errorf("stats: %d probes failed, %d ok; want %d, 0", st.ProbesFailed, st.ProbesOK, len(probes))
		}
	})
}

// TestProbeResumesAtOnce is issue 14, item 4: once the back-off has reached retry_max
// (2 min), a server that comes back gets the buffered readings within one probe interval,
// not when the back-off ends. Before, delivery waited up to retry_max.
func TestProbeResumesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &probeSink{writeErr: errors.New("connection refused")}
		stop := startProbed(t, sink, SinkSpec{RetryInitial: time.Second, RetryMax: 2 * time.Minute, ProbeInterval: 5 * time.Second})
		defer stop()
		time.Sleep(time.Hour) // down for an hour: the back-off is at its cap
		// The server returns just after a failed write, at the start of a back-off of
		// 60 to 120 s.
		w, _, _ := sink.calls()
		for n := len(w); len(w) == n; w, _, _ = sink.calls() {
			time.Sleep(100 * time.Millisecond)
		}
		sink.f.mu.Lock()
		next := sink.f.nextRetry
		sink.f.mu.Unlock()
		back := time.Now()
		sink.setUp()
		for {
			if _, _, stored := sink.calls(); stored == 10 {
				break
			}
			if time.Since(back) > 3*time.Minute {
				t.Fatal("nothing delivered within 3 minutes of the server's return")
			}
			time.Sleep(100 * time.Millisecond)
		}
		writes, probes, _ := sink.calls()
		last := writes[len(writes)-1]
		if d := last.at.Sub(back); d > 5*time.Second || !last.at.Before(next) {
			t.Errorf("delivered %v after the server came back, at %v; the next retry was due at %v: want within the 5 s probe interval",
				d, last.at.Format(time.TimeOnly), next.Format(time.TimeOnly))
		}
		if len(probes) == 0 || !probes[len(probes)-1].at.Equal(last.at) {
			t.Errorf("delivered at %v; want the write as soon as a probe succeeded (%d probes)", last.at, len(probes))
		}
		if st := sink.f.stats(); st.ProbesOK != 1 {
			t.Errorf("stats: %d probes ok, want 1", st.ProbesOK)
		}
	})
}

// TestProbeHonoursRetryAfter: a server asking for a delay with Retry-After is not
// probed before the delay is over, even though its /ping answers; a write a probe let
// through that fails again is followed by a full back-off, so a server that answers its
// ping but not its writes gets at most one extra write per back-off.
func TestProbeHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const after = 40 * time.Second
		sink := &probeSink{writeErr: retryAfterError(after), probeOK: true}
		stop := startProbed(t, sink, SinkSpec{RetryInitial: 2 * time.Minute, RetryMax: 2 * time.Minute, ProbeInterval: 5 * time.Second})
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		stop()
		writes, probes, _ := sink.calls()
		if len(probes) == 0 {
			t.Fatal("no probes: a back-off of 60 to 120 s after a Retry-After of 40 s leaves time to probe")
		}
		for i, p := range probes {
			if d := p.at.Sub(p.failedAt); d < after {
				t.Errorf("probe %d came %v after a failure that asked for Retry-After %v", i, d, after)
			}
		}
		for i := 1; i < len(writes); i++ {
			if d := writes[i].at.Sub(writes[i].failedAt); d < after {
				t.Errorf("write %d came %v after a failure that asked for Retry-After %v", i, d, after)
			}
			if writes[i].early && writes[i-1].early {
				t.Errorf("writes %d and %d both cut their back-off short: the probe must not let a second one through", i-1, i)
			}
		}
		// Without probes: one write per 60 to 120 s; with them at most twice that.
		if len(writes) > 2*(30*60/60)+1 {
			t.Errorf("%d writes in 30 min, want at most %d", len(writes), 2*(30*60/60)+1)
		}
	})
}

// TestProbeNotBeforeLongRetryAfter: when the server's Retry-After is longer than the
// back-off, the forwarder waits it out without a single probe.
func TestProbeNotBeforeLongRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &probeSink{writeErr: retryAfterError(time.Minute), probeOK: true}
		stop := startProbed(t, sink, SinkSpec{RetryInitial: 10 * time.Second, RetryMax: 10 * time.Second, ProbeInterval: 5 * time.Second})
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		stop()
		writes, probes, _ := sink.calls()
		if len(probes) != 0 {
			t.Errorf("%d probes, want none: Retry-After (1 min) outlasts every back-off (10 s)", len(probes))
		}
		if len(writes) > 11 {
			t.Errorf("%d writes in 10 min with Retry-After 1 min, want at most 11", len(writes))
		}
	})
}

// persistentError is a refusal only an operator can cure, as influx.PersistentError.
type persistentError struct{}

func (persistentError) Error() string    { return "401 Unauthorized" }
func (persistentError) Persistent() bool { return true }

// TestNoProbeWhileRefused: a server refusing the credentials is reachable, so a probe
// would succeed and retry at once; the forwarder keeps to auth_retry instead.
func TestNoProbeWhileRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &probeSink{writeErr: persistentError{}, probeOK: true}
		stop := startProbed(t, sink, SinkSpec{RetryInitial: time.Second, RetryMax: 2 * time.Minute, AuthRetry: time.Minute,
			ProbeInterval: 5 * time.Second})
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		stop()
		writes, probes, _ := sink.calls()
		if len(probes) != 0 || len(writes) > 11 {
			t.Errorf("%d probes and %d writes in 10 min with auth_retry 1 min, want none and at most 11", len(probes), len(writes))
		}
	})
}
