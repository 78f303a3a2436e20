//go:build linux

package bench_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
	"golang.org/x/sys/unix"
)

var (
	drainN        = flag.Int("drain-readings", 1_000_000, "readings buffered before each BenchmarkDrain pass")
	drainPin      = flag.Bool("drain-pin", false, "BenchmarkDrain: run influxd on CPU 0 and this process on CPU 1, as if InfluxDB ran on a host of its own")
	drainInFlight = flag.Int("drain-in-flight", gateway.DefaultMaxInFlight, "the forwarder's max_in_flight in BenchmarkDrain")
)

const (
	directBatch   = 5000 // lines per request of the direct writers (the baseline)
	directWriters = 2
)

// drainReadings is the backlog every BenchmarkDrain pass buffers, computed once.
var drainReadings = sync.OnceValues(func() ([]reading.Reading, error) { return makeReadings(*drainN) })

// BenchmarkDrain measures how fast envgate delivers a backlog after an outage against the
// ingest limit of the same InfluxDB 1.8.10, in the same run:
//
//   - Direct: the readings' line protocol, encoded and gzipped beforehand (untimed), POSTed
//     to /api/v2/write by 2 concurrent writers in batches of 5000 lines: the server's
//     raw ingest limit, with no client work in the measured time.
//   - Drain (the measured one): the same readings are buffered first (untimed: a fresh
//     buffer.Queue, appended and synced), then a real gateway.Pipeline with one quiet
//     source and one InfluxDB sink built as cmd/envgate builds it from a default config
//     (batch_size 1000, max_in_flight 2, the drain batch, gzip, ms precision) is timed
//     from Run until the forwarder has acknowledged the last reading.
//
// Passes alternate (D P, P D, ...), each into an empty database, and each checks that
// InfluxDB holds exactly the readings (no loss) and that the sink wrote each line once
// (no duplicates). It reports drain-vs-direct (readings/s of the drain over the paired
// direct writes'), envgate's CPU per reading during the drain (getrusage of this
// process: buffer reads, encoding, gzip, HTTP), the direct writers' CPU per reading,
// and influxd's.
func BenchmarkDrain(b *testing.B) {
	rs, err := drainReadings()
	if err != nil {
		b.Fatal(err)
	}
	inf, pid := startInflux(b)
	if *drainPin {
		pinCPUs(b, pid)
	}
	bodies := directBodies(b, rs, gzip.DefaultCompression)
	direct := &meter{b: b, pid: pid}
	directWrite(b, inf, bodies, len(rs), &meter{b: b}) // warm-up, unmeasured
	drain := &meter{b: b, pid: pid, timed: true}
	var sent uint64 // request body bytes the sink sent in the drains
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if i%2 == 0 {
			directWrite(b, inf, bodies, len(rs), direct)
		}
		sent += drainPass(b, inf, rs, drain)
		if i%2 == 1 {
			directWrite(b, inf, bodies, len(rs), direct)
		}
	}
	res := drain.report(len(rs))
	ref := direct.result(len(rs))
	b.ReportMetric(res.perSec/ref.perSec, "drain-vs-direct")
	b.ReportMetric(ref.perSec, "direct-readings/s")
	b.ReportMetric(ref.cpu, "direct-cpu-µs/reading")
	if res.influxKnown && ref.influxKnown {
		b.ReportMetric(ref.influxCPU, "direct-influxd-cpu-µs/reading")
	}
	// Request body bytes per reading on the uplink: what the sink sent, and the same
	// lines in the same batches at compress/gzip's default level (6), what the client
	// library's write API sent.
	b.ReportMetric(float64(sent)/float64(b.N*len(rs)), "body-B/reading")
	b.ReportMetric(bodyBytes(bodies, len(rs)), "body-B/reading-gzip6")
	b.Logf("%d readings, max_in_flight %d; paired direct writes: %.0f readings/s, %.3f cpu-µs/reading",
		len(rs), *drainInFlight, ref.perSec, ref.cpu)
}

// pinCPUs puts every thread of influxd (pid) on CPU 0 and every thread of this process
// on CPU 1, so that the drain's client work does not take CPU from
// InfluxDB: the ratio then says whether the forwarder keeps a server of its own busy.
func pinCPUs(b *testing.B, pid int) {
	b.Helper()
	if pid == 0 {
		b.Fatal("-drain-pin: influxd's pid not found")
	}
	if runtime.NumCPU() < 2 {
		b.Fatal("-drain-pin needs 2 CPUs")
	}
	var influxSet, selfSet unix.CPUSet
	influxSet.Set(0)
	selfSet.Set(1)
	// sched_setaffinity(2) sets one thread: every thread of influxd (a Go server with
	// threads running already) and of this process is set, and threads started later
	// inherit their creator's set.
	pinThreads(b, strconv.Itoa(pid), &influxSet)
	pinThreads(b, "self", &selfSet)
}

// pinThreads sets the CPU affinity of every thread of process proc ("self" or a pid).
func pinThreads(b *testing.B, proc string, set *unix.CPUSet) {
	b.Helper()
	tasks, err := os.ReadDir("/proc/" + proc + "/task")
	if err != nil {
		b.Fatal(err)
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil {
			b.Fatalf("pin thread %d of %s: %v", tid, proc, err)
		}
	}
}

