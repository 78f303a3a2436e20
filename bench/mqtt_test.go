//go:build linux

package bench_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

var (
	// nMessages is the number of MQTT messages per BenchmarkMQTT iteration; each carries
	// mqttFields readings.
	nMessages = flag.Int("messages", 20_000, "MQTT messages per BenchmarkMQTT iteration")
	// mqttBacklog bounds how far the publisher may run ahead of envgate's PUBACKs; see
	// BenchmarkMQTT.
	mqttBacklog = flag.Int("mqtt-backlog", 1000, "BenchmarkMQTT: most messages published and not yet acknowledged by envgate")
	// mqttFlush is the forwarder's flush interval. config's default, 1s, would add up
	// to 1s of lingering at the start and the end of every pass; see README.md.
	mqttFlush = flag.Duration("mqtt-flush", 50*time.Millisecond, "BenchmarkMQTT: the forwarder's flush interval")
	// mqttDrain adds the backlog-drain sub-benchmark, which stalls on mosquitto 2.0.11
	// with more messages than envgate's subscriber can hold; see README.md.
	mqttDrain = flag.Bool("mqtt-drain", false, "BenchmarkMQTT: also drain a backlog queued while the gateway is down")
)

const (
	mqttSites      = 2                      // topics env/site-<s>/dev-<d>/json
	mqttDevices    = 3                      // per site
	mqttFields     = 3                      // pm25, pm10, no2 in every payload
	mqttStep       = 100 * time.Millisecond // between the ts of two consecutive messages
	mqttWindow     = 100                    // publishes awaiting the broker's PUBACK at most
	mqttClientID   = "envgatebench"         // the subscriber's persistent session (≤ 23 of [0-9A-Za-z])
	mqttPubID      = "envgatebenchpub"
	mqttSource     = "mqtt"
	mqttPubTimeout = 30 * time.Second

	// The publisher process's environment (see TestMQTTPublisherProcess).
	envPublishURL      = "ENVGATE_BENCH_PUBLISH_URL"
	envPublishMessages = "ENVGATE_BENCH_PUBLISH_MESSAGES"
	envPublishBacklog  = "ENVGATE_BENCH_PUBLISH_BACKLOG"
)

// mqttSub is the subscription the benchmark's source has: JSON payloads on
// env/<site>/<device>/json with the time in unix milliseconds.
var mqttSub = mqttsub.Subscription{
	Topic:    "env/+/+/json",
	Template: "env/{site}/{device}/json",
	Format:   mqttsub.FormatJSON,
	Fields:   []mqttsub.Field{{Path: "pm25", Quantity: "pm25"}, {Path: "pm10", Quantity: "pm10"}, {Path: "no2", Quantity: "no2"}},
	Time:     mqttsub.TimeSpec{Path: "ts", Format: mqttsub.TimeUnixMs},
	QoS:      1,
}

// message is one MQTT message to publish.
type message struct {
	topic   string
	payload []byte
}

// makeMessages returns n messages spread round-robin over the mqttSites×mqttDevices
// topics, message i stamped t0 + i×mqttStep, so that no two readings are the same
// InfluxDB point. The values are fixed functions of i, in range for their quantity.
func makeMessages(n int) []message {
	msgs := make([]message, n)
	for i := range msgs {
		k := i % (mqttSites * mqttDevices)
		pm25 := float64(i*7919%2000) / 10
		pm10 := pm25 + float64(i*104729%1000)/10
		no2 := float64(i*15485863%3000) / 10
		msgs[i] = message{
			topic: fmt.Sprintf("env/site-%d/dev-%d/json", k/mqttDevices+1, k%mqttDevices+1),
			payload: fmt.Appendf(nil, `{"ts":%d,"pm25":%.1f,"pm10":%.1f,"no2":%.1f}`,
				t0.Add(time.Duration(i)*mqttStep).UnixMilli(), pm25, pm10, no2),
		}
	}
	return msgs
}

// mqttData is what BenchmarkMQTT sends: the messages, and the readings they decode to
// (what the direct writes send).
type mqttData struct {
	msgs []message
	rs   []reading.Reading
}

