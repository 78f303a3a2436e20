package gateway

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// stormServer is the central store of a fleet: down for every box until upAt.
type stormServer struct{ upAt time.Time }

func (s *stormServer) up() bool { return !time.Now().Before(s.upAt) }

// stormSink is one box's sink to a stormServer. It notes the box's first stored write
// and what released it: the probe that found the server back, or else the end of the
// back-off (the forwarder's nextRetry).
type stormSink struct {
	srv *stormServer
	f   *forwarder

	mu      sync.Mutex
	probeOK time.Time // the last successful probe since the last failed write
	first   time.Time // the first stored write
	release time.Time // what let the first stored write go
	byProbe bool      // release was a probe
}

func (s *stormSink) Write(context.Context, []reading.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.srv.up() {
		s.probeOK = time.Time{}
		return errors.New("connection refused")
	}
	if s.first.IsZero() {
		s.first = time.Now()
		s.release, s.byProbe = s.probeOK, true
		if s.probeOK.IsZero() {
			s.f.mu.Lock()
			s.release, s.byProbe = s.f.nextRetry, false
			s.f.mu.Unlock()
		}
	}
	return nil
}

// stormProber is a stormSink that is a Prober, as the InfluxDB sink is.
type stormProber struct{ *stormSink }

func (s stormProber) Probe(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.srv.up() {
		return errors.New("503 Service Unavailable")
	}
	s.probeOK = time.Now()
	return nil
}

// TestRetryJitterSpreadsFleet is issue 15, item 3: a fleet of 80 boxes (half of them
// probing their server, half not) loses its server for 5 minutes. Each box's first
// write after the server's return goes a random delay after what released it (a
// successful probe, or the end of its back-off): never before, always within
// retry_jitter (30 s here), and (for the boxes released by the return itself) spread
// over the whole window, where without the jitter every probing box wrote within one
// probe interval (5 s) of the return. Every probing box still delivers within
// retry_jitter plus a probe interval.
func TestRetryJitterSpreadsFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const boxes, window, probe, outage = 80, 30 * time.Second, 5 * time.Second, 5 * time.Minute
		srv := &stormServer{upAt: time.Now().Add(outage)}
		sinks := make([]*stormSink, boxes)
		var stops []func()
		for i := range sinks {
			q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			r := fillBacklog(t, q, 10, time.Now(), time.Millisecond)
			s := &stormSink{srv: srv}
			var sink Sink = s
			if i%2 == 0 {
				sink = stormProber{s}
			}
			f := newForwarder(SinkSpec{Name: "sink", Sink: sink, BatchSize: 100, RetryInitial: time.Second,
				RetryMax: time.Minute, ProbeInterval: probe, RetryJitter: window}, r, slog.New(slog.DiscardHandler))
			s.f, sinks[i] = f, s
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
			stops = append(stops, func() { cancel(); <-done; q.Close() })
		}
		time.Sleep(outage + 2*time.Minute + window) // the longest back-off, then the jitter
		synctest.Wait()
		for _, stop := range stops {
			stop()
		}

		var bins [4]int
		early := 0 // probing boxes that wrote within one probe interval of the return
		for i, s := range sinks {
			if s.first.IsZero() {
				t.Fatalf("box %d: nothing delivered after the server returned", i)
			}
			d := s.first.Sub(s.release)
			if d < 0 || d >= window {
				t.Errorf("box %d: first write %v after its release (probe: %v), want within [0, %v)", i, d, s.byProbe, window)
				continue
			}
			if !s.release.Before(srv.upAt) {
				// Released by the server's return: a box released before it (its back-off
				// ran out) wrote first after it only if its jitter was long enough, so it
				// would skew the spread.
				bins[int(d*4/window)]++
			}
			if s.first.Before(srv.upAt) {
				t.Errorf("box %d: a write stored before the server returned", i)
			}
			if i%2 == 0 {
				if back := s.first.Sub(srv.upAt); back > window+probe {
					t.Errorf("probing box %d delivered %v after the server returned, want within %v", i, back, window+probe)
				} else if back < probe {
					early++
				}
			}
		}
		for i, n := range bins {
			if n == 0 {
				t.Errorf("no first write in quarter %d of the jitter window (quarters: %v): not spread", i, bins)
			}
		}
		if early > boxes/4 {
			t.Errorf("%d of %d probing boxes wrote within %v of the return: the jitter does not spread them", early, boxes/2, probe)
		}
		t.Logf("first writes released after the return, by quarter of the %v window: %v; %d of %d probing boxes within %v of the return",
			window, bins, early, boxes/2, probe)
	})
}

// rateSink stores every write after latency, as a Preparer (writes run concurrently),
// and notes when each write arrived, how many readings it carried, and when each
// reading (told apart by its value) first arrived.
type rateSink struct {
	latency time.Duration

	mu      sync.Mutex
	writes  []rateWrite
	arrived map[float64]time.Time
}

type rateWrite struct {
	at time.Time
	n  int
}

func (s *rateSink) Write(ctx context.Context, batch []reading.Reading) error {
	return s.Prepare(batch)(ctx)
}

