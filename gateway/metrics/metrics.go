// Package metrics keeps envgate's Prometheus registry: the latest value of every reading
// (/metrics shows now, InfluxDB holds the history) and the health of the pipeline, and
// serves it over HTTP with a health check.
//
// Metrics, by subsystem (labels in braces):
//
//	envgate_build_info{version,gateway}                        gauge, always 1
//	envgate_reading_value{site,device,quantity,unit}           gauge, latest value in its unit
//	envgate_reading_timestamp_seconds{site,device,quantity}    gauge, its measurement time
//	envgate_readings_invalid_total{device,reason}              counter
//	envgate_reading_series                                     gauge, latest-value series tracked
//	envgate_reading_series_expired_total                       counter
//	envgate_device_polls_total{device,result}                  counter, result "ok" or "error"
//	envgate_device_poll_duration_seconds{device}               histogram, 1 ms to 30 s
//	envgate_device_up{device}                                  gauge, 1 or 0
//	envgate_device_last_success_timestamp_seconds{device}      gauge
//	envgate_buffer_bytes                                       gauge
//	envgate_buffer_kept_bytes                                  gauge
//	envgate_buffer_max_bytes                                   gauge
//	envgate_buffer_segments                                    gauge
//	envgate_buffer_appended_total                              counter
//	envgate_buffer_dropped_total                               counter
//	envgate_buffer_quarantined_records_total                   counter
//	envgate_buffer_quarantined_bytes_total                     counter
//	envgate_buffer_degraded                                    gauge, alarm 1 or 0
//	envgate_buffer_memory_readings                             gauge
//	envgate_buffer_quarantine_removed_files_total              counter
//	envgate_buffer_sync_in_progress_seconds                    gauge
//	envgate_sink_unsent_readings{sink}                         gauge
//	envgate_sink_oldest_unsent_age_seconds{sink}               gauge
//	envgate_sink_written_total{sink}                           counter
//	envgate_sink_retried_total{sink}                           counter
//	envgate_sink_rejected_total{sink}                          counter
//	envgate_sink_dead_lettered_total{sink}                     counter
//	envgate_sink_dead_letter_dropped_total{sink}               counter
//	envgate_sink_last_success_timestamp_seconds{sink}          gauge, 0 if never
//	envgate_sink_failing{sink}                                 gauge, 1 or 0
//	envgate_sink_persistent_failure{sink}                      gauge, alarm 1 or 0
//	envgate_sink_probes_total{sink,result}                     counter, result ok or failed
//	envgate_sink_live_written_total{sink}                      counter
//	envgate_sink_rate_limited_seconds_total{sink}              counter
//	envgate_sink_metrics_pushes_total{sink,result}             counter, result ok or failed
//	envgate_modbus_transactions_total{bus,device,result}       counter
//	envgate_modbus_exceptions_total{bus,device,code}           counter
//	envgate_modbus_rtt_seconds{bus}                            histogram, 1 ms to 2 s
//	envgate_modbus_busy_seconds_total{bus}                     counter; its rate is the bus utilisation
//	envgate_mqtt_messages_total{source}                        counter
//	envgate_mqtt_received_bytes_total{source}                  counter
//	envgate_mqtt_readings_total{source}                        counter
//	envgate_mqtt_dead_lettered_total{source}                   counter
//	envgate_mqtt_dead_letter_dropped_total{source}             counter
//	envgate_mqtt_malformed_total{source,kind}                  counter
//	envgate_mqtt_unacknowledged_total{source,reason}           counter
//	envgate_mqtt_in_flight_messages{source}                    gauge
//	envgate_mqtt_devices{source}                               gauge, devices counted toward max_devices
//	envgate_mqtt_connected{source}                             gauge, 1 or 0
//	envgate_mqtt_reconnects_total{source}                      counter
//	envgate_uplink_published_bytes_total{sink}                 counter
//	envgate_uplink_connects_total{sink}                        counter
//	envgate_uplink_connected{sink}                             gauge, 1 or 0
//	envgate_uplink_throttled_seconds_total{sink}               counter
//	envgate_uplink_skipped_total{sink}                         counter
//	envgate_hj212_packets_sent_total{sink}                     counter
//	envgate_hj212_packets_answered_total{sink}                 counter
//	envgate_hj212_packets_resent_total{sink}                   counter
//	envgate_hj212_answer_timeouts_total{sink}                  counter
//	envgate_hj212_commands_total{sink}                         counter
//	envgate_hj212_commands_refused_total{sink}                 counter
//	envgate_hj212_skipped_total{sink}                          counter
//	envgate_hj212_connects_total{sink}                         counter
//	envgate_hj212_connected{sink}                              gauge, 1 or 0
//	envgate_writer_stalled_seconds                             gauge, the writer's current buffer call
//	envgate_config_reload_success                              gauge, 1 if the last reload was applied
//	envgate_config_last_reload_success_timestamp_seconds       gauge, when the running config was loaded
//	envgate_readings_held_for_clock                            gauge, readings waiting for a plausible clock
//	envgate_readings_restamped_total                           counter
//	envgate_device_maintenance{device,kind}                    gauge, 1 or 0; kind maintenance or calibration
//	envgate_readings_excluded_total{device}                    counter, kept out of the derivations by a window
//
// envgate_sink_persistent_failure is 1 while a sink fails with an error only an operator
// can fix (bad token, missing bucket: HTTP 401, 403, 404), as docs/design.md describes.
// The registry also holds the standard go_* and process_* collectors, and
// promhttp_metric_handler_errors_total counts failed scrapes.
//
// The buffer and sink metrics are read at scrape time from the functions given to
// AddBuffer and AddSink, so they are never stale.
package metrics

