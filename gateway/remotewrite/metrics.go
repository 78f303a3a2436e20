package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/prompb"
)

// DefaultMetrics are the metric families the metrics push sends unless configured
// otherwise: every envgate_* metric the shipped rule files (alerts/*.rules.yml) read in
// an expression or an annotation, so that the scrape-mode rules evaluate unchanged on
// pushed data. Two are left out on purpose: up, which no gateway exports (in push mode
// PushedBoxSilent stands in for GatewayDown), and envgate_reading_value, which the sink
// already pushes, reading by reading at each one's measurement time; pushing the
// latest-value gauge too would give every reading a second series. TestDefaultMetrics
// keeps the list in step with the rule files.
var DefaultMetrics = []string{
	"envgate_air_aqi",
	"envgate_air_concentration",
	"envgate_air_hour_timestamp_seconds",
	"envgate_air_iaqi",
	"envgate_air_primary_pollutant",
	"envgate_air_samples_total",
	"envgate_buffer_bytes",
	"envgate_buffer_degraded",
	"envgate_buffer_dropped_total",
	"envgate_buffer_kept_bytes",
	"envgate_buffer_max_bytes",
	"envgate_buffer_memory_readings",
	"envgate_buffer_sync_in_progress_seconds",
	"envgate_clock_max_error_seconds",
	"envgate_clock_synchronized",
	"envgate_device_maintenance",
	"envgate_device_up",
	"envgate_mqtt_connected",
	"envgate_mqtt_devices",
	"envgate_mqtt_malformed_total",
	"envgate_noise_bursts_total",
	"envgate_noise_energy_seconds_total",
	"envgate_noise_exceedance_db",
	"envgate_noise_last_burst_dba",
	"envgate_noise_limit_dba",
	"envgate_noise_night",
	"envgate_noise_running_laeq_dba",
	"envgate_noise_sample_seconds_total",
	"envgate_noise_samples_total",
	"envgate_noise_site_info",
	"envgate_reading_timestamp_seconds",
	"envgate_readings_held_for_clock",
	"envgate_readings_invalid_total",
	"envgate_screen_flagged",
	"envgate_sink_dead_letter_dropped_total",
	"envgate_sink_dead_lettered_total",
	"envgate_sink_failing",
	"envgate_sink_last_success_timestamp_seconds",
	"envgate_sink_oldest_unsent_age_seconds",
	"envgate_sink_persistent_failure",
	"envgate_water_class",
	"envgate_water_missing_params",
	"envgate_water_param_class",
	"envgate_water_samples_total",
	"envgate_water_target_class",
	"envgate_water_window_start_timestamp_seconds",
	"envgate_writer_stalled_seconds",
}

// DefaultMetricsJob is the job label of pushed metrics unless configured otherwise: the
// job name the shipped rules expect of a scrape (alerts/gateway.rules.yml).
const DefaultMetricsJob = "envgate"

// metricName is the syntax of a Prometheus metric name.
var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// CheckMetricName says what is wrong with name as an entry of the metrics push's
// allow-list, "" if nothing is. The config package checks the metrics key with it.
func CheckMetricName(name string) string {
	switch {
	case !metricName.MatchString(name):
		return "must be a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
	case name == MetricName:
		return "is pushed reading by reading already; pushing the latest-value gauge too would duplicate every series"
	}
	return ""
}

// Bounds of MetricsConfig.Interval. The upper one keeps two samples of every pushed
// series within the shortest range the shipped rules read ([5m]), and every series
// within Prometheus's 5-minute lookback, so that nothing goes stale between pushes.
const (
	MinMetricsInterval = time.Second
	MaxMetricsInterval = 2 * time.Minute
)

// A FieldProblem is one thing wrong with a MetricsConfig: Field is the config key it is
// about (metrics_interval, metrics_job, metrics, metrics[i]), Msg what is wrong.
type FieldProblem struct {
	Field, Msg string
}