func (s *rateSink) Prepare(batch []reading.Reading) func(context.Context) error {
	return func(context.Context) error {
		s.mu.Lock()
		s.writes = append(s.writes, rateWrite{time.Now(), len(batch)})
		for _, r := range batch {
			if _, ok := s.arrived[r.Value]; !ok {
				s.arrived[r.Value] = time.Now()
			}
		}
		s.mu.Unlock()
		time.Sleep(s.latency)
		return nil
	}
}

// TestRateCapHolds is issue 15, item 3: a backlog of 20 000 readings drains at
// max_rate (400 readings/s): no write carries more than one second's worth, no
// second (counted from the first write) carries more than 400, any span of T seconds
// at most 400×T plus one batch, and the drain takes (B - 400)/400 s as the token
// bucket, starting full, allows. With live readings arriving meanwhile (20/s), the
// live lane still keeps them within seconds: it does not wait for the cap, but its
// readings count against it (the backlog drains at 380/s then), so the bound over any
// span grows by at most one batch, the live lane's last.
func TestRateCapHolds(t *testing.T) {
	const backlog, rateCap = 20000, 400
	for _, live := range []int{0, 20} {
		name := map[int]string{0: "backlog", 20: "backlog+live"}[live]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testRateCap(t, backlog, rateCap, live) })
		})
	}
}

func testRateCap(t *testing.T, backlog int, rateCap float64, livePerSecond int) {
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	r := fillBacklog(t, q, backlog, time.Now().Add(-time.Hour), time.Millisecond)
	sink := &rateSink{latency: 30 * time.Millisecond, arrived: map[float64]time.Time{}}
	f := newForwarder(SinkSpec{Name: "sink", Sink: sink, BatchSize: 1000, DrainBatchSize: DrainBatchSize(1000),
		FlushInterval: time.Second, MaxRate: rateCap}, r, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
	start := time.Now()
	synctest.Wait() // the first batch is sent, the live lane open

	var appended []time.Time
	if livePerSecond > 0 {
		for i := 0; f.stats().Written < uint64(backlog); i++ { // until the backlog is through
			if err := q.Append(reading.New(time.Now(), "s", "d", "la", float64(backlog+i))); err != nil {
				t.Fatal(err)
			}
			if err := q.Sync(); err != nil {
				t.Fatal(err)
			}
			appended = append(appended, time.Now())
			time.Sleep(time.Second / time.Duration(livePerSecond))
		}
	}
	for r.Unsent() > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	synctest.Wait()
	cancel()
	<-done

	sink.mu.Lock()
	defer sink.mu.Unlock()
	burst := int(math.Ceil(rateCap))
	ws := sink.writes
	biggest := 0
	for _, w := range ws {
		biggest = max(biggest, w.n)
	}
	if biggest > burst {
		t.Errorf("a write carried %d readings, want at most one second's worth (%d)", biggest, burst)
	}
	// Over any span of writes: at most the cap times the span, plus the full bucket the
	// span may begin with, plus the live lane's last batch, taken on credit.
	slack := burst
	if livePerSecond > 0 {
		slack += burst
	}
	for i := range ws {
		sum := 0
		for j := i; j < len(ws); j++ {
			sum += ws[j].n
			if span := ws[j].at.Sub(ws[i].at).Seconds(); float64(sum) > rateCap*span+float64(slack) {
				t.Fatalf("writes %d to %d carried %d readings in %.3f s: more than %v/s plus %d", i, j, sum, span, rateCap, slack)
			}
		}
	}
	if livePerSecond == 0 {
		perSecond := map[int]int{}
		for _, w := range ws {
			perSecond[int(w.at.Sub(start)/time.Second)] += w.n
		}
		for sec, n := range perSecond {
			if n > int(rateCap) {
				t.Errorf("second %d carried %d readings, want at most %v", sec, n, rateCap)
			}
		}
		drain := ws[len(ws)-1].at.Sub(start)
		want := time.Duration(float64(backlog-burst) / rateCap * float64(time.Second))
		if drain < want || drain > want+2*time.Second {
			t.Errorf("the backlog drained in %v, want %v: (B - burst) / max_rate", drain, want)
		}
	} else {
		for i, at := range appended {
			got, ok := sink.arrived[float64(backlog+i)]
			if !ok {
				t.Fatalf("live reading %d never delivered", i)
			}
			into, d := at.Sub(start), got.Sub(at)
			if d > liveAfter+3*time.Second || into >= liveAfter+time.Second && d > 3*time.Second {
				t.Errorf("live reading %d, appended %v into the drain, arrived %v later; want within %v, 3 s after the first %v",
					i, into, d, liveAfter+3*time.Second, liveAfter+time.Second)
			}
		}
	}
	st := f.stats()
	elapsed := ws[len(ws)-1].at.Sub(start)
	if st.RateLimited < elapsed/2 {
		t.Errorf("stats: rate limited for %v of a %v drain, want most of it", st.RateLimited, elapsed)
	}
	t.Logf("%d readings in %d writes over %v (largest %d, %d sent by the live lane); held back by the cap %v",
		backlog+len(appended), len(ws), elapsed, biggest, st.LiveWritten, st.RateLimited)
}
