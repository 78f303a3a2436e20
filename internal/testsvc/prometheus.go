package testsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// PrometheusInstallHint tells how to install the Prometheus server the tests are written
// against (Debian bookworm: 2.42, with promtool).
const PrometheusInstallHint = "apt-get install prometheus, or scripts/install-deps.sh"

// AlertmanagerInstallHint tells how to install Alertmanager (Debian bookworm: 0.25, as
// prometheus-alertmanager, with amtool).
const AlertmanagerInstallHint = "apt-get install prometheus-alertmanager, or scripts/install-deps.sh"

// PrometheusJob is the job name of the scrape targets StartPrometheus configures; the
// shipped rules (alerts/gateway.rules.yml, GatewayDown) expect it.
const PrometheusJob = "envgate"

const (
	promReadyTimeout = 30 * time.Second // Prometheus replays its (empty) WAL; a slow runner takes seconds
	promStopTimeout  = 15 * time.Second // after SIGTERM, before SIGKILL
	promLogTail      = 40
	promHTTPTimeout  = 10 * time.Second
	promDefaultEvery = time.Second // scrape and evaluation interval when the options leave it 0
)

// PrometheusOptions says how StartPrometheus configures the server. The zero value
// scrapes nothing, loads no rules and sends no alerts, every second.
type PrometheusOptions struct {
	// Targets are host:port addresses to scrape at /metrics, all in job PrometheusJob.
	Targets []string
	// RuleFiles are rule files to load; they are copied into the server's directory
	// first, so the caller may change or delete its copies.
	RuleFiles []string
	// AlertmanagerURL, when set, is where firing and resolved alerts are sent, such
	// as Alertmanager.URL.
	AlertmanagerURL string
	// ScrapeInterval and EvalInterval are the global scrape and rule evaluation
	// intervals; 0 means 1s. The scrape timeout equals the scrape interval. Alerts
	// are resent to Alertmanager every EvalInterval (--rules.alert.resend-delay), so
	// a firing alert's endsAt is 4 evaluation intervals ahead.
	ScrapeInterval time.Duration
	EvalInterval   time.Duration
	// RemoteWriteReceiver starts the server with --web.enable-remote-write-receiver:
	// it accepts remote-write requests at URL + "/api/v1/write".
	RemoteWriteReceiver bool
	// OutOfOrderTimeWindow, if positive, sets storage.tsdb.out_of_order_time_window
	// (Prometheus 2.39 and later): samples up to that much older than the newest of
	// their series are accepted instead of rejected as out of order.
	OutOfOrderTimeWindow time.Duration
}

// Prometheus is a Prometheus server started by StartPrometheus for one test, on a free
// loopback port with its TSDB in a temporary directory. Its methods are for the test
// goroutine only.
type Prometheus struct {
	URL string // base URL, e.g. "http://127.0.0.1:41234"
	Dir string // configuration, rule files, TSDB and log
	Log string // path of the server's log
	// Now, if set, is the clock Query and WaitQuery evaluate at (the API's time
	// parameter); nil is the server's own "now". A test whose samples carry the
	// gateway's clock, shifted in fakeclock runs, sets it to clock.Now so the query
	// looks where the samples are.
	Now func() time.Time

	http *http.Client
	proc *process
}

// StartPrometheus starts Prometheus configured from opt, waits until it is ready
// (/-/ready) and stops it in t.Cleanup; when the test fails, the tail of its log is
// printed. Under -short it skips, unless CI=true; a missing prometheus binary skips the
// test, or fails it under CI=true.
func StartPrometheus(t testing.TB, opt PrometheusOptions) *Prometheus {
	t.Helper()
	if testing.Short() && !inCI() {
		t.Skip("integration test with a real Prometheus; skipped with -short")
	}
	bin := Binary(t, "prometheus", PrometheusInstallHint)
	dir := t.TempDir()
	port := FreePort(t)
	p := &Prometheus{
		URL:  fmt.Sprintf("http://127.0.0.1:%d", port),
		Dir:  dir,
		Log:  filepath.Join(dir, "prometheus.log"),
		http: &http.Client{Timeout: promHTTPTimeout},
	}
	conf := filepath.Join(dir, "prometheus.yml")
	raw, err := prometheusConfig(dir, opt)
	if err != nil {
		t.Fatalf("prometheus config: %v", err)
	}
	if err := os.WriteFile(conf, raw, 0o644); err != nil {
		t.Fatalf("write prometheus config: %v", err)
	}
	args := []string{
		"--config.file=" + conf,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
		"--rules.alert.resend-delay=" + promDuration(interval(opt.EvalInterval)),
		"--log.level=info",
	}
	if opt.RemoteWriteReceiver {
		args = append(args, "--web.enable-remote-write-receiver")
	}
	p.proc = &process{
		name:         "prometheus",
		bin:          bin,
		args:         args,
		log:          p.Log,
		ready:        httpReady(p.http, p.URL+"/-/ready", http.StatusOK),
		readyTimeout: promReadyTimeout,
		stopWaits:    []time.Duration{promStopTimeout},
		checkExit:    true,
		logTail:      promLogTail,
	}
	p.proc.run(t, "prometheus", func(t testing.TB) { p.proc.stop(t); p.http.CloseIdleConnections() })
	return p
}

