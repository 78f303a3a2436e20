package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/schedule"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// waitFor polls cond every 10 ms until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs p until the test ends and returns a function that stops it and waits.
func start(t *testing.T, p *gateway.Pipeline) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("pipeline did not shut down within 30s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// openQueue opens a buffer in a fresh directory, with a cursor interval of a second,
// and closes it when the test ends.
func openQueue(t *testing.T) *buffer.Queue {
	t.Helper()
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// permitPoller returns one reading per poll while it has permits; its values count up
// from 0.
type permitPoller struct {
	permits atomic.Int64
	next    atomic.Int64
}

func (p *permitPoller) Poll(context.Context) ([]reading.Reading, error) {
	if p.permits.Add(-1) < 0 {
		p.permits.Add(1)
		return nil, nil
	}
	v := p.next.Add(1) - 1
	return []reading.Reading{reading.New(clock.Now(), "canal-east", "noise-1", "la", float64(v))}, nil
}

// durable returns the values of every durable reading of device, from a fresh reader.
func durableValues(t *testing.T, r *buffer.Reader, device string) []float64 {
	t.Helper()
	rs, _, err := r.Peek(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var vs []float64
	for _, x := range rs {
		if x.Device == device {
			vs = append(vs, x.Value)
		}
	}
	return vs
}

func count(from, n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = float64(from + i)
	}
	return vs
}

// Issue 10: on a failing disk, QoS 1 MQTT messages (the broker has another copy) must
// never push readings that exist nowhere else (a poller's) out of memory, nothing may
// be acknowledged to the broker that is only in RAM, and once the disk works again
// everything arrives exactly once. The disk fails by having its segment directory
// replaced with a file: every new segment (one per append, SegmentBytes 1) fails with
// ENOTDIR, even for root.
func TestFailingDiskKeepsReadingsWithoutAnotherCopy(t *testing.T) {
	const memory = 30
	b := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{})
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := t.TempDir()
	q, err := buffer.Open(buffer.Options{Dir: dir, MaxBytes: 1 << 30, MaxAge: time.Hour, SegmentBytes: 1,
		CursorInterval: time.Second, MemoryReadings: memory, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	audit, err := q.Reader("audit")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := mqttsub.New(mqttsub.Config{Name: "lora", Broker: b.URL, ClientID: "envgateFailingDisk", MaxReconnect: time.Second,
		Subscriptions: []mqttsub.Subscription{{Topic: "lora/+/+", Template: "lora/{device}/{quantity}", Site: "park-2",
			Format: mqttsub.FormatNumber}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	poller := &permitPoller{}
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: q, Metrics: metrics.New(), SyncInterval: 50 * time.Millisecond,
		ShutdownGrace: time.Second, Log: log, Sources: []gateway.Source{sub,
			&schedule.Source{Device: "noise-1", Poller: poller, Options: schedule.Options{Interval: 10 * time.Millisecond}}}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	waitFor(t, 10*time.Second, "subscribed", func() bool { st := sub.Stats(); return st.Connected && st.Subscribed })
	publish := func(from, n int) {
		for i := range n {
			b.Publish(t, fmt.Sprintf("lora/m%d/la", from+i), 1, false, []byte(fmt.Sprint(from+i)))
		}
	}

	// The disk works.
	publish(0, 3)
	poller.permits.Add(5)
	waitFor(t, 10*time.Second, "8 durable readings", func() bool {
		return len(durableValues(t, audit, "noise-1")) == 5 && sub.Stats().Acked == 3
	})

	// The disk fails.
	segs := filepath.Join(dir, "segments")
	if err := os.Rename(segs, segs+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segs, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	publish(3, 10)
	poller.permits.Add(memory)
	waitFor(t, 20*time.Second, "the poller's readings in memory and a refused message delivered again", func() bool {
		st := sub.Stats()
		// Each round refuses the first message and leaves the 9 behind it: 20 is the
		// second round, after a forced reconnect and the broker's redelivery.
		return q.Stats().MemoryReadings == memory && poller.permits.Load() == 0 && st.ForcedReconnects >= 1 && st.NotDurable >= 20
	})
	if st := q.Stats(); st.Dropped != 0 || st.MemoryReadings != memory || !st.Degraded {
		t.Errorf("while the disk fails: buffer %+v, want the %d poller readings in memory, none dropped", st, memory)
	}
	if st := sub.Stats(); st.Acked != 3 || st.NotDurable == 0 {
		t.Errorf("while the disk fails: mqtt %+v, want nothing more acknowledged, messages refused", st)
	}
	if err := p.Healthy(); err == nil || !strings.Contains(err.Error(), "degraded") {
		t.Errorf("Healthy() = %v while the disk fails, want degraded", err)
	}

	// The disk works again.
	if err := os.Remove(segs); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(segs+".away", segs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every message acknowledged and memory empty", func() bool {
		return sub.Stats().Acked == 13 && q.Stats().MemoryReadings == 0
	})
	stop()
	if got, want := durableValues(t, audit, "noise-1"), count(0, 5+memory); !slices.Equal(got, want) {
		t.Errorf("poller readings stored %v, want %v once each, in order", got, want)
	}
	var mqtt []float64
	rs, _, err := audit.Peek(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if strings.HasPrefix(r.Device, "m") {
			mqtt = append(mqtt, r.Value)
		}
	}
	slices.Sort(mqtt)
	if want := count(0, 13); !slices.Equal(mqtt, want) {
		t.Errorf("MQTT readings stored %v, want %v once each", mqtt, want)
	}
	if err := p.Healthy(); err != nil {
		t.Errorf("Healthy() = %v after the disk recovered", err)
	}
}

// Issue 10: no source may store readings that pass for the gateway's own health
// readings (its device name, or a health quantity such as buffer_dropped): they would
// overwrite the health series in /metrics and InfluxDB and could hide data loss. They
// are rejected and counted with reason "reserved"; the gateway's own are stored.
func TestReservedHealthNamesAreRejected(t *testing.T) {
	q := openQueue(t)
	audit, _ := q.Reader("audit")
	now := time.Now()
	forged := []reading.Reading{
		reading.New(now, "canal-east", "gateway", "buffer_dropped", 0),
		reading.New(now, "canal-east", "gateway", "la", 50),
		reading.New(now, "canal-east", "esp-7", "uptime", 1),
		reading.New(now, "canal-east", "esp-7", "la", 51),
	}
	sent := make(chan struct{})
	src := sourceFunc{"lora", func(ctx context.Context, out chan<- reading.Batch) error {
		out <- reading.Batch{Readings: forged}
		close(sent)
		<-ctx.Done()
		return nil
	}}
	m := metrics.New()
	p, err := gateway.New(gateway.Config{GatewayID: "g", Site: "canal-east", Queue: q, Metrics: m,
		SyncInterval: 20 * time.Millisecond, HealthInterval: 50 * time.Millisecond, ShutdownGrace: time.Second,
		Sources: []gateway.Source{src}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	<-sent
	waitFor(t, 10*time.Second, "the gateway's own health readings", func() bool {
		return len(durableValues(t, audit, "gateway")) >= 7 && len(durableValues(t, audit, "esp-7")) == 1
	})
	stop()
	rs, _, _ := audit.Peek(1 << 20)
	for _, r := range rs {
		if r.Device == "gateway" && (r.Quantity == "la" || r.Quantity == "buffer_dropped" && r.Value == 0 && r.Site == "canal-east" && r.Time.Equal(now)) {
			t.Errorf("forged reading stored: %+v", r)
		}
		if r.Device == "esp-7" && r.Quantity != "la" {
			t.Errorf("forged reading stored: %+v", r)
		}
	}
	body := scrape(t, m)
	for _, want := range []string{
		`envgate_readings_invalid_total{device="gateway",reason="reserved"} 2`,
		`envgate_readings_invalid_total{device="esp-7",reason="reserved"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// hangingQueue is the real queue whose Sync hangs until release is closed, as an fsync
// on a dying SD card does.
type hangingQueue struct {
	*buffer.Queue
	hang    atomic.Bool
	hanging chan struct{} // closed when a Sync starts to hang
	release chan struct{}
}

func (h *hangingQueue) Sync() error {
	if h.hang.CompareAndSwap(true, false) {
		close(h.hanging)
		<-h.release
	}
	return h.Queue.Sync()
}

// Issue 10: while an fsync hangs, /healthz answers at once with 503 and says the
// writer is stalled, and envgate_writer_stalled_seconds shows for how long.
func TestHealthzReportsStalledWriter(t *testing.T) {
	q := openQueue(t)
	hq := &hangingQueue{Queue: q, hanging: make(chan struct{}), release: make(chan struct{})}
	poller := &permitPoller{}
	m := metrics.New()
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: q, Metrics: m, SyncInterval: 20 * time.Millisecond,
		ShutdownGrace: time.Second, StallAfter: 300 * time.Millisecond, HealthInterval: 20 * time.Millisecond,
		Sources: []gateway.Source{&schedule.Source{Device: "noise-1", Poller: poller, Options: schedule.Options{Interval: 10 * time.Millisecond}}}})
	if err != nil {
		t.Fatal(err)
	}
	gateway.SetQueue(p, hq)
	srv := httptest.NewServer(m.Handler(p.Healthy))
	defer srv.Close()
	client := &http.Client{Timeout: time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v (it must answer within 1 s)", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	start(t, p)
	defer close(hq.release)
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %q before the hang, want 200", code, body)
	}
	hq.hang.Store(true)
	poller.permits.Add(1)
	<-hq.hanging
	waitFor(t, 10*time.Second, "a 503 saying the writer is stalled", func() bool {
		code, body := get("/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "writer stalled for") && strings.Contains(body, "in sync")
	})
	if body := scrape(t, m); !strings.Contains(body, "envgate_writer_stalled_seconds{} 0.") &&
		!strings.Contains(body, "envgate_writer_stalled_seconds{} 1") {
		t.Errorf("envgate_writer_stalled_seconds does not show the stall:\n%s", grep(body, "writer"))
	}
}

func grep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
