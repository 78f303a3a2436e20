// Package influx delivers readings to InfluxDB through the v2 write API
// (/api/v2/write: InfluxDB 2.x, 3.x's compatibility endpoint, and 1.8+).
//
// A Sink sends each batch with one blocking request, classifies the server's answer
// (retry later, persistent refusal, too large, bad points), splits batches the server
// finds too large and isolates the points it rejects into a dead-letter file, so a
// batch is either delivered in full (less its dead-lettered points) or kept by the
// caller for another try. The data model is in docs/data-model.md and Line.
package influx

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/gateway/deadletter"
	"github.com/envgate/envgate/gateway/reading"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	http2 "github.com/influxdata/influxdb-client-go/v2/api/http"
)

// Config configures one InfluxDB sink.
type Config struct {
	Name      string        // sink name, for logs, errors and dead-letter comments
	URL       string        // server base URL, e.g. "https://influx.example.org:8086"
	Bucket    string        // v2 bucket; for InfluxDB 1.8 "database/retention-policy"
	Org       string        // v2 organisation; "" for InfluxDB 1.8
	Token     string        // API token; for InfluxDB 1.8 "user:password", or "" without auth
	Precision time.Duration // timestamp precision: time.Second, Millisecond, Microsecond or Nanosecond
	Gzip      bool          // compress request bodies
	Timeout   time.Duration // per HTTP request
	// DeadLetter is the file that receives the points the server rejects and the readings
	// that cannot be sent. It is created (0640), with its parent directories (0750), on
	// first use, appended to and fsynced after each write, and rotated (see package
	// deadletter) before it would grow beyond DeadLetterMaxBytes, keeping DeadLetterKeep
	// older files.
	DeadLetter         string
	DeadLetterMaxBytes int64       // 0: deadletter.DefaultMaxBytes
	DeadLetterKeep     int         // rotated files kept, 0 to keep none
	GatewayID          string      // value of the "gateway" tag on every point
	TLS                *tls.Config // optional: CA, client certificate, server name
}

// Stats counts what a Sink has done since New. All counters only grow.
type Stats struct {
	Written      uint64 // lines in requests the server accepted
	BodyBytes    uint64 // request body bytes (compressed, with gzip) of the requests the server accepted
	Rejected     uint64 // 4xx responses, other than 408 and 429 (those are retried)
	Split        uint64 // batches split in two after 413 Request Entity Too Large
	DeadLettered uint64 // lines written to the dead-letter file (rejected points and Invalid readings)
	Invalid      uint64 // readings not sent: Quality Bad, or failing Validate
	// DeadLetterDropped counts dead-letter entries (points) deleted with the oldest file
	// when the dead-letter file rotated, including files left by earlier runs.
	DeadLetterDropped uint64
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("sink closed")

// A Sink writes batches of readings to one InfluxDB server. Its methods may be called
// from any goroutine; the forwarder has several writes in flight (see Prepare).
type Sink struct {
	cfg       Config
	log       *slog.Logger
	client    influxdb2.Client
	writeURL  string // the write endpoint, as the library's write API builds it
	transport *http.Transport
	http      *http.Client // the write API's client; Probe uses it too
	pingURL   string
	auth      string   // Authorization header value, "" without a token
	secrets   []string // strings never to show in errors: the token, its password part

	written, bodyBytes, rejected, split, deadLettered, invalid atomic.Uint64
	lastWarn                                                   atomic.Int64 // Unix ns of the last dead-letter warning, which it throttles

	dl *deadletter.File

	mu     sync.Mutex // guards closed
	closed bool
}

// warnEvery throttles the "points dead-lettered" warning: a sensor stuck on Bad readings
// must not write a log line per batch.
const warnEvery = time.Minute

// New checks cfg and returns a Sink. It does not contact the server. log should already
// carry the sink's name (log.With("sink", name)); nil discards the sink's logs.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := check(cfg); err != nil {
		return nil, fmt.Errorf("influx sink %s: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		transport.TLSClientConfig = cfg.TLS.Clone()
	}
	// With its own http.Client the library ignores SetHTTPRequestTimeout (whole
	// seconds only anyway); the client's Timeout bounds each request instead.
	httpClient := &http.Client{Timeout: cfg.Timeout, Transport: transport}
	opts := influxdb2.DefaultOptions().
		SetUseGZip(cfg.Gzip).
		SetPrecision(cfg.Precision).
		SetLogLevel(0). // errors come back to us; the library must not print them
		SetHTTPClient(httpClient).
		SetApplicationName("envgate")
	dl, err := deadletter.New(deadletter.Options{Path: cfg.DeadLetter, MaxBytes: cfg.DeadLetterMaxBytes,
		Keep: cfg.DeadLetterKeep, Sync: true})
	if err != nil {
		return nil, fmt.Errorf("influx sink %s: %w", cfg.Name, err)
	}
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	// /ping resolved against the URL as the library resolves api/v2/write.
	base, _ := url.Parse(cfg.URL) // check passed CheckURL
	ping, _ := base.Parse("ping")
	s := &Sink{
		http:      httpClient,
		pingURL:   ping.String(),
		dl:        dl,
		cfg:       cfg,
		log:       log,
		client:    client,
		writeURL:  writeURL(client.HTTPService().ServerAPIURL(), cfg),
		transport: transport,
	}
	if cfg.Token != "" {
		s.auth = "Token " + cfg.Token // as the library sends it
		s.secrets = append(s.secrets, cfg.Token)
		if _, pass, ok := strings.Cut(cfg.Token, ":"); ok && len(pass) >= 4 {
			s.secrets = append(s.secrets, pass)
		}
	}
	return s, nil
}

