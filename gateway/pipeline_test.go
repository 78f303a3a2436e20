package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/schedule"
	"github.com/envgate/envgate/internal/testsvc"
)

const gatewayID = "box-test"

type simDevice struct {
	name, kind string
	seed       int64
	interval   time.Duration
}

var devices = []simDevice{
	{"noise-1", "noise", 1, 50 * time.Millisecond},
	{"air-1", "air", 2, 100 * time.Millisecond},
	{"water-1", "water", 3, 200 * time.Millisecond},
}

// checkAgainstSim fails unless every stored point is the simulator's value at its time,
// and returns the number of points per device.
func checkAgainstSim(t *testing.T, points map[testsvc.Point]float64) map[string]int {
	t.Helper()
	perDevice := map[string]int{}
	for p, v := range points {
		var d *simDevice
		for i := range devices {
			if devices[i].name == p.Device {
				d = &devices[i]
			}
		}
		if d == nil {
			continue // health readings
		}
		perDevice[p.Device]++
		want := sim.Value(d.kind, d.seed, d.name, p.Field, time.UnixMilli(p.Time))
		if v != want {
			t.Errorf("%s.%s of %s at %d = %v, want %v (the simulator's value)", p.Measurement, p.Field, p.Device, p.Time, v, want)
		}
	}
	return perDevice
}

type harness struct {
	queue   *buffer.Queue
	metrics *metrics.Metrics
	sink    *influx.Sink
	p       *gateway.Pipeline
}

func newHarness(t *testing.T, inf *testsvc.Influx, dir string) *harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	q, err := buffer.Open(buffer.Options{Dir: dir, MaxBytes: 1 << 30, MaxAge: time.Hour, SegmentBytes: 64 << 10,
		CursorInterval: 100 * time.Millisecond, MemoryReadings: 10000, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	sink, err := influx.New(influx.Config{Name: "influx", URL: inf.URL, Bucket: inf.Bucket, Precision: time.Millisecond,
		Gzip: true, Timeout: 2 * time.Second, DeadLetter: dir + "/deadletter.lp", GatewayID: gatewayID}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	var sources []gateway.Source
	for _, d := range devices {
		drv, err := sim.New(sim.Config{Kind: d.kind, Seed: d.seed, Site: "canal-test", Device: d.name})
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &schedule.Source{Device: d.name, Poller: drv, Options: schedule.Options{Interval: d.interval}})
	}
	m := metrics.New()
	p, err := gateway.New(gateway.Config{
		GatewayID: gatewayID, Site: "canal-test", Sources: sources, Queue: q, Metrics: m,
		SyncInterval: 50 * time.Millisecond, HealthInterval: time.Second, ShutdownGrace: 10 * time.Second, Log: log,
		Sinks: []gateway.SinkSpec{{Name: "influx", Sink: sink, BatchSize: 500, FlushInterval: 100 * time.Millisecond,
			RetryInitial: 50 * time.Millisecond, RetryMax: 400 * time.Millisecond, AuthRetry: time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{queue: q, metrics: m, sink: sink, p: p}
}

// runFor runs the pipeline while during(ctx) runs, then shuts it down and waits.
func (h *harness) runFor(t *testing.T, during func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.p.Run(ctx) }()
	during()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pipeline did not shut down within 30s")
	}
}

func TestSimToInfluxExactCounts(t *testing.T) {
	inf := testsvc.StartInflux(t)
	h := newHarness(t, inf, t.TempDir())
	h.runFor(t, func() { time.Sleep(3 * time.Second) })

	st := h.queue.Stats()
	points := inf.Points(t)
	if uint64(len(points)) != st.Appended {
		t.Errorf("InfluxDB holds %d points, the buffer appended %d readings; want equal", len(points), st.Appended)
	}
	per := checkAgainstSim(t, points)
	// Every device delivered roughly duration/interval polls × its quantities.
	for _, d := range devices {
		drv, _ := sim.New(sim.Config{Kind: d.kind, Seed: d.seed, Site: "s", Device: d.name})
		polls := per[d.name] / len(drv.Quantities())
		if per[d.name]%len(drv.Quantities()) != 0 {
			t.Errorf("%s: %d points is not a whole number of polls of %d quantities", d.name, per[d.name], len(drv.Quantities()))
		}
		if want := int(3 * time.Second / d.interval); polls < want/2 || polls > want+1 {
			t.Errorf("%s: %d polls in 3s at %v, want about %d", d.name, polls, d.interval, want)
		}
	}
	if n := inf.Count(t, "health", "uptime"); n < 2 {
		t.Errorf("health.uptime has %d points, want >= 2 (one per second)", n)
	}
	if st.Dropped != 0 || st.QuarantinedRecords != 0 {
		t.Errorf("Stats() = %+v, want nothing dropped or quarantined", st)
	}
}

func TestInfluxOutageLosesNothing(t *testing.T) {
	inf := testsvc.StartInflux(t)
	h := newHarness(t, inf, t.TempDir())
	h.runFor(t, func() {
		time.Sleep(time.Second)
		inf.Stop(t)
		time.Sleep(3 * time.Second) // readings pile up in the buffer; the forwarder backs off
		inf.Start(t)
		time.Sleep(time.Second)
	})
	st := h.queue.Stats()
	points := inf.Points(t)
	if uint64(len(points)) != st.Appended {
		t.Errorf("after an outage InfluxDB holds %d points, the buffer appended %d; want equal", len(points), st.Appended)
	}
	checkAgainstSim(t, points)
	body := scrape(t, h.metrics)
	for _, want := range []string{`envgate_sink_retried_total{sink="influx"}`, `envgate_buffer_appended_total`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `envgate_sink_retried_total{sink="influx"} 0`) {
		t.Errorf("no retries counted across an outage")
	}
}

// TestCleanRestartsResendNothing restarts the pipeline cleanly three times, writing
// through a recording proxy: InfluxDB overwrites a point written twice, so only the
// proxy can show re-sends. A clean stop saves the cursor, so nothing is sent twice.
// (Crashes: TestRestartResendsNothingTwiceAndMissesNothing in cmd/envgate.)
func TestCleanRestartsResendNothing(t *testing.T) {
	inf := testsvc.StartInflux(t)
	rec := testsvc.StartRecorder(t, inf.URL)
	proxied := *inf
	proxied.URL = rec.URL
	dir := t.TempDir()
	var appended uint64
	for range 3 {
		h := newHarness(t, &proxied, dir)
		h.runFor(t, func() { time.Sleep(700 * time.Millisecond) })
		appended += h.queue.Stats().Appended
		h.queue.Close()
		h.sink.Close()
	}
	points := inf.Points(t)
	if uint64(len(points)) != appended {
		t.Errorf("after 3 runs InfluxDB holds %d points, %d appended; want equal", len(points), appended)
	}
	if total, distinct := rec.Written(); total != distinct || uint64(distinct) != appended {
		t.Errorf("InfluxDB accepted %d lines, %d distinct, %d appended; want all equal (nothing sent twice)", total, distinct, appended)
	}
	checkAgainstSim(t, points)
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			var labels []string
			for _, l := range x.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := x.GetCounter().GetValue() + x.GetGauge().GetValue()
			fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), v)
		}
	}
	return b.String()
}
