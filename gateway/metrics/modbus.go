package metrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rttBuckets spans Modbus round trips from 1 ms (TCP on the LAN) to 2 s (a slow serial
// slave at its timeout), in seconds. Cheap RS-485 sensors answer in 10-100 ms.
var rttBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2}

// Transaction results of ObserveModbus.
const (
	ResultOK        = "ok"
	ResultTimeout   = "timeout"
	ResultCRC       = "crc"
	ResultFrame     = "frame"
	ResultException = "exception"
	ResultIO        = "io"
)

// modbusMetrics are the per-bus and per-device Modbus metrics.
type modbusMetrics struct {
	transactions *prometheus.CounterVec
	exceptions   *prometheus.CounterVec
	rtt          *prometheus.HistogramVec
	busy         *prometheus.CounterVec
}

func newModbusMetrics() *modbusMetrics {
	return &modbusMetrics{
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "modbus", Name: "transactions_total",
			Help: "Modbus request/response exchanges by bus, device and result (ok, timeout, crc, frame, exception, io), as a count of exchanges.",
		}, []string{"bus", "device", "result"}),
		exceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "modbus", Name: "exceptions_total",
			Help: "Modbus exception replies by bus, device and exception code (two hex digits), as a count of replies.",
		}, []string{"bus", "device", "code"}),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "modbus", Name: "rtt_seconds",
			Help:    "Round-trip time of each Modbus exchange, from the start of the request to the end of the reply or the timeout, in seconds.",
			Buckets: rttBuckets,
		}, []string{"bus"}),
		busy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "modbus", Name: "busy_seconds_total",
			Help: "Time each bus spent transmitting and waiting for replies, in seconds; its rate is the bus utilisation (busy time / wall time).",
		}, []string{"bus"}),
	}
}

func (mm *modbusMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{mm.transactions, mm.exceptions, mm.rtt, mm.busy}
}

// ObserveModbus records one Modbus exchange: its round-trip time and result (one of the
// Result constants); code is the exception code when result is ResultException.
func (m *Metrics) ObserveModbus(bus, device string, rtt time.Duration, result string, code uint8) {
	m.modbus.transactions.WithLabelValues(bus, device, result).Inc()
	if result == ResultException {
		m.modbus.exceptions.WithLabelValues(bus, device, fmt.Sprintf("%02X", code)).Inc()
	}
	m.modbus.rtt.WithLabelValues(bus).Observe(rtt.Seconds())
}

// AddBusy adds time a bus spent busy (transmitting or waiting for a reply).
func (m *Metrics) AddBusy(bus string, d time.Duration) {
	m.modbus.busy.WithLabelValues(bus).Add(d.Seconds())
}