// CheckMetricsConfig returns every problem of cfg, in the order of its fields: the
// rules of the metrics push, which the config package reports under its key paths and
// NewMetricsPush enforces. Site is not checked: it is the gateway's site, checked there.
func CheckMetricsConfig(cfg MetricsConfig) []FieldProblem {
	var ps []FieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, FieldProblem{field, fmt.Sprintf(format, args...)})
	}
	if cfg.Interval < MinMetricsInterval || cfg.Interval > MaxMetricsInterval {
		add("metrics_interval", "must be between %v and %v", MinMetricsInterval, MaxMetricsInterval)
	}
	if cfg.Job == "" || !utf8.ValidString(cfg.Job) {
		add("metrics_job", "must be a non-empty UTF-8 string")
	}
	if len(cfg.Names) == 0 {
		add("metrics", "must name at least one metric")
	}
	seen := map[string]bool{}
	for i, name := range cfg.Names {
		field := fmt.Sprintf("metrics[%d]", i)
		switch msg := CheckMetricName(name); {
		case msg != "":
			add(field, "%s", msg)
		case seen[name]:
			add(field, "%s is listed twice", name)
		}
		seen[name] = true
	}
	return ps
}

// MetricsConfig configures a sink's metrics push; CheckMetricsConfig says what a valid
// one is.
type MetricsConfig struct {
	Interval time.Duration // between pushes; MinMetricsInterval..MaxMetricsInterval
	Job      string        // value of the job label; not empty, UTF-8
	// Site, if set, is the site label of the series that have none of their own (the
	// gateway's site, as its health readings carry).
	Site  string
	Names []string // the allow-list of metric families; not empty
}

// MetricsStats counts what a MetricsPush has done since NewMetricsPush.
type MetricsStats struct {
	Pushed uint64 // pushes the receiver accepted
	Failed uint64 // pushes that failed and were dropped
}

// A MetricsPush sends the gateway's own metrics (/metrics, restricted to an
// allow-list) to the sink's receiver every interval, as a Prometheus agent scraping the
// box would, so that the scrape-mode alert rules evaluate on a central Prometheus that
// cannot reach the box. The samples are live state stamped with the gather time, not
// readings: they are never buffered, and a push that fails is counted and dropped, not
// retried. A late copy of state would be evaluated by the rules as if it were the
// state at its timestamp, which the receiver may not even accept (out of order once a
// later push got through), and an alert must not fire on a replayed past as if it were
// now. Each push is its own request with its own timeout, on its own goroutine
// (Run): it never waits for, or holds up, the sink's forwarder.
type MetricsPush struct {
	s     *Sink
	cfg   MetricsConfig
	g     prometheus.Gatherer
	allow map[string]bool
	log   *slog.Logger
	now   func() time.Time

	pushed, failed atomic.Uint64
	failing        atomic.Bool
}