// decodeMessages decodes every message as the subscriber does (mqttsub.Decode with
// mqttSub; the payloads carry their own time, so the arrival time does not matter).
func decodeMessages(msgs []message) ([]reading.Reading, error) {
	rs := make([]reading.Reading, 0, len(msgs)*mqttFields)
	for i, m := range msgs {
		got, err := mqttsub.Decode(mqttSub, m.topic, m.payload, time.Now())
		if err != nil {
			return nil, fmt.Errorf("message %d (%s %s): %w", i, m.topic, m.payload, err)
		}
		rs = append(rs, got...)
	}
	return rs, nil
}

// preparedMQTT is what BenchmarkMQTT sends, computed once per process.
var preparedMQTT = sync.OnceValues(func() (*mqttData, error) {
	msgs := makeMessages(*nMessages)
	rs, err := decodeMessages(msgs)
	return &mqttData{msgs: msgs, rs: rs}, err
})

// BenchmarkMQTT starts one InfluxDB and measures, with the same points (N messages of
// three readings each):
//
//   - Direct: influx.Sink.Write of the decoded readings in batches of 1000, back to back.
//   - inflight=<k>: a fresh Mosquitto with max_inflight_messages k, and gateway.Pipeline
//     with one mqttsub source (QoS 1, persistent session) and the InfluxDB sink, built
//     as cmd/envgate builds them from a default config except for the forwarder's flush
//     interval (-mqtt-flush, 50ms). A publisher in a process of its own (this test
//     binary again, TestMQTTPublisherProcess) publishes the N messages at QoS 1 with up
//     to mqttWindow awaiting the broker's PUBACK, and never more than -mqtt-backlog
//     (1000) ahead of the PUBACKs envgate has sent, which it sends only after the fsync
//     covering the message. Timed from the first publish until the forwarder has
//     acknowledged every reading and the subscriber every message.
//   - drain/inflight=20 (with -mqtt-drain): the N messages are published while the
//     gateway is down and queued in its session (untimed); timed from the start of Run.
//
// Mosquitto 2.0.11 does not keep to max_inflight_messages while it holds queued
// messages for a client: every PUBACK releases up to k more. A large backlog overflows
// the subscriber's bound; it drops the excess without PUBACK and reconnects so the
// broker delivers it again (README.md), so a drain may see messages twice.
//
// The publisher runs in its own process so that getrusage of this one measures envgate
// alone; the broker's, influxd's and the publisher's CPU are reported separately. Each
// pass is paired with a direct write of its own, in alternating order, and reported also
// as ratios to those (*-vs-direct).
func BenchmarkMQTT(b *testing.B) {
	data, err := preparedMQTT()
	if err != nil {
		b.Fatal(err)
	}
	inf, pid := startInflux(b)
	warmUp(b, inf, data.rs)
	n := len(data.msgs)
	b.Run("Direct", func(b *testing.B) {
		m := &meter{b: b, pid: pid, timed: true}
		for range b.N {
			b.StopTimer()
			directPass(b, inf, data.rs, m)
		}
		reportPerMessage(b, m.result(n))
	})
	for _, inflight := range []int{20, 100, 1000} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) { benchMQTT(b, inf, pid, data, inflight, false) })
	}
	b.Run("paho-floor", func(b *testing.B) { benchPahoFloor(b, inf, pid, data) })
	if *mqttDrain {
		b.Run("drain/inflight=20", func(b *testing.B) { benchMQTT(b, inf, pid, data, 20, true) })
	}
}

// reportPerMessage reports r, measured per message, as msgs/s, readings/s and CPU per
// message.
func reportPerMessage(b *testing.B, r result) {
	b.ReportMetric(r.perSec, "msgs/s")
	b.ReportMetric(r.perSec*mqttFields, "readings/s")
	b.ReportMetric(r.cpu, "cpu-µs/msg")
	if r.influxKnown {
		b.ReportMetric(r.influxCPU, "influxd-cpu-µs/msg")
	}
}

