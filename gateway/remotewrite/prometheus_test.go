package remotewrite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// newSink returns a sink writing to prom's receiver, closed at the end of the test.
func newSink(t *testing.T, prom *testsvc.Prometheus, dir string) *Sink {
	t.Helper()
	s, err := New(Config{Name: "central", URL: prom.URL + "/api/v1/write", Timeout: 5 * time.Second,
		DeadLetter: filepath.Join(dir, "central.lp"), GatewayID: "box-7"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// series is the labels of the pushed series of device and quantity at site park-3, in
// the form testsvc.Prometheus.Series keys them.
func series(device, quantity, unit string) string {
	return fmt.Sprintf(`{__name__="envgate_reading_value", device=%q, gateway="box-7", quantity=%q, site="park-3", unit=%q}`,
		device, quantity, unit)
}

// noiseBatch returns n noise readings one second apart from start, values 40, 41, ...,
// and, every tenth second, a health reading of the gateway.
func noiseBatch(start time.Time, n int) []reading.Reading {
	var rs []reading.Reading
	for i := range n {
		t := start.Add(time.Duration(i) * time.Second)
		rs = append(rs, reading.New(t, "park-3", "noise-1", "la", 40+float64(i)))
		if i%10 == 0 {
			rs = append(rs, reading.New(t, "park-3", reading.HealthDevice, "uptime", float64(i)))
		}
	}
	return rs
}

// checkStored fails unless prom holds exactly want for the series key.
func checkStored(t *testing.T, got map[string][]testsvc.TimedValue, key string, want []testsvc.TimedValue) {
	t.Helper()
	g := got[key]
	if len(g) != len(want) {
		t.Fatalf("%s: %d samples stored, want %d\ngot %v", key, len(g), len(want), g)
	}
	for i := range want {
		if g[i] != want[i] {
			t.Fatalf("%s: sample %d = %+v, want %+v", key, i, g[i], want[i])
		}
	}
}

// TestPrometheusOriginalTimestamps: every reading becomes one sample of
// envgate_reading_value at its own measurement time (to the millisecond), with the
// labels gateway, site, device, quantity and unit; the gateway's health readings too.
func TestPrometheusOriginalTimestamps(t *testing.T) {
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true})
	s := newSink(t, prom, t.TempDir())
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second).Add(123 * time.Millisecond)
	rs := noiseBatch(start, 60)
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	var la, up []testsvc.TimedValue
	for _, r := range rs {
		p := testsvc.TimedValue{T: r.Time.UnixMilli(), V: r.Value}
		if r.Device == reading.HealthDevice {
			up = append(up, p)
		} else {
			la = append(la, p)
		}
	}
	got := prom.Series(t, `envgate_reading_value{gateway="box-7"}`, 15*time.Minute, time.Now())
	if len(got) != 2 {
		t.Fatalf("series stored: %v, want 2", got)
	}
	checkStored(t, got, series("noise-1", "la", "dB(A)"), la)
	checkStored(t, got, series(reading.HealthDevice, "uptime", "s"), up)
	if st := s.Stats(); st.Written != uint64(len(rs)) || st.DeadLettered != 0 || st.Rejected != 0 {
		t.Errorf("Stats() = %+v, want %d written, nothing rejected", st, len(rs))
	}
}

// TestPrometheusDuplicateResend: a batch sent twice (at least once: the gateway
// sends its last unacknowledged batch again after a crash) leaves one sample per
// timestamp. Prometheus 2.42 rejects the older samples of each series as out of order
// (the newest one is an identical duplicate, which it accepts); the sink dead-letters
// them and Write returns nil: the cursor moves on.
func TestPrometheusDuplicateResend(t *testing.T) {
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true})
	dir := t.TempDir()
	s := newSink(t, prom, dir)
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Millisecond)
	rs := noiseBatch(start, 20)
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	again := newSink(t, prom, filepath.Join(dir, "after-crash"))
	if err := again.Write(t.Context(), rs); err != nil {
		t.Fatalf("re-sent batch: %v", err)
	}
	got := prom.Series(t, `envgate_reading_value{gateway="box-7"}`, 10*time.Minute, time.Now())
	var la []testsvc.TimedValue
	for _, r := range rs {
		if r.Device != reading.HealthDevice {
			la = append(la, testsvc.TimedValue{T: r.Time.UnixMilli(), V: r.Value})
		}
	}
	checkStored(t, got, series("noise-1", "la", "dB(A)"), la)
	// Of each of the two series, every sample but the newest is rejected.
	st := again.Stats()
	if want := uint64(len(rs) - 2); st.DeadLettered != want {
		t.Errorf("after a restart: Stats() = %+v, want %d dead-lettered", st, want)
	}
	dl, err := os.ReadFile(filepath.Join(dir, "after-crash", "central.lp"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dl), "status=400 out of order sample") {
		t.Errorf("dead-letter file does not give the reason:\n%s", dl)
	}

	// A different value at the newest stored timestamp: rejected as a duplicate,
	// dead-lettered, not retried; the first value stays.
	changed := []reading.Reading{reading.New(rs[len(rs)-1].Time, "park-3", "noise-1", "la", 99)}
	if err := s.Write(t.Context(), changed); err != nil {
		t.Fatalf("a different value at a stored timestamp: %v", err)
	}
	if st := s.Stats(); st.DeadLettered != 1 || st.Written != uint64(len(rs)) {
		t.Errorf("a different value at a stored timestamp: Stats() = %+v, want it dead-lettered", st)
	}
	dl, err = os.ReadFile(filepath.Join(dir, "central.lp"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dl), "status=400 duplicate sample for timestamp") {
		t.Errorf("dead-letter file does not give the reason:\n%s", dl)
	}
}

