package gateway

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/remotewrite"
	"github.com/envgate/envgate/internal/testsvc"
)

// TestRemoteWriteBacklogAfterOutage is issue 15, item 1, against a real Prometheus
// 2.42 receiver: readings stored while the receiver is down are delivered after it
// returns, in order and with their own timestamps, every one of them: nothing is
// rejected as out of order (the sink is Ordered, so no live reading overtakes the
// backlog) and nothing is dead-lettered.
func TestRemoteWriteBacklogAfterOutage(t *testing.T) {
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true})
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	q, err := buffer.Open(buffer.Options{Dir: filepath.Join(dir, "buffer"), CursorInterval: time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	sink, err := remotewrite.New(remotewrite.Config{Name: "central", URL: prom.URL + "/api/v1/write",
		Timeout: 2 * time.Second, DeadLetter: filepath.Join(dir, "central.lp"), GatewayID: "box-7"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	r, err := q.Reader("central")
	if err != nil {
		t.Fatal(err)
	}
	f := newForwarder(SinkSpec{Name: "central", Sink: sink, BatchSize: 50, FlushInterval: 20 * time.Millisecond,
		RetryInitial: 50 * time.Millisecond, RetryMax: 300 * time.Millisecond, Ordered: true}, r, log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
	defer func() { cancel(); <-done }()

	// One noise reading a second and a health reading every ten, from 20 minutes ago:
	// i from..to-1.
	start := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	var want []reading.Reading
	appendReadings := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			at := start.Add(time.Duration(i) * time.Second)
			rs := []reading.Reading{reading.New(at, "park-3", "noise-1", "la", 30+float64(i%50))}
			if i%10 == 0 {
				rs = append(rs, reading.New(at, "park-3", reading.HealthDevice, "buffer_unsent", float64(i)))
			}
			if err := q.Append(rs...); err != nil {
				t.Fatal(err)
			}
			want = append(want, rs...)
		}
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	delivered := func(within time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(within); r.Unsent() > 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d readings unsent after %v; sink %+v", r.Unsent(), within, f.stats())
			}
		}
	}

	appendReadings(0, 100)
	delivered(30 * time.Second)
	prom.Stop(t)
	appendReadings(100, 400) // the outage's backlog
	for deadline := time.Now().Add(30 * time.Second); f.stats().Retried == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the forwarder did not fail a write while the receiver was down")
		}
	}
	if r.Unsent() == 0 {
		t.Fatal("nothing left unsent while the receiver was down")
	}
	prom.Start(t)
	delivered(time.Minute)

	got := prom.Series(t, `envgate_reading_value{gateway="box-7"}`, 30*time.Minute, time.Now())
	byDevice := map[string][]testsvc.TimedValue{}
	for _, rd := range want {
		byDevice[rd.Device] = append(byDevice[rd.Device], testsvc.TimedValue{T: rd.Time.UnixMilli(), V: rd.Value})
	}
	for key, stored := range got {
		dev := reading.HealthDevice
		if !strings.Contains(key, `device="`+reading.HealthDevice+`"`) {
			dev = "noise-1"
		}
		w := byDevice[dev]
		if len(stored) != len(w) {
			t.Fatalf("%s: %d samples stored, want %d", key, len(stored), len(w))
		}
		for i := range w {
			if stored[i] != w[i] {
				t.Fatalf("%s: sample %d = %+v, want %+v", key, i, stored[i], w[i])
			}
		}
		delete(byDevice, dev)
	}
	if len(byDevice) != 0 {
		t.Fatalf("series missing in Prometheus for %v; stored %v", byDevice, got)
	}
	if st := sink.Stats(); st.DeadLettered != 0 || st.Written != uint64(len(want)) {
		t.Errorf("sink Stats() = %+v, want %d written and nothing dead-lettered", st, len(want))
	}
}
