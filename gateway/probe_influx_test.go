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

// deliverySink is the real InfluxDB sink (its Probe included) noting when a write
// first succeeded.
type deliverySink struct {
	*influx.Sink
	mu        sync.Mutex
	delivered time.Time
}

func (s *deliverySink) Write(ctx context.Context, batch []reading.Reading) error {
	err := s.Sink.Write(ctx, batch)
	if err == nil {
		s.mu.Lock()
		if s.delivered.IsZero() {
			s.delivered = time.Now()
		}
		s.mu.Unlock()
	}
	return err
}

// Prepare notes the forwarder's pipelined sends as Write (the real sink is a Preparer).
func (s *deliverySink) Prepare(batch []reading.Reading) func(context.Context) error {
	send := s.Sink.Prepare(batch)
	return func(ctx context.Context) error {
		err := send(ctx)
		if err == nil {
			s.mu.Lock()
			if s.delivered.IsZero() {
				s.delivered = time.Now()
			}
			s.mu.Unlock()
		}
		return err
	}
}

func (s *deliverySink) deliveredAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// TestInfluxReturnResumesDelivery is issue 14, item 4, against a real InfluxDB 1.8:
// with retry_max 1 min, InfluxDB is stopped until the forwarder's back-off exceeds 15 s,
// then started again; the buffered readings must arrive within 10 s of the restart and
// before the retry the back-off had scheduled. Before, delivery waited for that retry.
func TestInfluxReturnResumesDelivery(t *testing.T) {
	inf := testsvc.StartInflux(t)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	q, err := buffer.Open(buffer.Options{Dir: dir, CursorInterval: time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const n = 500
	t0 := time.Now().Add(-time.Minute)
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
	sink := &deliverySink{Sink: is}

	inf.Stop(t)
	f := newForwarder(SinkSpec{Name: "influx", Sink: sink, BatchSize: 1000, RetryInitial: 100 * time.Millisecond,
		RetryMax: time.Minute, ProbeInterval: time.Second}, r, log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
	defer func() { cancel(); <-done }()

	// Wait for a back-off with more than 15 s left: 100 ms doubled eight or nine times.
	var due time.Time
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		f.mu.Lock()
		due = f.nextRetry
		f.mu.Unlock()
		if time.Until(due) > 15*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no back-off longer than 15 s within 2 min; stats %+v", f.stats())
		}
	}
	outage := f.stats()
	inf.Start(t)
	restarted := time.Now()
	for time.Since(restarted) < time.Minute && sink.deliveredAt().IsZero() {
		time.Sleep(50 * time.Millisecond)
	}
	at := sink.deliveredAt()
	switch {
	case at.IsZero():
		t.Fatalf("nothing delivered within 1 min of InfluxDB's restart; the retry was due %v after it", due.Sub(restarted))
	case !at.Before(due) || at.Sub(restarted) > 10*time.Second:
		t.Errorf("delivered %v after InfluxDB's restart, the scheduled retry was due %v after it: want within 10 s and before",
			at.Sub(restarted).Round(time.Millisecond), due.Sub(restarted).Round(time.Millisecond))
	}
	if got := len(inf.Points(t)); got != n {
		t.Errorf("InfluxDB holds %d points, want %d", got, n)
	}
	st := f.stats()
	if outage.ProbesFailed == 0 || st.ProbesOK != 1 {
		t.Errorf("probes: %d failed during the outage, %d ok after it; want some and 1", outage.ProbesFailed, st.ProbesOK)
	}
	t.Logf("outage: %d failed writes, %d failed probes; delivered %v after the restart, %v before the scheduled retry",
		outage.Retried, outage.ProbesFailed, at.Sub(restarted).Round(time.Millisecond), due.Sub(at).Round(time.Millisecond))
}
