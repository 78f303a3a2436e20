// Package remotewrite delivers readings to a Prometheus remote-write receiver
// (Prometheus with --web.enable-remote-write-receiver, VictoriaMetrics, Mimir) with the
// Remote Write 1.0 protocol: a snappy-compressed prometheus.WriteRequest per request.
//
// The request is encoded by Prometheus's own message types (prompb) and sent by the
// client_golang remote API (github.com/prometheus/client_golang/exp/api/remote), which
// sets the protocol's headers and compresses the body. The sink makes one attempt per
// request and leaves retries to the forwarder, which keeps the batch on disk.
//
// Every reading becomes one sample of envgate_reading_value with its original
// timestamp (milliseconds) and the labels gateway, site, device, quantity and unit;
// docs/remote-write.md documents the mapping and what receivers do with old samples.
package remotewrite

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/envgate/envgate/gateway/deadletter"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/prompb"
)

// MetricName is the name of every pushed series: the name of the latest-value gauge of
// /metrics, so that an expression on readings reads the same in both modes.
const MetricName = "envgate_reading_value"

// Config configures one remote-write sink.
type Config struct {
	Name    string        // sink name, for logs, errors and dead-letter comments
	URL     string        // the write endpoint, e.g. "http://prom:9090/api/v1/write"
	Timeout time.Duration // per HTTP request
	// BearerToken, if set, is sent as "Authorization: Bearer <token>". Username and
	// Password, if Username is set, as basic auth instead. Not both.
	BearerToken string
	Username    string
	Password    string
	// Headers are extra request headers, such as X-Scope-OrgID for Mimir.
	Headers map[string]string
	// DeadLetter is the file that receives the readings the receiver rejects (see
	// Write), as line protocol with a comment each, as the InfluxDB sink writes them.
	DeadLetter         string
	DeadLetterMaxBytes int64       // 0: deadletter.DefaultMaxBytes
	DeadLetterKeep     int         // rotated files kept, 0 to keep none
	GatewayID          string      // value of the "gateway" label on every series
	TLS                *tls.Config // optional: CA, client certificate, server name
}