// writeURL returns the write endpoint under apiURL (the library's ServerAPIURL) with
// the query the library's write API sends (internal/write/service.go, NewService).
func writeURL(apiURL string, cfg Config) string {
	u, _ := url.Parse(apiURL) // check passed CheckURL
	u, _ = u.Parse("write")
	params := u.Query()
	params.Set("org", cfg.Org)
	params.Set("bucket", cfg.Bucket)
	prec := "ns"
	switch cfg.Precision {
	case time.Microsecond:
		prec = "us"
	case time.Millisecond:
		prec = "ms"
	case time.Second:
		prec = "s"
	}
	params.Set("precision", prec)
	u.RawQuery = params.Encode()
	return u.String()
}

// CheckURL says what is wrong with raw as the address of an InfluxDB server, "" if
// nothing is: an http or https URL with a host, and without a user or password (the
// token carries the credentials). The config package checks sinks' url with it, so
// that envgate check and New refuse the same URLs. No message quotes raw, which may
// hold a password.
func CheckURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "must be an http or https URL with a host, such as http://influx.example:8086"
	case u.User != nil:
		return "must not hold a user or password: use token or token_file"
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
	if cfg.Bucket == "" {
		errs = append(errs, errors.New("bucket: must not be empty"))
	}
	switch cfg.Precision {
	case time.Second, time.Millisecond, time.Microsecond, time.Nanosecond:
	default:
		errs = append(errs, fmt.Errorf("precision %v: must be 1s, 1ms, 1us or 1ns", cfg.Precision))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must be positive", cfg.Timeout))
	}
	if cfg.DeadLetter == "" {
		errs = append(errs, errors.New("dead_letter: must not be empty"))
	}
	if err := reading.CheckName(cfg.GatewayID); err != nil {
		errs = append(errs, fmt.Errorf("gateway_id: %w", err))
	}
	return errors.Join(errs...)
}

// deadLine is one entry for the dead-letter file: why, and the line.
type deadLine struct {
	why  string // "status=400 <server message>" or "invalid <reason>"
	line string
}

// point is one encoded reading, with what partition needs to group it.
type point struct {
	start, end  int // its line in request.raw
	measurement string
	field       string
}

