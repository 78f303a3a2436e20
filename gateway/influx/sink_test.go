package influx

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

const testToken = "envgate:s3cret-pass"

// fakeInflux is an httptest InfluxDB write endpoint. respond decides the answer to each
// request from its lines; accepted lines (2xx, and the good lines of a "partial write")
// are recorded in stored.
type fakeInflux struct {
	*httptest.Server
	respond func(w http.ResponseWriter, lines []string) (stored []string)

	mu       sync.Mutex
	requests []*http.Request // headers and URL of each request
	sizes    []int           // lines per request
	stored   []string
}

func newFake(t *testing.T, respond func(w http.ResponseWriter, lines []string) []string) *fakeInflux {
	t.Helper()
	f := &fakeInflux{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeInflux) serve(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	f.mu.Lock()
	f.requests = append(f.requests, r.Clone(context.Background()))
	f.sizes = append(f.sizes, len(lines))
	f.mu.Unlock()
	stored := f.respond(w, lines)
	f.mu.Lock()
	f.stored = append(f.stored, stored...)
	f.mu.Unlock()
}

func (f *fakeInflux) snapshot() (reqs []*http.Request, sizes []int, stored []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests), slices.Clone(f.sizes), slices.Clone(f.stored)
}

// accept answers 204 and stores every line.
func accept(w http.ResponseWriter, lines []string) []string {
	w.WriteHeader(http.StatusNoContent)
	return lines
}

// status answers code with an InfluxDB 1.8 style JSON error and stores nothing.
func status(code int, msg string, header ...string) func(http.ResponseWriter, []string) []string {
	return func(w http.ResponseWriter, _ []string) []string {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		influxError(w, code, msg)
		return nil
	}
}

// influxError writes an error the way InfluxDB 1.8's httpError does.
func influxError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("X-Influxdb-Error", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":%q}`, msg)
}

// conflictingOn mimics InfluxDB 1.8 with integer fields of the given names in "air": it
// stores the other lines and answers 400 "partial write: field type conflict ...
// dropped=N", naming the first conflicting field it meets.
func conflictingOn(fields ...string) func(http.ResponseWriter, []string) []string {
	return func(w http.ResponseWriter, lines []string) []string {
		var good []string
		dropped, named := 0, ""
		for _, l := range lines {
			bad := ""
			for _, f := range fields {
				if strings.Contains(l, " "+f+"=") {
					bad = f
				}
			}
			if bad == "" {
				good = append(good, l)
				continue
			}
			dropped++
			if named == "" {
				named = bad
			}
		}
		if dropped == 0 {
			w.WriteHeader(http.StatusNoContent)
			return good
		}
		influxError(w, http.StatusBadRequest, fmt.Sprintf(
			`partial write: field type conflict: input field "%s" on measurement "air" is type float, already exists as type integer dropped=%d`, named, dropped))
		return good
	}
}

var conflicting = conflictingOn("so2")

func testConfig(t *testing.T, url string) Config {
	return Config{
		Name:       "cloud",
		URL:        url,
		Bucket:     "envgate/autogen",
		Token:      testToken,
		Precision:  time.Millisecond,
		Timeout:    5 * time.Second,
		DeadLetter: filepath.Join(t.TempDir(), "spool", "dead", "cloud.lp"),
		GatewayID:  "gw-1",
	}
}

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

// airBatch returns n air readings, one per second, cycling through the air quantities;
// every 7th is so2.
func airBatch(n int) []reading.Reading {
	qs := []string{"pm1", "pm25", "pm10", "so2", "no2", "o3", "co"}
	batch := make([]reading.Reading, n)
	for i := range batch {
		batch[i] = reading.New(t0.Add(time.Duration(i)*time.Second), "canal-east-3", "aq-1", qs[i%len(qs)], float64(i)+0.5)
	}
	return batch
}