// Stats counts what a Sink has done since New. All counters only grow.
type Stats struct {
	Written      uint64 // samples in requests the receiver accepted
	Rejected     uint64 // requests answered with a 4xx other than 408 and 429, or a 5xx naming a sample error
	Split        uint64 // rejected batches split in two to find the rejected samples
	Skipped      uint64 // samples of a failed batch not sent again: the receiver had accepted them (see Write)
	DeadLettered uint64 // readings written to the dead-letter file
	// DeadLetterDropped counts dead-letter entries deleted with the oldest file when
	// the dead-letter file rotated, including files left by earlier runs.
	DeadLetterDropped uint64
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("sink closed")

// A Sink writes batches of readings to one remote-write receiver. Write is called by
// the forwarder from one goroutine at a time: the sink is not a gateway.Preparer,
// because two requests in flight could reach the receiver out of order.
type Sink struct {
	cfg       Config
	log       *slog.Logger
	api       *remote.API
	http      *http.Client // the API's client; Probe uses it too
	transport *http.Transport
	secrets   []string

	// accepted holds the samples the receiver accepted of a batch whose Write then
	// failed (a later part of it got a 5xx, or the split budget ran out): the forwarder
	// sends the same batch again, and those are skipped rather than rejected as out of
	// order. refused holds the samples of such a batch already found rejected one by
	// one and dead-lettered: skipped too, so that each is dead-lettered once. Write
	// empties both when it returns nil, so they never hold more than a batch.
	mu       sync.Mutex
	accepted map[sampleID]struct{}
	refused  map[sampleID]struct{}
	closed   bool

	written, rejected, split, skipped, deadLettered atomic.Uint64

	dl *deadletter.File
}

// New checks cfg and returns a Sink. It does not contact the receiver. log should
// already carry the sink's name; nil discards the sink's logs.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := check(cfg); err != nil {
		return nil, fmt.Errorf("remote-write sink %s: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		transport.TLSClientConfig = cfg.TLS.Clone()
	}
	s := &Sink{cfg: cfg, log: log, transport: transport, accepted: map[sampleID]struct{}{}, refused: map[sampleID]struct{}{}}
	for _, v := range []string{cfg.BearerToken, cfg.Password} {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	client := &http.Client{Timeout: cfg.Timeout, Transport: &roundTripper{s: s, next: transport}}
	s.http = client
	// The URL is the whole endpoint: no path is added to it. One attempt per request
	// (see write): the library's retries would hold the forwarder without its back-off,
	// probes and metrics.
	api, err := remote.NewAPI(cfg.URL, remote.WithAPIHTTPClient(client), remote.WithAPIPath(""),
		remote.WithAPIBackoff(remote.BackoffConfig{Min: time.Millisecond, Max: time.Millisecond, MaxRetries: 1}))
	if err != nil {
		return nil, fmt.Errorf("remote-write sink %s: %w", cfg.Name, err)
	}
	s.api = api
	s.dl, err = deadletter.New(deadletter.Options{Path: cfg.DeadLetter, MaxBytes: cfg.DeadLetterMaxBytes,
		Keep: cfg.DeadLetterKeep, Sync: true})
	if err != nil {
		return nil, fmt.Errorf("remote-write sink %s: %w", cfg.Name, err)
	}
	return s, nil
}

// CheckURL says what is wrong with raw as a remote-write endpoint, "" if nothing is:
// an http or https URL with a host and without a user or password (basic auth has its
// own keys). The config package checks the url key with it. No message quotes raw.
func CheckURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "must be an http or https URL with a host, such as http://prometheus.example:9090/api/v1/write"
	case u.User != nil:
		return "must not hold a user or password: use username and password"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	}
	return ""
}

// check returns every problem of cfg at once.
func check(cfg Config) error {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("name: must not be empty"))
	}
	if msg := CheckURL(cfg.URL); msg != "" {
		errs = append(errs, errors.New("url: "+msg))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must be positive", cfg.Timeout))
	}
	if cfg.BearerToken != "" && cfg.Username != "" {
		errs = append(errs, errors.New("bearer token and basic auth: set one, not both"))
	}
	if cfg.DeadLetter == "" {
		errs = append(errs, errors.New("dead_letter: must not be empty"))
	}
	if err := reading.CheckName(cfg.GatewayID); err != nil {
		errs = append(errs, fmt.Errorf("gateway_id: %w", err))
	}
	return errors.Join(errs...)
}

// answer is what the round tripper saw of one request's response, for write to
// classify: the library's errors carry the status only as text.
type answer struct {
	status     int
	retryAfter string
}

type answerKey struct{}

// roundTripper sets the sink's authentication and headers and records each response's
// status in the request context's *answer.
type roundTripper struct {
	s    *Sink
	next http.RoundTripper
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	cfg := rt.s.cfg
	req = req.Clone(req.Context())
	for k, v := range cfg.Headers {
		req.Header.Set(k, v)
	}
	switch {
	case cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+cfg.BearerToken)
	case cfg.Username != "":
		req.SetBasicAuth(cfg.Username, cfg.Password)
	}
	req.Header.Set("User-Agent", "envgate")
	resp, err := rt.next.RoundTrip(req)
	if a, ok := req.Context().Value(answerKey{}).(*answer); ok && err == nil {
		a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	return resp, err
}

// RetryError means the batch could not be delivered for a reason that passes: a
// network error, a timeout, 408, 429 or 5xx. The caller keeps the batch and retries,
// waiting at least RetryAfter.
type RetryError struct {
	StatusCode int // HTTP status; 0 for a network error or timeout
	after      time.Duration
	msg        string
}

