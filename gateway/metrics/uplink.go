package metrics

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// UplinkStats is the state of one MQTT uplink sink at one instant, besides what every
// sink reports (SinkStats).
type UplinkStats struct {
	Bytes     uint64        // MQTT packet bytes of the acknowledged messages, as the rate cap counts them
	Connects  uint64        // connections made
	Connected bool          // a connection is open now
	Throttled time.Duration // total time writes waited for the rate cap
	Skipped   uint64        // readings not published: quality bad or invalid
}

var (
	uplinkBytes = desc("uplink", "published_bytes_total",
		"MQTT packet bytes of the messages the broker acknowledged to each uplink sink (topic, payload, and 8 bytes of headers and PUBACK per message, as max_bytes_per_second counts them), in bytes.", "sink")
	uplinkConnects = desc("uplink", "connects_total",
		"Connections each MQTT uplink sink made to its broker: the first, and one after each failure or loss, as a count of connections.", "sink")
	uplinkConnected = desc("uplink", "connected",
		"Whether each MQTT uplink sink has a connection open to its broker: 1 if it has, 0 otherwise.", "sink")
	uplinkThrottled = desc("uplink", "throttled_seconds_total",
		"Time each MQTT uplink sink's writes waited for its rate cap (max_bytes_per_second), in seconds.", "sink")
	uplinkSkipped = desc("uplink", "skipped_total",
		"Readings each MQTT uplink sink did not publish because their quality is bad or they are invalid, as a count of readings.", "sink")
)

// uplinkCollector reads MQTT uplink state at scrape time.
type uplinkCollector struct {
	mu    sync.Mutex
	sinks map[string]func() UplinkStats
}

func (c *uplinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{uplinkBytes, uplinkConnects, uplinkConnected, uplinkThrottled, uplinkSkipped} {
		ch <- d
	}
}

func (c *uplinkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.sinks))
	for n := range c.sinks {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]func() UplinkStats, len(names))
	for i, n := range names {
		fns[i] = c.sinks[n]
	}
	c.mu.Unlock()
	for i, n := range names {
		s := fns[i]()
		ch <- prometheus.MustNewConstMetric(uplinkBytes, prometheus.CounterValue, float64(s.Bytes), n)
		ch <- prometheus.MustNewConstMetric(uplinkConnects, prometheus.CounterValue, float64(s.Connects), n)
		ch <- prometheus.MustNewConstMetric(uplinkConnected, prometheus.GaugeValue, boolValue(s.Connected), n)
		ch <- prometheus.MustNewConstMetric(uplinkThrottled, prometheus.CounterValue, s.Throttled.Seconds(), n)
		ch <- prometheus.MustNewConstMetric(uplinkSkipped, prometheus.CounterValue, float64(s.Skipped), n)
	}
}

// AddUplink registers an MQTT uplink sink whose state is read at scrape time. Adding
// the same name again replaces its function. stats must not wait for the sink's
// connection.
func (m *Metrics) AddUplink(name string, stats func() UplinkStats) {
	m.uplink.mu.Lock()
	defer m.uplink.mu.Unlock()
	m.uplink.sinks[name] = stats
}
