package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaintState is one device's maintenance state (gateway/maint) and the readings of it
// the derivations kept out (derive.Set.Excluded).
type MaintState struct {
	Device   string
	Kind     string    // "maintenance", "calibration", or "" when the device is in neither
	Reason   string    // of the active window
	Since    time.Time // start of the active window; zero when none
	Excluded uint64    // readings kept out of the derivations since the gateway started
}

// maintKinds are the values of the kind label of envgate_device_maintenance.
var maintKinds = [...]string{"maintenance", "calibration"}

var (
	deviceMaintenance = prometheus.NewDesc(namespace+"_device_maintenance",
		"Whether each device is in a maintenance or a calibration window (by kind): 1 while it is, 0 otherwise.",
		[]string{"device", "kind"}, nil)
	readingsExcluded = prometheus.NewDesc(namespace+"_readings_excluded_total",
		"Readings of each device kept out of the noise, air and water derivations because they were measured in a maintenance or calibration window, as a count of readings.",
		[]string{"device"}, nil)
)

// maintCollector reports the devices' maintenance state at scrape time.
type maintCollector struct {
	mu     sync.Mutex
	states func() []MaintState
}

func (*maintCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deviceMaintenance
	ch <- readingsExcluded
}

func (c *maintCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	states := c.states
	c.mu.Unlock()
	if states == nil {
		return
	}
	for _, s := range states() {
		for _, k := range maintKinds {
			ch <- prometheus.MustNewConstMetric(deviceMaintenance, prometheus.GaugeValue, boolValue(s.Kind == k), s.Device, k)
		}
		ch <- prometheus.MustNewConstMetric(readingsExcluded, prometheus.CounterValue, float64(s.Excluded), s.Device)
	}
}

// SetMaintenance makes envgate_device_maintenance and envgate_readings_excluded_total
// report states, called at every scrape and by Snapshot: one entry per device. A later
// call replaces the function.
func (m *Metrics) SetMaintenance(states func() []MaintState) {
	m.maint.mu.Lock()
	defer m.maint.mu.Unlock()
	m.maint.states = states
}
