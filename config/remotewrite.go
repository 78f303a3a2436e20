package config

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/remotewrite"
)

// RemoteWrite configures a sink pushing every reading as a sample to a Prometheus
// remote-write receiver (Prometheus with --web.enable-remote-write-receiver,
// VictoriaMetrics, Mimir): docs/remote-write.md.
type RemoteWrite struct {
	URL             string        `yaml:"url"`               // required: the write endpoint, http or https
	BearerToken     Secret        `yaml:"bearer_token"`      // optional; not with basic auth
	BearerTokenFile string        `yaml:"bearer_token_file"` // read the token from this file; not both
	Username        string        `yaml:"username"`          // basic auth; optional
	Password        Secret        `yaml:"password"`          // basic auth; only with username
	PasswordFile    string        `yaml:"password_file"`     // read the password from this file; not both
	Headers         []Header      `yaml:"headers"`           // extra request headers, such as X-Scope-OrgID for Mimir
	BatchSize       int           `yaml:"batch_size"`        // default 1000; 1..50000
	FlushInterval   time.Duration `yaml:"flush_interval"`    // default 1s; > 0
	Timeout         time.Duration `yaml:"timeout"`           // per HTTP request; default 10s; > 0
	RetryInitial    time.Duration `yaml:"retry_initial"`     // default 1s; > 0
	RetryMax        time.Duration `yaml:"retry_max"`         // default 2m; >= RetryInitial
	AuthRetry       time.Duration `yaml:"auth_retry"`        // slow retry while 401/403/404; default 1m; > 0
	DeadLetter      string        `yaml:"dead_letter"`       // default <state_dir>/deadletter/<sink name>.lp
	CAFile          string        `yaml:"ca_file"`           // optional PEM bundle for https
	// InsecureSkipVerify turns off the check of the receiver's certificate.
	InsecureSkipVerify bool             `yaml:"insecure_skip_verify"`
	DeadLetterMaxBytes ByteSize         `yaml:"dead_letter_max_bytes"` // default 16 MiB; 64 KiB..1 GiB
	DeadLetterKeep     int              `yaml:"dead_letter_keep"`      // default 3; 0..20
	SinkPacing         `yaml:",inline"` // retry_jitter, max_rate
	// MetricsInterval is how often the box's own metrics are pushed (docs/remote-write.md,
	// "The metrics push"); 0 turns the metrics push off.
	MetricsInterval time.Duration `yaml:"metrics_interval"` // default 15s; 0, or 1s..2m
	MetricsJob      string        `yaml:"metrics_job"`      // job label of pushed metrics; default "envgate"
	Metrics         []string      `yaml:"metrics"`          // allow-list; default remotewrite.DefaultMetrics
}

// DefaultMetricsInterval is the metrics push's default interval; its bounds are
// remotewrite.MinMetricsInterval and MaxMetricsInterval.
const DefaultMetricsInterval = 15 * time.Second

// Header is one extra HTTP request header of a remote-write sink.
type Header struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// reservedHeaders are set by the sink itself (the protocol, the credentials).
var reservedHeaders = []string{"Authorization", "Content-Encoding", "Content-Type", "Content-Length",
	"User-Agent", "X-Prometheus-Remote-Write-Version", "Host"}

// defaults fills the zero fields of x, the block at path p (ending in "."), of the
// sink named name.
func (x *RemoteWrite) defaults(p, name, stateDir string, isSet func(string) bool) {
	setDefault(&x.BatchSize, DefaultBatchSize, isSet(p+"batch_size"))
	setDefault(&x.FlushInterval, DefaultFlushInterval, isSet(p+"flush_interval"))
	setDefault(&x.Timeout, DefaultTimeout, isSet(p+"timeout"))
	setDefault(&x.RetryInitial, DefaultRetryInitial, isSet(p+"retry_initial"))
	setDefault(&x.RetryMax, DefaultRetryMax, isSet(p+"retry_max"))
	setDefault(&x.AuthRetry, DefaultAuthRetry, isSet(p+"auth_retry"))
	if x.DeadLetter == "" && name != "" {
		x.DeadLetter = filepath.Join(stateDir, "deadletter", name+".lp")
	}
	setDefault(&x.DeadLetterMaxBytes, DefaultDeadLetterMaxBytes, isSet(p+"dead_letter_max_bytes"))
	setDefault(&x.DeadLetterKeep, DefaultDeadLetterKeep, isSet(p+"dead_letter_keep"))
	x.SinkPacing.defaults(p, isSet)
	setDefault(&x.MetricsInterval, DefaultMetricsInterval, isSet(p+"metrics_interval"))
	setDefault(&x.MetricsJob, remotewrite.DefaultMetricsJob, isSet(p+"metrics_job"))
	if x.Metrics == nil && !isSet(p+"metrics") {
		x.Metrics = slices.Clone(remotewrite.DefaultMetrics)
	}
}