// NewMetricsPush returns the metrics push of s, gathering from g. It starts nothing:
// the caller runs Run.
func (s *Sink) NewMetricsPush(cfg MetricsConfig, g prometheus.Gatherer) (*MetricsPush, error) {
	var errs []error
	for _, p := range CheckMetricsConfig(cfg) {
		errs = append(errs, fmt.Errorf("%s: %s", p.Field, p.Msg))
	}
	if g == nil {
		errs = append(errs, errors.New("no registry to gather"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("remote-write sink %s: metrics push: %w", s.cfg.Name, err)
	}
	allow := map[string]bool{}
	for _, n := range cfg.Names {
		allow[n] = true
	}
	return &MetricsPush{s: s, cfg: cfg, g: g, allow: allow, log: s.log.With("push", "metrics"), now: time.Now}, nil
}

// Run pushes every Interval, the first push at once, until ctx is done. A push that
// overruns the interval makes the next tick wait (no stacking); each is bounded by the
// sink's timeout.
func (m *MetricsPush) Run(ctx context.Context) {
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	for {
		m.push(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// push gathers, converts and sends once, counting the outcome; it logs the changes
// from working to failing and back, not every failure.
func (m *MetricsPush) push(ctx context.Context) {
	_, err := m.Push(ctx)
	if ctx.Err() != nil {
		return // shutting down: not a failure of the receiver
	}
	if err != nil {
		m.failed.Add(1)
		if !m.failing.Swap(true) {
			m.log.Warn("metrics push failed; dropped, the next one goes at its time", "err", err)
		}
		return
	}
	m.pushed.Add(1)
	if m.failing.Swap(false) {
		m.log.Info("metrics push works again")
	}
}

// Push gathers the registry and sends the allowed families in one request, stamped
// with the time of the gather. It returns the number of samples sent. It makes one
// attempt, bounded by the sink's timeout. Run calls it; tests call it directly.
func (m *MetricsPush) Push(ctx context.Context) (int, error) {
	if m.s.isClosed() {
		return 0, fmt.Errorf("remote-write sink %s: %w", m.s.cfg.Name, ErrClosed)
	}
	mfs, err := m.g.Gather()
	now := m.now()
	if err != nil && len(mfs) == 0 {
		return 0, fmt.Errorf("remote-write sink %s: metrics push: gather: %w", m.s.cfg.Name, err)
	}
	// A partial gather (one collector failed) still pushes what it got, as a scrape
	// with promhttp.ContinueOnError serves it.
	req := &prompb.WriteRequest{Timeseries: Convert(mfs, m.allow, IdentityLabels{
		Job: m.cfg.Job, Instance: m.s.cfg.GatewayID, Gateway: m.s.cfg.GatewayID, Site: m.cfg.Site}, now)}
	if len(req.Timeseries) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.s.cfg.Timeout)
	defer cancel()
	a, msg, err := m.s.post(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("remote-write sink %s: metrics push of %d series: %s", m.s.cfg.Name,
			len(req.Timeseries), describe(a.status, msg))
	}
	return len(req.Timeseries), nil
}

// Stats returns the push's counters.
func (m *MetricsPush) Stats() MetricsStats {
	return MetricsStats{Pushed: m.pushed.Load(), Failed: m.failed.Load()}
}

// IdentityLabels are the labels the metrics push adds to every series: those a
// Prometheus scraping the box would add (job, instance) and those of the pushed readings
// (gateway, site), so that a rule can join both. Empty values are not added.
type IdentityLabels struct {
	Job, Instance, Gateway, Site string
}

// Convert returns the samples of the families in mfs whose names allow holds, each
// stamped with t: counters, gauges and untyped metrics, one series each. Histograms,
// summaries and the rest are skipped (no shipped rule reads one; a scrape-mode rule
// on one would need the _bucket, _sum and _count series). Each series has the
// family's name, its own labels and the identity labels it lacks: a label of the
// metric's own keeps its value (site on a per-device metric is the device's site, not
// the gateway's), as Prometheus does with honor_labels: true. Series are in the order
// of mfs, labels sorted by name as the protocol requires; NaN values (a gauge not yet
// known) are sent as they are, as a scrape would read them.
func Convert(mfs []*dto.MetricFamily, allow map[string]bool, id IdentityLabels, t time.Time) []prompb.TimeSeries {
	ts := t.UnixMilli()
	var out []prompb.TimeSeries
	extra := []prompb.Label{{Name: "gateway", Value: id.Gateway}, {Name: "instance", Value: id.Instance},
		{Name: "job", Value: id.Job}, {Name: "site", Value: id.Site}}
	for _, mf := range mfs {
		name := mf.GetName()
		if !allow[name] {
			continue
		}
		for _, m := range mf.GetMetric() {
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			labels := make([]prompb.Label, 0, len(m.GetLabel())+len(extra)+1)
			labels = append(labels, prompb.Label{Name: "__name__", Value: name})
			for _, l := range m.GetLabel() {
				labels = append(labels, prompb.Label{Name: l.GetName(), Value: l.GetValue()})
			}
			for _, e := range extra {
				if e.Value == "" || slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == e.Name }) {
					continue
				}
				labels = append(labels, e)
			}
			slices.SortFunc(labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
			out = append(out, prompb.TimeSeries{Labels: labels, Samples: []prompb.Sample{{Value: v, Timestamp: ts}}})
		}
	}
	return out
}