// prometheusConfig returns the configuration for opt and copies the rule files into
// dir/rules.
func prometheusConfig(dir string, opt PrometheusOptions) ([]byte, error) {
	scrape, eval := promDuration(interval(opt.ScrapeInterval)), promDuration(interval(opt.EvalInterval))
	type staticConfig struct {
		Targets []string `yaml:"targets"`
	}
	type alertmanager struct {
		Scheme        string         `yaml:"scheme"`
		PathPrefix    string         `yaml:"path_prefix,omitempty"`
		StaticConfigs []staticConfig `yaml:"static_configs"`
	}
	type config struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			ScrapeTimeout      string `yaml:"scrape_timeout"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		Storage *struct {
			TSDB struct {
				OutOfOrderTimeWindow string `yaml:"out_of_order_time_window"`
			} `yaml:"tsdb"`
		} `yaml:"storage,omitempty"`
		RuleFiles []string `yaml:"rule_files,omitempty"`
		Alerting  *struct {
			Alertmanagers []alertmanager `yaml:"alertmanagers"`
		} `yaml:"alerting,omitempty"`
		ScrapeConfigs []struct {
			JobName       string         `yaml:"job_name"`
			StaticConfigs []staticConfig `yaml:"static_configs"`
		} `yaml:"scrape_configs,omitempty"`
	}
	var c config
	c.Global.ScrapeInterval, c.Global.ScrapeTimeout, c.Global.EvaluationInterval = scrape, scrape, eval
	if opt.OutOfOrderTimeWindow > 0 {
		c.Storage = &struct {
			TSDB struct {
				OutOfOrderTimeWindow string `yaml:"out_of_order_time_window"`
			} `yaml:"tsdb"`
		}{}
		c.Storage.TSDB.OutOfOrderTimeWindow = promDuration(opt.OutOfOrderTimeWindow)
	}
	if len(opt.RuleFiles) > 0 {
		rules := filepath.Join(dir, "rules")
		if err := os.Mkdir(rules, 0o755); err != nil {
			return nil, err
		}
		for i, src := range opt.RuleFiles {
			b, err := os.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("rule file: %w", err)
			}
			// The index keeps a.yml from two directories apart.
			dst := filepath.Join(rules, fmt.Sprintf("%02d-%s", i, filepath.Base(src)))
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				return nil, err
			}
			c.RuleFiles = append(c.RuleFiles, dst)
		}
	}
	if opt.AlertmanagerURL != "" {
		u, err := url.Parse(opt.AlertmanagerURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("AlertmanagerURL %q: want http://host:port[/path]", opt.AlertmanagerURL)
		}
		c.Alerting = &struct {
			Alertmanagers []alertmanager `yaml:"alertmanagers"`
		}{Alertmanagers: []alertmanager{{
			Scheme:        u.Scheme,
			PathPrefix:    strings.TrimSuffix(u.Path, "/"),
			StaticConfigs: []staticConfig{{Targets: []string{u.Host}}},
		}}}
	}
	if len(opt.Targets) > 0 {
		c.ScrapeConfigs = append(c.ScrapeConfigs, struct {
			JobName       string         `yaml:"job_name"`
			StaticConfigs []staticConfig `yaml:"static_configs"`
		}{JobName: PrometheusJob, StaticConfigs: []staticConfig{{Targets: opt.Targets}}})
	}
	return yaml.Marshal(c)
}

func interval(d time.Duration) time.Duration {
	if d <= 0 {
		return promDefaultEvery
	}
	return d
}

// promDuration writes d in milliseconds, a form every Prometheus duration parser takes
// (time.Duration's "1.5s" is not).
func promDuration(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// Start starts the server again on the same port and TSDB (after Stop) and waits
// until it is ready.
func (p *Prometheus) Start(t testing.TB) {
	t.Helper()
	p.proc.start(t)
}

// Stop stops the server with SIGTERM and waits for it to exit; its TSDB stays, and
// Start brings it back. Stopping a stopped server does nothing.
func (p *Prometheus) Stop(t testing.TB) {
	t.Helper()
	p.proc.stop(t)
	p.http.CloseIdleConnections()
}

// TimedValue is one stored sample of a series: its timestamp in milliseconds since the
// Unix epoch and its value.
type TimedValue struct {
	T int64
	V float64
}

// Series returns the stored samples of every series selector matches within the
// window before at (a range query such as `x{a="b"}[1h]` evaluated at at), by the
// series' labels in Prometheus's text form ({a="b", ...}, with __name__). A failed
// query fails the test.
func (p *Prometheus) Series(t testing.TB, selector string, window time.Duration, at time.Time) map[string][]TimedValue {
	t.Helper()
	expr := selector + "[" + promDuration(window) + "]"
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	at = at.Add(time.Millisecond) // the window is left-open, right-closed: include at
	q := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	p.get(t, "/api/v1/query?"+q.Encode(), &data)
	if data.ResultType != "matrix" {
		t.Fatalf("query %q: result type %q, want matrix", expr, data.ResultType)
	}
	out := map[string][]TimedValue{}
	for _, s := range data.Result {
		key := labelString(s.Metric)
		for _, v := range s.Values {
			f, ok := v[0].(float64)
			if !ok {
				t.Fatalf("query %q: timestamp %v is not a number", expr, v[0])
			}
			out[key] = append(out[key], TimedValue{T: int64(math.Round(f * 1000)), V: parseValue(t, expr, v[1])})
		}
	}
	return out
}

// labelString writes labels as {a="b", c="d"}, sorted by name.
func labelString(labels map[string]string) string {
	names := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", n, labels[n])
	}
	b.WriteByte('}')
	return b.String()
}

// Sample is one element of a query result: the series' labels (with __name__ when
// the expression keeps it) and its value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query evaluates an instant PromQL query now (p.Now) and returns its samples: a vector's
// elements, or one sample without labels for a scalar. A range vector result, an
// error or a non-200 answer fails the test.
func (p *Prometheus) Query(t testing.TB, expr string) []Sample {
	t.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	q := url.Values{"query": {expr}}
	if p.Now != nil {
		q.Set("time", strconv.FormatFloat(float64(p.Now().UnixMilli())/1000, 'f', 3, 64))
	}
	p.get(t, "/api/v1/query?"+q.Encode(), &data)
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			t.Fatalf("query %q: decode vector: %v", expr, err)
		}
		out := make([]Sample, 0, len(vec))
		for _, s := range vec {
			out = append(out, Sample{Labels: s.Metric, Value: parseValue(t, expr, s.Value[1])})
		}
		return out
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(data.Result, &s); err != nil {
			t.Fatalf("query %q: decode scalar: %v", expr, err)
		}
		return []Sample{{Value: parseValue(t, expr, s[1])}}
	default:
		t.Fatalf("query %q: result type %q, want vector or scalar", expr, data.ResultType)
		return nil
	}
}

// parseValue reads a sample value, which the HTTP API sends as a string ("1", "NaN").
func parseValue(t testing.TB, expr string, v any) float64 {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("query %q: value %v is not a string", expr, v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("query %q: value %q: %v", expr, s, err)
	}
	return f
}

// WaitQuery runs Query every 200 ms until cond accepts its result and returns that
// result; after timeout it fails the test with the last result.
func (p *Prometheus) WaitQuery(t testing.TB, expr string, timeout time.Duration, cond func([]Sample) bool) []Sample {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		got := p.Query(t, expr)
		if cond(got) {
			return got
		}
		select {
		case <-deadline.C:
			t.Fatalf("query %q: condition not met within %v; last result %v", expr, timeout, got)
		case <-tick.C:
		}
	}
}

// RuleAlert is an alert as Prometheus's /api/v1/alerts shows it: pending or firing.
type RuleAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"` // "pending" or "firing"
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"` // the expression's value, as Prometheus formats it
}

