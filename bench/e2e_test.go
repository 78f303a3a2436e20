//go:build linux

package bench_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/schedule"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// nReadings is the number of readings per benchmark iteration. More than the default
// amortises the pipeline's start (first poll, first sync) further; see README.md.
var nReadings = flag.Int("readings", 200_000, "readings sent per benchmark iteration")

const (
	batchSize  = 1000 // readings per Sink.Write, direct and forwarded (config.DefaultBatchSize)
	perKind    = 3    // simulated devices of each kind
	gatewayID  = "bench-gw"
	site       = "bench-site"
	sinkName   = "influx"
	tickStep   = time.Second      // distance between two polls of the simulated devices
	stallLimit = 30 * time.Second // no progress for this long fails the benchmark
	pollPeriod = time.Millisecond // how often the benchmark checks whether the pipeline is done (and credits the MQTT publisher with PUBACKs)
)

// t0 is the measurement time of the first simulated poll: midnight UTC three days ago, so
// the readings, and the line protocol InfluxDB parses, are the same in every run of a day.
// It must be recent: the gateway holds readings stamped before its build time
// (docs/design.md §11), and a fixed date would fall out of InfluxDB's retention or
// behind a build one day.
var t0 = clock.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)

// makeReadings returns n readings from perKind simulated devices of every sim kind, polled
// in turn at t0, t0+tickStep, ... (the order a gateway produces them in); the last poll
// is cut short to make n. Every reading is a distinct InfluxDB point: device, field and
// time never repeat together.
func makeReadings(n int) ([]reading.Reading, error) {
	now := t0
	clock := func() time.Time { return now }
	var drivers []*sim.Driver
	for k, kind := range sim.Kinds() {
		for i := range perKind {
			d, err := sim.New(sim.Config{Kind: kind, Seed: int64(10*k + i + 1), Site: site,
				Device: fmt.Sprintf("%s-%d", kind, i+1), Now: clock})
			if err != nil {
				return nil, err
			}
			drivers = append(drivers, d)
		}
	}
	rs := make([]reading.Reading, 0, n+64)
	for tick := 0; len(rs) < n; tick++ {
		now = t0.Add(time.Duration(tick) * tickStep)
		for _, d := range drivers {
			got, err := d.Poll(context.Background())
			if err != nil {
				return nil, err
			}
			rs = append(rs, got...)
		}
	}
	return rs[:n:n], nil
}

// prepared is the readings every benchmark sends, computed once per process.
var prepared = sync.OnceValues(func() ([]reading.Reading, error) { return makeReadings(*nReadings) })

// result is what a meter measured: speed and CPU per reading.
type result struct {
	perSec      float64 // readings per second
	cpu         float64 // envgate-side (this process) CPU µs per reading
	influxCPU   float64 // influxd CPU µs per reading; 0 if unknown
	influxKnown bool
}

// BenchmarkE2E starts one InfluxDB and measures, against it and with the same readings:
//
//   - DirectWrite: influx.Sink.Write in batches of 1000, back to back, from one
//     goroutine: the sink's physical limit here.
//   - Pipeline/sync=batch: the production path, gateway.Pipeline with a source that polls
//     1000 prepared readings every millisecond (faster than InfluxDB takes them, so the
//     forwarder always has a backlog), fsync after every ingested batch (sync: batch).
//   - Pipeline/sync=1s: the same with the default group commit (sync: interval, 1s).
//
// Every pass starts from an empty database and checks that it ends up holding exactly
// the readings sent. The machine is noisy and influxd's speed drifts during a run, so
// each pipeline iteration is paired with a direct write of its own, in alternating order
// (D P, P D, D P, ...), and the pipelines report their figures also as ratios to those
// paired direct writes (*-vs-direct).
func BenchmarkE2E(b *testing.B) {
	rs, err := prepared()
	if err != nil {
		b.Fatal(err)
	}
	inf, pid := startInflux(b)
	warmUp(b, inf, rs)
	b.Run("DirectWrite", func(b *testing.B) {
		m := &meter{b: b, pid: pid, timed: true}
		for range b.N {
			b.StopTimer()
			directPass(b, inf, rs, m)
		}
		m.report(len(rs))
	})
	b.Run("Pipeline", func(b *testing.B) {
		b.Run("sync=batch", func(b *testing.B) { benchPipeline(b, inf, pid, rs, true) })
		b.Run("sync=1s", func(b *testing.B) { benchPipeline(b, inf, pid, rs, false) })
	})
}