// Error returns "remote-write sink <name>: write <n> samples: <cause>".
func (e *RetryError) Error() string { return e.msg }

// RetryAfter returns the delay the receiver asked for with Retry-After, at most
// influx.MaxRetryAfter; 0 if none.
func (e *RetryError) RetryAfter() time.Duration { return e.after }

// PersistentError means the receiver refuses every write until someone fixes
// something: 401, 403, 404, 405, 413 for a single sample, 415. Nothing was dropped.
type PersistentError struct {
	StatusCode int
	msg        string
}

// Error returns "remote-write sink <name>: write <n> samples: <status>: <message>".
func (e *PersistentError) Error() string { return e.msg }

// Persistent reports true: retrying soon will not help.
func (e *PersistentError) Persistent() bool { return true }

// sampleID identifies a sample: its series and timestamp.
type sampleID struct {
	key string
	ts  int64
}

// sample is one reading to send, with its series.
type sample struct {
	r   reading.Reading
	key string // seriesKey
	ts  int64  // milliseconds since the Unix epoch
}

// seriesKey identifies a reading's series within the sink (the gateway label is the
// same for all).
func seriesKey(r reading.Reading) string {
	return r.Site + "\x00" + r.Device + "\x00" + r.Quantity + "\x00" + r.Unit
}

// deadLine is one dead-letter entry: why, the reading as line protocol, and its id.
type deadLine struct {
	why, line string
	id        sampleID
}

