package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// HJ212UplinkStats is the state of one HJ 212 uplink sink (one platform) at one instant,
// besides what every sink reports (SinkStats).
type HJ212UplinkStats struct {
	Sent      uint64 // data packets written, re-sends included
	Answered  uint64 // data packets the platform answered (CN 9014)
	Resent    uint64 // re-sends of an unanswered packet
	Timeouts  uint64 // answers not received within answer_timeout
	Commands  uint64 // commands received from the platform
	Refused   uint64 // commands answered with a refusal (QnRtn or ExeRtn other than 1)
	Skipped   uint64 // readings of a station that could not be sent
	Connects  uint64 // connections made
	Connected bool   // a connection is open now
}

var (
	hj212Sent = desc("hj212", "packets_sent_total",
		"Data packets each HJ 212 uplink sink wrote to its platform, re-sends included, as a count of packets.", "sink")
	hj212Answered = desc("hj212", "packets_answered_total",
		"Data packets each HJ 212 uplink sink's platform answered (CN 9014 with the packet's QN and MN), as a count of packets.", "sink")
	hj212Resent = desc("hj212", "packets_resent_total",
		"Packets each HJ 212 uplink sink sent again with the same QN after an answer timeout or a lost connection, as a count of packets.", "sink")
	hj212Timeouts = desc("hj212", "answer_timeouts_total",
		"Answers each HJ 212 uplink sink waited for in vain for answer_timeout, as a count of timeouts.", "sink")
	hj212Commands = desc("hj212", "commands_total",
		"Commands each HJ 212 uplink sink's platform sent (get time, intervals, history requests, others), as a count of commands.", "sink")
	hj212Refused = desc("hj212", "commands_refused_total",
		"Answers of each HJ 212 uplink sink that refused a command or reported it failed (QnRtn or ExeRtn other than 1), as a count of answers.", "sink")
	hj212Skipped = desc("hj212", "skipped_total",
		"Readings of a station of each HJ 212 uplink sink that could not be sent (not a number, quality bad, a record too long), as a count of readings.", "sink")
	hj212Connects = desc("hj212", "connects_total",
		"Connections each HJ 212 uplink sink made to its platform, as a count of connections.", "sink")
	hj212Connected = desc("hj212", "connected",
		"Whether each HJ 212 uplink sink has a connection open to its platform: 1 if it has, 0 otherwise.", "sink")
)

// hj212UplinkCollector reads HJ 212 uplink state at scrape time.
type hj212UplinkCollector struct {
	mu    sync.Mutex
	sinks map[string]func() HJ212UplinkStats
}

func (c *hj212UplinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hj212Sent, hj212Answered, hj212Resent, hj212Timeouts, hj212Commands, hj212Refused, hj212Skipped, hj212Connects, hj212Connected} {
		ch <- d
	}
}

func (c *hj212UplinkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.sinks))
	for n := range c.sinks {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]func() HJ212UplinkStats, len(names))
	for i, n := range names {
		fns[i] = c.sinks[n]
	}
	c.mu.Unlock()
	for i, n := range names {
		s := fns[i]()
		for _, v := range []struct {
			d *prometheus.Desc
			v uint64
		}{{hj212Sent, s.Sent}, {hj212Answered, s.Answered}, {hj212Resent, s.Resent}, {hj212Timeouts, s.Timeouts},
			{hj212Commands, s.Commands}, {hj212Refused, s.Refused}, {hj212Skipped, s.Skipped}, {hj212Connects, s.Connects}} {
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.CounterValue, float64(v.v), n)
		}
		ch <- prometheus.MustNewConstMetric(hj212Connected, prometheus.GaugeValue, boolValue(s.Connected), n)
	}
}

// AddHJ212 registers an HJ 212 uplink sink whose state is read at scrape time. Adding
// the same name again replaces its function. stats must not wait for the connection.
func (m *Metrics) AddHJ212Uplink(name string, stats func() HJ212UplinkStats) {
	m.hj212Uplink.mu.Lock()
	defer m.hj212Uplink.mu.Unlock()
	m.hj212Uplink.sinks[name] = stats
}