// warmUp writes rs once, unmeasured, and empties the database again, so that the first
// sub-benchmark does not pay for a freshly started influxd (heap growth, first shard).
func warmUp(b *testing.B, inf *testsvc.Influx, rs []reading.Reading) {
	b.Helper()
	sink := newSink(b, inf, b.TempDir())
	for i := 0; i < len(rs); i += batchSize {
		j := min(i+batchSize, len(rs))
		if err := sink.Write(b.Context(), rs[i:j:j]); err != nil {
			b.Fatalf("warm-up Write(readings %d-%d): %v", i, j-1, err)
		}
	}
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	resetDB(b, inf)
}

// directPass writes rs into an empty database with one sink, in batches of batchSize,
// back to back, measured by m; then checks that InfluxDB holds all of them.
func directPass(b *testing.B, inf *testsvc.Influx, rs []reading.Reading, m *meter) {
	b.Helper()
	resetDB(b, inf)
	sink := newSink(b, inf, b.TempDir())
	m.start()
	for i := 0; i < len(rs); i += batchSize {
		j := min(i+batchSize, len(rs))
		if err := sink.Write(b.Context(), rs[i:j:j]); err != nil {
			b.Fatalf("Write(readings %d-%d): %v", i, j-1, err)
		}
	}
	m.stop()
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	if st := sink.Stats(); st.Written != uint64(len(rs)) || st.DeadLettered != 0 {
		b.Fatalf("sink Stats() = %+v, want Written %d and nothing dead-lettered", st, len(rs))
	}
	checkStored(b, inf, rs)
}

func benchPipeline(b *testing.B, inf *testsvc.Influx, pid int, rs []reading.Reading, syncEvery bool) {
	m := &meter{b: b, pid: pid, timed: true}
	direct := &meter{b: b, pid: pid}
	var all recorder
	for i := range b.N {
		b.StopTimer()
		if i%2 == 0 {
			directPass(b, inf, rs, direct)
		}
		all.merge(pipelinePass(b, inf, rs, m, syncEvery))
		if i%2 == 1 {
			directPass(b, inf, rs, direct)
		}
	}
	res := m.report(len(rs))
	ref := direct.result(len(rs))
	n := time.Duration(all.passes)
	b.Logf("passes %d, %v each on average: source done after %v, first Sink.Write after %v; %d writes of %d-%d readings "+
		"(mean %.0f), %d short, %d failed; forwarder inside Sink.Write %.1f%% of the time",
		all.passes, (all.elapsed / n).Round(time.Millisecond), (all.fedAfter / n).Round(time.Millisecond),
		(all.firstAfter / n).Round(100*time.Microsecond), all.writes, all.minBatch, all.maxBatch,
		float64(all.readings)/float64(all.writes), all.short, all.failed, 100*all.busy.Seconds()/all.elapsed.Seconds())
	b.ReportMetric(float64(all.readings)/float64(all.writes), "readings/write")
	b.ReportMetric(100*all.busy.Seconds()/all.elapsed.Seconds(), "sink-busy-%")
	b.ReportMetric(res.perSec/ref.perSec, "readings/s-vs-direct")
	b.ReportMetric(res.cpu/ref.cpu, "cpu/reading-vs-direct")
	msg := fmt.Sprintf("paired direct writes: %.0f readings/s, %.3f cpu-µs/reading", ref.perSec, ref.cpu)
	if res.influxKnown && ref.influxKnown && ref.influxCPU > 0 {
		b.ReportMetric(res.influxCPU/ref.influxCPU, "influxd-cpu/reading-vs-direct")
		msg += fmt.Sprintf(", %.3f influxd-cpu-µs/reading", ref.influxCPU)
	}
	b.Log(msg)
}

