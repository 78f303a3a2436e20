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

// heldCall is one send of ctlSink, waiting for the test's answer.
type heldCall struct {
	first  int // the value of the batch's first reading, its index in the backlog
	n      int
	answer chan error
}

// ctlSink is a Preparer whose sends wait until the test answers them, in any order.
type ctlSink struct {
	calls chan *heldCall
	mu    sync.Mutex
	sends map[int]int // sends per batch, by its first reading
}

func newCtlSink() *ctlSink { return &ctlSink{calls: make(chan *heldCall, 64), sends: map[int]int{}} }

func (s *ctlSink) Write(ctx context.Context, batch []reading.Reading) error {
	return s.Prepare(batch)(ctx)
}

func (s *ctlSink) Prepare(batch []reading.Reading) func(context.Context) error {
	return func(ctx context.Context) error {
		c := &heldCall{first: int(batch[0].Value), n: len(batch), answer: make(chan error, 1)}
		s.mu.Lock()
		s.sends[c.first]++
		s.mu.Unlock()
		s.calls <- c
		select {
		case err := <-c.answer:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *ctlSink) sendsOf(first int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends[first]
}

// pipeRig is a forwarder over a buffer holding a backlog of n readings valued 0 to n-1,
// batches of batch, sending into a ctlSink; all inside a synctest bubble.
type pipeRig struct {
	t      *testing.T
	q      *buffer.Queue
	r      *buffer.Reader
	f      *forwarder
	sink   *ctlSink
	n      int
	t0     time.Time // reading i was taken at t0 + i ms
	held   map[int]*heldCall
	cancel context.CancelFunc
	done   chan struct{}
}

func startPipeRig(t *testing.T, n, batch, inFlight int) *pipeRig {
	t.Helper()
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	r := fillBacklog(t, q, n, t0, time.Millisecond)
	sink := newCtlSink()
	f := newForwarder(SinkSpec{Name: "sink", Sink: sink, BatchSize: batch, FlushInterval: time.Millisecond,
		RetryInitial: time.Second, RetryMax: time.Second, MaxInFlight: inFlight}, r, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	rig := &pipeRig{t: t, q: q, r: r, f: f, sink: sink, n: n, t0: t0, held: map[int]*heldCall{}, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(rig.done); f.run(ctx, make(chan struct{})) }()
	return rig
}

// inFlight waits until the forwarder and the sends are all blocked and returns the first
// readings of the batches in flight, in order.
func (g *pipeRig) inFlight() []int {
	synctest.Wait()
	for {
		select {
		case c := <-g.sink.calls:
			g.held[c.first] = c
			continue
		default:
		}
		break
	}
	var firsts []int
	for i := 0; i < g.n; i++ {
		if _, ok := g.held[i]; ok {
			firsts = append(firsts, i)
		}
	}
	return firsts
}

// answer completes the send of the batch starting at first.
func (g *pipeRig) answer(first int, err error) {
	g.t.Helper()
	c, ok := g.held[first]
	if !ok {
		g.t.Fatalf("no send of the batch at %d in flight", first)
	}
	delete(g.held, first)
	c.answer <- err
	synctest.Wait()
}

// acked checks that the cursor stands at want: every reading before it acknowledged,
// none after.
func (g *pipeRig) acked(want int) {
	g.t.Helper()
	if got := g.n - int(g.r.Unsent()); got != want {
		g.t.Fatalf("cursor at reading %d, want %d", got, want)
	}
}

func (g *pipeRig) stop() {
	g.cancel()
	<-g.done
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPipelineAcksInOrder: with three writes in flight that complete out of order, the
// cursor moves only over the longest prefix of batches the sink has stored; a batch
// that fails after later ones succeeded is sent again after the back-off, alone, and
// only then does the cursor pass it and the later ones.
func TestPipelineAcksInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := startPipeRig(t, 600, 100, 3)
		defer g.stop()
		if got := g.inFlight(); !equalInts(got, []int{0, 100, 200}) {
			t.Fatalf("batches in flight %v, want [0 100 200]", got)
		}
		g.answer(200, nil)
		g.answer(100, nil)
		g.acked(0) // batch 0 is not stored yet: nothing may be acknowledged
		g.answer(0, nil)
		g.acked(300)
		// The age of the oldest unsent reading follows the cursor: reading 300 was read
		// ahead before the cursor reached it.
		if got, want := g.r.OldestUnsent(), g.t0.Add(300*time.Millisecond); !got.Equal(want) {
			t.Errorf("OldestUnsent() = %v, want reading 300's time %v", got, want)
		}
		if got := g.inFlight(); !equalInts(got, []int{300, 400, 500}) {
			t.Fatalf("batches in flight %v, want [300 400 500]", got)
		}
		g.answer(500, nil)
		g.answer(300, errors.New("server down"))
		g.answer(400, nil)
		g.acked(300)                // 400 and 500 are stored, 300 is not
		time.Sleep(2 * time.Second) // the back-off (1 s at most)
		if got := g.inFlight(); !equalInts(got, []int{300}) {
			t.Fatalf("after the back-off, batches in flight %v, want only the failed one [300]", got)
		}
		g.acked(300)
		g.answer(300, nil)
		g.acked(600)
		for first, want := range map[int]int{0: 1, 100: 1, 200: 1, 300: 2, 400: 1, 500: 1} {
			if got := g.sink.sendsOf(first); got != want {
				t.Errorf("batch at %d sent %d times, want %d", first, got, want)
			}
		}
		if st := g.f.stats(); st.Written != 600 || st.Retried != 1 {
			t.Errorf("stats: %d written, %d retried; want 600 and 1", st.Written, st.Retried)
		}
	})
}

// TestPipelineFailureInTheMiddle: when batch k fails and batch k+1 succeeds, nothing
// past batch k is acknowledged, even across later failures; several sends failing in
// one outage cost one back-off, not one each; every reading is stored in the end.
func TestPipelineFailureInTheMiddle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := startPipeRig(t, 500, 100, 3)
		defer g.stop()
		g.inFlight()
		g.answer(100, errors.New("timeout"))
		g.answer(200, nil)
		g.answer(0, nil)
		g.acked(100)
		time.Sleep(2 * time.Second)
		// The failed batch again, and one more: 100 and 200 count as sent, so one new batch
		// keeps the batches sent and not acknowledged at three (MaxInFlight).
		if got := g.inFlight(); !equalInts(got, []int{100, 300}) {
			t.Fatalf("batches in flight %v, want the failed one again, then the next: [100 300]", got)
		}
		// The server is down again: both fail; one back-off.
		g.answer(300, errors.New("refused"))
		g.answer(100, errors.New("refused"))
		g.acked(100)
		if st := g.f.stats(); st.Retried != 2 {
			t.Errorf("%d back-offs, want 2: the second outage's two failures count once", st.Retried)
		}
		time.Sleep(2 * time.Second)
		if got := g.inFlight(); !equalInts(got, []int{100, 300}) {
			t.Fatalf("batches in flight %v, want [100 300] again, in order", got)
		}
		g.answer(300, nil)
		g.acked(100)
		g.answer(100, nil)
		g.acked(400)
		if got := g.inFlight(); !equalInts(got, []int{400}) {
			t.Fatalf("batches in flight %v, want [400]", got)
		}
		g.answer(400, nil)
		g.acked(500)
		if got := g.sink.sendsOf(200); got != 1 {
			t.Errorf("the stored batch at 200 was sent %d times, want once", got)
		}
	})
}

