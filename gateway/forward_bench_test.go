package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/reading"
)

// BenchmarkForwarderDrain drains a backlog of 200 000 readings through the forwarder and
// the real InfluxDB sink into an in-process HTTP server that reads each body and answers
// 204: the forwarder's own cost (buffer reads, line protocol, gzip, HTTP), without a
// database sharing the CPU. bench/ BenchmarkDrain measures it against a real InfluxDB.
// It reports the process's CPU per reading (getrusage; the server's share is reading
// the bodies).
func BenchmarkForwarderDrain(b *testing.B) {
	const n = 200_000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	quantities := []string{"la", "pm25", "pm10", "no2", "ph", "temperature"}
	units := map[string]string{}
	for _, q := range reading.Quantities() {
		units[q.Name] = q.Unit
	}
	t0 := time.Now().Add(-time.Hour)
	rs := make([]reading.Reading, n)
	for i := range rs {
		q := quantities[i%len(quantities)]
		rs[i] = reading.New(t0.Add(time.Duration(i)*time.Millisecond), "canal-east-3", "dev-"+string(rune('a'+i%7)), q, 35+float64(i%1000)/7)
	}
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		q, err := buffer.Open(buffer.Options{Dir: filepath.Join(dir, "buffer"), CursorInterval: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Append(rs...); err != nil {
			b.Fatal(err)
		}
		if err := q.Sync(); err != nil {
			b.Fatal(err)
		}
		r, err := q.Reader("influx")
		if err != nil {
			b.Fatal(err)
		}
		sink, err := influx.New(influx.Config{Name: "influx", URL: srv.URL, Bucket: "b", Precision: time.Millisecond, Gzip: true,
			Timeout: 10 * time.Second, DeadLetter: filepath.Join(dir, "dl.lp"), GatewayID: "gw"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		f := newForwarder(SinkSpec{Name: "influx", Sink: sink, BatchSize: 1000, FlushInterval: time.Second,
			DrainBatchSize: DrainBatchSize(1000)}, r, slog.New(slog.DiscardHandler))
		drained := make(chan struct{})
		close(drained) // deliver what is there, then return
		cpu0 := rusage(b)
		b.StartTimer()
		f.run(context.Background(), drained)
		b.StopTimer()
		cpu += rusage(b) - cpu0
		if st := sink.Stats(); st.Written != n {
			b.Fatalf("sink wrote %d, want %d", st.Written, n)
		}
		sink.Close()
		q.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N*n), "cpu-µs/reading")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/reading")
}

func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