// Write delivers batch. It returns nil when every reading was stored by the receiver,
// was already stored (accepted by a request of an earlier Write of the same batch that
// failed in another part: not sent again, counted as skipped), or was rejected
// by the receiver as a bad sample (400 or 422; or a 5xx naming a sample error, see
// sampleErrors: out of order, too old, out of bounds, a different value at a stored
// timestamp) and written to the dead-letter file, so that
// one unacceptable sample never holds the cursor. A batch the receiver rejects is
// split in halves, the first (older) half sent first, until each rejected sample
// stands alone (Prometheus stores nothing of a request it rejects). A rejected part of
// more than one sample is never dead-lettered: when a Write has spent its split budget
// (MaxSplitRequests rejected requests, or MaxSplitTime) it returns a *RetryError, and
// the next Write of the batch goes on from there, skipping what was accepted and what
// was already found rejected. Otherwise it returns an error and the caller keeps the
// whole batch and retries it later:
//   - *RetryError: network error, timeout, 408, 429 or 5xx; honour RetryAfter; or the
//     split budget ran out.
//   - *PersistentError: 401, 403, 404 or another request-level 4xx; raise an alarm.
//   - ctx.Err() when ctx is done; ErrClosed after Close; a dead-letter write error.
//
// Readings that fail Validate or have Quality Bad (the pipeline stores none) are
// dead-lettered without being sent.
func (s *Sink) Write(ctx context.Context, batch []reading.Reading) error {
	if s.isClosed() {
		return fmt.Errorf("remote-write sink %s: %w", s.cfg.Name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var dead []deadLine
	samples := make([]sample, 0, len(batch))
	s.mu.Lock()
	refused := maps.Clone(s.refused)
	s.mu.Unlock()
	for _, r := range batch {
		id := sampleID{seriesKey(r), r.Time.UnixMilli()}
		if _, ok := refused[id]; ok {
			continue // dead-lettered by an earlier Write of this batch
		}
		if err := r.Validate(); err != nil {
			dead = append(dead, deadLine{"invalid " + strings.ReplaceAll(err.Error(), "\n", "; "), influx.Line(r, s.cfg.GatewayID, time.Millisecond), id})
			continue
		}
		if r.Quality == reading.Bad {
			dead = append(dead, deadLine{"invalid quality bad", influx.Line(r, s.cfg.GatewayID, time.Millisecond), id})
			continue
		}
		samples = append(samples, sample{r: r, key: id.key, ts: id.ts})
	}
	b := &splitBudget{requests: MaxSplitRequests, until: time.Now().Add(MaxSplitTime)}
	if err := s.send(ctx, samples, &dead, b); err != nil {
		// What was found rejected one by one stays found: dead-lettered now, skipped
		// when the batch comes again.
		if derr := s.deadLetterFound(dead); derr != nil {
			return fmt.Errorf("remote-write sink %s: %w", s.cfg.Name, derr)
		}
		if errors.Is(err, errSplitBudget) {
			return &RetryError{msg: fmt.Sprintf("remote-write sink %s: %d samples rejected and dead-lettered so far; "+
				"still looking for the rejected ones among the rest after %d requests: the batch is sent again",
				s.cfg.Name, len(dead), MaxSplitRequests-b.requests)}
		}
		return err
	}
	if len(dead) > 0 {
		if err := s.deadLetter(dead); err != nil {
			return fmt.Errorf("remote-write sink %s: %w", s.cfg.Name, err)
		}
	}
	s.mu.Lock()
	clear(s.accepted)
	clear(s.refused)
	s.mu.Unlock()
	if len(dead) == 0 {
		return nil
	}
	s.log.Warn("samples dead-lettered", "file", s.cfg.DeadLetter, "count", len(dead), "reason", dead[0].why,
		"dead_lettered_total", s.deadLettered.Load())
	return nil
}

// deadLetterFound writes the samples found rejected one by one to the dead-letter file
// and remembers them as refused, for a Write that returns an error: the batch comes
// again, and they are not sent or dead-lettered twice.
func (s *Sink) deadLetterFound(dead []deadLine) error {
	if len(dead) == 0 {
		return nil
	}
	if err := s.deadLetter(dead); err != nil {
		return err
	}
	s.mu.Lock()
	for _, d := range dead {
		s.refused[d.id] = struct{}{}
	}
	s.mu.Unlock()
	return nil
}

// splitBudget bounds the splitting of one Write: rejected requests left, and a time.
type splitBudget struct {
	requests int
	until    time.Time
}

// errSplitBudget ends a Write whose split budget ran out with parts still unresolved.
var errSplitBudget = errors.New("split budget spent")

// send writes samples in one request and handles the answer: it splits them on 400,
// 422, 413 and a 5xx naming a sample error until each rejected sample stands alone,
// and appends those to dead; it returns errSplitBudget when b runs out first.
func (s *Sink) send(ctx context.Context, samples []sample, dead *[]deadLine, b *splitBudget) error {
	s.mu.Lock()
	samples = slices.DeleteFunc(slices.Clone(samples), func(x sample) bool {
		id := sampleID{x.key, x.ts}
		if _, ok := s.accepted[id]; ok {
			s.skipped.Add(1)
			return true
		}
		return false
	})
	s.mu.Unlock()
	if len(samples) == 0 {
		return nil
	}
	a, msg, err := s.post(ctx, s.request(samples))
	status := a.status
	if err == nil {
		s.written.Add(uint64(len(samples)))
		s.mu.Lock()
		for _, x := range samples {
			s.accepted[sampleID{x.key, x.ts}] = struct{}{}
		}
		s.mu.Unlock()
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	text := fmt.Sprintf("remote-write sink %s: write %d samples: %s", s.cfg.Name, len(samples), describe(status, msg))
	badSamples := status == http.StatusBadRequest || status == http.StatusUnprocessableEntity ||
		status == http.StatusRequestEntityTooLarge && len(samples) > 1 || status >= 500 && sampleError(msg)
	switch {
	case !badSamples && (status == 0 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500):
		return &RetryError{StatusCode: status, after: influx.RetryAfter(a.retryAfter, time.Now()), msg: text}
	}
	s.rejected.Add(1)
	switch {
	case badSamples:
		b.requests--
		if len(samples) == 1 {
			x := samples[0]
			*dead = append(*dead, deadLine{"status=" + strconv.Itoa(status) + " " + msg,
				influx.Line(x.r, s.cfg.GatewayID, time.Millisecond), sampleID{x.key, x.ts}})
			return nil
		}
		if b.requests <= 0 || time.Now().After(b.until) {
			// Never dead-letter a part whole: it may hold samples the receiver takes.
			return errSplitBudget
		}
		s.split.Add(1)
		s.log.Debug("samples rejected, splitting", "samples", len(samples), "status", status)
		half := len(samples) / 2
		if err := s.send(ctx, samples[:half], dead, b); err != nil {
			return err
		}
		return s.send(ctx, samples[half:], dead, b)
	default:
		return &PersistentError{StatusCode: status, msg: text}
	}
}

// MaxSplitRequests and MaxSplitTime bound the splitting of one Write, so that the
// forwarder is never held for minutes (its watchdog allows 2 minutes). Finding one
// rejected sample in a batch of 1000 takes about 20 requests; a batch the receiver
// rejects whole (every sample older than what it holds: a re-send after a crash, a
// backlog beyond its out-of-order window) takes two a sample. Past either bound the
// Write returns a *RetryError and the next one goes on: nothing the receiver might take
// is dead-lettered.
const (
	MaxSplitRequests = 256
	MaxSplitTime     = 30 * time.Second
)

// sampleErrors are the TSDB's messages for a sample it will never take (Prometheus
// tsdb/storage errors: ErrOutOfOrderSample, ErrTooOldSample, ErrOutOfBounds,
// ErrDuplicateSampleForTimestamp). Prometheus 2.42 answers three of them with 400 but
// "too old sample" (older than out_of_order_time_window) with 500, which retrying can
// never cure: a 5xx with one of these messages is a rejection.
var sampleErrors = []string{"out of order sample", "too old sample", "out of bounds", "duplicate sample for timestamp"}

// sampleError reports whether msg is one of sampleErrors.
func sampleError(msg string) bool {
	return slices.ContainsFunc(sampleErrors, func(e string) bool { return strings.Contains(msg, e) })
}

// describe returns "<code> <status text>: <message>", or the message of a network error.
func describe(status int, msg string) string {
	if status == 0 {
		return msg
	}
	return strings.TrimSuffix(strconv.Itoa(status)+" "+http.StatusText(status)+": "+msg, ": ")
}

// maxMessage bounds a receiver's message kept in an error or a dead-letter comment.
const maxMessage = 1024

// post sends req in one request, making one attempt. It returns what the round
// tripper saw of the answer (status 0 for a network error), the receiver's message
// (one line, redacted, at most maxMessage bytes) and an error, or nil on 2xx. The
// readings' writes (send) and the metrics push both use it.
func (s *Sink) post(ctx context.Context, req *prompb.WriteRequest) (answer, string, error) {
	a := &answer{}
	actx, cancel := context.WithCancel(context.WithValue(ctx, answerKey{}, a))
	defer cancel()
	var retryErr error
	// The library retries network errors, 429 and 5xx itself; the callback runs before
	// its first back-off and cancels it, so that each post makes one attempt.
	_, err := s.api.Write(actx, remote.WriteV1MessageType, req,
		remote.WithWriteRetryCallback(func(err error) { retryErr = err; cancel() }))
	if err == nil {
		return *a, "", nil
	}
	if retryErr != nil && ctx.Err() == nil {
		err = retryErr
	}
	msg := err.Error()
	// The library's text for an answer: "server returned HTTP status <status>: <body>".
	if _, body, ok := strings.Cut(msg, "server returned HTTP status "); ok && a.status != 0 {
		if _, b, ok := strings.Cut(body, ": "); ok {
			msg = b
		}
	}
	msg = s.redact(influx.OneLine(msg))
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return *a, msg, err
}

// request encodes samples: one time series per series, in the order of their first
// sample, each series' samples sorted by time (the protocol wants them in order).
func (s *Sink) request(samples []sample) *prompb.WriteRequest {
	index := map[string]int{}
	req := &prompb.WriteRequest{}
	for _, x := range samples {
		i, ok := index[x.key]
		if !ok {
			i = len(req.Timeseries)
			index[x.key] = i
			// Label names in lexical order, as the protocol requires.
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: []prompb.Label{
				{Name: "__name__", Value: MetricName},
				{Name: "device", Value: x.r.Device},
				{Name: "gateway", Value: s.cfg.GatewayID},
				{Name: "quantity", Value: x.r.Quantity},
				{Name: "site", Value: x.r.Site},
				{Name: "unit", Value: x.r.Unit},
			}})
		}
		req.Timeseries[i].Samples = append(req.Timeseries[i].Samples, prompb.Sample{Value: x.r.Value, Timestamp: x.ts})
	}
	for i := range req.Timeseries {
		slices.SortStableFunc(req.Timeseries[i].Samples, func(a, b prompb.Sample) int {
			return int(min(max(a.Timestamp-b.Timestamp, -1), 1))
		})
	}
	return req
}

// deadLetter appends entries to the dead-letter file, two lines each, as the InfluxDB
// sink does:
//
//	# <RFC3339 time> sink=<name> <why>
//	<line protocol, ms>
func (s *Sink) deadLetter(entries []deadLine) error {
	var b strings.Builder
	now := time.Now().UTC().Format(time.RFC3339)
	for _, e := range entries {
		fmt.Fprintf(&b, "# %s sink=%s %s\n%s\n", now, s.cfg.Name, influx.OneLine(e.why), e.line)
	}
	if err := s.dl.Append([]byte(b.String())); err != nil {
		return err
	}
	s.deadLettered.Add(uint64(len(entries)))
	return nil
}

// redact removes the token and the password from msg.
func (s *Sink) redact(msg string) string {
	for _, secret := range s.secrets {
		msg = strings.ReplaceAll(msg, secret, "[redacted]")
	}
	return msg
}

// ProbeTimeout bounds one Probe (or the sink's Timeout, if shorter).
const ProbeTimeout = 5 * time.Second

// Probe asks whether the receiver is back, for the forwarder (gateway.Prober) while it
// backs off after a failed write. Receivers have no common health endpoint under the
// write URL, so it sends GET to the write URL itself, with the sink's credentials and
// headers: any answer but 429 or 5xx means a server is there (Prometheus answers 405,
// as a receiver that takes only POST does). A network error, 429 or 5xx (a proxy
// whose backend is down) is an error naming it.
func (s *Sink) Probe(ctx context.Context) error {
	if s.isClosed() {
		return fmt.Errorf("remote-write sink %s: %w", s.cfg.Name, ErrClosed)
	}
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.Timeout, ProbeTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return fmt.Errorf("remote-write sink %s: probe: %w", s.cfg.Name, err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("remote-write sink %s: probe: %s", s.cfg.Name, s.redact(influx.OneLine(err.Error())))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return fmt.Errorf("remote-write sink %s: probe: %s", s.cfg.Name, resp.Status)
	}
	return nil
}

// isClosed reports whether Close was called.
func (s *Sink) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	return Stats{
		Written: s.written.Load(), Rejected: s.rejected.Load(), Split: s.split.Load(),
		Skipped: s.skipped.Load(), DeadLettered: s.deadLettered.Load(),
		DeadLetterDropped: s.dl.Dropped(),
	}
}

// Close releases the sink's connections and closes the dead-letter file. It is safe
// to call more than once; later calls return nil. Write fails with ErrClosed afterwards.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.transport.CloseIdleConnections()
	if err := s.dl.Close(); err != nil {
		return fmt.Errorf("remote-write sink %s: close: %w", s.cfg.Name, err)
	}
	return nil
}
