package gateway_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
)

// Issue 12: Tap (the status page's reading stream) gets every reading the writer
// admits, in order, and none it rejects (invalid, reserved, bad quality).
func TestTapSeesAdmittedReadings(t *testing.T) {
	q := openQueue(t)
	now := time.Now()
	good := reading.New(now, "canal", "noise-1", "la", 50)
	suspect := reading.New(now.Add(time.Second), "canal", "noise-1", "la", 51)
	suspect.Quality = reading.Suspect
	bad := reading.New(now, "canal", "noise-1", "la", 52)
	bad.Quality = reading.Bad
	batch := []reading.Reading{
		good,
		reading.New(now, "canal", "noise-1", "no_such_quantity", 1), // invalid
		reading.New(now, "canal", "gateway", "la", 50),              // reserved
		bad,
		suspect,
	}
	src := sourceFunc{"test", func(ctx context.Context, out chan<- reading.Batch) error {
		out <- reading.Batch{Readings: batch}
		<-ctx.Done()
		return nil
	}}
	var mu sync.Mutex
	var tapped []reading.Reading
	p, err := gateway.New(gateway.Config{GatewayID: "g", Site: "canal", Queue: q, Metrics: metrics.New(),
		SyncInterval: 20 * time.Millisecond, ShutdownGrace: time.Second, Sources: []gateway.Source{src},
		Tap: func(r reading.Reading) { mu.Lock(); defer mu.Unlock(); tapped = append(tapped, r) }})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	waitFor(t, 10*time.Second, "two tapped readings", func() bool { mu.Lock(); defer mu.Unlock(); return len(tapped) >= 2 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(tapped) != 2 || tapped[0] != good || tapped[1] != suspect {
		t.Errorf("tapped %+v, want the good and the suspect reading only", tapped)
	}
}
