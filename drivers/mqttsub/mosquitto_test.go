package mqttsub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// These tests run against a real mosquitto started by internal/testsvc on a free
// loopback port. They are skipped when the binary is missing or with -short, except
// under CI=true, where a missing binary fails them.

const waitLimit = 15 * time.Second

// broker is a mosquitto for one test, with the publishing helpers of these tests.
type broker struct {
	t *testing.T
	*testsvc.Mosquitto
}

func startBroker(t *testing.T, opt testsvc.MosquittoOptions) *broker {
	t.Helper()
	return &broker{t: t, Mosquitto: testsvc.StartMosquitto(t, opt)}
}

func (b *broker) start() { b.t.Helper(); b.Start(b.t) }
func (b *broker) stop()  { b.t.Helper(); b.Stop(b.t) }

// tail returns the last 30 lines of the broker's log.
func (b *broker) tail() string {
	data, _ := os.ReadFile(b.Log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// waitAcked waits until the broker's log shows a PUBACK from clientID for n distinct
// packet identifiers: the broker then holds none of the session's first n messages.
// The subscriber's Stats().Acked cannot tell this: it counts a message acknowledged
// again after a redelivery, and a PUBACK sent just before a connection ends may never
// reach the broker.
func (b *broker) waitAcked(clientID string, n int) {
	b.t.Helper()
	prefix := "Received PUBACK from " + clientID + " (Mid: "
	deadline := time.Now().Add(waitLimit)
	for {
		mids := map[string]bool{}
		for _, line := range strings.Split(readFile(b.t, b.Log), "\n") {
			if _, rest, ok := strings.Cut(line, prefix); ok {
				mid, _, _ := strings.Cut(rest, ",")
				mids[mid] = true
			}
		}
		if len(mids) >= n {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the broker has PUBACKs from %s for %d messages, want %d:\n%s", clientID, len(mids), n, b.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var pubSeq atomic.Int64

// publish sends QoS 1 messages from a fresh clean-session client and waits for PUBACK.
func (b *broker) publish(msgs ...[2]string) {
	b.t.Helper()
	o := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(fmt.Sprintf("pub%d", pubSeq.Add(1))).SetProtocolVersion(4)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		b.t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for _, m := range msgs {
		if tok := c.Publish(m[0], 1, false, m[1]); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			b.t.Fatalf("publish %s: %v", m[0], tok.Error())
		}
	}
}

// publishMany publishes n QoS 1 messages, message(i) each, from one clean-session
// client with up to 500 awaiting the broker's PUBACK.
func (b *broker) publishMany(n int, message func(i int) (topic, payload string)) {
	b.t.Helper()
	o := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(fmt.Sprintf("pub%d", pubSeq.Add(1))).SetProtocolVersion(4)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		b.t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	var window [500]mqtt.Token
	wait := func(i int) {
		if tok := window[i%len(window)]; tok != nil && (!tok.WaitTimeout(waitLimit) || tok.Error() != nil) {
			b.t.Fatalf("publish message %d: %v", i-len(window), tok.Error())
		}
	}
	for i := range n {
		wait(i)
		topic, payload := message(i)
		window[i%len(window)] = c.Publish(topic, 1, false, payload)
	}
	for i := n; i < n+len(window); i++ {
		wait(i)
	}
}

// sub is a Subscriber running against a test broker.
type sub struct {
	t      *testing.T
	s      *Subscriber
	out    chan reading.Batch
	cancel context.CancelFunc
	done   chan error
}

func testConfig(b *broker, clientID string, subs ...Subscription) Config {
	return Config{
		Name:          "test",
		Broker:        b.URL,
		ClientID:      clientID,
		Subscriptions: subs,
		MaxReconnect:  time.Second,
		Now:           func() time.Time { return arrival },
	}
}

// runSub starts a Subscriber with cfg; tune adjusts it first (its limits).
func runSub(t *testing.T, cfg Config, tune ...func(*Subscriber)) *sub {
	t.Helper()
	// Logs show with -v or on failure.
	s, err := New(cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	// One batch per message, so that the tests can make each durable on its own; the
	// tests that take batches as they come (consume) restore the default.
	s.lim.group = 1
	for _, f := range tune {
		f(s)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &sub{t: t, s: s, out: make(chan reading.Batch), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx, r.out) }()
	t.Cleanup(r.stop)
	return r
}

func (r *sub) stop() {
	r.t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run() = %v", err)
		}
	case <-time.After(waitLimit):
		r.t.Errorf("Run did not return after cancel")
	}
	r.cancel = nil
}

func (r *sub) next() reading.Batch {
	r.t.Helper()
	select {
	case b := <-r.out:
		return b
	case <-time.After(waitLimit):
		r.t.Fatalf("no batch within %v; stats %+v", waitLimit, r.s.Stats())
		return reading.Batch{}
	}
}

// none checks that no batch arrives for a while (the broker holds messages back).
func (r *sub) none(d time.Duration) {
	r.t.Helper()
	select {
	case b := <-r.out:
		r.t.Fatalf("unexpected batch %v", b.Readings)
	case <-time.After(d):
	}
}

func (r *sub) waitStats(what string, ok func(Stats) bool) {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !ok(r.s.Stats()) {
		if time.Now().After(deadline) {
			r.t.Fatalf("waiting for %s: stats %+v", what, r.s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *sub) waitSubscribed() {
	r.t.Helper()
	r.waitStats("subscribed", func(st Stats) bool { return st.Connected && st.Subscribed })
}

func laNumber(device string, v float64) []reading.Reading {
	return []reading.Reading{rd(arrival, "park-2", device, "la", v)}
}

func TestRunFormats(t *testing.T) {
	b := startBroker(t, testsvc.MosquittoOptions{})
	cfg := testConfig(b, "envgateFormats", esp32, loraNumber, waterLP)
	cfg.DeadLetter = filepath.Join(t.TempDir(), "var", "dead.log")
	r := runSub(t, cfg)
	r.waitSubscribed()
	b.publish(
		[2]string{"env/canal-east/esp-7/air", `{"data":{"pm25":35.2,"pm10":61}}`},
		[2]string{"env/canal-east/esp-7/air", `{"data":{"pm25":35.2`},
		[2]string{"lora/nm-1/la", "63.4"},
		[2]string{"water/section-9/up", "wq,device=probe-a ph=7.1,do=8i 1764316800000000000"},
	)
	lpTime := time.Unix(1764316800, 0).UTC()
	want := [][]reading.Reading{
		{rd(arrival, "canal-east", "esp-7", "pm25", 35.2), rd(arrival, "canal-east", "esp-7", "pm10", 61)},
		laNumber("nm-1", 63.4),
		{rd(lpTime, "section-9", "probe-a", "ph", 7.1), rd(lpTime, "section-9", "probe-a", "do", 8)},
	}
	for i, w := range want {
		got := r.next()
		if !sameReadings(got.Readings, w) {
			t.Errorf("batch %d = %v, want %v", i, got.Readings, w)
		}
		got.Durable(nil)
	}
	r.waitStats("4 acks", func(st Stats) bool { return st.Acked == 4 })
	st := r.s.Stats()
	if st.Messages != 4 || st.Readings != 5 || st.DeadLettered != 1 || st.ErrorsByKind[KindJSON] != 1 || st.InFlight != 0 {
		t.Errorf("Stats() = %+v", st)
	}
	r.stop()
	data, err := os.ReadFile(cfg.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	if want := "2026-11-28T08:00:00Z topic=env/canal-east/esp-7/air reason=json: payload is not JSON: unexpected EOF\t\"{\\\"data\\\":{\\\"pm25\\\":35.2\"\n"; string(data) != want {
		t.Errorf("dead-letter file = %q, want %q", data, want)
	}
}

// With an in-flight window of 2, the broker sends the third message only after a
// PUBACK: this shows the subscriber acknowledges only after Durable(nil), in order, and
// that malformed messages are acknowledged at once.
func TestRunAcksWhenDurable(t *testing.T) {
	b := startBroker(t, testsvc.MosquittoOptions{MaxInflight: 2})
	r := runSub(t, testConfig(b, "envgateAcks", loraNumber))
	r.waitSubscribed()
	b.publish([2]string{"lora/a/la", "1"}, [2]string{"lora/a/la", "2"}, [2]string{"lora/a/la", "3"}, [2]string{"lora/a/la", "4"})
	b1, b2 := r.next(), r.next()
	if !sameReadings(b1.Readings, laNumber("a", 1)) || !sameReadings(b2.Readings, laNumber("a", 2)) {
		t.Fatalf("batches %v %v, want 1 and 2", b1.Readings, b2.Readings)
	}
	r.none(500 * time.Millisecond)
	b2.Durable(nil) // the later one first: its PUBACK waits for the first
	r.none(300 * time.Millisecond)
	if st := r.s.Stats(); st.Acked != 0 || st.InFlight != 2 {
		t.Errorf("before the first Durable: Stats() = %+v, want nothing acked and 2 in flight", st)
	}
	b1.Durable(nil)
	b3, b4 := r.next(), r.next()
	if !sameReadings(b3.Readings, laNumber("a", 3)) || !sameReadings(b4.Readings, laNumber("a", 4)) {
		t.Fatalf("batches %v %v, want 3 and 4", b3.Readings, b4.Readings)
	}
	b3.Durable(nil)
	b4.Durable(nil)

	// Malformed messages do not hold the window: the good one behind them arrives.
	b.publish([2]string{"lora/a/la", "x"}, [2]string{"lora/a/pm2.5", "1"}, [2]string{"lora/a/la", "999"}, [2]string{"lora/a/la", "5"})
	b5 := r.next()
	if !sameReadings(b5.Readings, laNumber("a", 5)) {
		t.Fatalf("batch %v, want 5", b5.Readings)
	}
	b5.Durable(nil)
	r.waitStats("8 acks", func(st Stats) bool { return st.Acked == 8 })
	st := r.s.Stats()
	if st.DeadLettered != 3 || st.ErrorsByKind[KindNumber] != 1 || st.ErrorsByKind[KindQuantity] != 1 || st.ErrorsByKind[KindRange] != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

// Messages published while the gateway is stopped, and even while the broker restarts,
// arrive when it runs again with the same client ID. The second subscriber starts
// before the broker, so this also covers connecting at boot without a broker.
func TestRunPersistentSession(t *testing.T) {
	b := startBroker(t, testsvc.MosquittoOptions{})
	cfg := testConfig(b, "envgatePersist", loraNumber)
	r1 := runSub(t, cfg)
	r1.waitSubscribed()
	r1.stop()
	if st := r1.s.Stats(); st.Connected {
		t.Errorf("after Run returned: Stats().Connected = true")
	}

	b.publish([2]string{"lora/a/la", "1"}, [2]string{"lora/b/la", "2"}, [2]string{"lora/a/la", "3"})
	b.stop()
	r2 := runSub(t, cfg)
	time.Sleep(300 * time.Millisecond) // let the first connection attempts fail
	if st := r2.s.Stats(); st.Connected {
		t.Fatalf("connected without a broker: %+v", st)
	}
	b.start()
	for i, w := range [][]reading.Reading{laNumber("a", 1), laNumber("b", 2), laNumber("a", 3)} {
		got := r2.next()
		if !sameReadings(got.Readings, w) {
			t.Errorf("batch %d = %v, want %v", i, got.Readings, w)
		}
		got.Durable(nil)
	}
	r2.waitStats("3 acks", func(st Stats) bool { return st.Acked == 3 })
	r2.stop()

	// Acknowledged messages are not delivered again.
	r3 := runSub(t, cfg)
	r3.waitSubscribed()
	r3.none(500 * time.Millisecond)
}

// A message whose batch the pipeline refused (the disk fails) is left unacknowledged,
// the subscriber reconnects, and the broker delivers it again; it is acknowledged once
// durable. A message whose batch the pipeline still holds when the connection ends is
// delivered again on the next one, and the session (with its subscriptions) survives
// the broker's restart.
func TestRunRedeliversRefusedAndHeld(t *testing.T) {
	b := startBroker(t, testsvc.MosquittoOptions{})
	r := runSub(t, testConfig(b, "envgateRedeliver", loraNumber), func(s *Subscriber) { s.lim.forcedGap = 50 * time.Millisecond })
	r.waitSubscribed()
	b.publish([2]string{"lora/a/la", "1"})
	b1 := r.next()
	if !b1.Redeliverable {
		t.Fatalf("the batch of a QoS 1 message is not redeliverable")
	}
	b1.Durable(errors.New("buffer refused readings that have another copy: buffer degraded"))
	again := r.next()
	if !sameReadings(again.Readings, b1.Readings) {
		t.Fatalf("delivered again %v, want %v", again.Readings, b1.Readings)
	}
	again.Durable(nil)
	r.waitStats("ack", func(st Stats) bool {
		return st.Acked == 1 && st.NotDurable == 1 && st.ForcedReconnects == 1 && st.InFlight == 0 && st.Held == 0
	})

	b.publish([2]string{"lora/a/la", "2"})
	held := r.next() // the pipeline holds it across the broker's restart
	b.stop()
	r.waitStats("connection lost", func(st Stats) bool { return !st.Connected })
	b.start()
	redelivered := r.next()
	if !sameReadings(redelivered.Readings, laNumber("a", 2)) {
		t.Fatalf("redelivered %v, want 2", redelivered.Readings)
	}
	held.Durable(nil) // its connection is gone: no PUBACK
	redelivered.Durable(nil)
	r.waitStats("ack", func(st Stats) bool { return st.Acked == 2 && st.Reconnects >= 2 && st.Subscribed && st.InFlight == 0 })

	// The broker kept the session, so the subscriber did not subscribe again, and new
	// messages still flow.
	b.publish([2]string{"lora/a/la", "3"})
	b3 := r.next()
	if !sameReadings(b3.Readings, laNumber("a", 3)) {
		t.Fatalf("batch %v, want 3", b3.Readings)
	}
	b3.Durable(nil)
	r.waitStats("ack", func(st Stats) bool { return st.Acked == 3 })
	if log, _ := os.ReadFile(b.Log); strings.Count(string(log), "envgateRedeliver 1 lora/+/+") != 1 {
		t.Errorf("want exactly one SUBSCRIBE in the broker log:\n%s", b.tail())
	}
}

// consumer is a pipeline for the stream tests: it takes every batch, and calls
// Durable for the batches it took every commit interval, with the error fail returns
// (nil: durable). It records the devices of the batches made durable.
type consumer struct {
	mu      sync.Mutex
	durable map[string]int // device → batches made durable
	batches int
}

func consume(t *testing.T, out <-chan reading.Batch, perBatch, commit time.Duration, fail func() error) *consumer {
	c := &consumer{durable: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(commit)
		defer tick.Stop()
		var waiting []reading.Batch
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-out:
				if perBatch > 0 {
					time.Sleep(perBatch)
				}
				waiting = append(waiting, b)
			case <-tick.C:
				for _, b := range waiting {
					err := fail()
					if err == nil {
						c.mu.Lock()
						for _, r := range b.Readings {
							c.durable[r.Device]++
						}
						c.mu.Unlock()
					}
					b.Durable(err)
				}
				c.mu.Lock()
				c.batches += len(waiting)
				c.mu.Unlock()
				waiting = waiting[:0]
			}
		}
	}()
	return c
}

// unique returns how many devices had a batch made durable, and how many batches.
func (c *consumer) unique() (devices, batches int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.durable), c.batches
}

// waitUnique waits until n devices had a batch made durable, failing if that count
// makes no progress for waitLimit.
func (r *sub) waitUnique(c *consumer, n int) {
	r.t.Helper()
	last, moved := -1, time.Now()
	for {
		got, _ := c.unique()
		if got == n {
			return
		}
		if got != last {
			last, moved = got, time.Now()
		} else if time.Since(moved) > waitLimit {
			r.t.Fatalf("stalled at %d of %d messages for %v; stats %+v", got, n, waitLimit, r.s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits until the subscriber holds nothing and no batch has arrived for quiet.
func (r *sub) settle(c *consumer, quiet time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	_, last := c.unique()
	since := time.Now()
	for time.Since(since) < quiet || r.s.Stats().InFlight != 0 || r.s.Stats().Held != 0 {
		if time.Now().After(deadline) {
			r.t.Fatalf("not settled within %v; stats %+v", waitLimit, r.s.Stats())
		}
		if _, n := c.unique(); n != last {
			last, since = n, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The pipeline refuses the first 30 batches (the disk fails), then takes them: every
// message is delivered again by the broker after the reconnects the subscriber forces,
// made durable and acknowledged, and nothing is dropped for lack of room.
func TestRunRefusedUntilDurable(t *testing.T) {
	const n, failures = 100, 30
	b := startBroker(t, testsvc.MosquittoOptions{})
	cfg := testConfig(b, "envgateRefused", loraNumber)
	r := runSub(t, cfg, func(s *Subscriber) { s.lim.forcedGap = 10 * time.Millisecond })
	r.waitSubscribed()
	var calls atomic.Int64
	c := consume(t, r.out, 0, 2*time.Millisecond, func() error {
		if calls.Add(1) <= failures {
			return errors.New("buffer refused readings that have another copy: buffer degraded")
		}
		return nil
	})
	b.publishMany(n, func(i int) (string, string) { return fmt.Sprintf("lora/d%d/la", i), "50" })
	r.waitUnique(c, n)
	r.waitStats("every message acknowledged", func(st Stats) bool { return st.Acked >= n && st.InFlight == 0 })
	b.waitAcked("envgateRefused", n)
	st := r.s.Stats()
	if st.NotDurable < failures || st.ForcedReconnects < 1 || st.Dropped != 0 || st.Messages < n {
		t.Errorf("Stats() = %+v, want at least %d not durable, a forced reconnect, none dropped", st, failures)
	}
	r.stop()
	// The broker holds nothing more for the session.
	r2 := runSub(t, cfg)
	r2.waitSubscribed()
	r2.none(500 * time.Millisecond)
}

// 20 000 messages queued in the session while the gateway is away arrive all when it
// comes back, though mosquitto 2.0.11 sends them far beyond its in-flight window and
// overfills the subscriber: the messages it drops come again after the reconnects it
// forces. Duplicates are allowed; every message must be made durable at least once.
func TestRunDrainsBacklog(t *testing.T) {
	const n = 20_000
	b := startBroker(t, testsvc.MosquittoOptions{MaxQueued: n + 1000})
	backlog := loraNumber
	backlog.MaxDevices = n // one device per message
	cfg := testConfig(b, "envgateBacklog", backlog)
	prime := runSub(t, cfg)
	prime.waitSubscribed()
	prime.stop()
	b.publishMany(n, func(i int) (string, string) { return fmt.Sprintf("lora/d%d/la", i), "50" })

	// A slow pipeline: 20µs and more per batch, a group commit every 5ms. The bounds
	// are lowered so that the drain takes several forced reconnects.
	r := runSub(t, cfg, func(s *Subscriber) { s.lim.held, s.lim.forcedGap = 4000, 200*time.Millisecond })
	c := consume(t, r.out, 20*time.Microsecond, 5*time.Millisecond, func() error { return nil })
	r.waitUnique(c, n)
	r.settle(c, 500*time.Millisecond)
	b.waitAcked("envgateBacklog", n)
	st := r.s.Stats()
	t.Logf("stats %+v", st)
	if st.Dropped == 0 || st.ForcedReconnects == 0 || st.Acked < n || st.Lost != 0 {
		t.Errorf("Stats() = %+v, want drops, forced reconnects and at least %d acknowledged", st, n)
	}
	r.stop()
	r2 := runSub(t, cfg)
	r2.waitSubscribed()
	r2.none(500 * time.Millisecond)
}

// A subscription the broker refuses (SUBACK 0x80) is retried while connected, and
// succeeds once the broker allows it, without a reconnect. mosquitto's acl_file checks
// only delivery; its dynamic-security plugin checks SUBSCRIBE too, and changes at run
// time through $CONTROL.
func TestRunRetriesRefusedSubscription(t *testing.T) {
	// Debian's mosquitto package ships it under the architecture's library directory.
	plugins, _ := filepath.Glob("/usr/lib/*/mosquitto_dynamic_security.so")
	if len(plugins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto's dynamic-security plugin is missing (Debian package mosquitto)")
		}
		t.Skip("mosquitto's dynamic-security plugin is missing (Debian package mosquitto)")
	}
	plugin := plugins[0]
	conf := filepath.Join(t.TempDir(), "dynsec.json")
	// Anonymous clients may publish and receive anything and send dynamic-security
	// commands, but not subscribe.
	deny := `{"defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true, "subscribe": false, "unsubscribe": true},
		"clients": [], "groups": [{"groupname": "anon", "roles": [{"rolename": "control"}]}], "anonymousGroup": "anon",
		"roles": [{"rolename": "control", "acls": [{"acltype": "publishClientSend", "topic": "$CONTROL/dynamic-security/#", "allow": true}]}]}`
	if err := os.WriteFile(conf, []byte(deny), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, testsvc.MosquittoOptions{Extra: []string{"plugin " + plugin, "plugin_opt_config_file " + conf}})
	r := runSub(t, testConfig(b, "envgateACL", loraNumber))
	r.waitStats("connected", func(st Stats) bool { return st.Connected })
	deadline := time.Now().Add(waitLimit)
	for strings.Count(readFile(t, b.Log), "Received SUBSCRIBE from envgateACL") < 2 { // refused, and tried again
		if time.Now().After(deadline) {
			t.Fatalf("no second SUBSCRIBE:\n%s", b.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := r.s.Stats(); st.Subscribed {
		t.Fatalf("subscribed though the broker refuses it: %+v", st)
	}
	b.publish([2]string{"$CONTROL/dynamic-security/v1",
		`{"commands":[{"command":"setDefaultACLAccess","acls":[{"acltype":"subscribe","allow":true}]}]}`})
	r.waitSubscribed()
	b.publish([2]string{"lora/a/la", "1"})
	got := r.next()
	if !sameReadings(got.Readings, laNumber("a", 1)) {
		t.Fatalf("batch %v, want 1", got.Readings)
	}
	got.Durable(nil)
	r.waitStats("ack", func(st Stats) bool { return st.Acked == 1 })
	if st := r.s.Stats(); st.Reconnects != 0 {
		t.Errorf("Stats().Reconnects = %d, want 0", st.Reconnects)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A broker that lost the session (here: a new client ID's first connection to a broker
// without the old state) is subscribed to again after a reconnect.
func TestRunResubscribesWithoutSession(t *testing.T) {
	b := startBroker(t, testsvc.MosquittoOptions{})
	r := runSub(t, testConfig(b, "envgateResub", loraNumber))
	r.waitSubscribed()
	// Restart the broker with its persistence removed: the session is gone.
	b.stop()
	matches, _ := filepath.Glob(filepath.Join(b.Dir, "data", "*.db"))
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(matches) == 0 {
		t.Fatalf("no persistence file in %s", filepath.Join(b.Dir, "data"))
	}
	b.start()
	r.waitStats("reconnect", func(st Stats) bool { return st.Reconnects >= 1 && st.Subscribed })
	b.publish([2]string{"lora/a/la", "7"})
	got := r.next()
	if !sameReadings(got.Readings, laNumber("a", 7)) {
		t.Fatalf("batch %v, want 7", got.Readings)
	}
	got.Durable(nil)
	if log, _ := os.ReadFile(b.Log); strings.Count(string(log), "envgateResub 1 lora/+/+") != 2 {
		t.Errorf("want two SUBSCRIBEs in the broker log:\n%s", log)
	}
}

// TestRunDeadLetterFIFO: a named pipe where the dead-letter file should be (issue 10
// review) is a failed dead-letter write, not a blocked source: the malformed message is
// counted and acknowledged, the failure logged once, and the messages after it flow.
func TestRunDeadLetterFIFO(t *testing.T) {
	b := startBroker(t, testsvc.MosquittoOptions{})
	cfg := testConfig(b, "envgateDLFIFO", esp32, loraNumber)
	cfg.DeadLetter = filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(cfg.DeadLetter, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testsvc.LogBuffer
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &sub{t: t, s: s, out: make(chan reading.Batch), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx, r.out) }()
	t.Cleanup(r.stop)
	r.waitSubscribed()
	b.publish(
		[2]string{"env/canal-east/esp-7/air", `{"data":{"pm25":35.2`},
		[2]string{"env/canal-east/esp-7/air", `{"data":{"pm25`},
		[2]string{"lora/nm-1/la", "63.4"},
	)
	got := r.next()
	if w := laNumber("nm-1", 63.4); !sameReadings(got.Readings, w) {
		t.Errorf("batch = %v, want %v", got.Readings, w)
	}
	got.Durable(nil)
	r.waitStats("3 acks", func(st Stats) bool { return st.Acked == 3 })
	if st := r.s.Stats(); st.DeadLettered != 2 || st.ErrorsByKind[KindJSON] != 2 {
		t.Errorf("Stats() = %+v, want 2 dead-lettered (json)", st)
	}
	r.stop()
	want := "mqtt dead-letter file not writable"
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Errorf("%q logged %d times, want once; logs:\n%s", want, n, logs.String())
	}
	if !strings.Contains(logs.String(), "is a named pipe (FIFO), not a regular file") {
		t.Errorf("the log does not say what the file is:\n%s", logs.String())
	}
}
