package gateway

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// countingSink records the values it was given; the first Write waits for release.
type countingSink struct {
	mu      sync.Mutex
	values  []float64
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *countingSink) Write(ctx context.Context, batch []reading.Reading) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		s.entered <- struct{}{}
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		s.values = append(s.values, r.Value)
	}
	return nil
}

// A reload hands the buffer over (Pipeline.Handover): the forwarder finishes the write
// in flight, acknowledges it and stops, without delivering the rest of the backlog in
// the grace period; the next forwarder on the same reader goes on from its cursor, so
// every reading is written once. (Found in review: a reload spent the whole grace on a
// backlog with the sources stopped.)
func TestHandoverStopsAfterTheWriteInFlight(t *testing.T) {
	const backlog, batch = 1000, 100
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	r := fillBacklog(t, q, backlog, time.Now().Add(-backlog*time.Second), time.Second)
	sink := &countingSink{entered: make(chan struct{}), release: make(chan struct{})}
	spec := SinkSpec{Name: "sink", Sink: sink, BatchSize: batch, FlushInterval: time.Millisecond}
	handover := make(chan struct{})
	f := newForwarder(spec, r, slog.New(slog.DiscardHandler))
	f.handover = handover
	done := make(chan struct{})
	go func() { defer close(done); f.run(context.Background(), make(chan struct{})) }()
	<-sink.entered // the first batch is in flight
	close(handover)
	close(sink.release)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the forwarder did not stop after the write in flight")
	}
	if n := len(sink.values); n != batch {
		t.Fatalf("handed over after %d readings, want the batch in flight (%d)", n, batch)
	}
	next := newForwarder(spec, r, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go next.run(ctx, make(chan struct{}))
	deadline := time.Now().Add(30 * time.Second)
	for {
		sink.mu.Lock()
		n := len(sink.values)
		sink.mu.Unlock()
		if n >= backlog || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.values) != backlog {
		t.Fatalf("written %d readings in all, want %d", len(sink.values), backlog)
	}
	for i, v := range sink.values {
		if v != float64(i) {
			t.Fatalf("reading %d written as %v: a re-send or a gap", i, v)
		}
	}
}
