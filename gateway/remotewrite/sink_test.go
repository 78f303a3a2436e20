package remotewrite

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// fakeReceiver answers the requests in turn with answers (status and body; the last
// one repeats) and records what they carried.
type fakeReceiver struct {
	mu       sync.Mutex
	answers  []fakeAnswer
	requests []*prompb.WriteRequest
	headers  []http.Header
}

type fakeAnswer struct {
	status int
	body   string
	header map[string]string
}

func (f *fakeReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	body, err := snappy.Decode(nil, raw)
	var req prompb.WriteRequest
	if err == nil {
		err = req.Unmarshal(body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.requests = append(f.requests, &req)
	f.headers = append(f.headers, r.Header.Clone())
	a := f.answers[min(len(f.requests), len(f.answers))-1]
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	if a.status == http.StatusNoContent {
		w.WriteHeader(a.status)
		return
	}
	http.Error(w, a.body, a.status)
}

// samples counts the samples of the requests received.
func (f *fakeReceiver) samples() (n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		for _, ts := range r.Timeseries {
			n += len(ts.Samples)
		}
	}
	return n
}

func fakeSink(t *testing.T, f *fakeReceiver, cfg Config) *Sink {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.Name, cfg.URL, cfg.Timeout, cfg.GatewayID = "central", srv.URL+"/api/v1/write", 2*time.Second, "box-7"
	cfg.DeadLetter = filepath.Join(t.TempDir(), "central.lp")
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestWriteRequest: one time series per series, labels in order (gateway, site,
// device, quantity, unit), samples sorted by time, timestamps in milliseconds; the
// protocol's headers, the bearer token and the extra headers.
func TestWriteRequest(t *testing.T) {
	f := &fakeReceiver{answers: []fakeAnswer{{status: http.StatusNoContent}}}
	s := fakeSink(t, f, Config{BearerToken: "s3cret", Headers: map[string]string{"X-Scope-OrgID": "district-9"}})
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 123456789, time.UTC)
	rs := []reading.Reading{
		reading.New(t0.Add(time.Second), "park-3", "noise-1", "la", 41),
		reading.New(t0, "park-3", "noise-1", "la", 40), // older: sorted first
		reading.New(t0, "park-3", reading.HealthDevice, "uptime", 7),
	}
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	if len(f.requests) != 1 {
		t.Fatalf("%d requests, want 1", len(f.requests))
	}
	ts := f.requests[0].Timeseries
	if len(ts) != 2 {
		t.Fatalf("%d time series, want 2: %v", len(ts), ts)
	}
	var labels []string
	for _, l := range ts[0].Labels {
		labels = append(labels, l.Name+"="+l.Value)
	}
	if got, want := strings.Join(labels, ","), "__name__=envgate_reading_value,device=noise-1,gateway=box-7,quantity=la,site=park-3,unit=dB(A)"; got != want {
		t.Errorf("labels %s, want %s", got, want)
	}
	ms := t0.UnixMilli()
	if got := ts[0].Samples; len(got) != 2 || got[0].Timestamp != ms || got[0].Value != 40 || got[1].Timestamp != ms+1000 || got[1].Value != 41 {
		t.Errorf("samples %v, want 40 at %d and 41 at %d", got, ms, ms+1000)
	}
	h := f.headers[0]
	for k, want := range map[string]string{"Authorization": "Bearer s3cret", "X-Scope-OrgID": "district-9",
		"Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0", "Content-Type": "application/x-protobuf"} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s: %q, want %q", k, got, want)
		}
	}
}

// TestWriteErrors: how answers are classified; each Write makes one request (the
// client library's own retries are off: the forwarder retries).
func TestWriteErrors(t *testing.T) {
	rs := []reading.Reading{reading.New(time.Now(), "park-3", "noise-1", "la", 40)}
	check := func(a fakeAnswer, wantRetry, wantPersistent bool, wantAfter time.Duration) {
		t.Helper()
		f := &fakeReceiver{answers: []fakeAnswer{a}}
		s := fakeSink(t, f, Config{BearerToken: "s3cret"})
		err := s.Write(t.Context(), rs)
		var re *RetryError
		var pe *PersistentError
		if errors.As(err, &re) != wantRetry || errors.As(err, &pe) != wantPersistent {
			t.Errorf("answer %d %q: Write = %v (%T), want retry %v, persistent %v", a.status, a.body, err, err, wantRetry, wantPersistent)
		}
		if re != nil && re.RetryAfter() != wantAfter {
			t.Errorf("answer %d: RetryAfter = %v, want %v", a.status, re.RetryAfter(), wantAfter)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the token: %v", err)
		}
		if len(f.requests) != 1 {
			t.Errorf("answer %d: %d requests, want 1", a.status, len(f.requests))
		}
	}
	check(fakeAnswer{status: 503, body: "overloaded", header: map[string]string{"Retry-After": "7"}}, true, false, 7*time.Second)
	check(fakeAnswer{status: 429, body: "slow down"}, true, false, 0)
	check(fakeAnswer{status: 401, body: "who are you, s3cret?"}, false, true, 0)
	check(fakeAnswer{status: 404, body: "no such path"}, false, true, 0)
	check(fakeAnswer{status: 400, body: "out of order sample"}, false, false, 0) // dead-lettered
	check(fakeAnswer{status: 500, body: "too old sample"}, false, false, 0)      // Prometheus 2.42: dead-lettered
	check(fakeAnswer{status: 500, body: "out of memory"}, true, false, 0)        // a server problem: retried
	check(fakeAnswer{status: 413, body: "too large"}, false, true, 0)            // a single sample: the server's limit
	check(fakeAnswer{status: 422, body: "invalid labels"}, false, false, 0)      // dead-lettered

	// A network error: the receiver is gone.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s, err := New(Config{Name: "central", URL: url, Timeout: time.Second, GatewayID: "box-7",
		DeadLetter: filepath.Join(t.TempDir(), "dl.lp")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var re *RetryError
	if err := s.Write(t.Context(), rs); !errors.As(err, &re) || re.StatusCode != 0 {
		t.Errorf("receiver down: Write = %v, want a RetryError without status", err)
	}
}

