package gateway

import (
	"context"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// healthPoller turns the pipeline's health into readings, so that a box behind a 4G NAT
// that nobody can scrape still reports its buffer and sinks through InfluxDB.
type healthPoller struct {
	p *Pipeline
	// running delivers the result of the read of the pipeline's state that is still
	// running, nil if none is.
	running chan []reading.Reading
}

// Poll returns promptly when ctx is done, even while the buffer's or a sink's
// statistics do not answer (a hung disk): the read runs on a goroutine of its own, and
// the next Poll waits for that same read rather than start another, so at most one
// read hangs at a time. A poll that cannot block keeps shutdown independent of the disk.
func (h *healthPoller) Poll(ctx context.Context) ([]reading.Reading, error) {
	if h.running == nil {
		c := make(chan []reading.Reading, 1)
		h.running = c
		go func() { c <- h.read() }()
	}
	select {
	case rs := <-h.running:
		h.running = nil
		return rs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// read reads the pipeline's state into health readings.
func (h *healthPoller) read() []reading.Reading {
	now := clock.Now().Truncate(time.Millisecond)
	qs := h.p.queue.Stats()
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
	return rs
}
