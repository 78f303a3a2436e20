package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
)

// modelQueue stands in for the buffer's write side with a model of what is durable:
// every reading's value names it. Its group commit inside AppendRedeliverable fails
// once, on the call whose reading has the value failOn, and discards every reading
// written since the last sync (all have another copy here), as the buffer does.
// Like the buffer, only the failing call reports the discard (wrapping ErrUnsynced);
// the next Sync answers for what was appended after it.
type modelQueue struct {
	*buffer.Queue // Stats and SyncInProgressSince only
	failOn        float64
	gate          chan struct{} // the first AppendRedeliverable waits for it

	mu       sync.Mutex
	unsynced []float64
	durable  map[float64]bool
	gated    bool
}

func (q *modelQueue) Append(rs ...reading.Reading) error { return q.AppendRedeliverable(rs...) }

func (q *modelQueue) AppendRedeliverable(rs ...reading.Reading) error {
	q.mu.Lock()
	first := !q.gated
	q.gated = true
	q.mu.Unlock()
	if first {
		<-q.gate
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	fail := false
	for _, r := range rs {
		q.unsynced = append(q.unsynced, r.Value)
		fail = fail || r.Value == q.failOn
	}
	if !fail {
		return nil
	}
	q.unsynced = nil
	return fmt.Errorf("%w: %w: %w: sync segments/1.seg: input/output error", buffer.ErrRefused, buffer.ErrDegraded, buffer.ErrUnsynced)
}

func (q *modelQueue) Sync() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, v := range q.unsynced {
		q.durable[v] = true
	}
	q.unsynced = nil
	return nil
}

// Issue 10: when the group commit inside an append fails, every batch waiting for the
// next sync was in that failed sync and is told so at once; a later sync answers only
// for the batches appended after it. A batch is reported durable exactly when its
// readings are.
func TestFailedGroupCommitFailsWaitingBatches(t *testing.T) {
	q := openQueue(t)
	mq := &modelQueue{Queue: q, failOn: 2, gate: make(chan struct{}), durable: map[float64]bool{}}
	var mu sync.Mutex
	got := map[float64]error{}
	var wg sync.WaitGroup
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	// Batches 1, 2 and 3 reach the writer together: 1 waits for a sync when 2's
	// group commit fails, and 3 is appended after that.
	source := func(ctx context.Context, out chan<- reading.Batch) error {
		for i := 1; i <= 3; i++ {
			v := float64(i)
			wg.Add(1)
			out <- reading.Batch{Readings: []reading.Reading{reading.New(t0.Add(time.Duration(i)*time.Second), "s", "mqtt-1", "la", v)},
				Redeliverable: true, Durable: func(err error) {
					mu.Lock()
					defer mu.Unlock()
					if _, dup := got[v]; dup {
						t.Errorf("batch %v: Durable called twice", v)
					}
					got[v] = err
					wg.Done()
				}}
		}
		close(mq.gate)
		<-ctx.Done()
		return nil
	}
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: q, Metrics: metrics.New(),
		SyncInterval: time.Hour, ShutdownGrace: time.Second, Sources: []gateway.Source{sourceFunc{"mqtt-1", source}}})
	if err != nil {
		t.Fatal(err)
	}
	gateway.SetQueue(p, mq)
	stop := start(t, p)
	wg.Wait()
	stop()
	mu.Lock()
	defer mu.Unlock()
	mq.mu.Lock()
	defer mq.mu.Unlock()
	for v := 1.0; v <= 3; v++ {
		switch err := got[v]; {
		case mq.durable[v] && err != nil:
			t.Errorf("batch %v is durable, but Durable got %v", v, err)
		case !mq.durable[v] && err == nil:
			t.Errorf("batch %v was discarded by a failed sync, but Durable got nil", v)
		case !mq.durable[v] && !errors.Is(err, buffer.ErrRefused):
			t.Errorf("batch %v: Durable got %v, want an error wrapping ErrRefused", v, err)
		}
	}
}