func lines(batch []reading.Reading, keep func(reading.Reading) bool) []string {
	var out []string
	for _, r := range batch {
		if keep == nil || keep(r) {
			out = append(out, Line(r, "gw-1", time.Millisecond))
		}
	}
	return out
}

// readDeadLetter returns the comment and data lines of the dead-letter file.
func readDeadLetter(t *testing.T, path string) (comments, data []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read dead-letter file: %v", err)
	}
	all := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(all)%2 != 0 {
		t.Fatalf("dead-letter file has %d lines, want pairs:\n%s", len(all), b)
	}
	for i := 0; i < len(all); i += 2 {
		if !strings.HasPrefix(all[i], "# ") || strings.HasPrefix(all[i+1], "#") {
			t.Fatalf("dead-letter entry %d = %q, %q; want a comment, then a line", i/2, all[i], all[i+1])
		}
		comments, data = append(comments, all[i]), append(data, all[i+1])
	}
	return comments, data
}

func TestWriteDelivers(t *testing.T) {
	f := newFake(t, accept)
	cfg := testConfig(t, f.URL)
	s := newSink(t, cfg)
	batch := airBatch(10)
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	reqs, sizes, stored := f.snapshot()
	if len(reqs) != 1 {
		t.Fatalf("%d requests (sizes %v), want 1", len(reqs), sizes)
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/write" {
		t.Errorf("request %s %s, want POST /api/v2/write", r.Method, r.URL.Path)
	}
	q := r.URL.Query()
	if q.Get("bucket") != "envgate/autogen" || q.Get("org") != "" || q.Get("precision") != "ms" {
		t.Errorf("query %v, want bucket=envgate/autogen org= precision=ms", q)
	}
	if got := r.Header.Get("Authorization"); got != "Token "+testToken {
		t.Errorf("Authorization = %q, want Token <token>", got)
	}
	if r.Header.Get("Content-Encoding") != "" {
		t.Errorf("Content-Encoding = %q without Gzip", r.Header.Get("Content-Encoding"))
	}
	if want := lines(batch, nil); !slices.Equal(stored, want) {
		t.Errorf("server got\n%s\nwant\n%s", strings.Join(stored, "\n"), strings.Join(want, "\n"))
	}
	if st := s.Stats(); st.BodyBytes == 0 || st != (Stats{Written: 10, BodyBytes: st.BodyBytes}) {
		t.Errorf("Stats() = %+v, want Written 10 and some BodyBytes", st)
	}
	if _, err := os.Stat(cfg.DeadLetter); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead-letter file exists after a clean write: %v", err)
	}
	if err := s.Write(t.Context(), nil); err != nil {
		t.Errorf("Write(empty) = %v", err)
	}
	if reqs, _, _ := f.snapshot(); len(reqs) != 1 {
		t.Errorf("Write(empty) sent a request")
	}
}

func TestWriteGzip(t *testing.T) {
	f := newFake(t, accept)
	cfg := testConfig(t, f.URL)
	cfg.Gzip = true
	s := newSink(t, cfg)
	batch := airBatch(50)
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	reqs, _, stored := f.snapshot()
	if got := reqs[0].Header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding = %q, want gzip", got)
	}
	if !slices.Equal(stored, lines(batch, nil)) {
		t.Errorf("server got %d lines after gunzip, want the batch's 50", len(stored))
	}
}

func TestWriteTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(t, srv.URL)
	s := newSink(t, cfg)
	if err := s.Write(t.Context(), airBatch(2)); err == nil {
		t.Errorf("Write to a server with an unknown CA = nil, want an error")
	}
	cfg.TLS = srv.Client().Transport.(*http.Transport).TLSClientConfig
	s = newSink(t, cfg)
	if err := s.Write(t.Context(), airBatch(2)); err != nil {
		t.Errorf("Write with the server's CA: %v", err)
	}
}