// pipelinePass runs rs through a fresh gateway.Pipeline (new buffer, new sink) into an
// empty database, measured by m from the start of Run until the forwarder has
// acknowledged the last reading; then stops the pipeline and checks that InfluxDB holds
// every reading exactly once. It returns what the forwarder sent.
func pipelinePass(b *testing.B, inf *testsvc.Influx, rs []reading.Reading, m *meter, syncEvery bool) *recorder {
	b.Helper()
	resetDB(b, inf)
	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Buffer and sink settings are config's defaults (config.Default*).
	q := openQueue(b, dir, log)
	sink := newSink(b, inf, dir)
	rec := &recorder{sink: sink}
	feed := &feeder{rs: rs}
	p, err := gateway.New(gateway.Config{
		GatewayID: gatewayID, Site: site, Queue: q, Metrics: metrics.New(),
		SyncEvery: syncEvery, SyncInterval: time.Second, ShutdownGrace: 10 * time.Second, Log: log,
		Sources: []gateway.Source{&schedule.Source{Device: "feed", Poller: feed,
			Options: schedule.Options{Interval: time.Millisecond}}},
		Sinks: []gateway.SinkSpec{{Name: sinkName, Sink: rec, BatchSize: batchSize, FlushInterval: time.Second,
			RetryInitial: time.Second, RetryMax: 2 * time.Minute, AuthRetry: time.Minute}},
	})
	if err != nil {
		b.Fatal(err)
	}
	st := deliverAll(b, p, q, sink, m, len(rs))
	if st.Appended != uint64(len(rs)) || st.Dropped != 0 || st.QuarantinedRecords != 0 || st.Degraded {
		b.Fatalf("buffer Stats() = %+v, want %d appended, nothing dropped or quarantined", st, len(rs))
	}
	checkStored(b, inf, rs)
	rec.passes, rec.elapsed = 1, m.last
	rec.firstAfter, rec.fedAfter = rec.first.Sub(m.began), feed.done.Sub(m.began)
	return rec
}

// deliverAll runs p, measured by m, until its forwarder has acknowledged n readings,
// stops it, and checks that the sink wrote each of them once and dead-lettered none. It
// returns the buffer's Stats after the stop.
func deliverAll(b *testing.B, p *gateway.Pipeline, q *buffer.Queue, sink *influx.Sink, m *meter, n int) buffer.Stats {
	b.Helper()
	r, err := q.Reader(sinkName) // the forwarder's own reader
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	// Cleanups run last-in first-out: on a failure, stop the pipeline before closing
	// the queue and the sink under it.
	b.Cleanup(func() { cancel(); <-done })
	m.start()
	go func() { done <- p.Run(ctx) }()
	waitDelivered(b, q, r, n)
	m.stop()
	st := stopPipeline(b, cancel, done, q, sink)
	if ss := sink.Stats(); ss.Written != uint64(n) || ss.DeadLettered != 0 {
		b.Fatalf("sink Stats() = %+v, want Written %d (each reading sent once) and nothing dead-lettered", ss, n)
	}
	return st
}

// waitDelivered returns once the buffer has appended n readings and the forwarder has
// acknowledged all of them, i.e. InfluxDB confirmed every write. It fails the benchmark
// when neither count moves for stallLimit.
func waitDelivered(b *testing.B, q *buffer.Queue, r *buffer.Reader, n int) {
	b.Helper()
	tick := time.NewTicker(pollPeriod)
	defer tick.Stop()
	var lastAppended uint64
	lastUnsent, lastMove := int64(-1), time.Now()
	for range tick.C {
		appended, unsent := q.Stats().Appended, r.Unsent()
		if appended == uint64(n) && unsent == 0 {
			return
		}
		if appended != lastAppended || unsent != lastUnsent {
			lastAppended, lastUnsent, lastMove = appended, unsent, time.Now()
		} else if time.Since(lastMove) > stallLimit {
			b.Fatalf("no progress for %v: buffer %+v, %d unsent; want %d appended, 0 unsent", stallLimit, q.Stats(), unsent, n)
		}
	}
}

// feeder is a schedule.Poller that returns the next batchSize prepared readings per poll
// and nothing once they are all out. Poll is called from one goroutine (schedule.Run).
type feeder struct {
	rs   []reading.Reading
	next int
	done time.Time // when the last reading was handed out
}

// Poll ignores ctx: it never blocks, and a 1 ms poll timeout that expires while the
// scheduler's goroutine waits for a CPU must not turn into a failed poll.
func (f *feeder) Poll(context.Context) ([]reading.Reading, error) {
	i := f.next
	j := min(i+batchSize, len(f.rs))
	f.next = j
	if i == j {
		return nil, nil
	}
	if j == len(f.rs) {
		f.done = time.Now()
	}
	return f.rs[i:j:j], nil // capped: nobody may append into the next batch
}

// recorder is a gateway.Sink that passes batches to the real sink and records what the
// forwarder actually sent. Write is called from the forwarder's goroutine; the fields are
// read after Run has returned.
type recorder struct {
	mu                       sync.Mutex // the forwarder's requests in flight record concurrently
	sink                     gateway.Sink
	writes, readings, failed int
	short                    int // batches of fewer than batchSize readings
	minBatch, maxBatch       int
	busy                     time.Duration // time spent inside the real sink's Write
	first                    time.Time     // start of the first Write

	// Set by pipelinePass, summed by merge.
	passes               int
	elapsed              time.Duration // measured time
	firstAfter, fedAfter time.Duration // from the start to the first Write; to the source's last poll
}

