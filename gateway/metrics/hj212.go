package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// HJ212Stats is the state of one HJ 212 analyzer source (hj212_listen) at one instant.
type HJ212Stats struct {
	Connections uint64            // TCP connections accepted (serial: port opens)
	Refused     uint64            // connections closed at once: max_conns were being served
	Accepted    uint64            // packets taken
	Rejected    map[string]uint64 // packets not taken, by reason
	Answered    uint64            // answers written (9014, 9011)
	Unanswered  uint64            // answers not sent: queue full, write failed, batch not durable
	Readings    uint64            // readings handed to the pipeline
	Skipped     uint64            // factor values that gave no reading
	Flags       map[string]uint64 // readings marked suspect, by data flag letter
}

var (
	hjConnections = desc("hj212", "connections_total",
		"Connections of analyzers accepted by each HJ 212 source (a serial source: times its port was opened), as a count of connections.", "source")
	hjRefused = desc("hj212", "connections_refused_total",
		"Connections closed at once because max_conns were being served, as a count of connections.", "source")
	hjPackets = desc("hj212", "packets_total",
		"Packets each HJ 212 source took (stored, or nothing to store), as a count of packets.", "source")
	hjRejected = desc("hj212", "packets_rejected_total",
		"Packets each HJ 212 source did not store, by reason: crc, length, field, garbage, unknown_mn, password or time, as a count of packets.", "source", "reason")
	hjAnswers = desc("hj212", "answers_total",
		"Answers (CN 9014, 9011) each HJ 212 source wrote, as a count of packets.", "source")
	hjUnanswered = desc("hj212", "answers_dropped_total",
		"Answers each HJ 212 source did not send (queue full, write failed, readings not durable), as a count of packets.", "source")
	hjReadings = desc("hj212", "readings_total",
		"Readings each HJ 212 source handed to the pipeline, as a count of readings.", "source")
	hjSkipped = desc("hj212", "values_skipped_total",
		"Factor values of good packets that gave no reading (unmapped code, not a number, out of range), as a count of values.", "source")
	hjFlagged = desc("hj212", "flagged_readings_total",
		"Readings stored as suspect because of their HJ 212 data flag, by flag letter (T, F, M, S, D, C, B), as a count of readings.", "source", "flag")
)

// hj212Rejected lists the reasons reported even at zero.
var hj212Rejected = []string{"crc", "length", "field", "garbage", "unknown_mn", "password", "time"}

type hj212Collector struct {
	mu      sync.Mutex
	sources map[string]func() HJ212Stats
}

func (c *hj212Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hjConnections, hjRefused, hjPackets, hjRejected, hjAnswers, hjUnanswered, hjReadings, hjSkipped, hjFlagged} {
		ch <- d
	}
}

func (c *hj212Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.sources))
	for n := range c.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]func() HJ212Stats, len(names))
	for i, n := range names {
		fns[i] = c.sources[n]
	}
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for i, n := range names {
		s := fns[i]()
		counter(hjConnections, s.Connections, n)
		counter(hjRefused, s.Refused, n)
		counter(hjPackets, s.Accepted, n)
		for _, r := range hj212Rejected {
			counter(hjRejected, s.Rejected[r], n, r)
		}
		counter(hjAnswers, s.Answered, n)
		counter(hjUnanswered, s.Unanswered, n)
		counter(hjReadings, s.Readings, n)
		counter(hjSkipped, s.Skipped, n)
		flags := make([]string, 0, len(s.Flags))
		for f := range s.Flags {
			flags = append(flags, f)
		}
		sort.Strings(flags)
		for _, f := range flags {
			counter(hjFlagged, s.Flags[f], n, f)
		}
	}
}

// AddHJ212 registers an HJ 212 analyzer source whose counters are read at scrape time.
// Adding the same name again replaces its function.
func (m *Metrics) AddHJ212(name string, stats func() HJ212Stats) {
	m.hj212.mu.Lock()
	defer m.hj212.mu.Unlock()
	m.hj212.sources[name] = stats
}