// benchMQTT runs b.N passes through a fresh Mosquitto with max_inflight_messages
// inflight, each paired with a direct write, and reports them (see BenchmarkMQTT).
func benchMQTT(b *testing.B, inf *testsvc.Influx, pid int, data *mqttData, inflight int, drain bool) {
	n := len(data.msgs)
	mosq := testsvc.StartMosquitto(b, testsvc.MosquittoOptions{MaxInflight: inflight, MaxQueued: n + 1000})
	broker := &procMeter{b: b, name: "mosquitto", pid: childPID("mosquitto", mosq.Dir)}
	if broker.pid == 0 {
		b.Logf("mosquitto's pid not found under /proc; its CPU is not reported")
	}
	primeSession(b, mosq.URL)

	m := &meter{b: b, pid: pid, timed: true}
	direct := &meter{b: b, pid: pid}
	var all recorder
	var sum mqttResult
	for i := range b.N {
		b.StopTimer()
		if i%2 == 0 {
			directPass(b, inf, data.rs, direct)
		}
		p := mqttPass(b, inf, mosq.URL, data, m, broker, inflight, drain)
		sum.published += p.published
		sum.publisherCPU += p.publisherCPU
		sum.durableAfter += p.durableAfter
		all.merge(p.rec)
		if i%2 == 1 {
			directPass(b, inf, data.rs, direct)
		}
	}
	total := float64(b.N * n)
	res := m.result(n)
	ref := direct.result(n)
	reportPerMessage(b, res)
	if broker.pid != 0 {
		b.ReportMetric(float64(broker.cpu.Microseconds())/total, "mosquitto-cpu-µs/msg")
	}
	if !drain {
		b.ReportMetric(float64(sum.publisherCPU.Microseconds())/total, "publisher-cpu-µs/msg")
	}
	b.ReportMetric(total/sum.durableAfter.Seconds(), "durable-msgs/s")
	b.ReportMetric(res.perSec/ref.perSec, "msgs/s-vs-direct")
	b.ReportMetric(res.cpu/ref.cpu, "cpu/msg-vs-direct")
	if res.influxKnown && ref.influxKnown && ref.influxCPU > 0 {
		b.ReportMetric(res.influxCPU/ref.influxCPU, "influxd-cpu/msg-vs-direct")
	}
	passes := time.Duration(all.passes)
	b.Logf("passes %d, %v each on average: every message PUBACKed (durable) after %v, first Sink.Write after %v; "+
		"%d writes of %d-%d readings (mean %.0f), %d short, %d failed; forwarder inside Sink.Write %.1f%% of the time; "+
		"publishing took %v",
		all.passes, (all.elapsed / passes).Round(time.Millisecond), (sum.durableAfter / passes).Round(time.Millisecond),
		(all.firstAfter / passes).Round(time.Millisecond), all.writes, all.minBatch, all.maxBatch,
		float64(all.readings)/float64(all.writes), all.short, all.failed, 100*all.busy.Seconds()/all.elapsed.Seconds(),
		(sum.published / passes).Round(time.Millisecond))
	msg := fmt.Sprintf("paired direct writes: %.0f msgs/s, %.3f cpu-µs/msg", ref.perSec, ref.cpu)
	if ref.influxKnown {
		msg += fmt.Sprintf(", %.3f influxd-cpu-µs/msg", ref.influxCPU)
	}
	b.Log(msg)
}

// mqttResult is what one mqttPass measured besides the meters.
type mqttResult struct {
	rec          *recorder
	published    time.Duration // the publisher's time from its first publish to its last PUBACK
	publisherCPU time.Duration // the publisher process's CPU in that time; 0 for a drain
	durableAfter time.Duration // from the start until every message was PUBACKed
}

