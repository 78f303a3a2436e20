package gateway

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// lagSink is the real InfluxDB sink slowed by extra per request: a server busy with a
// reconnect storm.
type lagSink struct {
	*influx.Sink
	extra time.Duration
}

func (s lagSink) Write(ctx context.Context, batch []reading.Reading) error {
	time.Sleep(s.extra)
	return s.Sink.Write(ctx, batch)
}

// Prepare slows the forwarder's pipelined sends as Write (the real sink is a Preparer).
func (s lagSink) Prepare(batch []reading.Reading) func(context.Context) error {
	send := s.Sink.Prepare(batch)
	return func(ctx context.Context) error {
		time.Sleep(s.extra)
		return send(ctx)
	}
}

// TestInfluxLiveLaneStoresEachPointOnce is issue 14, item 5, against a real InfluxDB
// 1.8: while a backlog drains, live readings go out through the live lane and again
// through the ordered lane, and InfluxDB ends up with exactly one point per reading,
// each live one reached the server before the backlog was through.
func TestInfluxLiveLaneStoresEachPointOnce(t *testing.T) {
	inf := testsvc.StartInflux(t)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	q, err := buffer.Open(buffer.Options{Dir: dir, CursorInterval: time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const backlog, batch = 20000, 500
	old := time.Now().Add(-time.Hour)
	rs := make([]reading.Reading, backlog)
	for i := range rs {
		rs[i] = reading.New(old.Add(time.Duration(i)*time.Millisecond), "canal-test", "noise-1", "la", float64(i%97))
	}
	r := backlogOf(t, q, "influx", rs)
	is, err := influx.New(influx.Config{Name: "influx", URL: inf.URL, Bucket: inf.Bucket, Precision: time.Millisecond,
		Timeout: 5 * time.Second, DeadLetter: dir + "/deadletter.lp", GatewayID: "box-test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	f := newForwarder(SinkSpec{Name: "influx", Sink: lagSink{is, 500 * time.Millisecond}, BatchSize: batch,
		FlushInterval: 100 * time.Millisecond}, r, log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
	defer func() { cancel(); <-done }()

	// A live reading every 20 ms until the ordered lane is through the backlog: 40
	// requests of at least 500 ms each, two in flight (DefaultMaxInFlight), longer than
	// liveAfter.
	live := 0
	for start := time.Now(); r.Unsent() > int64(batch); live++ {
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("backlog not drained within 2 min; %d unsent", r.Unsent())
		}
		if err := q.Append(reading.New(time.Now(), "canal-test", "noise-1", "la", 100+float64(live%50))); err != nil {
			t.Fatal(err)
		}
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	liveSent := f.stats().LiveWritten
	for deadline := time.Now().Add(time.Minute); r.Unsent() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d readings still unsent a minute after the live readings stopped", r.Unsent())
		}
	}
	if liveSent == 0 {
		t.Fatalf("the live lane sent nothing while %d live readings arrived during the drain", live)
	}
	if got, want := inf.Count(t, string(reading.Noise), "la"), backlog+live; got != want {
		t.Errorf("InfluxDB holds %d points, want %d: one per reading, the live lane's second copies overwritten", got, want)
	}
	t.Logf("%d live readings during the drain, %d sent ahead by the live lane", live, liveSent)
}
