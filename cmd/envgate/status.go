package main

import (
	"log/slog"
	"net/http"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/status"
	"github.com/envgate/envgate/internal/clock"
)

// Bounds of the status page's parts (docs/operations.md, "Status page and envgate tail").
const (
	// statusErrors is how many warnings and errors the page lists.
	statusErrors = 20
	// statusStreams is how many `envgate tail` streams may run at once: each holds one
	// of the few HTTP connections the server allows (httpLimits.MaxConns).
	statusStreams = 4
)

// statusPage is the status page of a running gateway: the ring of its last warnings
// and errors, and the feed of its admitted readings.
type statusPage struct {
	errors *status.Ring
	feed   *status.Feed
}

// newStatusPage returns the page's parts and log wrapped so that its warnings and
// errors reach the page as well.
func newStatusPage(log *slog.Logger) (*statusPage, *slog.Logger) {
	p := &statusPage{errors: status.NewRing(log.Handler(), statusErrors), feed: status.NewFeed(statusStreams)}
	return p, slog.New(p.errors)
}

// handler serves the page and its API for cfg's gateway, and hands every other request
// to next.
func (p *statusPage) handler(cfg *config.Config, m *metrics.Metrics, healthy func() error, next http.Handler) http.Handler {
	s := status.New(status.Config{
		Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Build: version,
		Layout: statusLayout(cfg), Metrics: m, Healthy: healthy, Errors: p.errors, Feed: p.feed, Now: clock.Now,
	})
	return s.Handler(next)
}

// statusLayout groups cfg's devices as the page shows them: config's DeviceGroups
// (the simulated devices, each Modbus bus, each MQTT source with the devices its
// subscriptions name, the particulate sensors, the HJ 212 analyzers; devices named by
// topics show up under "other"), and the gateway itself.
func statusLayout(cfg *config.Config) status.Layout {
	var l status.Layout
	for _, g := range cfg.DeviceGroups() {
		sg := status.Group{Name: g.Name, Kind: g.Kind}
		for _, d := range g.Devices {
			sg.Devices = append(sg.Devices, status.Device{Name: d.Name})
		}
		l = append(l, sg)
	}
	if cfg.Gateway.HealthInterval > 0 {
		l = append(l, status.Group{Name: "this gateway", Kind: "gateway", Devices: []status.Device{{Name: reading.HealthDevice}}})
	}
	return l
}