// directBodies returns rs as line protocol (influx.Line, the sink's encoding) in requests
// of directBatch lines, gzipped at level.
func directBodies(b *testing.B, rs []reading.Reading, level int) [][]byte {
	b.Helper()
	lines := make([]string, len(rs))
	for i, r := range rs {
		lines[i] = influx.Line(r, gatewayID, time.Millisecond)
	}
	return gzipBodies(b, lines, level)
}

// gzipBodies returns lines in requests of directBatch lines, gzipped at level.
func gzipBodies(b *testing.B, lines []string, level int) [][]byte {
	b.Helper()
	var bodies [][]byte
	for i := 0; i < len(lines); i += directBatch {
		raw := strings.Join(lines[i:min(i+directBatch, len(lines))], "\n")
		var out bytes.Buffer
		zw, err := gzip.NewWriterLevel(&out, level)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = zw.Write([]byte(raw))
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, out.Bytes())
	}
	return bodies
}

func bodyBytes(bodies [][]byte, n int) float64 {
	total := 0
	for _, body := range bodies {
		total += len(body)
	}
	return float64(total) / float64(n)
}

// directWrite empties the database, POSTs bodies with directWriters concurrent writers,
// measured by m, and checks that InfluxDB holds all n readings.
func directWrite(b *testing.B, inf *testsvc.Influx, bodies [][]byte, n int, m *meter) {
	b.Helper()
	resetDB(b, inf)
	postBodies(b, inf, bodies, m)
	if len(bodies) > 0 { // the warm-up's check is the same
		checkStoredN(b, inf, n)
	}
}

// postBodies POSTs the gzipped line-protocol bodies to InfluxDB's /api/v2/write from
// directWriters concurrent writers, measured by m.
func postBodies(b *testing.B, inf *testsvc.Influx, bodies [][]byte, m *meter) {
	b.Helper()
	q := url.Values{"bucket": {inf.Bucket}, "org": {""}, "precision": {"ms"}}
	target := inf.URL + "/api/v2/write?" + q.Encode()
	client := &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, directWriters)
	m.start()
	for range directWriters {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(bodies); i = int(next.Add(1) - 1) {
				req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(bodies[i]))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Content-Encoding", "gzip")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errs <- fmt.Errorf("write %d: %s: %s", i, resp.Status, msg)
					return
				}
			}
		})
	}
	wg.Wait()
	m.stop()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// drainPass buffers rs in a fresh queue (untimed), then runs a Pipeline with no sources
// and the InfluxDB sink until the forwarder has acknowledged all of rs, measured by m;
// then checks that the sink wrote each reading once and InfluxDB holds all of them.
func drainPass(b *testing.B, inf *testsvc.Influx, rs []reading.Reading, m *meter) (bodyBytes uint64) {
	b.Helper()
	resetDB(b, inf)
	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// config's defaults (as openQueue), but no max_age: the sim readings are from three days ago (t0).
	q, err := buffer.Open(buffer.Options{Dir: filepath.Join(dir, "buffer"), MaxBytes: 1 << 30,
		SegmentBytes: 8 << 20, CursorInterval: 5 * time.Second, MemoryReadings: 100_000,
		Log: log.With("component", "buffer")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	for i := 0; i < len(rs); i += 10_000 {
		if err := q.Append(rs[i:min(i+10_000, len(rs))]...); err != nil {
			b.Fatal(err)
		}
	}
	if err := q.Sync(); err != nil {
		b.Fatal(err)
	}
	sink := newSink(b, inf, dir)
	p, err := gateway.New(gateway.Config{
		GatewayID: gatewayID, Site: site, Queue: q, Metrics: metrics.New(),
		SyncInterval: time.Second, ShutdownGrace: 10 * time.Second, Log: log,
		Sources: []gateway.Source{quietSource{}},
		Sinks:   []gateway.SinkSpec{drainSpec(sink)},
	})
	if err != nil {
		b.Fatal(err)
	}
	deliverAll(b, p, q, sink, m, len(rs))
	checkStored(b, inf, rs)
	return sink.Stats().BodyBytes
}

// quietSource is a gateway.Source that sends nothing until ctx is done: a gateway whose
// sensors are quiet, so the pipeline runs as in production and the drain is not its
// shutdown (with no source, Run would close the forwarders' drained at once and give them
// only the shutdown grace).
type quietSource struct{}

func (quietSource) Name() string { return "quiet" }

func (quietSource) Run(ctx context.Context, _ chan<- reading.Batch) error {
	<-ctx.Done()
	return nil
}

// drainSpec is the sink's forwarding policy as cmd/envgate builds it from a default
// config (config.Default*), with max_in_flight from -drain-in-flight.
func drainSpec(sink *influx.Sink) gateway.SinkSpec {
	return gateway.SinkSpec{Name: sinkName, Sink: sink, BatchSize: batchSize, FlushInterval: time.Second,
		RetryInitial: time.Second, RetryMax: 2 * time.Minute, AuthRetry: time.Minute,
		MaxInFlight: *drainInFlight, DrainBatchSize: gateway.DrainBatchSize(batchSize)}
}

// checkStoredN fails unless InfluxDB holds n points in all, counted per measurement and
// field of the sim readings (makeReadings).
func checkStoredN(b *testing.B, inf *testsvc.Influx, n int) {
	b.Helper()
	rs, err := drainReadings()
	if err != nil {
		b.Fatal(err)
	}
	if n != len(rs) {
		b.Fatalf("checkStoredN: %d readings, want the drain's %d", n, len(rs))
	}
	checkStored(b, inf, rs)
}