func TestWriteRetryErrors(t *testing.T) {
	refused := func() string { // a loopback port nobody listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}()
	tests := []struct {
		name    string
		url     string
		respond func(http.ResponseWriter, []string) []string
		code    int
		after   time.Duration
		want    string
	}{
		{"503 with Retry-After", "", status(503, "shutting down", "Retry-After", "7"), 503, 7 * time.Second,
			"influx sink cloud: write 3 points: 503 Service Unavailable: shutting down"},
		{"503 with an HTTP-date Retry-After in the past", "", status(503, "busy", "Retry-After",
			time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)), 503, 0, "503 Service Unavailable: busy"},
		{"503 with a plain body", "", func(w http.ResponseWriter, _ []string) []string {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
			return nil
		}, 503, 0, "503 Service Unavailable: no healthy upstream"},
		{"502 empty", "", func(w http.ResponseWriter, _ []string) []string {
			w.WriteHeader(http.StatusBadGateway)
			return nil
		}, 502, 0, "write 3 points: 502 Bad Gateway"},
		{"500 timeout", "", status(500, "timeout"), 500, 0, "500 Internal Server Error: timeout"},
		{"429", "", status(429, "too many requests", "Retry-After", "30"), 429, 30 * time.Second, "429 Too Many Requests"},
		{"408", "", status(408, "request timeout"), 408, 0, "408 Request Timeout"},
		{"connection refused", refused, nil, 0, 0, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = newFake(t, tt.respond).URL
			}
			cfg := testConfig(t, url)
			s := newSink(t, cfg)
			err := s.Write(t.Context(), airBatch(3))
			var re *RetryError
			if !errors.As(err, &re) {
				t.Fatalf("Write() = %v (%T), want *RetryError", err, err)
			}
			if re.StatusCode != tt.code || re.RetryAfter() != tt.after {
				t.Errorf("RetryError status %d, RetryAfter %v; want %d, %v", re.StatusCode, re.RetryAfter(), tt.code, tt.after)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "influx sink cloud: write 3 points: ") {
				t.Errorf("Write() = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the token", err)
			}
			var pe *PersistentError
			if errors.As(err, &pe) {
				t.Errorf("a retryable error is also a PersistentError")
			}
			if st := s.Stats(); st.Written != 0 || st.DeadLettered != 0 || st.Rejected != 0 {
				t.Errorf("Stats() = %+v, want nothing written, rejected or dead-lettered", st)
			}
		})
	}
}

