package gateway_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// chanSource sends the batches a test gives it.
type chanSource chan reading.Batch

func (chanSource) Name() string { return "test" }

func (c chanSource) Run(ctx context.Context, out chan<- reading.Batch) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-c:
			select {
			case out <- b:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// A box without a real-time clock boots in 1970. Readings it stamps then never reach
// InfluxDB as 1970: they are held until NTP sets the clock, then stored re-stamped by
// the step, at their real time. A reading whose own (payload) time is 1970 while the
// clock is right is refused, counted as before_build; InfluxDB holds nothing before the
// build time.
func TestNo1970ReadingsReachInfluxDB(t *testing.T) {
	inf := testsvc.StartInflux(t)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	q := openQueue(t)
	sink, err := influx.New(influx.Config{Name: "influx", URL: inf.URL, Bucket: inf.Bucket, Precision: time.Millisecond,
		Timeout: 2 * time.Second, DeadLetter: dir + "/deadletter.lp", GatewayID: gatewayID}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	src := make(chanSource)
	m := metrics.New()
	p, err := gateway.New(gateway.Config{GatewayID: gatewayID, Site: "canal-test", Sources: []gateway.Source{src},
		Queue: q, Metrics: m, SyncInterval: 20 * time.Millisecond, ShutdownGrace: 10 * time.Second, Log: log,
		Sinks: []gateway.SinkSpec{{Name: "influx", Sink: sink, BatchSize: 100, FlushInterval: 20 * time.Millisecond,
			RetryInitial: 50 * time.Millisecond, RetryMax: 400 * time.Millisecond, AuthRetry: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	// The box's wall clock: the real one shifted back to 1970 until "NTP" sets it.
	var offset atomic.Int64
	offset.Store(int64(time.Unix(60, 0).Sub(clock.Now())))
	var synced atomic.Bool
	wall := func() time.Time { return clock.Now().Add(time.Duration(offset.Load())) }
	gateway.SetWallClock(p, wall, func() (bool, bool) { return synced.Load(), true })
	stop := start(t, p)

	booted := wall()
	src <- reading.Batch{Readings: []reading.Reading{reading.New(booted, "canal-test", "box-1", "la", 41)}}
	waitFor(t, 10*time.Second, "the 1970 reading held", func() bool {
		return strings.Contains(scrape(t, m), "envgate_readings_held_for_clock{} 1\n")
	})
	sentAt := clock.Now() // when the reading was measured, on the right clock (within the wait)

	// NTP sets the clock; the kernel reports it synchronised.
	offset.Store(0)
	synced.Store(true)
	waitFor(t, 10*time.Second, "the re-stamped reading in InfluxDB", func() bool { return inf.Count(t, "noise", "la") == 1 })

	// A payload time of 1970 while the clock is right: refused, counted.
	src <- reading.Batch{Readings: []reading.Reading{reading.New(time.Unix(120, 0), "canal-test", "mqtt-1", "la", 42)}}
	waitFor(t, 10*time.Second, "the 1970 payload counted", func() bool {
		return strings.Contains(scrape(t, m), `envgate_readings_invalid_total{device="mqtt-1",reason="before_build"} 1`)
	})
	// A reading after it, so that everything before it has been delivered when it is.
	src <- reading.Batch{Readings: []reading.Reading{reading.New(clock.Now(), "canal-test", "box-1", "la", 43)}}
	waitFor(t, 10*time.Second, "the next reading in InfluxDB", func() bool { return inf.Count(t, "noise", "la") == 2 })
	stop()

	if rows := inf.Query(t, "SELECT * FROM /.*/ WHERE time < '"+clock.BuildTime().Format(time.RFC3339)+"'"); len(rows) != 0 {
		t.Errorf("InfluxDB holds %d points before the build time: %+v", len(rows), rows)
	}
	for pt, v := range inf.Points(t) {
		if pt.Field != "la" || pt.Device != "box-1" || v != 41 {
			continue
		}
		got := time.UnixMilli(pt.Time)
		if got.Before(sentAt.Add(-10*time.Second)) || got.After(sentAt.Add(time.Second)) {
			t.Errorf("the held reading was stored at %v, want its real time, just before %v", got, sentAt)
		}
		if strings.Contains(scrape(t, m), "envgate_readings_restamped_total{} 1\n") {
			return
		}
		t.Errorf("envgate_readings_restamped_total is not 1:\n%s", grep(scrape(t, m), "restamped"))
		return
	}
	t.Errorf("the held reading (41) is not in InfluxDB: %v", inf.Points(t))
}