// mqttPass runs data.msgs through a fresh gateway.Pipeline (new buffer, new sink, new
// subscriber on the session primed on the broker at url) into an empty database,
// measured by m and broker, then stops the pipeline and checks that every message
// arrived once, was acknowledged, and that InfluxDB holds every reading. With drain, the
// messages are published before the pipeline starts (untimed) and the measurement runs
// from the start of Run; otherwise a publisher process publishes them while the pipeline
// runs, and the measurement runs from its first publish. It ends when every message is
// acknowledged to the broker and every reading to the pipeline by InfluxDB.
func mqttPass(b *testing.B, inf *testsvc.Influx, url string, data *mqttData, m *meter, broker *procMeter, inflight int, drain bool) mqttResult {
	b.Helper()
	resetDB(b, inf)
	var res mqttResult
	if drain {
		res.published = publishAll(b, url, data.msgs, nil)
	}

	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	q := openQueue(b, dir, log)
	sink := newSink(b, inf, dir)
	rec := &recorder{sink: sink}
	cfg := mqttConfig(url)
	cfg.MaxInflight = inflight // the broker's window, as docs/config.md asks (max_inflight)
	sub, err := mqttsub.New(cfg, log.With("source", mqttSource))
	if err != nil {
		b.Fatal(err)
	}
	// As cmd/envgate builds it from a default config (sync: interval 1s; acknowledged
	// readings synced within ack_delay, at once when the broker's window is full;
	// batches of 1000), except for the flush interval, -mqtt-flush.
	p, err := gateway.New(gateway.Config{
		GatewayID: gatewayID, Site: site, Queue: q, Metrics: metrics.New(),
		SyncInterval: time.Second, AckDelay: config.DefaultAckDelay, ShutdownGrace: 10 * time.Second, Log: log,
		Sources: []gateway.Source{sub},
		Sinks: []gateway.SinkSpec{{Name: sinkName, Sink: rec, BatchSize: batchSize, FlushInterval: *mqttFlush,
			RetryInitial: time.Second, RetryMax: 2 * time.Minute, AuthRetry: time.Minute}},
	})
	if err != nil {
		b.Fatal(err)
	}
	r, err := q.Reader(sinkName) // the forwarder's own reader
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	b.Cleanup(func() { cancel(); <-done })

	n := len(data.msgs)
	var durableAt time.Time
	if drain {
		broker.start()
		m.start()
		go func() { done <- p.Run(ctx) }()
		durableAt = waitDrained(b, q, r, sub, n, len(data.rs), nil)
		m.stop()
		broker.stop()
	} else {
		go func() { done <- p.Run(ctx) }()
		waitSubscribed(b, sub)
		pub := startPublisher(b, url, n, *mqttBacklog)
		broker.start()
		m.start()
		pub.credit(0) // go
		durableAt = waitDrained(b, q, r, sub, n, len(data.rs), pub.credit)
		m.stop()
		broker.stop()
		res.published, res.publisherCPU = pub.wait()
	}

	st := stopPipeline(b, cancel, done, q, sink)
	ss := sub.Stats()
	switch {
	case drain:
		// Draining a queued session, mosquitto 2.0.11 pushes past the in-flight window;
		// the subscriber drops the excess without PUBACK and reconnects to get it again,
		// so messages may arrive more than once. InfluxDB must still hold every reading.
		if ss.Messages < uint64(n) || ss.Acked < uint64(n) || ss.Readings < uint64(len(data.rs)) || ss.DeadLettered != 0 ||
			ss.NotDurable != 0 || ss.InFlight != 0 || ss.Lost != 0 {
			b.Fatalf("subscriber Stats() = %+v, want at least %d messages acknowledged, nothing lost", ss, n)
		}
	case ss.Messages != uint64(n) || ss.Acked != uint64(n) || ss.Readings != uint64(len(data.rs)) || ss.DeadLettered != 0 ||
		ss.Dropped != 0 || ss.NotDurable != 0 || ss.InFlight != 0 || ss.Reconnects != 0:
		b.Fatalf("subscriber Stats() = %+v, want %d messages received once and acknowledged, %d readings, nothing else",
			ss, n, len(data.rs))
	}
	if (st.Appended != uint64(len(data.rs)) && !(drain && st.Appended >= uint64(len(data.rs)))) || st.Dropped != 0 || st.QuarantinedRecords != 0 || st.Degraded {
		b.Fatalf("buffer Stats() = %+v, want %d appended, nothing dropped or quarantined", st, len(data.rs))
	}
	if ss := sink.Stats(); ss.Written != uint64(len(data.rs)) || ss.DeadLettered != 0 {
		b.Fatalf("sink Stats() = %+v, want Written %d (each reading sent once) and nothing dead-lettered", ss, len(data.rs))
	}
	checkStored(b, inf, data.rs)
	rec.passes, rec.elapsed, rec.firstAfter = 1, m.last, rec.first.Sub(m.began)
	res.rec, res.durableAfter = rec, durableAt.Sub(m.began)
	return res
}

// mqttConfig is the source's configuration: mqttSub on the broker at url with a stable
// client ID; the rest are mqttsub's defaults, as config leaves them.
func mqttConfig(url string) mqttsub.Config {
	return mqttsub.Config{Name: mqttSource, Broker: url, ClientID: mqttClientID,
		Subscriptions: []mqttsub.Subscription{mqttSub}}
}

