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

// slowSink is a server under a reconnect storm: every write takes perWrite. It notes
// when each reading (told apart by its value) first arrived.
type slowSink struct {
	perWrite time.Duration
	mu       sync.Mutex
	arrived  map[float64]time.Time
	writes   int
}

func (s *slowSink) Write(_ context.Context, batch []reading.Reading) error {
	time.Sleep(s.perWrite)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for _, r := range batch {
		if _, ok := s.arrived[r.Value]; !ok {
			s.arrived[r.Value] = time.Now()
		}
	}
	return nil
}

// TestLiveReadingsFlowWhileBacklogDrains is issue 14, item 5: with a backlog of 20 000
// readings that a slow server (0.5 s per request of 1000) takes over 10 s to take, a
// reading arriving every 100 ms reaches the server within 8 s (liveAfter, one flush
// interval and two requests) all along, and those arriving after the first 5 s within
// 3 s, while the backlog is still delivered in full by the cursor. Before, live
// readings waited behind the whole backlog (17.5 s here).
func TestLiveReadingsFlowWhileBacklogDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const backlog, live, batch = 20000, 150, 1000
		const lag = liveAfter + 3*time.Second
		q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		r := fillBacklog(t, q, backlog, time.Now().Add(-time.Hour), time.Millisecond)
		sink := &slowSink{perWrite: 500 * time.Millisecond, arrived: map[float64]time.Time{}}
		f := newForwarder(SinkSpec{Name: "sink", Sink: sink, BatchSize: batch, FlushInterval: time.Second}, r,
			slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
		synctest.Wait() // the first batch of the backlog is in flight

		appended := make([]time.Time, live)
		for i := range live {
			rd := reading.New(time.Now(), "s", "d", "la", float64(backlog+i))
			if err := q.Append(rd); err != nil {
				t.Fatal(err)
			}
			if err := q.Sync(); err != nil {
				t.Fatal(err)
			}
			appended[i] = time.Now()
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Minute) // the rest drains
		synctest.Wait()
		cancel()
		<-done

		sink.mu.Lock()
		defer sink.mu.Unlock()
		var drained time.Time // when the last backlog reading arrived
		for i := range backlog {
			at, ok := sink.arrived[float64(i)]
			if !ok {
				t.Fatalf("backlog reading %d never delivered", i)
			}
			if at.After(drained) {
				drained = at
			}
		}
		if d := drained.Sub(appended[0]); d < 10*time.Second {
			t.Fatalf("the backlog drained in %v: too fast to show anything", d)
		}
		worst := time.Duration(0)
		for i := range live {
			at, ok := sink.arrived[float64(backlog+i)]
			if !ok {
				t.Fatalf("live reading %d never delivered", i)
			}
			worst = max(worst, at.Sub(appended[i]))
			into, d := appended[i].Sub(appended[0]), at.Sub(appended[i])
			if d > lag || (into >= liveAfter && d > 3*time.Second) {
				t.Errorf("live reading %d, appended %v into the drain, arrived %v later; want within %v, 3 s after the first %v",
					i, into, d, lag, liveAfter)
			}
		}
		if n := r.Unsent(); n != 0 {
			t.Errorf("%d readings unacknowledged after the drain, want 0", n)
		}
		st := f.stats()
		if st.Written != backlog+live || st.LiveWritten == 0 {
			t.Errorf("stats: written %d, live %d; want %d and some", st.Written, st.LiveWritten, backlog+live)
		}
		t.Logf("backlog drained in %v; live readings at most %v behind; %d writes, %d readings sent twice",
			drained.Sub(appended[0]), worst, sink.writes, st.LiveWritten)
	})
}