// Alerts returns the pending and firing alerts of every rule.
func (p *Prometheus) Alerts(t testing.TB) []RuleAlert {
	t.Helper()
	var data struct {
		Alerts []RuleAlert `json:"alerts"`
	}
	p.get(t, "/api/v1/alerts", &data)
	return data.Alerts
}

// get calls the HTTP API at path and decodes the data of a successful answer into
// data; anything else fails the test.
func (p *Prometheus) get(t testing.TB, path string, data any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.URL+path, nil)
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("prometheus %s: read answer: %v", path, err)
	}
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || resp.StatusCode != http.StatusOK || r.Status != "success" {
		t.Fatalf("prometheus %s: %s: %s", path, resp.Status, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		t.Fatalf("prometheus %s: decode %s: %v", path, r.Data, err)
	}
}

// Alertmanager is an Alertmanager started by StartAlertmanager for one test, on a free
// loopback port, clustering off, its state in a temporary directory. Its methods are
// for the test goroutine only.
type Alertmanager struct {
	URL string // base URL, e.g. "http://127.0.0.1:41235"
	Dir string // configuration, state and log
	Log string // path of Alertmanager's log

	http *http.Client
	proc *process
}

// StartAlertmanager starts Alertmanager with configYAML as its configuration, waits
// until it is ready and stops it in t.Cleanup; when the test fails, the tail of its
// log is printed. Tests want small group_wait, group_interval and repeat_interval
// (such as 1s, 1s, 1m), or notifications take minutes. Under -short it skips, unless
// CI=true; a missing binary (alertmanager, or Debian's prometheus-alertmanager) skips
// the test, or fails it under CI=true.
func StartAlertmanager(t testing.TB, configYAML string) *Alertmanager {
	t.Helper()
	if testing.Short() && !inCI() {
		t.Skip("integration test with a real Alertmanager; skipped with -short")
	}
	bin, err := exec.LookPath("alertmanager") // the upstream name; Debian renames it
	if err != nil {
		bin = Binary(t, "prometheus-alertmanager", AlertmanagerInstallHint)
	}
	dir := t.TempDir()
	port := FreePort(t)
	a := &Alertmanager{
		URL:  fmt.Sprintf("http://127.0.0.1:%d", port),
		Dir:  dir,
		Log:  filepath.Join(dir, "alertmanager.log"),
		http: &http.Client{Timeout: promHTTPTimeout},
	}
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("write alertmanager config: %v", err)
	}
	a.proc = &process{
		name: "alertmanager",
		bin:  bin,
		args: []string{
			"--config.file=" + conf,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			// Empty: no cluster listener, so no gossip port and no waiting for peers.
			"--cluster.listen-address=",
			"--log.level=info",
		},
		log:          a.Log,
		ready:        httpReady(a.http, a.URL+"/-/ready", http.StatusOK),
		readyTimeout: promReadyTimeout,
		stopWaits:    []time.Duration{promStopTimeout},
		checkExit:    true,
		logTail:      promLogTail,
	}
	a.proc.run(t, "alertmanager", func(t testing.TB) { a.proc.stop(t); a.http.CloseIdleConnections() })
	return a
}