// primeSession creates the gateway's persistent session and subscription on the broker
// at url by running a subscriber until the broker confirmed the subscription, so that
// the broker queues what is published while the gateway is down.
func primeSession(b *testing.B, url string) {
	b.Helper()
	sub, err := mqttsub.New(mqttConfig(url), slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	out := make(chan reading.Batch) // nothing is published yet
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx, out) }()
	waitSubscribed(b, sub)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// waitSubscribed waits until the broker has confirmed sub's subscriptions.
func waitSubscribed(b *testing.B, sub *mqttsub.Subscriber) {
	b.Helper()
	deadline := time.Now().Add(stallLimit)
	for !sub.Stats().Subscribed {
		if time.Now().After(deadline) {
			b.Fatalf("subscriber not subscribed within %v: %+v", stallLimit, sub.Stats())
		}
		time.Sleep(pollPeriod)
	}
}

// publishAll publishes msgs at QoS 1 from one paho client, keeping at most mqttWindow of
// them waiting for their PUBACK, and returns how long it took. If credit is not nil, it
// is called before message i is published and returns when i may be published.
func publishAll(tb testing.TB, url string, msgs []message, credit func(i int)) time.Duration {
	tb.Helper()
	return publishAllAs(tb, url, mqttPubID, msgs, credit)
}

// publishAllAs is publishAll from a client with the given id.
func publishAllAs(tb testing.TB, url, id string, msgs []message, credit func(i int)) time.Duration {
	tb.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(mqttPubTimeout))
	if tok := c.Connect(); !tok.WaitTimeout(mqttPubTimeout) || tok.Error() != nil {
		tb.Fatalf("publisher: connect to %s: %v", url, tokenErr(tok))
	}
	defer c.Disconnect(250)
	var window [mqttWindow]mqtt.Token
	wait := func(i int) {
		tok := window[i%mqttWindow]
		if tok == nil {
			return
		}
		if !tok.WaitTimeout(mqttPubTimeout) || tok.Error() != nil {
			tb.Fatalf("publish message %d: %v", i, tokenErr(tok))
		}
	}
	if credit != nil {
		credit(-1) // ready
	}
	began := time.Now()
	for i, m := range msgs {
		wait(i) // the message mqttWindow before this one
		if credit != nil {
			credit(i)
		}
		window[i%mqttWindow] = c.Publish(m.topic, 1, false, m.payload)
	}
	for i := len(msgs); i < len(msgs)+mqttWindow; i++ {
		wait(i)
	}
	return time.Since(began)
}

// tokenErr is a paho token's error, or a timeout error when it has not completed.
func tokenErr(tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	default:
		return fmt.Errorf("no answer within %v", mqttPubTimeout)
	}
}

// waitDrained returns when the subscriber has acknowledged n messages to the broker and
// the buffer has appended nr readings, all of them acknowledged by the forwarder; it
// returns when the last PUBACK was seen. It passes the subscriber's acknowledged count to
// credit (if not nil) whenever it changes. It fails the benchmark when none of the counts
// moves for stallLimit.
func waitDrained(b *testing.B, q *buffer.Queue, r *buffer.Reader, sub *mqttsub.Subscriber, n, nr int, credit func(acked uint64)) time.Time {
	b.Helper()
	tick := time.NewTicker(pollPeriod)
	defer tick.Stop()
	var durableAt time.Time
	var last [3]uint64
	lastMove := time.Now()
	for {
		<-tick.C
		acked, appended, unsent := sub.Stats().Acked, q.Stats().Appended, r.Unsent()
		if credit != nil && acked != last[0] {
			credit(acked)
		}
		if acked == uint64(n) && durableAt.IsZero() {
			durableAt = time.Now()
		}
		if acked == uint64(n) && appended == uint64(nr) && unsent == 0 {
			return durableAt
		}
		if now := [3]uint64{acked, appended, uint64(unsent)}; now != last {
			last, lastMove = now, time.Now()
		} else if time.Since(lastMove) > stallLimit {
			b.Fatalf("no progress for %v: subscriber %+v, buffer %+v, %d unsent; want %d messages acknowledged, %d readings appended, 0 unsent",
				stallLimit, sub.Stats(), q.Stats(), unsent, n, nr)
		}
	}
}

