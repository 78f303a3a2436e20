package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	clockSynced = desc("clock", "synchronized",
		"Whether the kernel reports the system clock synchronised (NTP, chrony, systemd-timesyncd): 1 if it does, 0 otherwise. Readings are stamped with this clock.")
	clockMaxError = desc("clock", "max_error_seconds",
		"The kernel's estimate of the maximum error of the system clock, in seconds.")
	readingsHeld = desc("readings", "held_for_clock",
		"Readings held in memory because the wall clock is before this binary's build time (a box without a real-time clock, not yet set by NTP) or not yet synchronised; they are re-stamped and stored once it is.")
	readingsRestamped = desc("readings", "restamped_total",
		"Readings held for the wall clock and re-stamped by the step it made when it was set (docs/design.md, section 11).")
)

// clockCollector reports the kernel's clock synchronisation at scrape time, and the
// pipeline's readings held for it.
type clockCollector struct {
	mu   sync.Mutex
	hold func() (held int64, restamped uint64)
}

func (*clockCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clockSynced
	ch <- clockMaxError
	ch <- readingsHeld
	ch <- readingsRestamped
}

func (c *clockCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		held, restamped := hold()
		ch <- prometheus.MustNewConstMetric(readingsHeld, prometheus.GaugeValue, float64(held))
		ch <- prometheus.MustNewConstMetric(readingsRestamped, prometheus.CounterValue, float64(restamped))
	}
	synced, maxErr, ok := clockState()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(clockSynced, prometheus.GaugeValue, boolValue(synced))
	ch <- prometheus.MustNewConstMetric(clockMaxError, prometheus.GaugeValue, maxErr)
}

// SetClockHold makes envgate_readings_held_for_clock and envgate_readings_restamped_total
// report hold, called at every scrape. A later call replaces the function.
func (m *Metrics) SetClockHold(hold func() (held int64, restamped uint64)) {
	m.clock.mu.Lock()
	defer m.clock.mu.Unlock()
	m.clock.hold = hold
}

// ClockSynced reports whether the kernel says the system clock is synchronised, and
// whether it can tell (Linux only). envgate_clock_synchronized reports the same.
func ClockSynced() (synced, known bool) {
	synced, _, known = clockState()
	return synced, known
}