// AlertmanagerAlert is an alert in Alertmanager's terms: in a webhook notification,
// in its API (Alerts), or posted to it (Post).
type AlertmanagerAlert struct {
	Status       string            `json:"status"` // "firing" or "resolved"; not posted
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"` // not posted
}

// Post sends alerts to Alertmanager as Prometheus would (POST /api/v2/alerts): zero
// StartsAt means now, zero EndsAt means firing until resolve_timeout. Any error fails
// the test.
func (a *Alertmanager) Post(t testing.TB, alerts ...AlertmanagerAlert) {
	t.Helper()
	type postable struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations,omitempty"`
		StartsAt     *time.Time        `json:"startsAt,omitempty"`
		EndsAt       *time.Time        `json:"endsAt,omitempty"`
		GeneratorURL string            `json:"generatorURL,omitempty"`
	}
	body := make([]postable, 0, len(alerts))
	for _, al := range alerts {
		p := postable{Labels: al.Labels, Annotations: al.Annotations, GeneratorURL: al.GeneratorURL}
		if !al.StartsAt.IsZero() {
			p.StartsAt = &al.StartsAt
		}
		if !al.EndsAt.IsZero() {
			p.EndsAt = &al.EndsAt
		}
		body = append(body, p)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("alertmanager post: %v", err)
	}
	a.do(t, http.MethodPost, "/api/v2/alerts", raw, nil)
}

