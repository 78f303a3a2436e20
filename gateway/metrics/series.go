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
	unit  string // the unit label of its envgate_reading_value
	seen  time.Time
	value float64 // its value and measurement time (Unix seconds), for Snapshot
	ts    float64
	// The series' two gauges, so that a reading sets them without hashing its labels
	// again (a third of a message's metrics cost, BenchmarkMQTT). Valid while the
	// entry is in seen: the gauges are deleted only together with the entry, or
	// replaced with it on a unit change, under the tracker's lock.
	valueG, timeG prometheus.Gauge
}

// SeriesKeep says which series outlive the series expiry. Either func may be nil
// (keeps nothing).
type SeriesKeep struct {
	// Device reports the site and device pairs whose latest-value series never expire:
	// the pairs the config names, whose silence the staleness alerts report. It is
	// asked about the pair, never the device name alone, so a configured device name
	// at a site a publisher invents still expires (issue 10).
	Device func(site, device string) bool
	// Latest reports the site and quantity pairs whose most recent series (of any
	// device) never expires, while the others of that pair do: the parameters of a
	// water section, whose analysers a topic template may name, and whose silence
	// WaterParamSensorStale reports. At most one series per pair is kept this way.
	Latest func(site, quantity string) bool
	// Name reports the device names whose envgate_readings_invalid_total series never
	// expire; the others leave after the expiry without a new count.
	Name func(device string) bool
}

type invalidKey struct{ device, reason string }

// seriesTracker remembers when each latest-value series was last set, and removes the
// series idle for longer than after, except those keep keeps: every device name a
// topic or a line-protocol tag can carry would otherwise stay in memory and in every
// scrape for the life of the process (issue 10). It does the same for the series of
// envgate_readings_invalid_total. Collect reports it.
type seriesTracker struct {
	mu        sync.Mutex
	after     time.Duration
	keep      SeriesKeep
	seen      map[seriesKey]*seriesState
	invalid   map[invalidKey]time.Time // when each invalid-count series last counted
	nextSweep time.Time
	expired   uint64
}

// ExpireSeries makes a latest-value series (envgate_reading_value and
// envgate_reading_timestamp_seconds of one site, device and quantity) disappear once no
// reading has set it for after, or within a minute past that, and likewise a series of
// envgate_readings_invalid_total not counted for after; keep says which stay. New sets
// DefaultSeriesExpiry and keeps nothing; cmd keeps what the config names. after 0
// keeps every series. It is meant for start-up, before readings flow.
func (m *Metrics) ExpireSeries(after time.Duration, keep SeriesKeep) {
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
	st := t.seen[k]
	switch {
	case st == nil:
		if t.keep.Latest != nil && t.keep.Latest(site, quantity) {
			t.nextSweep = time.Time{} // the series it supersedes may expire now
		}
		st = &seriesState{unit: unit, valueG: m.readingValue.WithLabelValues(site, device, quantity, unit),
			timeG: m.readingTime.WithLabelValues(site, device, quantity)}
		t.seen[k] = st
	case st.unit != unit:
		m.readingValue.DeleteLabelValues(site, device, quantity, st.unit)
		st.unit, st.valueG = unit, m.readingValue.WithLabelValues(site, device, quantity, unit)
	}
	st.valueG.Set(value)
	st.timeG.Set(ts)
	st.seen, st.value, st.ts = now, value, ts
	m.sweepLocked(now)
}

// countInvalid counts a rejected reading and notes when; it sweeps when a sweep is due.
func (m *Metrics) countInvalid(device, reason string) {
	t := m.series
	now := m.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	m.invalid.WithLabelValues(device, reason).Inc()
	t.invalid[invalidKey{device, reason}] = now
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
	// The newest series of each site and quantity that keep.Latest names.
	type group struct{ site, quantity string }
	var newest map[group]seriesKey
	if t.keep.Latest != nil {
		newest = map[group]seriesKey{}
		for k, s := range t.seen {
			g := group{k.site, k.quantity}
			if !t.keep.Latest(k.site, k.quantity) {
				continue
			}
			if cur, ok := newest[g]; !ok || s.seen.After(t.seen[cur].seen) {
				newest[g] = k
			}
		}
	}
	for k, s := range t.seen {
		switch {
		case t.keep.Device != nil && t.keep.Device(k.site, k.device):
		case newest != nil && newest[group{k.site, k.quantity}] == k:
		case !s.seen.After(cut):
			m.readingValue.DeleteLabelValues(k.site, k.device, k.quantity, s.unit)
			m.readingTime.DeleteLabelValues(k.site, k.device, k.quantity)
			delete(t.seen, k)
			t.expired++
		case s.seen.Before(oldest):
			oldest = s.seen
		}
	}
	for k, seen := range t.invalid {
		switch {
		case t.keep.Name != nil && t.keep.Name(k.device):
		case !seen.After(cut):
			m.invalid.DeleteLabelValues(k.device, k.reason)
			delete(t.invalid, k)
		case seen.Before(oldest):
			oldest = seen
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
