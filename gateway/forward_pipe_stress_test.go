package gateway

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// stressSink stores readings by value (their index), fails sends at random and checks,
// at every send, that the reader's cursor never stands past a reading it has not stored.
type stressSink struct {
	t      *testing.T
	r      *buffer.Reader
	total  func() int
	mu     sync.Mutex
	stored map[int]bool
	prefix int
	active int
	most   int
}

func (s *stressSink) check() {
	s.t.Helper()
	if c := s.total() - int(s.r.Unsent()); c > s.prefix {
		s.t.Errorf("cursor at %d, but reading %d not stored", c, s.prefix)
	}
}

func (s *stressSink) Write(ctx context.Context, rs []reading.Reading) error {
	return s.Prepare(rs)(ctx)
}

func (s *stressSink) Prepare(rs []reading.Reading) func(context.Context) error {
	return func(ctx context.Context) error {
		s.mu.Lock()
		s.check()
		s.active++
		s.most = max(s.most, s.active)
		s.mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.active--
		if rand.IntN(5) == 0 {
			return errors.New("random failure")
		}
		for _, r := range rs {
			s.stored[int(r.Value)] = true
		}
		for s.stored[s.prefix] {
			s.prefix++
		}
		s.check()
		return nil
	}
}

// The pipelined forwarder under random failures and timings, with readings arriving while
// it drains: the cursor never passes a reading the sink has not stored, and everything
// is delivered.
func TestPipelineStressCursorNeverAhead(t *testing.T) {
	for _, prep := range []bool{true, false} {
		t.Run(map[bool]string{true: "preparer", false: "writer"}[prep], func(t *testing.T) { stressPipeline(t, prep) })
	}
}

// writeOnly hides a sink's Prepare: the forwarder gives it one Write at a time.
type writeOnly struct{ s *stressSink }

func (w writeOnly) Write(ctx context.Context, rs []reading.Reading) error { return w.s.Write(ctx, rs) }

func stressPipeline(t *testing.T, prepare bool) {
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	t0 := time.Now().Add(-time.Hour)
	var mu sync.Mutex
	appended := 0
	appendN := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		rs := make([]reading.Reading, n)
		for i := range rs {
			rs[i] = reading.New(t0.Add(time.Duration(appended+i)*time.Millisecond), "s", "d", "la", float64(appended+i))
		}
		if err := q.Append(rs...); err != nil {
			t.Fatal(err)
		}
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
		appended += n
	}
	appendN(5000)
	r, err := q.Reader("sink")
	if err != nil {
		t.Fatal(err)
	}
	sink := &stressSink{t: t, r: r, stored: map[int]bool{}}
	sink.total = func() int { mu.Lock(); defer mu.Unlock(); return appended }
	var spec Sink = sink
	if !prepare {
		spec = writeOnly{sink}
	}
	f := newForwarder(SinkSpec{Name: "sink", Sink: spec, BatchSize: 50, DrainBatchSize: 250, FlushInterval: time.Millisecond,
		RetryInitial: time.Millisecond, RetryMax: 2 * time.Millisecond, MaxInFlight: 4}, r, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
	for range 100 {
		appendN(rand.IntN(40) + 1)
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(60 * time.Second)
	for r.Unsent() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if r.Unsent() != 0 || sink.prefix != appended {
		t.Fatalf("unsent %d, stored prefix %d of %d", r.Unsent(), sink.prefix, appended)
	}
	if !prepare && sink.most > 1 {
		t.Errorf("%d writes at once to a sink that is not a Preparer", sink.most)
	}
	t.Logf("at most %d sends in flight", sink.most)
}
