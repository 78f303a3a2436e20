package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// PushStats is the state of one remote-write sink's metrics push (docs/remote-write.md).
type PushStats struct {
	Pushed uint64 // pushes the receiver accepted
	Failed uint64 // pushes that failed and were dropped, never sent again
}

var metricsPushes = desc("sink", "metrics_pushes_total",
	"Pushes of the gateway's own metrics by each remote-write sink, by result (ok, or failed: dropped and never sent again), as a count of pushes.", "sink", "result")

// pushCollector reads the metrics pushes' state at scrape time.
type pushCollector struct {
	mu    sync.Mutex
	sinks map[string]func() PushStats
}

func (c *pushCollector) Describe(ch chan<- *prometheus.Desc) { ch <- metricsPushes }

func (c *pushCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.sinks))
	for n := range c.sinks {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]func() PushStats, len(names))
	for i, n := range names {
		fns[i] = c.sinks[n]
	}
	c.mu.Unlock()
	for i, n := range names {
		s := fns[i]()
		ch <- prometheus.MustNewConstMetric(metricsPushes, prometheus.CounterValue, float64(s.Pushed), n, "ok")
		ch <- prometheus.MustNewConstMetric(metricsPushes, prometheus.CounterValue, float64(s.Failed), n, "failed")
	}
}

// AddMetricsPush registers the metrics push of remote-write sink name, whose state is
// read at scrape time. Adding the same name again replaces its function.
func (m *Metrics) AddMetricsPush(name string, stats func() PushStats) {
	m.push.mu.Lock()
	defer m.push.mu.Unlock()
	m.push.sinks[name] = stats
}
