package gateway

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// sendLog is the real InfluxDB sink noting when each request that succeeded began and
// how many readings it carried.
type sendLog struct {
	*influx.Sink
	mu    sync.Mutex
	sends []rateWrite
}

func (s *sendLog) note(at time.Time, n int, err error) error {
	if err == nil {
		s.mu.Lock()
		s.sends = append(s.sends, rateWrite{at, n})
		s.mu.Unlock()
	}
	return err
}

func (s *sendLog) Write(ctx context.Context, batch []reading.Reading) error {
	at := time.Now()
	return s.note(at, len(batch), s.Sink.Write(ctx, batch))
}

// Prepare notes the forwarder's pipelined sends as Write (the real sink is a Preparer).
func (s *sendLog) Prepare(batch []reading.Reading) func(context.Context) error {
	send := s.Sink.Prepare(batch)
	return func(ctx context.Context) error {
		at := time.Now()
		return s.note(at, len(batch), send(ctx))
	}
}

func (s *sendLog) list() []rateWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rateWrite(nil), s.sends...)
}

// TestInfluxStormPacing is issue 15, item 3, against a real InfluxDB 1.8 that is
// stopped and started again: with retry_jitter 3 s, a probe every second and max_rate
// 500 readings/s, a backlog of 3000 readings resumes within retry_jitter, a probe
// interval and one back-off (retry_max, in case the first write after the restart
// fails) of the restart, plus a margin for the machine; the drain keeps to the cap
// (no request over 500 readings; over any span between request starts at most
// 500/s × the span plus one request, with half a second of slack for scheduling), so
// it takes at least about (3000 - 500) / 500 = 5 s; and InfluxDB holds every reading.
func TestInfluxStormPacing(t *testing.T) {
	inf := testsvc.StartInflux(t)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	q, err := buffer.Open(buffer.Options{Dir: dir, CursorInterval: time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n, rateCap, jitter, probe, retryMax = 3000, 500, 3 * time.Second, time.Second, 5 * time.Second
	t0 := time.Now().Add(-time.Hour)
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = reading.New(t0.Add(time.Duration(i)*time.Millisecond), "canal-test", "noise-1", "la", 40+float64(i%20))
	}
	r := backlogOf(t, q, "influx", rs)
	is, err := influx.New(influx.Config{Name: "influx", URL: inf.URL, Bucket: inf.Bucket, Precision: time.Millisecond,
		Timeout: 2 * time.Second, DeadLetter: dir + "/deadletter.lp", GatewayID: "box-test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	sink := &sendLog{Sink: is}

	inf.Stop(t)
	f := newForwarder(SinkSpec{Name: "influx", Sink: sink, BatchSize: 1000, DrainBatchSize: DrainBatchSize(1000),
		RetryInitial: 100 * time.Millisecond, RetryMax: retryMax, ProbeInterval: probe,
		RetryJitter: jitter, MaxRate: rateCap}, r, log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
	defer func() { cancel(); <-done }()

	// Down until the forwarder has failed a few times and probed in vain.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if st := f.stats(); st.Retried >= 3 && st.ProbesFailed >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed probe within 1 min of InfluxDB's stop; stats %+v", f.stats())
		}
	}
	inf.Start(t)
	restarted := time.Now()
	for deadline := restarted.Add(2 * time.Minute); r.Unsent() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d readings unsent 2 min after InfluxDB's restart; stats %+v", r.Unsent(), f.stats())
		}
	}

	sends := sink.list()
	resumed := sends[0].at.Sub(restarted)
	if limit := jitter + probe + retryMax + 5*time.Second; resumed > limit {
		t.Errorf("delivery resumed %v after InfluxDB's restart, want within %v (retry_jitter, a probe interval, retry_max and a margin)",
			resumed.Round(time.Millisecond), limit)
	}
	sent := 0
	for i, s := range sends {
		sent += s.n
		if s.n > rateCap {
			t.Errorf("request %d carried %d readings, want at most max_rate (%d)", i, s.n, rateCap)
		}
	}
	for i := range sends {
		sum := 0
		for j := i; j < len(sends); j++ {
			sum += sends[j].n
			span := sends[j].at.Sub(sends[i].at).Seconds()
			if float64(sum) > rateCap*(span+0.5)+rateCap {
				t.Fatalf("requests %d to %d carried %d readings in %.3f s: more than %d/s plus one request", i, j, sum, span, rateCap)
			}
		}
	}
	drain := sends[len(sends)-1].at.Sub(sends[0].at)
	if want := time.Duration(float64(n-rateCap) / rateCap * 0.8 * float64(time.Second)); drain < want {
		t.Errorf("the backlog drained in %v, want at least %v: the cap did not hold it back", drain, want)
	}
	if sent < n {
		t.Errorf("requests carried %d readings, want at least %d", sent, n)
	}
	if got := len(inf.Points(t)); got != n {
		t.Errorf("InfluxDB holds %d points, want %d", got, n)
	}
	st := f.stats()
	if st.RateLimited <= 0 {
		t.Errorf("stats: never rate limited (%+v)", st)
	}
	t.Logf("resumed %v after the restart; %d readings in %d requests over %v; held back by the cap %v",
		resumed.Round(time.Millisecond), sent, len(sends), drain.Round(time.Millisecond), st.RateLimited.Round(time.Millisecond))
}
