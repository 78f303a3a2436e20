package metrics

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BufferStats is the state of the durable buffer at one instant.
type BufferStats struct {
	Bytes, Segments    int64
	KeptBytes          int64  // of Bytes, delivered and kept for the derivations
	MaxBytes           int64  // the configured bound on Bytes
	Appended, Dropped  uint64 // readings, since the gateway started
	QuarantinedRecords uint64 // corrupt records set aside, since the gateway started
	QuarantinedBytes   uint64
	Degraded           bool          // disk errors: the gateway runs degraded
	MemoryReadings     int64         // readings waiting in RAM because the disk failed
	QuarantineRemoved  uint64        // files removed from quarantine/ to keep it within its bound
	SyncInProgress     time.Duration // age of the fsync running now; 0 if none
}

// SinkStats is the state of one sink at one instant.
type SinkStats struct {
	Unsent          int64         // readings in the buffer this sink has not acknowledged
	OldestUnsentAge time.Duration // age of its oldest unacknowledged reading (0 when caught up)
	Written         uint64        // readings stored
	Retried         uint64        // failed write attempts, each followed by a retry
	Rejected        uint64        // 4xx answers other than 408 and 429 (bad points, too large, refused credentials)
	DeadLettered    uint64        // readings set aside in the dead-letter file
	// DeadLetterDropped counts dead-letter entries deleted with the oldest rotated file.
	DeadLetterDropped uint64
	LastSuccess       time.Time // zero if never
	Failing           bool      // the last attempt failed
	Persistent        bool      // failing with an error that needs an operator (auth, missing bucket)
	// ProbesOK and ProbesFailed count the probes of the sink's server during back-offs
	// (gateway.Prober) that found it ready, and those that did not.
	ProbesOK, ProbesFailed uint64
	// LiveWritten counts readings the live lane sent ahead of a draining backlog (they
	// are sent again, and counted in Written, when the backlog reaches them).
	LiveWritten uint64
	// RateLimited is how long the sink's writes waited for its rate cap (max_rate).
	RateLimited time.Duration
}

func desc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
}

var (
	bufferBytes = desc("buffer", "bytes",
		"Size of the durable buffer on disk, in bytes.")
	bufferKeptBytes = desc("buffer", "kept_bytes",
		"Of the buffer's size, bytes every sink has delivered, kept for the derivations to rebuild their open windows after a restart; the first to go when the buffer is full.")
	bufferMaxBytes = desc("buffer", "max_bytes",
		"Configured bound on the size of the durable buffer on disk, in bytes; beyond it the oldest data is dropped.")
	bufferSegments = desc("buffer", "segments",
		"Segment files in the durable buffer, as a count of files.")
	bufferAppended = desc("buffer", "appended_total",
		"Readings appended to the durable buffer since the gateway started, as a count of readings.")
	bufferDropped = desc("buffer", "dropped_total",
		"Readings dropped by the buffer's size or age bounds since the gateway started, as a count of readings.")
	bufferQuarantinedRecords = desc("buffer", "quarantined_records_total",
		"Corrupt buffer records quarantined since the gateway started, as a count of records.")
	bufferQuarantinedBytes = desc("buffer", "quarantined_bytes_total",
		"Corrupt buffer data quarantined since the gateway started, in bytes.")
	bufferDegraded = desc("buffer", "degraded",
		"Alarm: 1 while disk errors keep the buffer in memory only, 0 otherwise.")
	bufferMemoryReadings = desc("buffer", "memory_readings",
		"Readings held in memory because the disk failed, as a count of readings.")
	bufferQuarantineRemoved = desc("buffer", "quarantine_removed_files_total",
		"Files removed from the buffer's quarantine directory to keep it within its bound since the gateway started, as a count of files.")
	bufferSyncInProgress = desc("buffer", "sync_in_progress_seconds",
		"Age of the buffer fsync running now, in seconds; 0 when none is running. A value that keeps growing is a stalled disk.")

	sinkUnsent = desc("sink", "unsent_readings",
		"Readings in the buffer the sink has not yet acknowledged, as a count of readings.", "sink")
	sinkOldestUnsentAge = desc("sink", "oldest_unsent_age_seconds",
		"Age of the oldest reading the sink has not yet acknowledged, in seconds; 0 when it is caught up.", "sink")
	sinkWritten = desc("sink", "written_total",
		"Readings the sink stored since the gateway started, as a count of readings.", "sink")
	sinkRetried = desc("sink", "retried_total",
		"Failed write attempts to the sink since the gateway started, each followed by a retry, as a count of attempts.", "sink")
	sinkRejected = desc("sink", "rejected_total",
		"Writes the sink's server refused with a 4xx status other than 408 and 429 (bad points, too large, refused credentials) since the gateway started, as a count of HTTP answers.", "sink")
	sinkDeadLettered = desc("sink", "dead_lettered_total",
		"Readings the sink set aside in its dead-letter file since the gateway started, as a count of readings.", "sink")
	sinkDeadLetterDropped = desc("sink", "dead_letter_dropped_total",
		"Dead-lettered readings deleted with the oldest dead-letter file when it rotated (dead_letter_keep), since the gateway started, as a count of readings.", "sink")
	sinkLastSuccess = desc("sink", "last_success_timestamp_seconds",
		"Time of the sink's last successful write, in seconds since the Unix epoch; 0 if it never succeeded.", "sink")
	sinkFailing = desc("sink", "failing",
		"Whether the sink's last write attempt failed: 1 if it did, 0 otherwise.", "sink")
	sinkPersistentFailure = desc("sink", "persistent_failure",
		"Alarm: 1 while the sink fails with an error an operator must fix (credentials, missing bucket), 0 otherwise.", "sink")
	sinkLiveWritten = desc("sink", "live_written_total",
		"Readings the sink's live lane sent ahead of a draining backlog since the gateway started, as a count of readings; each is sent again, and counted in envgate_sink_written_total, when the backlog reaches it.", "sink")
	sinkRateLimited = desc("sink", "rate_limited_seconds_total",
		"Time the sink's writes waited for its rate cap (max_rate) since the gateway started, in seconds; it grows at up to 1 s per second while a backlog drains at the cap.", "sink")
	sinkProbes = desc("sink", "probes_total",
		"Probes of the sink's server (InfluxDB's /ping) while a back-off ran since the gateway started, by result (ok: the write was retried at once; failed), as a count of requests.", "sink", "result")
)

