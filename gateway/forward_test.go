package gateway

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// retryAfterError is a sink error asking for a delay, as influx.RetryError does.
type retryAfterError time.Duration

func (e retryAfterError) Error() string             { return "busy" }
func (e retryAfterError) RetryAfter() time.Duration { return time.Duration(e) }

// TestRetryAfterIsCapped: a sink passing on an absurd Retry-After (issue 10: a server
// answering "Retry-After: 999999999") holds the forwarder back at most maxRetryAfter,
// and a negative one does not shorten the back-off.
func TestRetryAfterIsCapped(t *testing.T) {
	f := newForwarder(SinkSpec{RetryInitial: time.Second, RetryMax: 2 * time.Minute}, nil, slog.New(slog.DiscardHandler))
	check := func(after time.Duration, atLeast, atMost time.Duration) {
		t.Helper()
		backoff := time.Second
		if got := f.failed(retryAfterError(after), &backoff); got < atLeast || got > atMost {
			t.Errorf("failed(RetryAfter %v) = %v, want %v to %v", after, got, atLeast, atMost)
		}
	}
	check(999999999*time.Second, maxRetryAfter, maxRetryAfter)
	check(time.Duration(1<<63-1), maxRetryAfter, maxRetryAfter)
	check(30*time.Second, 30*time.Second, 30*time.Second)
	check(-time.Hour, time.Second/2, time.Second) // the jittered back-off
	check(0, time.Second/2, time.Second)
	if !errors.As(error(retryAfterError(0)), new(interface{ RetryAfter() time.Duration })) {
		t.Fatal("retryAfterError does not look like a RetryError")
	}
}

// recordingSink stores every batch and notes, at each Write, how many acknowledged
// readings the reader had not saved yet: what a crash at that moment would re-send
// besides the batch being written.
type recordingSink struct {
	r       *buffer.Reader
	written int
	unsaved []uint64
}

func (s *recordingSink) Write(_ context.Context, batch []reading.Reading) error {
	n, _ := s.r.Unsaved()
	s.unsaved = append(s.unsaved, n)
	s.written += len(batch)
	return nil
}

// TestForwarderBoundsUnsavedCursor checks the cursor policy behind the re-send bound of
// docs/design.md: while a backlog is caught up, batch after batch within one cursor
// interval, fewer than a batch of acknowledged readings is ever unsaved; and once
// caught up, the cursor is saved when it is due (with little acknowledged, 12 cursor
// intervals after the last save), not at the next Ack (which may be hours away). Before, a crash after catching up re-sent the whole backlog.
func TestForwarderBoundsUnsavedCursor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const batch, backlog, interval = 100, 1000, 5 * time.Second
		q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: interval})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		t0 := time.Now()
		r := fillBacklog(t, q, backlog, t0, time.Millisecond)
		sink := &recordingSink{r: r}
		f := newForwarder(SinkSpec{Name: "sink", Sink: sink, BatchSize: batch, FlushInterval: time.Second}, r,
			slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); f.run(ctx, make(chan struct{})) }()

		synctest.Wait() // the backlog is delivered at once: no time passes in the bubble
		if sink.written != backlog {
			t.Fatalf("delivered %d readings, want %d", sink.written, backlog)
		}
		for i, n := range sink.unsaved {
			if n >= batch {
				t.Errorf("write %d: %d acknowledged readings unsaved, want fewer than a batch (%d)", i, n, batch)
			}
		}
		// Fewer acknowledged than 16 cursor saves' worth (buffer/cursor.go): saved 12
		// intervals after the last save, not at the next Ack.
		time.Sleep(12 * interval)
		synctest.Wait()
		if n, _ := r.Unsaved(); n != 0 {
			t.Errorf("caught up and idle for 12 cursor intervals: %d acknowledged readings unsaved, want 0", n)
		}
		cancel()
		<-done
	})
}

// Issue 10: a scrape must never make the forwarder wait. stats calls the reader and the
// sink's counters, which may wait (the buffer's lock behind a hung disk); it must not
// hold the forwarder's own lock meanwhile, or succeeded and failed wait for the scrape.
func TestStatsDoesNotHoldTheForwarderLock(t *testing.T) {
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	r, err := q.Reader("influx")
	if err != nil {
		t.Fatal(err)
	}
	inCounters, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	f := newForwarder(SinkSpec{Name: "influx", Counters: func() (uint64, uint64) {
		close(inCounters)
		<-release
		return 0, 0
	}}, r, slog.New(slog.DiscardHandler))
	go f.stats()
	<-inCounters
	done := make(chan struct{})
	go func() {
		f.succeeded(1)
		backoff := time.Second
		f.failed(errors.New("down"), &backoff)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("succeeded and failed waited 5s for a scrape whose sink counters hang")
	}
}