// publisher is the publisher process: this test binary running TestMQTTPublisherProcess.
// It reads envgate's acknowledged count from stdin, one decimal line each (the first
// starts it), and writes "ready" and, when done, "published <ns> <cpu µs>" to stdout.
type publisher struct {
	b      *testing.B
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string   // protocol lines from stdout
	exited chan struct{} // closed when the process has been waited for
	err    error         // Wait's, once exited is closed

	mu  sync.Mutex
	out strings.Builder // everything else it wrote, for failures
}

// startPublisher starts the publisher process for n messages to url, at most backlog
// ahead of the acknowledged count, and waits until it is connected.
func startPublisher(b *testing.B, url string, n, backlog int) *publisher {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestMQTTPublisherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envPublishURL+"="+url, envPublishMessages+"="+strconv.Itoa(n),
		envPublishBacklog+"="+strconv.Itoa(backlog))
	p := &publisher{b: b, cmd: cmd, lines: make(chan string, 4), exited: make(chan struct{})}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start publisher process: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" || strings.HasPrefix(line, "published ") {
				p.lines <- line
				continue
			}
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Kill() // it has normally exited already
		<-p.exited
	})
	if line := p.next(); line != "ready" {
		p.fail("want ready, got %q", line)
	}
	return p
}

// credit tells the publisher that envgate has acknowledged acked messages.
func (p *publisher) credit(acked uint64) {
	// A write error means the process has finished or died; wait reports which.
	_, _ = fmt.Fprintf(p.stdin, "%d\n", acked)
}

// wait waits for the process to finish and returns the publishing time and its CPU.
func (p *publisher) wait() (published, cpu time.Duration) {
	line := p.next()
	var ns, us int64
	if _, err := fmt.Sscanf(line, "published %d %d", &ns, &us); err != nil {
		p.fail("want published <ns> <µs>, got %q", line)
	}
	p.stdin.Close()
	<-p.exited
	if p.err != nil {
		p.fail("%v", p.err)
	}
	return time.Duration(ns), time.Duration(us) * time.Microsecond
}

// next returns the next protocol line, failing if the process exits first.
func (p *publisher) next() string {
	select {
	case line := <-p.lines:
		return line
	case <-p.exited:
		select {
		case line := <-p.lines:
			return line
		default:
		}
		p.fail("exited: %v", p.err)
	case <-time.After(stallLimit):
		p.fail("no answer within %v", stallLimit)
	}
	return ""
}

func (p *publisher) fail(format string, args ...any) {
	p.b.Helper()
	p.mu.Lock()
	out := p.out.String()
	p.mu.Unlock()
	p.b.Fatalf("publisher process: %s; its output:\n%s", fmt.Sprintf(format, args...), out)
}

// lockedWriter collects the publisher's stderr with its stdout.
type lockedWriter struct{ p *publisher }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// TestMQTTPublisherProcess is not a test of its own: BenchmarkMQTT runs this test binary
// again with this test selected and envPublishURL set, to publish from a separate process
// so that getrusage of the benchmark process measures envgate alone. It publishes the
// benchmark's messages with publishAll, never more than envPublishBacklog ahead of the
// acknowledged count read from stdin (see publisher). Without envPublishURL it skips.
func TestMQTTPublisherProcess(t *testing.T) {
	url := os.Getenv(envPublishURL)
	if url == "" {
		t.Skip("the publisher process of BenchmarkMQTT")
	}
	n, err := strconv.Atoi(os.Getenv(envPublishMessages))
	if err != nil {
		t.Fatal(err)
	}
	backlog, err := strconv.Atoi(os.Getenv(envPublishBacklog))
	if err != nil || backlog < 1 {
		t.Fatalf("%s=%q: want a positive number", envPublishBacklog, os.Getenv(envPublishBacklog))
	}
	msgs := makeMessages(n)

	var acked atomic.Int64
	more := make(chan struct{}, 1)
	eof := make(chan struct{})
	in := bufio.NewScanner(os.Stdin)
	started := make(chan struct{})
	go func() {
		first := true
		for in.Scan() {
			v, err := strconv.ParseInt(in.Text(), 10, 64)
			if err != nil {
				break
			}
			acked.Store(v)
			if first {
				close(started)
				first = false
			}
			select {
			case more <- struct{}{}:
			default:
			}
		}
		close(eof)
	}()
	var cpu0 time.Duration
	credit := func(i int) {
		if i < 0 { // connected: report, wait for the start
			fmt.Println("ready")
			select {
			case <-started:
			case <-eof:
				t.Fatal("stdin closed before the start")
			}
			cpu0 = selfCPU(t)
			return
		}
		for int64(i)-acked.Load() >= int64(backlog) {
			select {
			case <-more:
			case <-eof:
				t.Fatalf("stdin closed at message %d of %d, %d acknowledged", i, n, acked.Load())
			}
		}
	}
	took := publishAll(t, url, msgs, credit)
	fmt.Printf("published %d %d\n", took.Nanoseconds(), (selfCPU(t) - cpu0).Microseconds())
}

