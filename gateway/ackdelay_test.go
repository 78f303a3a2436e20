package gateway_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
)

// countingQueue counts the writer's syncs.
type countingQueue struct {
	*buffer.Queue
	syncs, appends atomic.Int64
}

func (q *countingQueue) Sync() error { q.syncs.Add(1); return q.Queue.Sync() }

func (q *countingQueue) AppendRedeliverable(rs ...reading.Reading) error {
	q.appends.Add(1)
	return q.Queue.AppendRedeliverable(rs...)
}

// ackRecord is when each batch was sent and made durable, and whether it was readable
// (so fsynced: readers see only synced records) when its Durable came.
type ackRecord struct {
	mu           sync.Mutex
	sent, acked  map[int]time.Time
	early, twice []int
}

func newAckRecord() *ackRecord {
	return &ackRecord{sent: map[int]time.Time{}, acked: map[int]time.Time{}}
}

// batch returns batch i (one reading of value i) with a Durable that checks, through
// audit, that the reading is durable when it is called.
func (a *ackRecord) batch(i int, audit *buffer.Reader, windowFull bool) reading.Batch {
	t := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	r := reading.New(t, "s", "mqtt-1", "pm25", float64(i))
	a.mu.Lock()
	a.sent[i] = time.Now()
	a.mu.Unlock()
	return reading.Batch{Readings: []reading.Reading{r}, Redeliverable: true, WindowFull: windowFull, Durable: func(err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, ok := a.acked[i]; ok {
			a.twice = append(a.twice, i)
		}
		a.acked[i] = time.Now()
		rs, _, _ := audit.Peek(1000)
		if err != nil || len(rs) <= i || rs[i].Value != float64(i) {
			a.early = append(a.early, i)
		}
	}}
}

func (a *ackRecord) check(t *testing.T, n int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.acked) != n {
		t.Errorf("%d of %d batches made durable", len(a.acked), n)
	}
	if len(a.early) > 0 || len(a.twice) > 0 {
		t.Errorf("batches %v told durable before their sync (or with an error), %v told twice", a.early, a.twice)
	}
}

// runAckPipeline runs a pipeline with one source in a synctest bubble.
func runAckPipeline(t *testing.T, ackDelay time.Duration, source func(ctx context.Context, out chan<- reading.Batch, audit *buffer.Reader) error) (*countingQueue, context.CancelFunc, chan error) {
	q := &countingQueue{Queue: openQueue(t)}
	audit, err := q.Reader("audit")
	if err != nil {
		t.Fatal(err)
	}
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: q.Queue, Metrics: metrics.New(),
		SyncInterval: time.Hour, AckDelay: ackDelay, ShutdownGrace: time.Second,
		Sources: []gateway.Source{sourceFunc{"mqtt-1", func(ctx context.Context, out chan<- reading.Batch) error {
			return source(ctx, out, audit)
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	gateway.SetQueue(p, q)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return q, cancel, done
}

// Issue 14: the writer synced as soon as a batch waited for its Durable call and the
// ingest channel was empty — one fdatasync per MQTT message. With an ack delay, the
// batches of one delay share a sync, none is told durable before that sync, and none
// waits longer than the delay.
func TestAckDelayGroupsSyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, every, delay = 20, 100 * time.Millisecond, time.Second
		rec := newAckRecord()
		q, cancel, done := runAckPipeline(t, delay, func(ctx context.Context, out chan<- reading.Batch, audit *buffer.Reader) error {
			for i := range n {
				out <- rec.batch(i, audit, false)
				time.Sleep(every)
			}
			<-ctx.Done()
			return nil
		})
		time.Sleep(n*every + 2*delay)
		synctest.Wait()
		syncs, appends := q.syncs.Load(), q.appends.Load()
		cancel()
		<-done
		rec.check(t, n)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for i := range n {
			if w := rec.acked[i].Sub(rec.sent[i]); w > delay {
				t.Errorf("batch %d waited %v for its sync, more than the ack delay %v", i, w, delay)
			}
		}
		if w := rec.acked[0].Sub(rec.sent[0]); w != delay {
			t.Errorf("the first batch waited %v, want the whole ack delay %v (the batches after it share its sync)", w, delay)
		}
		// 20 batches over 2 s: one sync per second of them, not one each.
		if syncs > n*int64(every)/int64(delay)+1 {
			t.Errorf("%d syncs for %d batches over %v with an ack delay of %v; want about %d", syncs, n, n*every, delay, n*every/delay)
		}
		// The batches of one sync are appended together just before it: one write.
		if appends > syncs {
			t.Errorf("%d appends for %d syncs; want at most one append per sync", appends, syncs)
		}
	})
}

