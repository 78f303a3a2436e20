package gateway

import (
	"context"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// healthPoller turns the pipeline's health into readings, so that a box behind a 4G NAT
// that nobody can scrape still reports its buffer and sinks through InfluxDB.
type healthPoller struct{ p *Pipeline }

func (h *healthPoller) Poll(ctx context.Context) ([]reading.Reading, error) {
	now := clock.Now().Truncate(time.Millisecond)
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
	values := []struct {
		q string
		v float64
	}{
		{"buffer_bytes", float64(qs.Bytes)},
		{"buffer_unsent", float64(unsent)},
		{"buffer_oldest_unsent", oldest.Seconds()},
		{"buffer_dropped", float64(qs.Dropped)},
		{"buffer_quarantined", float64(qs.QuarantinedRecords)},
		{"sink_written", float64(written)},
		{"uptime", time.Since(h.p.start).Truncate(time.Second).Seconds()},
	}
	rs := make([]reading.Reading, len(values))
	for i, x := range values {
		rs[i] = reading.New(now, site, reading.HealthDevice, x.q, x.v)
	}
	return rs, nil
}