// procMeter adds up the CPU another process (a server testsvc started) uses in the
// measured sections. pid 0 means unknown: it measures nothing.
type procMeter struct {
	b         *testing.B
	name      string
	pid       int
	cpu0, cpu time.Duration
}

func (p *procMeter) start() {
	if p.pid == 0 {
		return
	}
	var err error
	if p.cpu0, err = procCPU(p.pid); err != nil {
		p.b.Logf("%s CPU: %v", p.name, err)
		p.pid = 0
	}
}

func (p *procMeter) stop() {
	if p.pid == 0 {
		return
	}
	cpu, err := procCPU(p.pid)
	if err != nil {
		p.b.Logf("%s CPU: %v", p.name, err)
		p.pid = 0
		return
	}
	p.cpu += cpu - p.cpu0
}

// benchPahoFloor measures what a bare paho subscriber costs per message on the load of
// inflight=1000: the same publisher process, broker window and messages, received by a
// paho client (QoS 1 subscription, persistent session) whose handler only counts them;
// paho sends each PUBACK when the handler returns. No decoding, no disk, no forwarding:
// a floor for any gateway built on paho, which the design fixes (issue 14, item 3). Each
// pass is paired with a direct write, as in benchMQTT.
func benchPahoFloor(b *testing.B, inf *testsvc.Influx, pid int, data *mqttData) {
	n := len(data.msgs)
	mosq := testsvc.StartMosquitto(b, testsvc.MosquittoOptions{MaxInflight: 1000, MaxQueued: n + 1000})
	var got atomic.Int64
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(mosq.URL).SetClientID("envgatebenchfloor").
		SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(false).SetOrderMatters(true).
		SetConnectTimeout(mqttPubTimeout))
	if tok := c.Connect(); !tok.WaitTimeout(mqttPubTimeout) || tok.Error() != nil {
		b.Fatalf("subscriber: connect: %v", tokenErr(tok))
	}
	defer c.Disconnect(250)
	if tok := c.Subscribe(mqttSub.Topic, 1, func(mqtt.Client, mqtt.Message) { got.Add(1) }); !tok.WaitTimeout(mqttPubTimeout) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tokenErr(tok))
	}
	m := &meter{b: b, timed: true}
	direct := &meter{b: b, pid: pid}
	for i := range b.N {
		b.StopTimer()
		if i%2 == 0 {
			directPass(b, inf, data.rs, direct)
		}
		got.Store(0)
		pub := startPublisher(b, mosq.URL, n, *mqttBacklog)
		m.start()
		pub.credit(0) // go
		deadline, last := time.Now().Add(stallLimit), int64(0)
		for {
			time.Sleep(pollPeriod)
			k := got.Load()
			pub.credit(uint64(k))
			if k >= int64(n) {
				break
			}
			if k != last {
				deadline, last = time.Now().Add(stallLimit), k
			} else if time.Now().After(deadline) {
				b.Fatalf("paho subscriber: %d of %d messages, no progress for %v", k, n, stallLimit)
			}
		}
		m.stop()
		pub.wait()
		if k := got.Load(); k != int64(n) {
			b.Fatalf("paho subscriber got %d messages, want %d", k, n)
		}
		if i%2 == 1 {
			directPass(b, inf, data.rs, direct)
		}
	}
	res, ref := m.result(n), direct.result(n)
	b.ReportMetric(res.perSec, "msgs/s")
	b.ReportMetric(res.cpu, "cpu-µs/msg")
	b.ReportMetric(res.cpu/ref.cpu, "cpu/msg-vs-direct")
	b.Logf("paired direct writes: %.0f msgs/s, %.3f cpu-µs/msg", ref.perSec, ref.cpu)
}
