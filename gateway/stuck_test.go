package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/metrics"
)

// stuckStatsQueue is the real queue whose Stats hangs until release is closed, as a
// read of the buffer's state could behind a hung disk.
type stuckStatsQueue struct {
	*buffer.Queue
	stuck   chan struct{} // closed when a Stats call starts to hang
	release chan struct{}
}

func (q *stuckStatsQueue) Stats() buffer.Stats {
	select {
	case <-q.stuck:
	default:
		close(q.stuck)
	}
	<-q.release
	return q.Queue.Stats()
}

// Issue 10: a health poll stuck in the buffer's Stats must not hold up shutdown: Run
// returns within the shutdown grace period even though the poll never returns.
func TestShutdownWithStuckHealthPoll(t *testing.T) {
	q := openQueue(t)
	sq := &stuckStatsQueue{Queue: q, stuck: make(chan struct{}), release: make(chan struct{})}
	// Released after Run returned (or the test gave up), before the queue closes.
	t.Cleanup(func() { close(sq.release) })
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: q, Metrics: metrics.New(),
		SyncInterval: 20 * time.Millisecond, HealthInterval: 20 * time.Millisecond, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	gateway.SetQueue(p, sq)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-sq.stuck
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel while a health poll hangs in Stats")
	}
}
