package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
)

// TestBatchesAreAcknowledgedOnlyWhenDurable feeds batches with Durable callbacks, as
// the MQTT source does: each callback must come after its readings are readable from
// the buffer (readers only see fsynced records), exactly once, without error, and
// without waiting for the (long) sync interval.
func TestBatchesAreAcknowledgedOnlyWhenDurable(t *testing.T) {
	q := openQueue(t)
	audit, _ := q.Reader("audit")
	const n = 50
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	acked := map[int]int{}
	var notDurable []int
	source := func(ctx context.Context, out chan<- reading.Batch) error {
		for i := range n {
			r := reading.New(t0.Add(time.Duration(i)*time.Second), "s", "mqtt-1", "pm25", float64(i))
			out <- reading.Batch{Readings: []reading.Reading{r}, Durable: func(err error) {
				mu.Lock()
				defer mu.Unlock()
				acked[i]++
				if err != nil {
					notDurable = append(notDurable, i)
					return
				}
				// Durable means a reader can already see it.
				rs, _, _ := audit.Peek(n)
				if len(rs) <= i || rs[i].Value != float64(i) {
					notDurable = append(notDurable, i)
				}
			}}
		}
		<-ctx.Done()
		return nil
	}
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: q, Metrics: metrics.New(),
		SyncInterval: time.Hour, ShutdownGrace: time.Second,
		Sources: []gateway.Source{sourceFunc{"mqtt-1", source}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, 10*time.Second, fmt.Sprintf("all %d batches acknowledged (sync interval is 1 h: acks must not wait for it)", n), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) == n
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, c := range acked {
		if c != 1 {
			t.Errorf("batch %d acknowledged %d times, want once", i, c)
		}
	}
	if len(notDurable) > 0 {
		t.Errorf("batches %v were acknowledged before they were durable (or with an error)", notDurable)
	}
}

// sourceFunc adapts a function to gateway.Source.
type sourceFunc struct {
	name string
	run  func(ctx context.Context, out chan<- reading.Batch) error
}

func (s sourceFunc) Name() string { return s.name }

func (s sourceFunc) Run(ctx context.Context, out chan<- reading.Batch) error { return s.run(ctx, out) }