// Alerts returns the alerts Alertmanager holds (GET /api/v2/alerts), inhibited and
// silenced ones included; Status is "active", "suppressed" or "unprocessed".
func (a *Alertmanager) Alerts(t testing.TB) []AlertmanagerAlert {
	t.Helper()
	var got []struct {
		AlertmanagerAlert
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	a.do(t, http.MethodGet, "/api/v2/alerts", nil, &got)
	out := make([]AlertmanagerAlert, 0, len(got))
	for _, g := range got {
		al := g.AlertmanagerAlert
		al.Status = g.Status.State
		out = append(out, al)
	}
	return out
}

func (a *Alertmanager) do(t testing.TB, method, path string, body []byte, into any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, a.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("alertmanager %s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatalf("alertmanager %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("alertmanager %s %s: read answer: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alertmanager %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(raw))
	}
	if into != nil {
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatalf("alertmanager %s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

// WebhookMessage is one notification Alertmanager's webhook receiver sent (payload
// version 4), plus the path it was posted to.
type WebhookMessage struct {
	Path              string              `json:"-"` // request path, e.g. "/oncall"
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"` // "firing" or "resolved"
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
}

// Webhook is an HTTP server on a loopback port that records the notifications
// Alertmanager's webhook_configs post to it, on any path. Its methods may be called
// from any goroutine; Wait only from the test goroutine.
type Webhook struct {
	URL string // base URL, e.g. "http://127.0.0.1:41236"; any path below it is accepted

	mu      sync.Mutex
	msgs    []WebhookMessage
	changed chan struct{} // closed and replaced when a message arrives
}

// StartWebhook starts a webhook receiver and closes it in t.Cleanup. A request that is
// not a POST of a webhook JSON payload is answered 400 and fails the test.
func StartWebhook(t testing.TB) *Webhook {
	t.Helper()
	w := &Webhook{changed: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		var m WebhookMessage
		if err == nil && r.Method != http.MethodPost {
			err = fmt.Errorf("method %s, want POST", r.Method)
		}
		if err == nil {
			err = json.Unmarshal(raw, &m)
		}
		if err == nil && m.Version == "" {
			err = fmt.Errorf("no version field: not an Alertmanager webhook payload")
		}
		if err != nil {
			t.Errorf("webhook %s %s: %v; body %.500s", r.Method, r.URL.Path, err, raw)
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		m.Path = r.URL.Path
		w.mu.Lock()
		w.msgs = append(w.msgs, m)
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}))
	w.URL = srv.URL
	t.Cleanup(srv.Close)
	return w
}

// Messages returns the notifications received so far, oldest first.
func (w *Webhook) Messages() []WebhookMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// Wait waits until cond accepts the notifications received so far (oldest first) and
// returns them; cond is called again after every new notification. After timeout it
// fails the test with a summary of what arrived.
func (w *Webhook) Wait(t testing.TB, timeout time.Duration, cond func([]WebhookMessage) bool) []WebhookMessage {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		msgs, changed := slices.Clone(w.msgs), w.changed
		w.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("webhook: condition not met within %v; received:\n%s", timeout, Summarize(msgs))
		}
	}
}

// WaitAlert waits for a notification holding an alert named alertname with the given
// status ("firing" or "resolved") and returns that message and alert.
func (w *Webhook) WaitAlert(t testing.TB, timeout time.Duration, alertname, status string) (WebhookMessage, AlertmanagerAlert) {
	t.Helper()
	var (
		msg   WebhookMessage
		alert AlertmanagerAlert
	)
	w.Wait(t, timeout, func(msgs []WebhookMessage) bool {
		for _, m := range msgs {
			for _, a := range m.Alerts {
				if a.Labels["alertname"] == alertname && a.Status == status {
					msg, alert = m, a
					return true
				}
			}
		}
		return false
	})
	return msg, alert
}

// Summarize lists notifications one per line, "path status receiver: alertname{labels}
// status, ...", for failure messages.
func Summarize(msgs []WebhookMessage) string {
	if len(msgs) == 0 {
		return "(nothing)"
	}
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s %s %s:", m.Path, m.Status, m.Receiver)
		for _, a := range m.Alerts {
			fmt.Fprintf(&b, " %s%v %s;", a.Labels["alertname"], a.Labels, a.Status)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// HostPort returns the host:port of an http URL such as Alertmanager.URL or
// Webhook.URL, to use as a scrape target.
func HostPort(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		t.Fatalf("HostPort(%q): not a URL with a host", rawURL)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		t.Fatalf("HostPort(%q): %v", rawURL, err)
	}
	return u.Host
}