// TestPrometheusOutOfOrderWindow: with storage.tsdb.out_of_order_time_window set,
// Prometheus 2.42 accepts samples older than the newest of their series within the
// window (a backlog sent after live readings) and identical samples sent again, and
// the sink dead-letters nothing. Beyond the window it answers 500 "too old sample",
// which the sink dead-letters instead of retrying for ever.
func TestPrometheusOutOfOrderWindow(t *testing.T) {
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true, OutOfOrderTimeWindow: time.Hour})
	dir := t.TempDir()
	s := newSink(t, prom, dir)
	now := time.Now().Truncate(time.Millisecond)
	newer := noiseBatch(now.Add(-5*time.Minute), 10)
	older := noiseBatch(now.Add(-30*time.Minute), 10)
	for _, rs := range [][]reading.Reading{newer, older} {
		if err := s.Write(t.Context(), rs); err != nil {
			t.Fatal(err)
		}
	}
	// A new sink sends the older batch again: identical samples, accepted.
	again := newSink(t, prom, filepath.Join(dir, "again"))
	if err := again.Write(t.Context(), older); err != nil {
		t.Fatal(err)
	}
	if st := again.Stats(); st.DeadLettered != 0 {
		t.Errorf("identical samples sent again: Stats() = %+v, want nothing dead-lettered", st)
	}
	var la []testsvc.TimedValue
	for _, r := range append(older, newer...) {
		if r.Device != reading.HealthDevice {
			la = append(la, testsvc.TimedValue{T: r.Time.UnixMilli(), V: r.Value})
		}
	}
	got := prom.Series(t, `envgate_reading_value{gateway="box-7"}`, time.Hour, time.Now())
	checkStored(t, got, series("noise-1", "la", "dB(A)"), la)
	if st := s.Stats(); st.DeadLettered != 0 {
		t.Errorf("Stats() = %+v, want nothing dead-lettered within the window", st)
	}

	// Beyond the window: rejected, dead-lettered with the reason, Write returns nil.
	tooOld := noiseBatch(now.Add(-2*time.Hour), 3)
	if err := s.Write(t.Context(), tooOld); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.DeadLettered != uint64(len(tooOld)) {
		t.Errorf("beyond the window: Stats() = %+v, want %d dead-lettered", st, len(tooOld))
	}
	dl, err := os.ReadFile(filepath.Join(dir, "central.lp"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dl), "status=500 too old sample") {
		t.Errorf("dead-letter file does not give the reason:\n%s", dl)
	}
}

// TestPrometheusOutOfBounds: without an out-of-order window, Prometheus 2.42 takes no
// sample older than about an hour before the newest sample of its whole TSDB (other
// boxes keep that at now): a backlog two hours old is answered 400 "out of bounds",
// dead-lettered, and Write returns nil; 50 minutes old is still accepted.
func TestPrometheusOutOfBounds(t *testing.T) {
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true})
	dir := t.TempDir()
	s := newSink(t, prom, dir)
	now := time.Now()
	for _, r := range []reading.Reading{
		reading.New(now, "park-3", "other-box-meter", "la", 50), // the TSDB's newest sample
		reading.New(now.Add(-50*time.Minute), "park-3", "noise-1", "la", 41),
		reading.New(now.Add(-2*time.Hour), "park-3", "noise-2", "la", 42),
	} {
		if err := s.Write(t.Context(), []reading.Reading{r}); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Written != 2 || st.DeadLettered != 1 {
		t.Errorf("Stats() = %+v, want 2 written, 1 dead-lettered", st)
	}
	dl, err := os.ReadFile(filepath.Join(dir, "central.lp"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dl), "status=400 out of bounds") || !strings.Contains(string(dl), "device=noise-2") {
		t.Errorf("dead-letter file:\n%s\nwant the two-hour-old sample, out of bounds", dl)
	}
}

// TestPrometheusProbe: Prometheus 2.42 with the receiver answers the probe (405 to a
// GET of its write endpoint); stopped, it does not.
func TestPrometheusProbe(t *testing.T) {
	prom := testsvc.StartPrometheus(t, testsvc.PrometheusOptions{RemoteWriteReceiver: true})
	s := newSink(t, prom, t.TempDir())
	if err := s.Probe(t.Context()); err != nil {
		t.Fatalf("Probe of a running Prometheus: %v", err)
	}
	prom.Stop(t)
	if err := s.Probe(t.Context()); err == nil {
		t.Fatal("Probe of a stopped Prometheus = nil")
	}
}
