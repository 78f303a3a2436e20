package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// MQTTStats is the state of one MQTT source at one instant.
type MQTTStats struct {
	Messages, Bytes, Readings uint64            // received messages (malformed included), their payload bytes, readings handed on
	DeadLettered              uint64            // malformed messages: acknowledged and written to the dead-letter file
	DeadLetterDropped         uint64            // dead-letter lines deleted by rotation
	ErrorsByKind              map[string]uint64 // malformed messages by kind (json, number, lineprotocol, topic, oversize, range, quantity, time, reserved, unlisted, device_limit)
	Devices                   int               // devices the subscriptions count toward their max_devices now
	Dropped                   uint64            // messages left unacknowledged because the inbox was full (the broker redelivers them)
	NotDurable                uint64            // messages left unacknowledged because the buffer refused them while the disk failed
	InFlight                  int               // received, not yet acknowledged
	HeldBytes                 int64             // payload bytes of those
	ForcedReconnects          uint64            // connections closed by the source to get dropped messages again
	Lost                      uint64            // QoS 0 messages dropped while full: gone for good
	Connected                 bool
	Reconnects                uint64
}

var (
	mqttMessages = desc("mqtt", "messages_total",
		"MQTT messages received by each source, malformed ones included, as a count of messages.", "source")
	mqttBytes = desc("mqtt", "received_bytes_total",
		"Payload bytes of the MQTT messages received by each source, in bytes.", "source")
	mqttReadings = desc("mqtt", "readings_total",
		"Readings decoded from MQTT messages and handed to the buffer, as a count of readings.", "source")
	mqttDeadLettered = desc("mqtt", "dead_lettered_total",
		"Malformed MQTT messages acknowledged and written to the dead-letter file, as a count of messages.", "source")
	mqttDeadLetterDropped = desc("mqtt", "dead_letter_dropped_total",
		"Dead-letter lines of an MQTT source deleted with the oldest dead-letter file when it rotated; the messages were counted as dead-lettered, their text is gone, as a count of messages.", "source")
	mqttErrors = desc("mqtt", "malformed_total",
		"Malformed MQTT messages by kind of error, as a count of messages.", "source", "kind")
	mqttUnacked = desc("mqtt", "unacknowledged_total",
		"MQTT messages deliberately not acknowledged, by reason: inbox_full (dropped beyond the source's bound) or not_durable (refused by the buffer while the disk failed, or behind such a message); the source reconnects and the broker delivers them again, as a count of messages.", "source", "reason")
	mqttInFlight = desc("mqtt", "in_flight_messages",
		"MQTT messages received and not yet acknowledged, as a count of messages.", "source")
	mqttDevices = desc("mqtt", "devices",
		"Devices (site and device name pairs) the source's subscriptions count toward their max_devices now; a device silent for the series expiry stops counting, as a count of devices.", "source")
	mqttHeldBytes = desc("mqtt", "held_bytes",
		"Payload bytes of the MQTT messages received and not yet acknowledged, in bytes.", "source")
	mqttForced = desc("mqtt", "forced_reconnects_total",
		"Connections an MQTT source closed itself after dropping messages beyond its bound or having them refused by the buffer, so that the broker delivers them again, as a count of connections.", "source")
	mqttLost = desc("mqtt", "lost_total",
		"QoS 0 MQTT messages dropped while the source was full; they are never delivered again, as a count of messages.", "source")
	mqttConnected = desc("mqtt", "connected",
		"Whether each MQTT source is connected to its broker: 1 if it is, 0 otherwise.", "source")
	mqttReconnects = desc("mqtt", "reconnects_total",
		"Reconnections of each MQTT source to its broker, as a count of connections.", "source")
)

// mqttCollector reads MQTT source state at scrape time.
type mqttCollector struct {
	mu      sync.Mutex
	sources map[string]func() MQTTStats
}

func (c *mqttCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mqttMessages, mqttBytes, mqttReadings, mqttDeadLettered, mqttDeadLetterDropped, mqttErrors,
		mqttUnacked, mqttInFlight, mqttDevices, mqttHeldBytes, mqttForced, mqttLost, mqttConnected, mqttReconnects} {
		ch <- d
	}
}

func (c *mqttCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.sources))
	for n := range c.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]func() MQTTStats, len(names))
	for i, n := range names {
		fns[i] = c.sources[n]
	}
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for i, n := range names {
		s := fns[i]()
		counter(mqttMessages, s.Messages, n)
		counter(mqttBytes, s.Bytes, n)
		counter(mqttReadings, s.Readings, n)
		counter(mqttDeadLettered, s.DeadLettered, n)
		counter(mqttDeadLetterDropped, s.DeadLetterDropped, n)
		kinds := make([]string, 0, len(s.ErrorsByKind))
		for k := range s.ErrorsByKind {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			counter(mqttErrors, s.ErrorsByKind[k], n, k)
		}
		counter(mqttUnacked, s.Dropped, n, "inbox_full")
		counter(mqttUnacked, s.NotDurable, n, "not_durable")
		gauge(mqttInFlight, float64(s.InFlight), n)
		gauge(mqttHeldBytes, float64(s.HeldBytes), n)
		gauge(mqttDevices, float64(s.Devices), n)
		counter(mqttForced, s.ForcedReconnects, n)
		counter(mqttLost, s.Lost, n)
		gauge(mqttConnected, boolValue(s.Connected), n)
		counter(mqttReconnects, s.Reconnects, n)
	}
}

// AddMQTT registers an MQTT source whose state is read at scrape time. Adding the same
// name again replaces its function.
func (m *Metrics) AddMQTT(name string, stats func() MQTTStats) {
	m.mqtt.mu.Lock()
	defer m.mqtt.mu.Unlock()
	m.mqtt.sources[name] = stats
}
