package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	clockSynced = desc("clock", "synchronized",
		"Whether the kernel reports the system clock synchronised (NTP, chrony, systemd-timesyncd): 1 if it does, 0 otherwise. Readings are stamped with this clock.")
	clockMaxError = desc("clock", "max_error_seconds",
		"The kernel's estimate of the maximum error of the system clock, in seconds.")
)

// clockCollector reports the kernel's clock synchronisation at scrape time.
type clockCollector struct{}

func (clockCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clockSynced
	ch <- clockMaxError
}

func (clockCollector) Collect(ch chan<- prometheus.Metric) {
	synced, maxErr, ok := clockState()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(clockSynced, prometheus.GaugeValue, boolValue(synced))
	ch <- prometheus.MustNewConstMetric(clockMaxError, prometheus.GaugeValue, maxErr)
}