import (
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/envgate/envgate/gateway/reading"
)

const namespace = "envgate"

// pollBuckets spans polls from 1 ms (Modbus TCP on the LAN) to 30 s (a slow serial
// device at its timeout), in seconds.
var pollBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics is the gateway's Prometheus registry. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	info         *prometheus.GaugeVec
	readingValue *prometheus.GaugeVec
	readingTime  *prometheus.GaugeVec
	invalid      *prometheus.CounterVec
	polls        *prometheus.CounterVec
	pollDuration *prometheus.HistogramVec
	up           *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec

	series      *seriesTracker
	state       *stateCollector
	modbus      *modbusMetrics
	mqtt        *mqttCollector
	uplink      *uplinkCollector
	push        *pushCollector
	hj212Uplink *hj212UplinkCollector
	noise       *noiseCollector

	airWater *airWaterCollector
	screen   *screenCollector
	pm       *pmCollector
	hj212    *hj212Collector
	writer   *writerCollector
	reload   *reloadCollector
	clock    *clockCollector
	devices  *deviceLog
	maint    *maintCollector
}

// New returns Metrics with its own registry holding every envgate metric plus the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		now: time.Now,
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help: "Build and identity of this gateway: always 1, labelled with the version and the gateway ID.",
		}, []string{"version", "gateway"}),
		readingValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "reading", Name: "value",
			Help: "Latest value of each quantity a device reported, in the unit named by the unit label.",
		}, []string{"site", "device", "quantity", "unit"}),
		readingTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "reading", Name: "timestamp_seconds",
			Help: "Measurement time of the latest value of each quantity, in seconds since the Unix epoch.",
		}, []string{"site", "device", "quantity"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "readings", Name: "invalid_total",
			Help: "Readings rejected before storage, by device and reason, as a count of readings.",
		}, []string{"device", "reason"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "device", Name: "polls_total",
			Help: "Polls of each device by result (ok or error), as a count of polls.",
		}, []string{"device", "result"}),
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "device", Name: "poll_duration_seconds",
			Help:    "Duration of each device poll, in seconds.",
			Buckets: pollBuckets,
		}, []string{"device"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "device", Name: "up",
			Help: "Whether the last poll of each device succeeded: 1 if it did, 0 if it failed.",
		}, []string{"device"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "device", Name: "last_success_timestamp_seconds",
			Help: "Time of the last successful poll of each device, in seconds since the Unix epoch.",
		}, []string{"device"}),
		series:      &seriesTracker{after: DefaultSeriesExpiry, seen: map[seriesKey]*seriesState{}, invalid: map[invalidKey]time.Time{}},
		state:       newStateCollector(),
		modbus:      newModbusMetrics(),
		mqtt:        &mqttCollector{sources: map[string]func() MQTTStats{}},
		uplink:      &uplinkCollector{sinks: map[string]func() UplinkStats{}},
		push:        &pushCollector{sinks: map[string]func() PushStats{}},
		hj212Uplink: &hj212UplinkCollector{sinks: map[string]func() HJ212UplinkStats{}},
		noise:       &noiseCollector{},

		airWater: &airWaterCollector{},
		screen:   &screenCollector{},
		pm:       &pmCollector{sensors: map[string]func() PMStats{}},
		hj212:    &hj212Collector{sources: map[string]func() HJ212Stats{}},
		writer:   &writerCollector{},
		reload:   &reloadCollector{},
		clock:    &clockCollector{},
		devices:  &deviceLog{byName: map[string]*DeviceStatus{}},
		maint:    &maintCollector{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.info, m.readingValue, m.readingTime, m.invalid,
		m.polls, m.pollDuration, m.up, m.lastSuccess,
		m.state, m.series,
	)
	m.reg.MustRegister(m.modbus.collectors()...)
	m.reg.MustRegister(m.mqtt, m.noise, m.airWater, m.screen, m.pm, m.hj212, m.clock, m.writer, m.reload)
	m.reg.MustRegister(m.uplink, m.push, m.maint, m.hj212Uplink)
	return m
}