// TestWriteRetryAfterIsBounded: whatever a server puts in Retry-After, the sink asks
// for at most MaxRetryAfter, and garbage asks for nothing (issue 10: "Retry-After: 999999999"
// stopped delivery for 31 years).
func TestWriteRetryAfterIsBounded(t *testing.T) {
	tests := []struct {
		header  string
		dateIn  time.Duration // if not 0, header is the HTTP-date this far from when the server answers
		atLeast time.Duration
		atMost  time.Duration
	}{
		{"999999999", 0, MaxRetryAfter, MaxRetryAfter},
		{"4294967295", 0, MaxRetryAfter, MaxRetryAfter},
		{"99999999999999999999999", 0, MaxRetryAfter, MaxRetryAfter}, // beyond uint64
		{"600", 0, 10 * time.Minute, 10 * time.Minute},
		{"601", 0, MaxRetryAfter, MaxRetryAfter},
		{" 120 ", 0, 2 * time.Minute, 2 * time.Minute},
		{"0", 0, 0, 0},
		{"", 100 * 365 * 24 * time.Hour, MaxRetryAfter, MaxRetryAfter},
		{"Fri, 31 Dec 9999 23:59:59 GMT", 0, MaxRetryAfter, MaxRetryAfter},
		{"", 90 * time.Second, 88 * time.Second, 90 * time.Second}, // HTTP-dates have whole seconds
		{"", -24 * time.Hour, 0, 0},
		{"Sunday, 06-Nov-94 08:49:37 GMT", 0, 0, 0}, // RFC 850, long past
		{"-5", 0, 0, 0},
		{"1.5", 0, 0, 0},
		{"1e9", 0, 0, 0},
		{"soon", 0, 0, 0},
		{"0x10", 0, 0, 0},
		{"Fri, 31 Dec 99999 23:59:59 GMT", 0, 0, 0},
		{"\x00\xff", 0, 0, 0},
	}
	for _, tt := range tests {
		name := tt.header
		if tt.dateIn != 0 {
			name = fmt.Sprintf("HTTP-date %v from now", tt.dateIn)
		}
		t.Run(name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ []string) []string {
				h := tt.header
				if tt.dateIn != 0 { // stamped now, not when the table was built: earlier subtests take time
					h = time.Now().Add(tt.dateIn).UTC().Format(http.TimeFormat)
				}
				w.Header()["Retry-After"] = []string{h} // as sent, not canonicalised
				influxError(w, http.StatusServiceUnavailable, "busy")
				return nil
			})
			s := newSink(t, testConfig(t, f.URL))
			err := s.Write(t.Context(), airBatch(2))
			var re *RetryError
			if !errors.As(err, &re) {
				t.Fatalf("Write() = %v, want *RetryError", err)
			}
			if got := re.RetryAfter(); got < tt.atLeast || got > tt.atMost {
				t.Errorf("Retry-After %q: RetryAfter() = %v, want %v to %v", name, got, tt.atLeast, tt.atMost)
			}
		})
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "7", "999999999", "99999999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT",
		"Fri, 31 Dec 9999 23:59:59 GMT", "-1", "1.5", "soon"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, v string) {
		if got := RetryAfter(v, now); got < 0 || got > MaxRetryAfter {
			t.Errorf("RetryAfter(%q) = %v, want 0 to %v", v, got, MaxRetryAfter)
		}
	})
}

func TestWriteTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, _ []string) []string {
		<-release // hold the request past the sink's timeout
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	defer close(release)
	cfg := testConfig(t, f.URL)
	cfg.Timeout = 100 * time.Millisecond
	s := newSink(t, cfg)
	err := s.Write(t.Context(), airBatch(3))
	var re *RetryError
	if !errors.As(err, &re) || re.StatusCode != 0 {
		t.Fatalf("Write() past the timeout = %v, want *RetryError with status 0", err)
	}
}

func TestWritePersistentErrors(t *testing.T) {
	tests := []struct {
		code int
		msg  string
	}{
		{401, "authorization failed: bad token " + testToken},
		{403, `"envgate" user is not authorized to write to database "envgate"`},
		{404, `database not found: "envgate"`},
		{405, "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			f := newFake(t, status(tt.code, tt.msg))
			cfg := testConfig(t, f.URL)
			s := newSink(t, cfg)
			err := s.Write(t.Context(), airBatch(5))
			var pe *PersistentError
			if !errors.As(err, &pe) || !pe.Persistent() || pe.StatusCode != tt.code {
				t.Fatalf("Write() = %v (%T), want *PersistentError %d", err, err, tt.code)
			}
			want := fmt.Sprintf("influx sink cloud: write 5 points: %d %s: ", tt.code, http.StatusText(tt.code))
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Write() = %q, want prefix %q", err, want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the token the server echoed", err)
			}
			if _, sizes, _ := f.snapshot(); len(sizes) != 1 {
				t.Errorf("%d requests, want 1: a persistent error must not be bisected", len(sizes))
			}
			if st := s.Stats(); st.Rejected != 1 || st.DeadLettered != 0 {
				t.Errorf("Stats() = %+v, want Rejected 1, nothing dead-lettered", st)
			}
		})
	}
}

