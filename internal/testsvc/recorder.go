package testsvc

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Recorder is a reverse proxy in front of an InfluxDB that counts every line of line
// protocol the server accepted through it, so a test can see points written twice
// (InfluxDB itself overwrites a point written again with the same values, so a query
// cannot tell). Point a sink at URL instead of the server's URL.
type Recorder struct {
	URL string // base URL of the proxy

	mu       sync.Mutex
	accepted map[string]int // line → times the server accepted it
	total    int            // lines accepted, counting repeats
	requests int            // write requests answered 2xx
	refusing bool           // answer writes 503 without passing them on
}

// StartRecorder starts a Recorder for the server at target (e.g. Influx.URL) on a free
// loopback port and closes it in t.Cleanup.
//
// A write request (/write, /api/v2/write) is read in full before it is passed on, and
// passed on even if the client goes away meanwhile, so that a client killed in the
// middle of a request is recorded exactly as the server saw it: a body cut short is
// never forwarded (the server could not have stored it), and a forwarded one is recorded
// when the server answers 2xx, whether or not the client is still there to read the
// answer. Gzip bodies are decompressed for counting and forwarded as they came.
func StartRecorder(t testing.TB, target string) *Recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("recorder target %q: %v", target, err)
	}
	rec := &Recorder{accepted: map[string]int{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out = pr.Out.WithContext(context.WithoutCancel(pr.In.Context()))
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/write") {
			proxy.ServeHTTP(w, r)
			return
		}
		rec.mu.Lock()
		refusing := rec.refusing
		rec.mu.Unlock()
		if refusing {
			http.Error(w, "recorder: refusing writes", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "recorder: body cut short: "+err.Error(), http.StatusBadRequest)
			return
		}
		lines, err := writtenLines(body, r.Header.Get("Content-Encoding") == "gzip")
		if err != nil {
			http.Error(w, "recorder: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		sw := &statusWriter{ResponseWriter: w}
		proxy.ServeHTTP(sw, r)
		if sw.status >= 200 && sw.status < 300 {
			rec.mu.Lock()
			rec.requests++
			for _, l := range lines {
				rec.accepted[l]++
				rec.total++
			}
			rec.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// writtenLines returns the non-empty lines of a line-protocol body.
func writtenLines(body []byte, gzipped bool) ([]string, error) {
	if gzipped {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	var lines []string
	for l := range strings.SplitSeq(string(body), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Written returns how many lines the server accepted through the recorder (total,
// counting a line sent again each time) and how many distinct lines those were; total
// minus distinct is the number of re-sent lines.
func (rec *Recorder) Written() (total, distinct int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.total, len(rec.accepted)
}

// Refuse makes the recorder answer every write with 503 Service Unavailable, without
// passing it on (on true), as an overloaded server or a cut uplink would, or pass writes
// on again (on false).
func (rec *Recorder) Refuse(on bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.refusing = on
}

// Lines returns every distinct line the server accepted and how often.
func (rec *Recorder) Lines() map[string]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make(map[string]int, len(rec.accepted))
	for l, n := range rec.accepted {
		out[l] = n
	}
	return out
}

// Requests returns the number of write requests the server answered with 2xx.
func (rec *Recorder) Requests() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.requests
}
