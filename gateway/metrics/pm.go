package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// PMStats is the state of one UART particulate sensor at one instant.
type PMStats struct {
	Frames         uint64 // valid measurement frames
	ChecksumErrors uint64 // complete frames with a bad checksum
	LengthErrors   uint64 // impossible frame lengths or tails
	Resyncs        uint64 // times the reader lost frame alignment
	GarbageBytes   uint64 // bytes skipped while hunting for a frame start
	Timeouts       uint64 // commands (passive read, SDS011 query) without a valid reply
	IOErrors       uint64 // port errors; each loses the port
	Reopens        uint64 // times the port was opened again
}

var (
	pmFrames = desc("pm", "frames_total",
		"Valid measurement frames read from each particulate sensor, as a count of frames.", "device")
	pmErrors = desc("pm", "frame_errors_total",
		"Frames or commands that failed, by kind: checksum, length, resync, timeout or io, as a count of events.", "device", "kind")
	pmGarbage = desc("pm", "garbage_bytes_total",
		"Bytes skipped while hunting for a frame start, in bytes.", "device")
	pmReopens = desc("pm", "reopens_total",
		"Times the serial port of each particulate sensor was opened again after it was lost, as a count of opens.", "device")
)

// pmCollector reads the particulate sensors' counters at scrape time.
type pmCollector struct {
	mu      sync.Mutex
	sensors map[string]func() PMStats
}

func (c *pmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pmFrames, pmErrors, pmGarbage, pmReopens} {
		ch <- d
	}
}

func (c *pmCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.sensors))
	for n := range c.sensors {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]func() PMStats, len(names))
	for i, n := range names {
		fns[i] = c.sensors[n]
	}
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for i, n := range names {
		s := fns[i]()
		counter(pmFrames, s.Frames, n)
		counter(pmErrors, s.ChecksumErrors, n, "checksum")
		counter(pmErrors, s.LengthErrors, n, "length")
		counter(pmErrors, s.Resyncs, n, "resync")
		counter(pmErrors, s.Timeouts, n, "timeout")
		counter(pmErrors, s.IOErrors, n, "io")
		counter(pmGarbage, s.GarbageBytes, n)
		counter(pmReopens, s.Reopens, n)
	}
}

// AddPM registers a particulate sensor whose counters are read at scrape time. Adding
// the same name again replaces its function.
func (m *Metrics) AddPM(name string, stats func() PMStats) {
	m.pm.mu.Lock()
	defer m.pm.mu.Unlock()
	m.pm.sensors[name] = stats
}
