package status

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
)

func rd(device, quantity string, v float64) reading.Reading {
	return reading.New(time.Now(), "canal", device, quantity, v)
}

// TestFilter checks the filter: exact names, a list matching any of its names, and
// empty lists matching everything.
func TestFilter(t *testing.T) {
	noise, air := rd("noise-1", "la", 50), rd("air-1", "pm25", 30)
	air.Site = "canal-east"
	check := func(f Filter, r reading.Reading, want bool) {
		t.Helper()
		if got := f.Match(r); got != want {
			t.Errorf("%+v.Match(%s/%s/%s) = %v, want %v", f, r.Site, r.Device, r.Quantity, got, want)
		}
	}
	check(Filter{}, noise, true)
	check(Filter{Devices: []string{"noise-1"}}, noise, true)
	check(Filter{Devices: []string{"noise-1"}}, air, false)
	check(Filter{Devices: []string{"noise"}}, noise, false) // exact, not a prefix
	check(Filter{Devices: []string{"air-1", "noise-1"}}, air, true)
	check(Filter{Sites: []string{"canal-east"}}, air, true)
	check(Filter{Sites: []string{"canal-east"}}, noise, false)
	check(Filter{Quantities: []string{"la"}, Devices: []string{"air-1"}}, air, false)
	check(Filter{Quantities: []string{"pm25"}, Devices: []string{"air-1"}, Sites: []string{"canal-east"}}, air, true)

	for in, want := range map[string]string{"": "", "a": "a", " a , b,,c ": "a|b|c", ",": ""} {
		if got := strings.Join(SplitList(in), "|"); got != want {
			t.Errorf("SplitList(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFeedSlowSubscriber checks that Publish never blocks on a subscriber that does
// not read: its queue fills, the rest is dropped and counted for it alone, and a
// subscriber that reads gets everything.
func TestFeedSlowSubscriber(t *testing.T) {
	f := NewFeed(2)
	slow, err := f.Subscribe(Filter{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Cancel()
	fast, err := f.Subscribe(Filter{Devices: []string{"noise-1"}}, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Cancel()
	if _, err := f.Subscribe(Filter{}, 1); err != ErrTooMany {
		t.Errorf("third Subscribe with max 2 = %v, want ErrTooMany", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			f.Publish(rd("noise-1", "la", float64(i)))
			f.Publish(rd("air-1", "pm25", float64(i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	if got := slow.Dropped(); got != 2000-4 {
		t.Errorf("slow subscriber: %d dropped, want %d", got, 2000-4)
	}
	if got := slow.Dropped(); got != 0 {
		t.Errorf("Dropped() again = %d, want 0 (reset)", got)
	}
	if got, d := len(fast.C()), fast.Dropped(); got != 1000 || d != 0 {
		t.Errorf("fast subscriber of noise-1: %d queued, %d dropped; want 1000 and 0", got, d)
	}
	for i := range 4 {
		if r := <-slow.C(); r.Value != float64(i/2) {
			t.Errorf("slow subscriber's reading %d = %v, want the oldest ones kept", i, r.Value)
		}
	}
	slow.Cancel()
	slow.Cancel() // twice is safe
	if s, err := f.Subscribe(Filter{}, 1); err != nil {
		t.Errorf("Subscribe after a Cancel = %v, want room", err)
	} else {
		s.Cancel()
	}
	f.Close()
	f.Close()
	select {
	case <-fast.Done():
	default:
		t.Error("Done not closed by Close")
	}
	if _, err := f.Subscribe(Filter{}, 1); err != ErrClosed {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	var nilFeed *Feed
	nilFeed.Publish(rd("noise-1", "la", 1)) // a gateway without a page
}

// streamServer serves a Server with feed f and returns its URL.
func streamServer(t *testing.T, f *Feed, queue int, heartbeat time.Duration) string {
	t.Helper()
	s := New(Config{Metrics: metrics.New(), Feed: f, StreamQueue: queue, Heartbeat: heartbeat})
	ts := httptest.NewServer(s.Handler(nil))
	t.Cleanup(ts.Close)
	return ts.URL
}

// openStream GETs /api/readings with query and returns its lines.
func openStream(t *testing.T, base, query string) (*bufio.Scanner, *http.Response) {
	t.Helper()
	resp, err := http.Get(base + "/api/readings" + query)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("GET /api/readings%s = %s %s", query, resp.Status, resp.Header.Get("Content-Type"))
	}
	return bufio.NewScanner(resp.Body), resp
}

// waitSubscribed waits until f has n subscribers.
func waitSubscribed(t *testing.T, f *Feed, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for int(f.active.Load()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", f.active.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockingWriter is a ResponseWriter whose first Write blocks until release is
// closed: a reader that stopped reading. Its lines are in out.
type blockingWriter struct {
	header  http.Header
	blocked chan struct{} // closed when the first Write blocks
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	out     bytes.Buffer
}

func (w *blockingWriter) Header() http.Header { return w.header }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.blocked) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

func (w *blockingWriter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n")
}

// TestStreamSlowReader checks /api/readings with a reader that stops reading: the
// gateway's Publish does not wait for it, its queue keeps the oldest readings, and
// before its next reading it is told how many it lost. Only the readings its query
// selects count.
func TestStreamSlowReader(t *testing.T) {
	f := NewFeed(4)
	s := New(Config{Metrics: metrics.New(), Feed: f, StreamQueue: 8, Heartbeat: time.Hour})
	w := &blockingWriter{header: http.Header{}, blocked: make(chan struct{}), release: make(chan struct{})}
	req := httptest.NewRequest("GET", "/api/readings?device=noise-1&quantity=la", nil)
	done := make(chan struct{})
	go func() { defer close(done); s.serveReadings(w, req) }()
	waitSubscribed(t, f, 1)
	f.Publish(rd("noise-1", "la", 0))
	<-w.blocked // the handler is stuck writing reading 0
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 1; i <= 100; i++ {
			f.Publish(rd("noise-1", "la", float64(i)))
			f.Publish(rd("noise-1", "laeq", 1)) // not selected: neither queued nor counted
			f.Publish(rd("air-1", "pm25", 2))
		}
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish waited for a reader that does not read")
	}
	close(w.release)
	// Reading 0, the 92 dropped, readings 1-8 (the queue keeps the oldest).
	want := []string{`{"reading":`, `{"dropped":92}`}
	deadline := time.Now().Add(10 * time.Second)
	for len(w.lines()) < 10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	f.Close()
	<-done
	lines := w.lines()
	if len(lines) != 10 || !strings.HasPrefix(lines[0], want[0]) || lines[1] != want[1] {
		t.Fatalf("stream lines = %q, want reading 0, %s, readings 1-8", lines, want[1])
	}
	for i, line := range lines[2:] {
		l, err := DecodeLine([]byte(line))
		if err != nil || l.Reading == nil || l.Reading.Value != float64(i+1) || l.Reading.Quantity != "la" {
			t.Errorf("line %d = %q (%v), want la reading %d", i+3, line, err, i+1)
		}
	}
}

// TestStreamHeartbeat checks over HTTP that a quiet stream sends heartbeats and that
// Close ends the stream.
func TestStreamHeartbeat(t *testing.T) {
	f := NewFeed(4)
	lines, _ := openStream(t, streamServer(t, f, 8, 20*time.Millisecond), "?device=nobody")
	waitSubscribed(t, f, 1)
	f.Publish(rd("noise-1", "la", 1)) // not selected
	if !lines.Scan() {
		t.Fatal("stream ended instead of a heartbeat")
	}
	if l, err := DecodeLine(lines.Bytes()); err != nil || l.Heartbeat == nil {
		t.Errorf("quiet stream sent %q (%v), want a heartbeat", lines.Text(), err)
	}
	f.Close()
	for lines.Scan() {
	}
	if err := lines.Err(); err != nil {
		t.Errorf("stream after Close: %v, want its end", err)
	}
}

// TestStreamRefused checks the answers of /api/readings beyond its readers' bound and
// without a feed, and that the page, its assets and /api/status are served read-only
// with their security headers while other paths go to next.
func TestStreamRefused(t *testing.T) {
	f := NewFeed(1)
	base := streamServer(t, f, 8, time.Hour)
	openStream(t, base, "")
	waitSubscribed(t, f, 1)
	resp, err := http.Get(base + "/api/readings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second stream with a bound of 1 = %s, want 503 with Retry-After", resp.Status)
	}

	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("next " + r.URL.Path)) })
	ts := httptest.NewServer(New(Config{Metrics: metrics.New()}).Handler(next))
	defer ts.Close()
	check := func(method, path string, wantCode int, wantType, wantBody string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&b)
		if resp.StatusCode != wantCode || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) || !strings.Contains(b.String(), wantBody) {
			t.Errorf("%s %s = %s %s %.80q, want %d %s containing %q", method, path, resp.Status, resp.Header.Get("Content-Type"), b.String(), wantCode, wantType, wantBody)
		}
		if wantType == "text/html" && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s %s lacks its Content-Security-Policy", method, path)
		}
	}
	check("GET", "/", 200, "text/html", `<script src="/assets/app.js"`)
	check("GET", "/assets/app.js", 200, "text/javascript", "/api/status")
	check("GET", "/assets/style.css", 200, "text/css", "360")
	check("GET", "/api/status", 200, "application/json", `"version":1`)
	check("GET", "/api/readings", 404, "text/plain", "not found")
	check("GET", "/metrics", 200, "text/plain", "next /metrics")
	check("POST", "/api/status", 200, "text/plain", "next /api/status") // not ours: next answers (the metrics handler: 404)
	check("POST", "/", 200, "text/plain", "next /")
}

// TestLineRoundTrip checks that a reading survives EncodeReading and DecodeLine, and
// that a value JSON cannot carry is refused.
func TestLineRoundTrip(t *testing.T) {
	r := reading.New(time.Date(2026, 7, 1, 12, 0, 0, 500e6, time.UTC), "canal", "noise-1", "la", 52.1)
	r.Quality = reading.Suspect
	b, err := EncodeReading(r)
	if err != nil {
		t.Fatal(err)
	}
	l, err := DecodeLine(b)
	if err != nil || l.Reading == nil {
		t.Fatalf("DecodeLine(%s) = %+v, %v", b, l, err)
	}
	got := *l.Reading
	if !got.Time.Equal(r.Time) || got.Site != r.Site || got.Device != r.Device || got.Quantity != r.Quantity ||
		got.Value != r.Value || got.Unit != r.Unit || got.Quality != "suspect" {
		t.Errorf("round trip of %+v = %+v", r, got)
	}
	r.Value = math.Inf(1)
	if _, err := EncodeReading(r); err == nil {
		t.Error("EncodeReading(+Inf) = nil error")
	}
}

// FuzzDecodeLine feeds DecodeLine arbitrary bytes: it never panics, accepts only lines
// within MaxLine with exactly one part, and what it accepts survives a re-encoding.
func FuzzDecodeLine(f *testing.F) {
	for _, seed := range []string{
		`{"reading":{"time":"2026-12-07T10:00:00.5Z","site":"canal-demo","device":"noise-1","quantity":"la","value":52.1,"unit":"dB(A)","quality":"good"}}`,
		`{"dropped":12}` + "\n",
		`{"heartbeat":"2026-12-07T10:00:15Z"}`,
		`{"dropped":0}`,
		`{"dropped":1,"heartbeat":"2026-12-07T10:00:15Z"}`,
		`{"reading":{"device":"x"}}`,
		`{"reading":null}`,
		`{"dropped":1}}`,
		`{"dropped":1} {"dropped":2}`,
		`{"surprise":1}`,
		`null`, `[]`, ``, `{`, `{"dropped":-1}`, `{"dropped":1e400}`,
		`{"reading":{"time":"2026-12-07T10:00:00Z","device":"d","quantity":"q","value":1e308}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLine(b)
		if err != nil {
			return
		}
		if len(b) > MaxLine+2 {
			t.Fatalf("accepted a line of %d bytes", len(b))
		}
		parts := 0
		if l.Reading != nil {
			parts++
		}
		if l.Dropped > 0 {
			parts++
		}
		if l.Heartbeat != nil {
			parts++
		}
		if parts != 1 {
			t.Fatalf("accepted %q with %d parts", b, parts)
		}
		again, err := json.Marshal(l)
		if err != nil {
			t.Fatalf("accepted %q, cannot encode it again: %v", b, err)
		}
		if _, err := DecodeLine(again); err != nil {
			t.Fatalf("re-encoding %s of accepted %q is refused: %v", again, b, err)
		}
	})
}