// TestPipelineShutdownWithWritesInFlight: cancelled with writes in flight, run waits for
// them and returns; the one the sink stored before the cancellation reached it is
// acknowledged, those cancelled are not, and a forwarder started again on the same
// reader delivers the rest.
func TestPipelineShutdownWithWritesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := startPipeRig(t, 400, 100, 2)
		if got := g.inFlight(); !equalInts(got, []int{0, 100}) {
			t.Fatalf("batches in flight %v, want [0 100]", got)
		}
		g.answer(0, nil)
		g.acked(100)
		g.inFlight()              // 200 is now in flight too
		g.held[100].answer <- nil // stored, but its answer arrives with the cancellation
		g.cancel()
		<-g.done
		g.acked(200) // 100 acknowledged; 200 was cancelled
		if got := g.sink.sendsOf(300); got != 0 {
			t.Errorf("batch at 300 sent %d times during the shutdown, want 0", got)
		}

		next := newForwarder(g.f.spec, g.r, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); next.run(ctx, make(chan struct{})) }()
		g.held = map[int]*heldCall{}
		if got := g.inFlight(); !equalInts(got, []int{200, 300}) {
			t.Fatalf("the next forwarder's batches in flight %v, want [200 300]", got)
		}
		g.answer(200, nil)
		g.answer(300, nil)
		g.acked(400)
		cancel()
		<-done
	})
}
