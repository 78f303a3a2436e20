package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ScreenState is one screened channel (a device's quantity) for the metrics.
type ScreenState struct {
	Site, Device, Quantity string
	Latest                 string            // reason of the latest sample's flag, "" when it was valid
	Flagged                map[string]uint64 // flagged samples by reason, since start
}

var (
	screenFlagged = desc("screen", "flagged_total",
		"Readings data-quality screening flagged, by channel and reason (range, flatline, spike, drift): stored with their raw value and left out of the derivations.",
		"site", "device", "quantity", "reason")
	screenLatest = desc("screen", "flagged",
		"1 while the latest reading of the channel is flagged, with its reason; 0 when it is valid.",
		"site", "device", "quantity", "reason")
)

// screenCollector reads the screening's state at scrape time.
type screenCollector struct {
	mu     sync.Mutex
	states func() []ScreenState
}

func (c *screenCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- screenFlagged
	ch <- screenLatest
}

func (c *screenCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.states
	c.mu.Unlock()
	if f == nil {
		return
	}
	for _, s := range f() {
		for reason, n := range s.Flagged {
			ch <- prometheus.MustNewConstMetric(screenFlagged, prometheus.CounterValue, float64(n), s.Site, s.Device, s.Quantity, reason)
		}
		v := 0.0
		if s.Latest != "" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(screenLatest, prometheus.GaugeValue, v, s.Site, s.Device, s.Quantity, s.Latest)
	}
}

// SetScreen makes the screening metrics report states, called at every scrape.
func (m *Metrics) SetScreen(states func() []ScreenState) {
	m.screen.mu.Lock()
	defer m.screen.mu.Unlock()
	m.screen.states = states
}