// Write delivers batch. It returns nil when every reading was either written or, if
// the server rejected it as a bad point (400, 422) or it cannot be sent (Quality Bad,
// failing Validate), written to the dead-letter file. Otherwise it returns an error and
// the caller keeps the whole batch and retries it later; points the server already has
// are overwritten with the same values:
//   - *RetryError: network error, timeout, 408, 429 or 5xx; honour RetryAfter.
//   - *PersistentError: 401, 403, 404 or another request-level 4xx; raise an alarm.
//   - ctx.Err() when ctx is done.
//   - any other error (ErrClosed, the dead-letter file cannot be written): retry.
//
// A batch the server finds too large (413) is split in halves until it fits. A batch
// with bad points is split until each rejected point stands alone (see partition).
// Dead-letter entries are written only when the whole batch is settled, so a batch
// retried after an outage is not dead-lettered twice.
//
// Write is Prepare and the call of what it returns. Writes may run concurrently.
func (s *Sink) Write(ctx context.Context, batch []reading.Reading) error {
	return s.Prepare(batch)(ctx)
}

// Prepare does the CPU work of Write(ctx, batch) without contacting the server: it
// encodes the batch as line protocol and compresses it. It returns the function that
// sends it, which does what Write does and returns what Write returns, and may be
// called again after an error (it keeps the request body). The forwarder
// (gateway.Preparer) prepares the next batch while earlier ones are in flight.
// Prepare and the functions it returns may run concurrently; batch must not change
// until the send has returned for the last time.
func (s *Sink) Prepare(batch []reading.Reading) func(context.Context) error {
	req := &request{s: s, pts: make([]point, 0, len(batch))}
	raw := make([]byte, 0, 96*len(batch))
	for _, r := range batch {
		start := len(raw)
		q, _ := reading.Lookup(r.Quantity)
		raw = appendLine(raw, string(q.Domain), r, s.cfg.GatewayID, s.cfg.Precision)
		if err := r.Validate(); err != nil {
			req.invalid = append(req.invalid, deadLine{"invalid " + strings.ReplaceAll(err.Error(), "\n", "; "), string(raw[start:])})
			raw = raw[:start]
			continue
		}
		if r.Quality == reading.Bad {
			req.invalid = append(req.invalid, deadLine{"invalid quality bad", string(raw[start:])})
			raw = raw[:start]
			continue
		}
		req.pts = append(req.pts, point{start: start, end: len(raw), measurement: string(q.Domain), field: r.Quantity})
		raw = append(raw, '\n')
	}
	req.raw = raw
	if len(req.pts) > 0 {
		req.body = s.encodeBody(raw[:len(raw)-1]) // no final newline, as the library sends
	}
	return req.send
}

// A request is a prepared batch: its valid points' lines, their request body, and the
// dead-letter entries of its invalid readings.
type request struct {
	s       *Sink
	raw     []byte  // the points' lines, each ended by a newline
	pts     []point // the lines in raw
	body    []byte  // raw without its last newline, compressed if the sink uses gzip
	invalid []deadLine
}

// line returns p's line, without its newline.
func (r *request) line(p point) string { return string(r.raw[p.start:p.end]) }