func TestWriteSplitsOn413(t *testing.T) {
	const limit = 16
	f := newFake(t, func(w http.ResponseWriter, lines []string) []string {
		if len(lines) > limit {
			influxError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			return nil
		}
		w.WriteHeader(http.StatusNoContent)
		return lines
	})
	s := newSink(t, testConfig(t, f.URL))
	batch := airBatch(100)
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	_, sizes, stored := f.snapshot()
	if want := lines(batch, nil); !slices.Equal(stored, want) {
		t.Errorf("server stored %d lines, want the batch's %d in order", len(stored), len(want))
	}
	// 100 → 50+50 → 4×25 → 8×12-13: 1+2+4 splits, 15 requests.
	if st := s.Stats(); st.Split != 7 || st.Written != 100 || st.Rejected != 7 || st.DeadLettered != 0 {
		t.Errorf("Stats() = %+v, want Split 7, Written 100, Rejected 7; request sizes %v", st, sizes)
	}
}

func TestWrite413SingleLineIsPersistent(t *testing.T) {
	f := newFake(t, status(http.StatusRequestEntityTooLarge, "Request Entity Too Large"))
	s := newSink(t, testConfig(t, f.URL))
	err := s.Write(t.Context(), airBatch(2))
	var pe *PersistentError
	if !errors.As(err, &pe) || pe.StatusCode != 413 {
		t.Fatalf("Write() = %v, want *PersistentError 413 (a server that refuses one line is misconfigured)", err)
	}
	if st := s.Stats(); st.DeadLettered != 0 {
		t.Errorf("Stats() = %+v: a size limit must not dead-letter points", st)
	}
}

var deadComment = regexp.MustCompile(`^# \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ sink=cloud status=400 partial write: field type conflict: input field "so2" on measurement "air" is type float, already exists as type integer dropped=\d+$`)

func TestWriteBisectsBadPoints(t *testing.T) {
	f := newFake(t, conflicting)
	cfg := testConfig(t, f.URL)
	s := newSink(t, cfg)
	batch := airBatch(100)
	isSO2 := func(r reading.Reading) bool { return r.Quantity == "so2" }
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	wantDead := lines(batch, isSO2)
	comments, dead := readDeadLetter(t, cfg.DeadLetter)
	if !slices.Equal(dead, wantDead) {
		t.Errorf("dead-lettered\n%s\nwant\n%s", strings.Join(dead, "\n"), strings.Join(wantDead, "\n"))
	}
	for _, c := range comments {
		if !deadComment.MatchString(c) {
			t.Errorf("dead-letter comment %q does not match %v", c, deadComment)
			break
		}
	}
	_, sizes, stored := f.snapshot()
	good := lines(batch, func(r reading.Reading) bool { return !isSO2(r) })
	for _, l := range good {
		if !slices.Contains(stored, l) {
			t.Errorf("good line never stored: %s", l)
		}
	}
	st := s.Stats()
	if st.DeadLettered != uint64(len(wantDead)) || st.Invalid != 0 || st.Rejected == 0 {
		t.Errorf("Stats() = %+v, want DeadLettered %d", st, len(wantDead))
	}
	// The batch, the rest without so2, the so2 lines (all dropped, so settled at once).
	// Halving alone took 107 requests for these 14 bad lines spread over 100.
	if !slices.Equal(sizes, []int{100, 86, 14}) {
		t.Errorf("request sizes %v, want [100 86 14]", sizes)
	}
}

func TestWriteBisectsTwoConflicts(t *testing.T) {
	f := newFake(t, conflictingOn("so2", "no2"))
	cfg := testConfig(t, f.URL)
	s := newSink(t, cfg)
	batch := airBatch(100)
	bad := func(r reading.Reading) bool { return r.Quantity == "so2" || r.Quantity == "no2" }
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	_, dead := readDeadLetter(t, cfg.DeadLetter)
	slices.Sort(dead)
	want := lines(batch, bad)
	slices.Sort(want)
	if !slices.Equal(dead, want) {
		t.Errorf("dead-lettered %d lines, want the %d so2 and no2 lines", len(dead), len(want))
	}
	_, sizes, stored := f.snapshot()
	for _, l := range lines(batch, func(r reading.Reading) bool { return !bad(r) }) {
		if !slices.Contains(stored, l) {
			t.Errorf("good line never stored: %s", l)
		}
	}
	if len(sizes) > 5 {
		t.Errorf("request sizes %v, want at most 5", sizes)
	}
}

