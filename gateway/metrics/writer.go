package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var writerStalled = desc("writer", "stalled_seconds",
	"How long the pipeline's writer has been waiting for its current buffer call (an append or an fsync) to return, in seconds; 0 while it is not in one. /healthz fails once it passes 30 seconds.")

// writerCollector reports the pipeline writer's current buffer call at scrape time.
type writerCollector struct {
	mu   sync.Mutex
	busy func() time.Duration
}

func (c *writerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- writerStalled }

func (c *writerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	busy := c.busy
	c.mu.Unlock()
	if busy == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(writerStalled, prometheus.GaugeValue, busy().Seconds())
}

// SetWriterStall makes envgate_writer_stalled_seconds report busy, called at every
// scrape: how long the writer's current buffer call has been running (0 if none). busy
// must not wait for the buffer. A later call replaces the function.
func (m *Metrics) SetWriterStall(busy func() time.Duration) {
	m.writer.mu.Lock()
	defer m.writer.mu.Unlock()
	m.writer.busy = busy
}
