package gateway

import (
	"context"
	"slices"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// healthDevice is the device name of the gateway's own health readings.
const healthDevice = "gateway"

// healthQuantities are the quantities of the gateway's own health readings, in the order
// Poll reports them.
var healthQuantities = []string{"buffer_bytes", "buffer_unsent", "buffer_oldest_unsent", "buffer_dropped",
	"buffer_quarantined", "sink_written", "uptime"}

// reservedName reports whether a reading of device and quantity would pass for one of
// the gateway's own health readings: its device is the health device, or its quantity a
// health quantity. Only the gateway may store such readings (Pipeline.admit); from a
// source they could hide data loss, e.g. an MQTT publisher sending buffer_dropped 0.
func reservedName(device, quantity string) bool {
	return device == healthDevice || slices.Contains(healthQuantities, quantity)
}

// healthPoller turns the pipeline's health into readings, so that a box behind a 4G NAT
// that nobody can scrape still reports its buffer and sinks through InfluxDB.
type healthPoller struct{ p *Pipeline }

func (h *healthPoller) Poll(ctx context.Context) ([]reading.Reading, error) {
	now := time.Now().Truncate(time.Millisecond)
	qs := h.p.cfg.Queue.Stats()
	var unsent int64
	var oldest time.Duration
	var written uint64
	for _, f := range h.p.forwarders {
		s := f.stats()
		unsent = max(unsent, s.Unsent)
		oldest = max(oldest, s.OldestUnsentAge)
		written += s.Written
	}
	site := h.p.cfg.Site
	if site == "" {
		site = h.p.cfg.GatewayID
	}
	values := []float64{ // in the order of healthQuantities
		float64(qs.Bytes),
		float64(unsent),
		oldest.Seconds(),
		float64(qs.Dropped),
		float64(qs.QuarantinedRecords),
		float64(written),
		time.Since(h.p.start).Truncate(time.Second).Seconds(),
	}
	rs := make([]reading.Reading, len(values))
	for i, v := range values {
		rs[i] = reading.New(now, site, healthDevice, healthQuantities[i], v)
	}
	return rs, nil
}