func TestWriteAllBadNeedsOneRequest(t *testing.T) {
	f := newFake(t, conflicting)
	cfg := testConfig(t, f.URL)
	s := newSink(t, cfg)
	var batch []reading.Reading
	for i := range 40 {
		batch = append(batch, reading.New(t0.Add(time.Duration(i)*time.Second), "s", "d", "so2", 4))
	}
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, sizes, _ := f.snapshot(); len(sizes) != 1 {
		t.Errorf("request sizes %v: \"dropped=40\" of 40 needs no bisection", sizes)
	}
	if _, dead := readDeadLetter(t, cfg.DeadLetter); !slices.Equal(dead, lines(batch, nil)) {
		t.Errorf("dead-lettered %d lines, want all 40", len(dead))
	}
}

func TestWriteBisects422WithoutCount(t *testing.T) {
	// A server that rejects the whole request (nothing stored) and gives no count.
	f := newFake(t, func(w http.ResponseWriter, lines []string) []string {
		for _, l := range lines {
			if strings.Contains(l, " co=") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprint(w, `{"code":"unprocessable entity","message":"schema conflict:\nfield co"}`)
				return nil
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return lines
	})
	cfg := testConfig(t, f.URL)
	s := newSink(t, cfg)
	batch := airBatch(30)
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	isCO := func(r reading.Reading) bool { return r.Quantity == "co" }
	comments, dead := readDeadLetter(t, cfg.DeadLetter)
	if !slices.Equal(dead, lines(batch, isCO)) {
		t.Errorf("dead-lettered %q, want the co lines", dead)
	}
	if !strings.HasSuffix(comments[0], " sink=cloud status=422 schema conflict: field co") {
		t.Errorf("comment %q: want the message on one line", comments[0])
	}
	_, sizes, stored := f.snapshot()
	// Sorted by field, the 4 co lines are together: far fewer requests than 2 per line.
	if len(sizes) > 16 {
		t.Errorf("request sizes %v: more than 16 requests to find 4 bad lines of 30", sizes)
	}
	slices.Sort(stored)
	want := lines(batch, func(r reading.Reading) bool { return !isCO(r) })
	slices.Sort(want)
	if !slices.Equal(stored, want) {
		t.Errorf("stored %d lines, want the %d good ones exactly once", len(stored), len(want))
	}
}

func TestWriteRetryDuringBisection(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	f := newFake(t, func(w http.ResponseWriter, lines []string) []string {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 3 { // the second half of the first split
			influxError(w, http.StatusServiceUnavailable, "shutting down")
			return nil
		}
		return conflicting(w, lines)
	})
	cfg := testConfig(t, f.URL)
	s := newSink(t, cfg)
	batch := append(airBatch(20), reading.New(t0, "s", "d", "ph", math.NaN()))
	err := s.Write(t.Context(), batch)
	var re *RetryError
	if !errors.As(err, &re) || re.StatusCode != 503 {
		t.Fatalf("Write() = %v, want the 503 as *RetryError", err)
	}
	if _, err := os.Stat(cfg.DeadLetter); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead-letter file written for a batch the caller will retry: %v", err)
	}
	if st := s.Stats(); st.DeadLettered != 0 || st.Invalid != 0 {
		t.Errorf("Stats() = %+v, want nothing dead-lettered or counted invalid yet", st)
	}
	// The retry settles it; each bad point is dead-lettered once.
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("retry: %v", err)
	}
	_, dead := readDeadLetter(t, cfg.DeadLetter)
	if len(dead) != 3+1 { // so2 at 3, 10, 17 and the NaN reading
		t.Errorf("dead-lettered %d lines after the retry, want 4:\n%s", len(dead), strings.Join(dead, "\n"))
	}
}

