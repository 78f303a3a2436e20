package gateway

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// orderSink records the values it was sent, in the order of arrival.
type orderSink struct {
	perWrite time.Duration
	mu       sync.Mutex
	values   []float64
}

func (s *orderSink) Write(_ context.Context, batch []reading.Reading) error {
	time.Sleep(s.perWrite)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		s.values = append(s.values, r.Value)
	}
	return nil
}

// TestOrderedSinkHasNoLiveLane is issue 15, item 2: a SinkSpec with Ordered gets every
// reading once, in buffer order, even while a backlog drains long enough for the live
// lane to open for other sinks (TestLiveReadingsFlowWhileBacklogDrains).
func TestOrderedSinkHasNoLiveLane(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const backlog, live, batch = 20000, 150, 1000
		q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		r := fillBacklog(t, q, backlog, time.Now().Add(-time.Hour), time.Millisecond)
		sink := &orderSink{perWrite: 500 * time.Millisecond}
		f := newForwarder(SinkSpec{Name: "sink", Sink: sink, BatchSize: batch, FlushInterval: time.Second, Ordered: true},
			r, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
		synctest.Wait()
		for i := range live {
			if err := q.Append(reading.New(time.Now(), "s", "d", "la", float64(backlog+i))); err != nil {
				t.Fatal(err)
			}
			if err := q.Sync(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		cancel()
		<-done

		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.values) != backlog+live {
			t.Fatalf("sink got %d readings, want %d, each once", len(sink.values), backlog+live)
		}
		for i, v := range sink.values {
			if v != float64(i) {
				t.Fatalf("reading %d arrived with value %v, want %d: out of buffer order", i, v, i)
			}
		}
		if st := f.stats(); st.LiveWritten != 0 {
			t.Errorf("live lane wrote %d readings for an ordered sink, want 0", st.LiveWritten)
		}
	})
}