// validate checks a prometheus_remote_write block at path p. No message quotes the
// URL, a header value or a secret.
func (x *RemoteWrite) validate(p string) problems {
	var ps problems
	add := func(key, format string, args ...any) { ps.add(p+"."+key, 0, format, args...) }
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			add(key, "must be > 0")
		}
	}
	if x.URL == "" {
		add("url", "required")
	} else if msg := remotewrite.CheckURL(x.URL); msg != "" {
		add("url", "%s", msg) // the sink's own rule, so that check refuses what start would
	}
	if x.BearerToken != "" && x.Username != "" {
		add("username", "set bearer_token or username, not both")
	}
	if x.Password != "" && x.Username == "" {
		add("password", "only with username")
	}
	for i, h := range x.Headers {
		hp := indexPath("headers", i)
		switch {
		case !validHeaderName(h.Name):
			add(hp+".name", "must be an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~)")
		case containsFold(reservedHeaders, h.Name):
			add(hp+".name", "is set by the sink (use bearer_token or username and password for credentials)")
		}
		if strings.ContainsAny(h.Value, "\r\n\x00") {
			add(hp+".value", "must not contain line breaks or NUL")
		}
	}
	if x.BatchSize < 1 || x.BatchSize > maxBatchSize {
		add("batch_size", "must be between 1 and %d", maxBatchSize)
	}
	positive("flush_interval", x.FlushInterval)
	positive("timeout", x.Timeout)
	positive("retry_initial", x.RetryInitial)
	switch {
	case x.RetryMax <= 0:
		add("retry_max", "must be > 0")
	case x.RetryInitial > 0 && x.RetryMax < x.RetryInitial:
		add("retry_max", "must be >= retry_initial (%v)", x.RetryInitial)
	}
	positive("auth_retry", x.AuthRetry)
	if x.DeadLetterMaxBytes < 64*KiB || x.DeadLetterMaxBytes > GiB {
		add("dead_letter_max_bytes", "must be between 64KiB and 1GiB")
	}
	if x.DeadLetterKeep < 0 || x.DeadLetterKeep > maxDeadLetterKeep {
		add("dead_letter_keep", "must be between 0 and %d", maxDeadLetterKeep)
	}
	x.SinkPacing.validate(add)
	x.validateMetricsPush(add)
	return ps
}

// validateMetricsPush checks the metrics push keys with remotewrite.CheckMetricsConfig:
// metrics_interval always, the others only while the push is on.
func (x *RemoteWrite) validateMetricsPush(add func(key, format string, args ...any)) {
	if x.MetricsInterval == 0 {
		return
	}
	const off = "metrics_interval: 0 turns the metrics push off"
	for _, p := range remotewrite.CheckMetricsConfig(remotewrite.MetricsConfig{Interval: x.MetricsInterval, Job: x.MetricsJob, Names: x.Metrics}) {
		switch p.Field {
		case "metrics_interval":
			add(p.Field, "must be 0 (no metrics push) or %s", strings.TrimPrefix(p.Msg, "must be "))
			if x.MetricsInterval < 0 {
				return
			}
		case "metrics_job", "metrics":
			add(p.Field, "%s (%s)", p.Msg, off)
		default:
			add(p.Field, "%s", p.Msg)
		}
	}
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 section 5.1: a
// token of tchar).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// containsFold reports whether list holds name, compared as HTTP header names.
func containsFold(list []string, name string) bool {
	name = http.CanonicalHeaderKey(name)
	for _, s := range list {
		if s == name {
			return true
		}
	}
	return false
}