// A batch marked WindowFull (its source can take no more until it is acknowledged) is
// synced at once with every batch before it, without waiting out the ack delay.
func TestWindowFullSyncsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, delay = 5, time.Minute
		rec := newAckRecord()
		var fullSent time.Time
		_, cancel, done := runAckPipeline(t, delay, func(ctx context.Context, out chan<- reading.Batch, audit *buffer.Reader) error {
			for i := range n {
				time.Sleep(time.Second)
				out <- rec.batch(i, audit, i == n-1)
			}
			fullSent = time.Now()
			<-ctx.Done()
			return nil
		})
		time.Sleep(n * time.Second)
		synctest.Wait()
		rec.mu.Lock()
		for i := range n {
			at, ok := rec.acked[i]
			if !ok || at.Sub(fullSent) != 0 {
				t.Errorf("batch %d: durable %v after the full window (told: %v); want at once", i, at.Sub(fullSent), ok)
			}
		}
		rec.mu.Unlock()
		cancel()
		<-done
		rec.check(t, n)
	})
}

// Stopping (or a reload) does not wait out the ack delay: the batches waiting for it
// are synced at once, so the source can acknowledge them before it returns, as the MQTT
// source does within its grace period.
func TestAckDelayShutdownSyncsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = time.Minute
		rec := newAckRecord()
		told := make(chan struct{})
		var stoppedAt, toldAt time.Time
		_, cancel, done := runAckPipeline(t, delay, func(ctx context.Context, out chan<- reading.Batch, audit *buffer.Reader) error {
			b := rec.batch(0, audit, false)
			durable := b.Durable
			b.Durable = func(err error) { durable(err); close(told) }
			out <- b
			<-ctx.Done()
			stoppedAt = time.Now()
			select {
			case <-told:
				toldAt = time.Now()
			case <-time.After(2 * time.Second): // the MQTT source's grace period
			}
			return nil
		})
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		<-done
		rec.check(t, 1)
		if toldAt.IsZero() || toldAt != stoppedAt {
			t.Errorf("on stop the waiting batch was told durable %v after the stop (told: %v); want at once", toldAt.Sub(stoppedAt), !toldAt.IsZero())
		}
	})
}

// gatedQueue counts AppendRedeliverable calls; the first one waits for release.
type gatedQueue struct {
	*buffer.Queue
	calls   atomic.Int64
	release chan struct{}
}

func (q *gatedQueue) AppendRedeliverable(rs ...reading.Reading) error {
	if q.calls.Add(1) == 1 {
		<-q.release
	}
	return q.Queue.AppendRedeliverable(rs...)
}

// Issue 14: the writer appended each MQTT message with its own write(2). Redeliverable
// batches queued together are appended with one call (one write); a batch of another
// kind between them keeps its place.
func TestQueuedRedeliverableBatchesShareOneAppend(t *testing.T) {
	const n = 10
	bq := openQueue(t)
	q := &gatedQueue{Queue: bq, release: make(chan struct{})}
	audit, _ := bq.Reader("audit")
	rec := newAckRecord()
	sent := make(chan struct{})
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: bq, Metrics: metrics.New(),
		SyncInterval: time.Hour, ShutdownGrace: time.Second,
		Sources: []gateway.Source{sourceFunc{"mqtt-1", func(ctx context.Context, out chan<- reading.Batch) error {
			for i := range n {
				out <- rec.batch(i, audit, false)
			}
			close(sent)
			<-ctx.Done()
			return nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	gateway.SetQueue(p, q)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-sent // all sent: at least 1 to 9 wait in the ingest channel (batch 0 may be held in its append)
	close(q.release)
	waitFor(t, 10*time.Second, "all batches durable", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.acked) == n
	})
	cancel()
	<-done
	rec.check(t, n)
	if c := q.calls.Load(); c > 2 {
		t.Errorf("%d appends for %d batches, at least 9 of them queued together; want at most 2", c, n)
	}
	rs, _, _ := audit.Peek(100)
	for i, r := range rs {
		if r.Value != float64(i) {
			t.Fatalf("reading %d has value %v; want the batches' order", i, r.Value)
		}
	}
}