func TestWriteInvalidReadings(t *testing.T) {
	f := newFake(t, accept)
	cfg := testConfig(t, f.URL)
	s := newSink(t, cfg)
	good := reading.New(t0, "s", "d", "la", 50)
	bad := reading.New(t0, "s", "d", "la", 250)
	bad.Quality = reading.Bad
	nan := reading.New(t0, "s", "d", "la", math.NaN())
	unknown := reading.New(t0, "s", "d", "pm2.5", 1)
	twoProblems := reading.New(t0, "", "d", "ph", math.Inf(1))
	batch := []reading.Reading{good, bad, nan, unknown, twoProblems}
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, _, stored := f.snapshot(); !slices.Equal(stored, lines(batch[:1], nil)) {
		t.Errorf("server got %q, want only the good reading", stored)
	}
	comments, dead := readDeadLetter(t, cfg.DeadLetter)
	if !slices.Equal(dead, lines(batch[1:], nil)) {
		t.Errorf("dead-lettered %q", dead)
	}
	wantWhy := []string{
		"invalid quality bad",
		"invalid value NaN is not a finite number",
		`invalid unknown quantity "pm2.5"`,
		"invalid site: must not be empty; value +Inf is not a finite number",
	}
	for i, c := range comments {
		if !strings.HasSuffix(c, " sink=cloud "+wantWhy[i]) {
			t.Errorf("comment %d = %q, want it to end with %q", i, c, wantWhy[i])
		}
	}
	if st := s.Stats(); st.BodyBytes == 0 || st != (Stats{Written: 1, BodyBytes: st.BodyBytes, DeadLettered: 4, Invalid: 4}) {
		t.Errorf("Stats() = %+v, want Written 1, some BodyBytes, DeadLettered 4 and Invalid 4", st)
	}
	// Everything invalid: no request at all.
	if err := s.Write(t.Context(), batch[1:2]); err != nil {
		t.Fatalf("Write(only bad): %v", err)
	}
	if reqs, _, _ := f.snapshot(); len(reqs) != 1 {
		t.Errorf("%d requests, want none for a batch of only invalid readings", len(reqs)-1)
	}
}

// TestDeadLetterIsBounded: a server rejecting every point forever fills at most
// DeadLetterKeep+1 files of DeadLetterMaxBytes, private to the gateway (0640 in 0750
// directories), and every entry deleted by rotation is counted (issue 10: the file grew
// without bound, 0644 in a 0755 directory).
func TestDeadLetterIsBounded(t *testing.T) {
	f := newFake(t, status(http.StatusBadRequest, "unable to parse"))
	cfg := testConfig(t, f.URL)
	cfg.DeadLetterMaxBytes, cfg.DeadLetterKeep = 4000, 2
	s := newSink(t, cfg)
	const writes = 60
	for i := range writes {
		batch := airBatch(3)
		for j := range batch {
			batch[j].Time = batch[j].Time.Add(time.Duration(i) * time.Hour)
		}
		if err := s.Write(t.Context(), batch); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
	files, err := filepath.Glob(cfg.DeadLetter + "*")
	if err != nil || len(files) != 3 {
		t.Errorf("dead-letter files %v, want the file and 2 rotated ones", files)
	}
	onDisk := 0
	for _, name := range files {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > cfg.DeadLetterMaxBytes {
			t.Errorf("%s: %d bytes, want at most %d", name, fi.Size(), cfg.DeadLetterMaxBytes)
		}
		if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
			t.Errorf("%s: mode %v, want at most 0640", name, perm)
		}
		_, data := readDeadLetter(t, name)
		onDisk += len(data)
	}
	for dir := filepath.Dir(cfg.DeadLetter); dir != filepath.Dir(filepath.Dir(filepath.Dir(cfg.DeadLetter))); dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm()&^0o750 != 0 {
			t.Errorf("directory %s: mode %v, want at most 0750", dir, fi.Mode().Perm())
		}
	}
	st := s.Stats()
	if st.DeadLettered != 3*writes || st.DeadLetterDropped == 0 || st.DeadLettered-st.DeadLetterDropped != uint64(onDisk) {
		t.Errorf("Stats() = %+v with %d entries on disk; want %d dead-lettered, some dropped, and the rest on disk",
			st, onDisk, 3*writes)
	}
}

func TestWriteContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	f := newFake(t, func(w http.ResponseWriter, _ []string) []string {
		arrived <- struct{}{}
		return nil // the test cancels the client before this matters
	})
	s := newSink(t, testConfig(t, f.URL))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, airBatch(3)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(cancelled ctx) = %v, want context.Canceled", err)
	}
	if reqs, _, _ := f.snapshot(); len(reqs) != 0 {
		t.Errorf("a request was sent with a cancelled ctx")
	}

	block := make(chan struct{})
	f.respond = func(w http.ResponseWriter, _ []string) []string {
		arrived <- struct{}{}
		<-block
		return nil
	}
	defer close(block)
	ctx, cancel = context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	err := s.Write(ctx, airBatch(3))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write cancelled mid-request = %v, want context.Canceled", err)
	}
	var re *RetryError
	if errors.As(err, &re) {
		t.Errorf("Write cancelled mid-request = %v, want the ctx error, not a RetryError", err)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	f := newFake(t, conflicting)
	cfg := testConfig(t, f.URL)
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), airBatch(5)); err != nil { // opens the dead-letter file
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if err := s.Write(t.Context(), airBatch(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	_, err := New(Config{URL: "ftp://user:pw@x", Precision: time.Minute, GatewayID: "a b"}, nil)
	if err == nil {
		t.Fatal("New(bad config) = nil")
	}
	for _, want := range []string{"name:", "url", "bucket:", "precision 1m0s", "timeout 0s", "dead_letter:", "gateway_id:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad config) = %q, want it to mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "user:pw") { // an ftp URL was quoted whole
		t.Errorf("New(bad config) = %q, shows the URL's password", err)
	}
	cfg := testConfig(t, "http://user:s3cret@127.0.0.1:8086")
	if _, err := New(cfg, nil); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("New(URL with credentials) = %v, want an error that does not show them", err)
	}
}

// TestDeadLetterFIFOFailsTheWrite: a named pipe where the dead-letter file should be
// (issue 10 review) fails the write at once, without blocking on the pipe: Write
// returns the error (the forwarder keeps the batch and retries it, docs/design.md),
// nothing is counted as dead-lettered, and batches without dead letters still go out.
func TestDeadLetterFIFOFailsTheWrite(t *testing.T) {
	f := newFake(t, accept)
	cfg := testConfig(t, f.URL)
	cfg.DeadLetter = filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(cfg.DeadLetter, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, cfg)
	bad := reading.New(t0, "s", "d", "la", 250)
	bad.Quality = reading.Bad
	done := make(chan error, 1)
	go func() { done <- s.Write(t.Context(), []reading.Reading{bad}) }()
	select {
	case err := <-done:
		if want := cfg.DeadLetter + " is a named pipe (FIFO), not a regular file"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Write(bad reading) = %v, want an error containing %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on the FIFO for 10s")
	}
	if st := s.Stats(); st.DeadLettered != 0 || st.Invalid != 0 {
		t.Errorf("Stats() = %+v, want nothing dead-lettered", st)
	}
	good := reading.New(t0, "s", "d", "la", 50)
	if err := s.Write(t.Context(), []reading.Reading{good}); err != nil {
		t.Errorf("Write(good reading) = %v", err)
	}
	if st := s.Stats(); st.Written != 1 {
		t.Errorf("Stats() = %+v, want the good reading written", st)
	}
}
