package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSeriesExpiry is how long a latest-value series may go without a reading before
// it is removed, unless ExpireSeries says otherwise: four times the longest staleness
// threshold of the shipped alert rules (water parameters, 6 h, alerts/water.rules.yml),
// so that a stale alert fires, and stays, long before its series goes.
const DefaultSeriesExpiry = 24 * time.Hour

// maxSweepGap bounds how long an expired series can outlive its expiry: sweeps run at
// most this often, so that a burst of series does not make every reading scan them all.
const maxSweepGap = time.Minute

var (
	readingSeries = desc("reading", "series",
		"Latest-value series tracked: one per site, device and quantity, each exported as envgate_reading_value and envgate_reading_timestamp_seconds, as a count of series.")
	readingSeriesExpired = desc("reading", "series_expired_total",
		"Latest-value series removed because no reading came for the series expiry (config gateway.series_expiry), as a count of series.")
)

type seriesKey struct{ site, device, quantity string }

type seriesState struct {
	unit string // the unit label of its envgate_reading_value
	seen time.Time
}

// seriesTracker remembers when each latest-value series was last set, and removes the
// series idle for longer than after, except those of the devices keep reports: every
// device name a topic or a line-protocol tag can carry would otherwise stay in memory
// and in every scrape for the life of the process (issue 10). Collect reports it.
type seriesTracker struct {
	mu        sync.Mutex
	after     time.Duration
	keep      func(device string) bool // nil: none is kept
	seen      map[seriesKey]seriesState
	nextSweep time.Time
	expired   uint64
}

// ExpireSeries makes a latest-value series (envgate_reading_value and
// envgate_reading_timestamp_seconds of one site, device and quantity) disappear once no
// reading has set it for after, or within a minute past that; series of the devices
// for which keep returns true stay (keep may be nil). New sets DefaultSeriesExpiry and
// keeps nothing; cmd keeps the devices the config names, whose silence the staleness
// alerts report. It is meant for start-up, before readings flow.
func (m *Metrics) ExpireSeries(after time.Duration, keep func(device string) bool) {
	t := m.series
	t.mu.Lock()
	defer t.mu.Unlock()
	t.after, t.keep = after, keep
	t.nextSweep = time.Time{}
}

// setReading sets the latest-value gauges of a series and notes when; it sweeps when
// a sweep is due.
func (m *Metrics) setReading(site, device, quantity, unit string, value, ts float64) {
	t := m.series
	now := m.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	k := seriesKey{site, device, quantity}
	if old, ok := t.seen[k]; ok && old.unit != unit {
		m.readingValue.DeleteLabelValues(site, device, quantity, old.unit)
	}
	m.readingValue.WithLabelValues(site, device, quantity, unit).Set(value)
	m.readingTime.WithLabelValues(site, device, quantity).Set(ts)
	t.seen[k] = seriesState{unit: unit, seen: now}
	m.sweepLocked(now)
}

// sweepSeries removes the expired series if a sweep is due; /metrics calls it before
// every scrape.
func (m *Metrics) sweepSeries() {
	now := m.now()
	m.series.mu.Lock()
	defer m.series.mu.Unlock()
	m.sweepLocked(now)
}

func (m *Metrics) sweepLocked(now time.Time) {
	t := m.series
	if t.after <= 0 || now.Before(t.nextSweep) {
		return
	}
	cut := now.Add(-t.after)
	oldest := now
	for k, s := range t.seen {
		switch {
		case t.keep != nil && t.keep(k.device):
		case !s.seen.After(cut):
			m.readingValue.DeleteLabelValues(k.site, k.device, k.quantity, s.unit)
			m.readingTime.DeleteLabelValues(k.site, k.device, k.quantity)
			delete(t.seen, k)
			t.expired++
		case s.seen.Before(oldest):
			oldest = s.seen
		}
	}
	// Nothing expires before the oldest remaining series does; and sweep at most once
	// per maxSweepGap (or per after, if shorter).
	t.nextSweep = maxTime(oldest.Add(t.after), now.Add(min(t.after, maxSweepGap)))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Describe implements prometheus.Collector.
func (t *seriesTracker) Describe(ch chan<- *prometheus.Desc) {
	ch <- readingSeries
	ch <- readingSeriesExpired
}

// Collect implements prometheus.Collector.
func (t *seriesTracker) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	n, expired := len(t.seen), t.expired
	t.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(readingSeries, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(readingSeriesExpired, prometheus.CounterValue, float64(expired))
}