func (r *recorder) Write(ctx context.Context, batch []reading.Reading) error {
	return r.Prepare(batch)(ctx)
}

// Prepare makes the recorder a gateway.Preparer when its sink is one (the InfluxDB sink
// is), so the forwarder runs its requests in flight as it does in production. With
// several in flight, busy adds up their overlapping times.
func (r *recorder) Prepare(batch []reading.Reading) func(context.Context) error {
	send := func(ctx context.Context) error { return r.sink.Write(ctx, batch) }
	if p, ok := r.sink.(gateway.Preparer); ok {
		send = p.Prepare(batch)
	}
	return func(ctx context.Context) error {
		began := time.Now()
		err := send(ctx)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.first.IsZero() || began.Before(r.first) {
			r.first = began
		}
		r.busy += time.Since(began)
		if err != nil {
			r.failed++
			return err
		}
		n := len(batch)
		if r.writes == 0 || n < r.minBatch {
			r.minBatch = n
		}
		r.maxBatch = max(r.maxBatch, n)
		if n < batchSize {
			r.short++
		}
		r.writes++
		r.readings += n
		return nil
	}
}

func (r *recorder) merge(o *recorder) {
	if r.writes == 0 || o.minBatch < r.minBatch {
		r.minBatch = o.minBatch
	}
	r.maxBatch = max(r.maxBatch, o.maxBatch)
	r.writes += o.writes
	r.readings += o.readings
	r.failed += o.failed
	r.short += o.short
	r.busy += o.busy
	r.passes += o.passes
	r.elapsed += o.elapsed
	r.firstAfter += o.firstAfter
	r.fedAfter += o.fedAfter
}

// stopPipeline cancels a pipeline whose Run reports to done, waits for it (30 s at
// most), closes the queue and the sink, and returns the queue's last Stats.
func stopPipeline(b *testing.B, cancel context.CancelFunc, done chan error, q *buffer.Queue, sink *influx.Sink) buffer.Stats {
	b.Helper()
	cancel()
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			b.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		b.Fatal("pipeline did not shut down within 30s")
	}
	st := q.Stats()
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	return st
}

// openQueue opens a new buffer under dir with config's defaults (config.Default*) and
// closes it in b.Cleanup if the benchmark has not.
func openQueue(b *testing.B, dir string, log *slog.Logger) *buffer.Queue {
	b.Helper()
	q, err := buffer.Open(buffer.Options{Dir: filepath.Join(dir, "buffer"), MaxBytes: 1 << 30,
		MaxAge: 720 * time.Hour, SegmentBytes: 8 << 20, CursorInterval: 5 * time.Second,
		MemoryReadings: 100_000, Log: log.With("component", "buffer")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	return q
}

// newSink returns the sink as cmd/envgate builds it from a default config: gzip, ms
// precision, 10s timeout.
func newSink(b *testing.B, inf *testsvc.Influx, dir string) *influx.Sink {
	b.Helper()
	log := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	sink, err := influx.New(influx.Config{Name: sinkName, URL: inf.URL, Bucket: inf.Bucket,
		Precision: time.Millisecond, Gzip: true, Timeout: 10 * time.Second,
		DeadLetter: filepath.Join(dir, "deadletter", sinkName+".lp"), GatewayID: gatewayID}, log.With("sink", sinkName))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	return sink
}

// resetDB drops and recreates the database, so that every iteration writes into an empty
// one and no compaction of an earlier iteration's shards runs while it is timed.
func resetDB(b *testing.B, inf *testsvc.Influx) {
	b.Helper()
	inf.Exec(b, fmt.Sprintf("DROP DATABASE %q", inf.DB))
	inf.Exec(b, fmt.Sprintf("CREATE DATABASE %q", inf.DB))
}

// checkStored fails unless InfluxDB holds exactly as many values of every field of every
// measurement as rs has readings of it.
func checkStored(b *testing.B, inf *testsvc.Influx, rs []reading.Reading) {
	b.Helper()
	type key struct{ measurement, field string }
	want := map[key]int{}
	for _, r := range rs {
		q, _ := reading.Lookup(r.Quantity)
		want[key{string(q.Domain), r.Quantity}]++
	}
	total := 0
	for k, n := range want {
		got := inf.Count(b, k.measurement, k.field)
		total += got
		if got != n {
			b.Errorf("InfluxDB holds %d values of %s.%s, want %d", got, k.measurement, k.field, n)
		}
	}
	if total != len(rs) {
		b.Fatalf("InfluxDB holds %d points, want %d", total, len(rs))
	}
}