func (r *request) send(ctx context.Context) error {
	s := r.s
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("influx sink %s: %w", s.cfg.Name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dead := slices.Clone(r.invalid)
	invalid := len(dead)
	if err := s.send(ctx, r, r.pts, r.body, &dead); err != nil {
		return err
	}
	if len(dead) == 0 {
		return nil
	}
	if err := s.deadLetter(dead); err != nil {
		return fmt.Errorf("influx sink %s: %w", s.cfg.Name, err)
	}
	s.invalid.Add(uint64(invalid))
	now := time.Now()
	if last := s.lastWarn.Load(); now.UnixNano()-last >= int64(warnEvery) && s.lastWarn.CompareAndSwap(last, now.UnixNano()) {
		st := s.Stats()
		s.log.Warn("points dead-lettered", "file", s.cfg.DeadLetter, "rejected", len(dead)-invalid,
			"invalid", invalid, "reason", dead[0].why, "dead_lettered_total", st.DeadLettered)
	}
	return nil
}

// send writes pts in one request (body, if not nil, is their request body) and handles
// the answer: it splits the batch on 413, splits it on 400 and 422 until each rejected
// point stands alone and appends those to dead. It returns the first error that is not
// about particular points.
func (s *Sink) send(ctx context.Context, req *request, pts []point, body []byte, dead *[]deadLine) error {
	if len(pts) == 0 {
		return nil
	}
	if body == nil {
		var raw []byte
		for i, p := range pts {
			if i > 0 {
				raw = append(raw, '\n')
			}
			raw = append(raw, req.raw[p.start:p.end]...)
		}
		body = s.encodeBody(raw)
	}
	err := s.post(ctx, body)
	if err == nil {
		s.written.Add(uint64(len(pts)))
		s.bodyBytes.Add(uint64(len(body)))
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	he := err
	code := he.StatusCode
	if code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
		s.rejected.Add(1)
	}
	var parts [][]point
	switch {
	case code == 0, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return &RetryError{StatusCode: code, after: RetryAfter(he.Header.Get("Retry-After"), time.Now()), msg: s.errorText(len(pts), he), err: he}

	case code == http.StatusRequestEntityTooLarge && len(pts) > 1:
		s.split.Add(1)
		s.log.Debug("batch too large, splitting", "points", len(pts))
		parts = [][]point{pts[:len(pts)/2], pts[len(pts)/2:]}

	case code == http.StatusBadRequest, code == http.StatusUnprocessableEntity:
		msg := s.message(he)
		if len(pts) == 1 || droppedAll(msg, len(pts)) {
			why := "status=" + strconv.Itoa(code) + " " + msg
			for _, p := range pts {
				*dead = append(*dead, deadLine{why, req.line(p)})
			}
			return nil
		}
		s.log.Debug("points rejected, splitting", "points", len(pts), "status", code)
		parts = partition(pts, msg)

	default:
		// 401, 403, 404 and other request-level refusals; also 413 for a single line,
		// which means the server's body limit is misconfigured, not that the point is bad.
		return &PersistentError{StatusCode: code, msg: s.errorText(len(pts), he), err: he}
	}
	for _, part := range parts {
		if err := s.send(ctx, req, part, nil, dead); err != nil {
			return err
		}
	}
	return nil
}

// post sends body to the write endpoint through the client library's HTTP service,
// which sets the token and user agent and turns an answer other than 2xx into an
// *http2.Error (status, code, message, Retry-After, headers), as its write API does.
// The library's write API is not used for this: it would encode and compress again.
func (s *Sink) post(ctx context.Context, body []byte) *http2.Error {
	return s.client.HTTPService().DoPostRequest(ctx, s.writeURL, bytes.NewReader(body), func(req *http.Request) {
		if s.cfg.Gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}, func(resp *http.Response) error {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
		return resp.Body.Close()
	})
}

// gzipLevel is the compression of request bodies. On the readings' line protocol,
// level 2 of compress/gzip costs about a quarter of the default level's (6) CPU (0.26
// against 0.98 µs a reading, which was the largest cost of a drain) for about a quarter
// more bytes (5.5 against 4.3 bytes a reading); see bench/README.md, "BenchmarkDrain".
const gzipLevel = 2

// gzipWriters holds compressors for reuse: a flate compressor allocates about 1 MB.
var gzipWriters sync.Pool

// encodeBody returns lines as a request body: compressed if the sink uses gzip.
func (s *Sink) encodeBody(lines []byte) []byte {
	if !s.cfg.Gzip {
		return lines
	}
	var out bytes.Buffer
	out.Grow(len(lines)/4 + 64)
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(&out, gzipLevel) // a valid level: no error
	} else {
		zw.Reset(&out)
	}
	_, _ = zw.Write(lines) // a bytes.Buffer takes everything
	_ = zw.Close()
	gzipWriters.Put(zw)
	return out.Bytes()
}

// errorText returns "influx sink <name>: write <n> points: <status>: <message>".
func (s *Sink) errorText(n int, he *http2.Error) string {
	return fmt.Sprintf("influx sink %s: write %d points: %s", s.cfg.Name, n, s.describe(he))
}

// conflict finds the field and measurement named by a field type conflict (the
// message of InfluxDB 1.x and 2.x tsdb/field_validator.go).
var conflict = regexp.MustCompile(`input field "([^"]*)" on measurement "([^"]*)"`)