// TestWriteSplitAndResume: a rejected batch is split until the rejected sample stands
// alone; when a later part fails with a 5xx, Write fails, and the batch sent again
// skips the samples the receiver had accepted.
func TestWriteSplitAndResume(t *testing.T) {
	f := &fakeReceiver{answers: []fakeAnswer{
		{status: 400, body: "out of order sample"}, // 4 samples
		{status: 204},                     // the first 2
		{status: 503, body: "restarting"}, // the last 2
		{status: 204},                     // again: the last 2 only
	}}
	s := fakeSink(t, f, Config{})
	t0 := time.Now().Add(-time.Minute)
	var rs []reading.Reading
	for i := range 4 {
		rs = append(rs, reading.New(t0.Add(time.Duration(i)*time.Second), "park-3", "noise-1", "la", float64(40+i)))
	}
	if err := s.Write(t.Context(), rs); err == nil {
		t.Fatal("Write = nil after a 503, want an error")
	}
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Written != 4 || st.Skipped != 2 || st.Split != 1 || st.DeadLettered != 0 {
		t.Errorf("Stats() = %+v, want 4 written, 2 skipped, 1 split", st)
	}
	if n := f.samples(); n != 4+2+2+2 {
		t.Errorf("%d samples sent, want 10", n)
	}
}

// TestCheck: New refuses what the config package refuses, every problem at once.
func TestCheck(t *testing.T) {
	_, err := New(Config{URL: "ftp://user:pw@x", BearerToken: "t", Username: "u"}, nil)
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"name:", "url:", "timeout", "not both", "dead_letter", "gateway_id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v; want it to mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "pw") {
		t.Errorf("New: %v quotes the URL's password", err)
	}
}

// TestWriteSplitBudget: a batch the receiver rejects whole is split within
// MaxSplitRequests rejected requests per Write; a Write that runs out returns a
// *RetryError, and the next Writes of the batch go on from there until every sample
// is dead-lettered, each once, and Write returns nil.
func TestWriteSplitBudget(t *testing.T) {
	f := &fakeReceiver{answers: []fakeAnswer{{status: 400, body: "out of order sample"}}}
	s := fakeSink(t, f, Config{})
	var rs []reading.Reading
	for i := range 1000 {
		rs = append(rs, reading.New(time.Now().Add(time.Duration(i-2000)*time.Millisecond), "park-3", "noise-1", "la", 40))
	}
	writes := 0
	for {
		before := len(f.requests)
		err := s.Write(t.Context(), rs)
		writes++
		// The parts still pending when the budget runs out: one more request per level
		// of halving, 10 for 1000 samples.
		if n := len(f.requests) - before; n > MaxSplitRequests+10 {
			t.Fatalf("write %d made %d requests, want at most %d", writes, n, MaxSplitRequests+10)
		}
		if err == nil {
			break
		}
		var re *RetryError
		if !errors.As(err, &re) {
			t.Fatalf("write %d: %v, want a *RetryError", writes, err)
		}
		if writes > 20 {
			t.Fatalf("still not done after %d writes: %v", writes, err)
		}
	}
	if st := s.Stats(); st.DeadLettered != 1000 || st.Written != 0 || writes < 2 {
		t.Errorf("Stats() = %+v after %d writes, want all 1000 dead-lettered once, over several writes", st, writes)
	}
}

// TestProbe: a receiver that answers GET on the write URL with anything but 429 or
// 5xx is there (Prometheus answers 405); 503 and a closed port are not.
func TestProbe(t *testing.T) {
	for status, up := range map[int]bool{http.StatusMethodNotAllowed: true, http.StatusNoContent: true,
		http.StatusUnauthorized: true, http.StatusServiceUnavailable: false, http.StatusTooManyRequests: false} {
		var auth string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth = r.Header.Get("Authorization")
			w.WriteHeader(status)
		}))
		s, err := New(Config{Name: "central", URL: srv.URL + "/api/v1/write", Timeout: time.Second, GatewayID: "box-7",
			BearerToken: "s3cret", DeadLetter: filepath.Join(t.TempDir(), "dl.lp")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Probe(t.Context()); (err == nil) != up {
			t.Errorf("answer %d: Probe = %v, want up %v", status, err, up)
		}
		if auth != "Bearer s3cret" {
			t.Errorf("answer %d: probe sent Authorization %q", status, auth)
		}
		s.Close()
		srv.Close()
		if err := s.Probe(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Probe after Close = %v, want ErrClosed", err)
		}
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	s := fakeSink(t, &fakeReceiver{}, Config{})
	s.cfg.URL = srv.URL
	if err := s.Probe(t.Context()); err == nil {
		t.Error("Probe of a closed port = nil, want an error")
	}
}