// stateCollector reads the buffer and sink state at scrape time.
type stateCollector struct {
	mu     sync.Mutex
	buffer func() BufferStats
	sinks  map[string]func() SinkStats
}

func newStateCollector() *stateCollector {
	return &stateCollector{sinks: map[string]func() SinkStats{}}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		bufferBytes, bufferKeptBytes, bufferMaxBytes, bufferSegments, bufferAppended, bufferDropped,
		bufferQuarantinedRecords, bufferQuarantinedBytes, bufferDegraded, bufferMemoryReadings,
		bufferQuarantineRemoved, bufferSyncInProgress,
		sinkUnsent, sinkOldestUnsentAge, sinkWritten, sinkRetried, sinkRejected,
		sinkDeadLettered, sinkDeadLetterDropped, sinkLastSuccess, sinkFailing, sinkPersistentFailure,
		sinkProbes, sinkLiveWritten, sinkRateLimited,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It calls the stats functions without holding
// the lock, so a slow one does not block AddSink.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	buffer := c.buffer
	names := make([]string, 0, len(c.sinks))
	for name := range c.sinks {
		names = append(names, name)
	}
	sort.Strings(names)
	sinks := make([]func() SinkStats, len(names))
	for i, name := range names {
		sinks[i] = c.sinks[name]
	}
	c.mu.Unlock()

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if buffer != nil {
		s := buffer()
		gauge(bufferBytes, float64(s.Bytes))
		gauge(bufferKeptBytes, float64(s.KeptBytes))
		gauge(bufferMaxBytes, float64(s.MaxBytes))
		gauge(bufferSegments, float64(s.Segments))
		counter(bufferAppended, s.Appended)
		counter(bufferDropped, s.Dropped)
		counter(bufferQuarantinedRecords, s.QuarantinedRecords)
		counter(bufferQuarantinedBytes, s.QuarantinedBytes)
		gauge(bufferDegraded, boolValue(s.Degraded))
		gauge(bufferMemoryReadings, float64(s.MemoryReadings))
		counter(bufferQuarantineRemoved, s.QuarantineRemoved)
		gauge(bufferSyncInProgress, s.SyncInProgress.Seconds())
	}
	for i, name := range names {
		s := sinks[i]()
		gauge(sinkUnsent, float64(s.Unsent), name)
		gauge(sinkOldestUnsentAge, s.OldestUnsentAge.Seconds(), name)
		counter(sinkWritten, s.Written, name)
		counter(sinkRetried, s.Retried, name)
		counter(sinkRejected, s.Rejected, name)
		counter(sinkDeadLettered, s.DeadLettered, name)
		counter(sinkDeadLetterDropped, s.DeadLetterDropped, name)
		last := 0.0
		if !s.LastSuccess.IsZero() {
			last = unixSeconds(s.LastSuccess)
		}
		gauge(sinkLastSuccess, last, name)
		gauge(sinkFailing, boolValue(s.Failing), name)
		gauge(sinkPersistentFailure, boolValue(s.Persistent), name)
		counter(sinkProbes, s.ProbesOK, name, "ok")
		counter(sinkProbes, s.ProbesFailed, name, "failed")
		counter(sinkLiveWritten, s.LiveWritten, name)
		ch <- prometheus.MustNewConstMetric(sinkRateLimited, prometheus.CounterValue, s.RateLimited.Seconds(), name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