// Registry returns the registry, for callers that add collectors or gather directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetInfo sets envgate_build_info to 1 for version and gatewayID, replacing an earlier call.
func (m *Metrics) SetInfo(version, gatewayID string) {
	m.info.Reset()
	m.info.WithLabelValues(version, gatewayID).Set(1)
}

// ObserveReading makes r the latest value of its quantity. A Bad reading is not shown as
// a value (the previous value and its timestamp stay); it is counted in
// envgate_readings_invalid_total with reason "bad_quality".
func (m *Metrics) ObserveReading(r reading.Reading) {
	if r.Quality == reading.Bad {
		m.CountInvalid(r.Device, "bad_quality")
		return
	}
	m.setReading(r.Site, r.Device, r.Quantity, r.Unit, r.Value, unixSeconds(r.Time))
}

// CountInvalid counts a reading of device rejected for reason, a short constant such
// as "invalid" or "bad_quality".
// Its series expires like a latest-value series (see ExpireSeries).
func (m *Metrics) CountInvalid(device, reason string) {
	m.countInvalid(device, reason)
}

// ObservePoll records one poll of device that took d and failed with err (nil: success).
// Both result series of envgate_device_polls_total exist from the first poll on, so
// rate() and increase() see the first error.
func (m *Metrics) ObservePoll(device string, d time.Duration, err error) {
	ok, failed := m.polls.WithLabelValues(device, "ok"), m.polls.WithLabelValues(device, "error")
	m.pollDuration.WithLabelValues(device).Observe(d.Seconds())
	m.devices.observe(device, m.now(), err)
	if err != nil {
		failed.Inc()
		m.up.WithLabelValues(device).Set(0)
		return
	}
	ok.Inc()
	m.up.WithLabelValues(device).Set(1)
	m.lastSuccess.WithLabelValues(device).Set(unixSeconds(m.now()))
}

// AddBuffer makes the buffer metrics report stats, called at every scrape. A later call
// replaces the function.
func (m *Metrics) AddBuffer(stats func() BufferStats) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.buffer = stats
}

// AddSink makes the sink metrics of sink name report stats, called at every scrape. A
// later call with the same name replaces the function.
func (m *Metrics) AddSink(name string, stats func() SinkStats) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.sinks[name] = stats
}

// Handler serves /metrics (the registry; a collector that fails is reported and the rest
// still served), /healthz (200 "ok" when healthy returns nil, else 503 with its error;
// healthy nil means always healthy) and / (a plain-text index of the two).
func (m *Metrics) Handler(healthy func() error) http.Handler {
	mux := http.NewServeMux()
	scrape := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // counts failed scrapes in promhttp_metric_handler_errors_total
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		m.sweepSeries() // a box whose readings stopped still sheds its expired series
		scrape.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if healthy != nil {
			if err := healthy(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, index)
	})
	return mux
}

const index = `envgate
/metrics  Prometheus metrics
/healthz  health check: 200 "ok", or 503 and the reason
`

// unixSeconds returns t in seconds since the Unix epoch, to the microsecond.
func unixSeconds(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }
