package gateway_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// A reload stops the running pipeline and starts a new one over the same buffer: the
// readings the old one's time gate holds (the clock still in 1970) are in its memory
// only, and the new one takes them over (AdoptHeld) and stores them once the clock is
// set. (Found in review: they vanished at the swap, uncounted.)
func TestAdoptHeldKeepsReadingsAcrossAReload(t *testing.T) {
	q := openQueue(t)
	mk := func(src chanSource) (*gateway.Pipeline, *metrics.Metrics) {
		m := metrics.New()
		p, err := gateway.New(gateway.Config{GatewayID: gatewayID, Site: "canal-test", Sources: []gateway.Source{src},
			Queue: q, Metrics: m, SyncInterval: 20 * time.Millisecond, ShutdownGrace: time.Second, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return p, m
	}
	src := make(chanSource)
	old, m := mk(src)
	wall1970 := func() time.Time { return time.Unix(60, 0).UTC() }
	gateway.SetWallClock(old, wall1970, func() (bool, bool) { return false, true })
	stop := start(t, old)
	src <- reading.Batch{Readings: []reading.Reading{reading.New(wall1970(), "canal-test", "box-1", "la", 41)}}
	waitFor(t, 10*time.Second, "held", func() bool { return strings.Contains(scrape(t, m), "envgate_readings_held_for_clock{} 1\n") })
	stop() // the reload's swap

	next, _ := mk(make(chanSource))
	next.AdoptHeld(old)
	gateway.SetWallClock(next, clock.Now, func() (bool, bool) { return true, true }) // NTP answers
	start(t, next)
	stored := func() (n int, at time.Time) {
		_ = q.Recent(time.Time{}, func(r reading.Reading) {
			if r.Device == "box-1" {
				n, at = n+1, r.Time
			}
		})
		return n, at
	}
	waitFor(t, 10*time.Second, "the held reading stored by the new pipeline", func() bool { n, _ := stored(); return n == 1 })
	if _, at := stored(); !clock.Plausible(at) {
		t.Errorf("stored at %v: not re-stamped", at)
	}
}