// partition splits pts, which the server rejected with 400 or 422, into parts likely
// to be all good or all bad, so that few requests isolate the bad points. Bad points
// come in kinds, a field with the wrong type above all, and InfluxDB names the first
// kind it met but not the lines (1.8 answers a field type conflict with 400 "partial
// write: field type conflict: input field "so2" on measurement "air" ... dropped=N"):
//
//  1. If the message names a field, that field's points go apart from the rest; the
//     rest is sent first (it will likely succeed), then the named points (which, when
//     the server drops all of them, are settled by "dropped=N" in one request).
//  2. Otherwise the points are sorted by measurement and field, keeping their order
//     within each, and halved, so that points of one kind stay together.
//
// A smaller "dropped" than len(pts) is never used to skip a part: InfluxDB 1.8 reports
// only the first shard's count, and 0 for lines it could not parse.
func partition(pts []point, msg string) [][]point {
	if m := conflict.FindStringSubmatch(msg); m != nil {
		var named, rest []point
		for _, p := range pts {
			if p.field == m[1] && p.measurement == m[2] {
				named = append(named, p)
			} else {
				rest = append(rest, p)
			}
		}
		if len(named) > 0 && len(rest) > 0 {
			return [][]point{rest, named}
		}
	}
	sorted := slices.Clone(pts)
	slices.SortStableFunc(sorted, func(a, b point) int {
		return cmp.Or(strings.Compare(a.measurement, b.measurement), strings.Compare(a.field, b.field))
	})
	return [][]point{sorted[:len(sorted)/2], sorted[len(sorted)/2:]}
}

// droppedAll reports whether an InfluxDB "partial write: ... dropped=N" message says
// that all n points of the request were dropped.
func droppedAll(msg string, n int) bool {
	if !strings.Contains(msg, "partial write") {
		return false
	}
	i := strings.LastIndex(msg, "dropped=")
	if i < 0 {
		return false
	}
	digits := msg[i+len("dropped="):]
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		digits = digits[:end]
	}
	dropped, err := strconv.Atoi(digits)
	return err == nil && dropped == n
}

// deadLetter appends entries to the dead-letter file, two lines each:
//
//	# <RFC3339 time> sink=<name> <why>
//	<line protocol>
//
// and fsyncs it. A failed write is cut back, so a retry does not leave a torn entry
// behind.
func (s *Sink) deadLetter(entries []deadLine) error {
	var b strings.Builder
	now := time.Now().UTC().Format(time.RFC3339)
	for _, e := range entries {
		fmt.Fprintf(&b, "# %s sink=%s %s\n%s\n", now, s.cfg.Name, s.redact(OneLine(e.why)), e.line)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := s.dl.Append([]byte(b.String())); err != nil {
		return err
	}
	s.deadLettered.Add(uint64(len(entries)))
	return nil
}

// ProbeTimeout bounds one Probe (or the sink's Timeout, if shorter).
const ProbeTimeout = 5 * time.Second

// Probe asks the server whether it is up with GET /ping (InfluxDB 1.8, 2.x and 3.x
// answer 204 when ready), carrying the token for a server that wants one there too. It
// returns nil for any 2xx answer, and otherwise an error naming the status or the
// network error. The forwarder (gateway.Prober) calls it while it backs off after a
// failed write, to resume as soon as the server is back.
func (s *Sink) Probe(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("influx sink %s: %w", s.cfg.Name, ErrClosed)
	}
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.Timeout, ProbeTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.pingURL, nil)
	if err != nil {
		return fmt.Errorf("influx sink %s: ping: %w", s.cfg.Name, err)
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("influx sink %s: ping: %s", s.cfg.Name, s.redact(OneLine(err.Error())))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("influx sink %s: ping: %s", s.cfg.Name, resp.Status)
	}
	return nil
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	return Stats{
		Written:      s.written.Load(),
		BodyBytes:    s.bodyBytes.Load(),
		Rejected:     s.rejected.Load(),
		Split:        s.split.Load(),
		DeadLettered: s.deadLettered.Load(),
		Invalid:      s.invalid.Load(),

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
	s.client.Close()
	s.transport.CloseIdleConnections()
	if err := s.dl.Close(); err != nil {
		return fmt.Errorf("influx sink %s: close: %w", s.cfg.Name, err)
	}
	return nil
}
