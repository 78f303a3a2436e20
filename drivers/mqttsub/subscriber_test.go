package mqttsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/envgate/envgate/gateway/deadletter"
	"github.com/envgate/envgate/gateway/reading"
)

// fakeMsg is an mqtt.Message whose packet identifier stands for its topic in a shared
// log of PUBACKs.
type fakeMsg struct {
	topic   string
	payload []byte
	qos0    bool
	acks    *ackLog
}

// ackLog maps the PUBACKs written to a test connection back to the topics of the
// fakeMsgs they acknowledge, in the order they were written.
type ackLog struct {
	mu     sync.Mutex
	ids    map[uint16]string
	next   uint16
	topics []string
}

// id gives topic the next packet identifier.
func (l *ackLog) id(topic string) uint16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ids == nil {
		l.ids = make(map[uint16]string)
	}
	l.next++
	l.ids[l.next] = topic
	return l.next
}

// Write records the PUBACKs in b, which must be whole PUBACK packets.
func (l *ackLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := b; len(p) > 0; p = p[4:] {
		if len(p) < 4 || p[0] != 0x40 || p[1] != 2 {
			l.topics = append(l.topics, fmt.Sprintf("not a PUBACK: % x", p))
			break
		}
		l.topics = append(l.topics, l.ids[uint16(p[2])<<8|uint16(p[3])])
	}
	return len(b), nil
}

func (l *ackLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.topics)
}

func (m *fakeMsg) Duplicate() bool   { return false }
func (m *fakeMsg) Retained() bool    { return false }
func (m *fakeMsg) Topic() string     { return m.topic }
func (m *fakeMsg) MessageID() uint16 { return m.acks.id(m.topic) }
func (m *fakeMsg) Payload() []byte   { return m.payload }
func (m *fakeMsg) Qos() byte {
	if m.qos0 {
		return 0
	}
	return 1
}

// Ack is paho's way to send the PUBACK, which the subscriber does not take.
func (m *fakeMsg) Ack() {
	m.acks.mu.Lock()
	m.acks.topics = append(m.acks.topics, "paho Ack called for "+m.topic)
	m.acks.mu.Unlock()
}

var _ mqtt.Message = (*fakeMsg)(nil)

// newTestRunner returns the runner of a Run without a broker, as if connected (one
// connection): tests feed it messages. tune adjusts the Subscriber before the runner
// is made.
func newTestRunner(t *testing.T, tune ...func(*Subscriber)) (*runner, *ackLog, string) {
	t.Helper()
	cfg := validConfig()
	cfg.DeadLetter = filepath.Join(t.TempDir(), "dl", "mqtt-dead.log")
	cfg.MaxPayload = 100
	cfg.Now = func() time.Time { return arrival }
	s, err := New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	// One batch per message, so that the tests can make each durable on its own;
	// TestGroupedBatches covers batches of several.
	s.lim.group = 1
	for _, f := range tune {
		f(s)
	}
	r := s.newRunner()
	acks := &ackLog{}
	r.connectFake(1, acks)
	t.Cleanup(func() {
		r.stopTimers()
		_ = r.s.dl.release()
	})
	return r, acks, cfg.DeadLetter
}

// msg is what the runner takes of a QoS 1 message.
func (r *runner) msg(acks *ackLog, topic, payload string) arrived {
	return r.newArrived(&fakeMsg{topic: topic, payload: []byte(payload), acks: acks})
}

// PUBACKs go out in arrival order, only after Durable(nil); malformed messages wait
// only for the messages before them; a refused batch is never acknowledged on its
// connection, and neither is anything behind it (MQTT 3.1.1 §4.6).
func TestAckOrder(t *testing.T) {
	r, acks, dlPath := newTestRunner(t)
	ctx := t.Context()
	out := make(chan reading.Batch, 10)
	check := func(step string, want ...string) {
		t.Helper()
		r.ackReady()
		if got := acks.list(); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: acked %q, want %q", step, got, want)
		}
	}

	r.handle(ctx, r.msg(acks, "lora/a/la", "50"), out)
	r.handle(ctx, r.msg(acks, "lora/b/la", "51"), out)
	r.handle(ctx, r.msg(acks, "lora/bad/la", "loud"), out)
	r.handle(ctx, r.msg(acks, "lora/c/la", "52"), out)
	b1, b2, b4 := <-out, <-out, <-out
	if want := []reading.Reading{rd(arrival, "park-2", "a", "la", 50)}; !sameReadings(b1.Readings, want) {
		t.Errorf("batch 1 = %v, want %v", b1.Readings, want)
	}
	if !b1.Redeliverable || !b4.Redeliverable {
		t.Errorf("batches of QoS 1 messages are not redeliverable")
	}
	check("nothing durable")
	b2.Durable(nil)
	check("second durable first")
	b1.Durable(nil)
	check("first durable", "lora/a/la", "lora/b/la", "lora/bad/la")
	b4.Durable(errors.New("buffer refused readings that have another copy"))
	b4.Durable(nil) // a second call is ignored
	check("refused", "lora/a/la", "lora/b/la", "lora/bad/la")
	r.inboxAcks.Add(2) // as onMessage does for the two below
	r.take(ctx, r.msg(acks, "lora/bad2/la", "1e999"), out)
	r.take(ctx, r.msg(acks, "lora/d/la", "53"), out)
	check("behind a refused batch: not taken", "lora/a/la", "lora/b/la", "lora/bad/la")
	if len(out) != 0 {
		t.Errorf("%d batches handed on behind a refused one, want none", len(out))
	}

	st := r.s.Stats()
	if st.Messages != 4 || st.Readings != 3 || st.DeadLettered != 1 || st.Acked != 3 || st.NotDurable != 3 ||
		st.InFlight != 0 || st.ErrorsByKind[KindNumber] != 1 || st.Bytes != 2+2+4+2 {
		t.Errorf("Stats() = %+v", st)
	}
	b, err := os.ReadFile(dlPath)
	if err != nil {
		t.Fatal(err)
	}
	want := "2026-11-28T08:00:00Z topic=lora/bad/la reason=number: payload \"loud\" is not a number\t\"loud\"\n"
	if string(b) != want {
		t.Errorf("dead-letter file =\n%s\nwant\n%s", b, want)
	}
}

// A message behind a refused one of its connection is never acknowledged on it, even
// once its own readings are durable: it counts as not durable, once, whether it became
// durable before or after the refusal was seen, or was refused itself.
func TestNotDurableCountsMessagesBehindARefusal(t *testing.T) {
	r, acks, _ := newTestRunner(t)
	ctx := t.Context()
	out := make(chan reading.Batch, 10)
	for _, d := range []string{"a", "b", "c", "d", "e"} {
		r.handle(ctx, r.msg(acks, "lora/"+d+"/la", "50"), out)
	}
	a, b, c, d, e := <-out, <-out, <-out, <-out, <-out
	e.Durable(nil) // durable before the refusal is seen
	b.Durable(errors.New("buffer refused readings that have another copy"))
	r.ackReady()
	c.Durable(nil) // durable after it
	r.ackReady()
	d.Durable(errors.New("buffer refused readings that have another copy"))
	r.ackReady()
	a.Durable(nil)
	r.ackReady()
	if got := acks.list(); !slices.Equal(got, []string{"lora/a/la"}) {
		t.Errorf("acked %q, want only the message before the refused one", got)
	}
	if st := r.s.Stats(); st.NotDurable != 4 || st.Acked != 1 || st.InFlight != 0 {
		t.Errorf("Stats() = %+v, want 4 not durable (b, c, d, e), 1 acked, nothing in flight", st)
	}
}

func TestRejectOversizeAndUnknownTopic(t *testing.T) {
	r, acks, _ := newTestRunner(t)
	out := make(chan reading.Batch)
	r.handle(t.Context(), r.msg(acks, "lora/a/la", strings.Repeat("1", 101)), out)
	r.handle(t.Context(), r.msg(acks, "other/topic", "1"), out)
	st := r.s.Stats()
	if st.ErrorsByKind[KindOversize] != 1 || st.ErrorsByKind[KindTopic] != 1 || len(acks.list()) != 2 {
		t.Errorf("Stats() = %+v, acks %q; want one oversize and one topic error, both acked", st, acks.list())
	}
}

// The handler keeps only a stub of an oversize payload; the message is dead-lettered
// with the stub and acknowledged, and what it holds is counted: the stub, of QoS 1 as
// of QoS 0 (paho keeps no copy, sessionStore).
func TestOversizeStub(t *testing.T) {
	r, acks, dlPath := newTestRunner(t)
	big := bytes.Repeat([]byte("x"), 10_000)
	r.onMessage(nil, &fakeMsg{topic: "lora/a/la", payload: big, acks: acks})
	r.onMessage(nil, &fakeMsg{topic: "lora/b/la", payload: big, qos0: true, acks: acks})
	a1, a0 := <-r.inbox, <-r.inbox
	if len(a1.payload) != stubPayload || a1.size != len(big) || !a1.oversize || a1.cost != stubPayload || !a1.qos1 {
		t.Errorf("QoS 1 oversize: payload %d bytes, size %d, cost %d; want a %d-byte stub of %d, counted as the stub",
			len(a1.payload), a1.size, a1.cost, stubPayload, len(big))
	}
	if len(a0.payload) != stubPayload || a0.cost != stubPayload || a0.qos1 {
		t.Errorf("QoS 0 oversize: payload %d bytes, cost %d; want the %d-byte stub only", len(a0.payload), a0.cost, stubPayload)
	}
	if st := r.s.Stats(); st.Held != 2 || st.HeldBytes != 2*stubPayload {
		t.Errorf("held %d messages, %d bytes; want 2 and %d", st.Held, st.HeldBytes, 2*stubPayload)
	}
	out := make(chan reading.Batch)
	r.inboxAcks.Add(-1) // as take does
	r.handle(t.Context(), a1, out)
	r.handle(t.Context(), a0, out)
	st := r.s.Stats()
	if st.ErrorsByKind[KindOversize] != 2 || st.Bytes != 2*uint64(len(big)) || st.Held != 0 || st.HeldBytes != 0 ||
		!slices.Equal(acks.list(), []string{"lora/a/la"}) {
		t.Errorf("Stats() = %+v, acks %q; want 2 oversize, nothing held, the QoS 1 one acked", st, acks.list())
	}
	data, err := os.ReadFile(dlPath)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("2026-11-28T08:00:00Z topic=lora/a/la reason=oversize: payload of 10000 bytes exceeds max_payload 100\t%q...\n",
		big[:stubPayload])
	if !strings.HasPrefix(string(data), line) {
		t.Errorf("dead-letter file starts %q, want %q", data[:min(len(data), len(line))], line)
	}
}

// closeConn is a net.Conn that records when it was closed, and the PUBACKs written.
type closeConn struct {
	net.Conn
	acks   *ackLog
	mu     sync.Mutex
	closed []time.Time
}

func (c *closeConn) Write(b []byte) (int, error)      { return c.acks.Write(b) }
func (c *closeConn) SetWriteDeadline(time.Time) error { return nil }

func (c *closeConn) Read([]byte) (int, error) { return 0, net.ErrClosed }

func (c *closeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = append(c.closed, time.Now())
	return nil
}

func (c *closeConn) closes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.closed)
}

// connectFake simulates paho's dial of connection gen; PUBACKs written to it go to acks.
func (r *runner) connectFake(gen uint64, acks *ackLog) *closeConn {
	c := &closeConn{acks: acks}
	bc := newBrokerConn(c, &r.sessionPresent)
	bc.gen = gen
	r.gen.Store(gen)
	r.conn.Store(bc)
	return c
}

// runLoop runs the runner's loop until the test ends.
func runLoop(t *testing.T, r *runner, out chan<- reading.Batch) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.loop(ctx, out)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// Beyond its bounds the subscriber drops QoS 1 messages without PUBACK, and every
// later one on the same connection. Once the messages it took are acknowledged it
// closes the connection (so that the broker delivers the dropped ones again on the
// next), at most once per forcedGap. QoS 0 messages beyond the bounds are lost.
func TestSubscriberFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, acks, _ := newTestRunner(t, func(s *Subscriber) { s.lim.held = 3 })
		c1 := r.connectFake(1, acks)
		out := make(chan reading.Batch, 10)
		runLoop(t, r, out)
		for i := range 5 {
			r.onMessage(nil, &fakeMsg{topic: fmt.Sprintf("lora/m%d/la", i), payload: []byte("1"), acks: acks})
		}
		r.onMessage(nil, &fakeMsg{topic: "lora/q0/la", payload: []byte("1"), qos0: true, acks: acks})
		synctest.Wait()
		if st := r.s.Stats(); st.Dropped != 2 || st.Lost != 1 || st.Held != 3 || st.ForcedReconnects != 0 {
			t.Fatalf("Stats() = %+v, want 2 dropped, 1 lost, 3 held", st)
		}
		b := []reading.Batch{<-out, <-out, <-out}
		b[0].Durable(nil)
		b[1].Durable(nil)
		synctest.Wait()
		// Room again, but the connection has dropped one: this one goes too.
		r.onMessage(nil, &fakeMsg{topic: "lora/m5/la", payload: []byte("1"), acks: acks})
		synctest.Wait()
		if n := len(c1.closes()); n != 0 || r.s.Stats().Dropped != 3 {
			t.Fatalf("closed %d times, Stats() = %+v; want open while a taken message waits, 3 dropped", n, r.s.Stats())
		}
		b[2].Durable(nil)
		synctest.Wait()
		drained := time.Now()
		if got := acks.list(); !slices.Equal(got, []string{"lora/m0/la", "lora/m1/la", "lora/m2/la"}) {
			t.Errorf("acked %q, want the three taken", got)
		}
		time.Sleep(ackFlush)
		synctest.Wait()
		closes := c1.closes()
		if len(closes) != 1 || closes[0].Sub(drained) != ackFlush {
			t.Fatalf("closes %v, want one, %v after the last PUBACK at %v", closes, ackFlush, drained)
		}
		// paho must not take the read error for one of its own closes, which it ignores.
		if _, err := r.conn.Load().Read(make([]byte, 1)); !errors.Is(err, errBrokenOff) {
			t.Errorf("Read after the close: %v, want errBrokenOff", err)
		}

		// The next connection takes messages again; a second episode right away closes
		// it only forcedGap after the first.
		c2 := r.connectFake(2, acks)
		for i := range 4 {
			r.onMessage(nil, &fakeMsg{topic: fmt.Sprintf("lora/n%d/la", i), payload: []byte("2"), acks: acks})
		}
		for range 3 {
			(<-out).Durable(nil)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := c2.closes(); len(got) != 1 || got[0].Sub(closes[0]) != forcedReconnectGap {
			t.Errorf("second connection closed at %v, want once, %v after the first close", got, forcedReconnectGap)
		}
		st := r.s.Stats()
		if st.Dropped != 4 || st.ForcedReconnects != 2 || st.Acked != 6 || st.Held != 0 || st.HeldBytes != 0 || st.InFlight != 0 {
			t.Errorf("Stats() = %+v, want 4 dropped, 2 forced reconnects, 6 acked, nothing held", st)
		}
		if got := len(c1.closes()); got != 1 {
			t.Errorf("first connection closed %d times, want 1", got)
		}
	})
}

// If the messages taken before the drop are never made durable, the connection is
// closed after the drain limit anyway.
func TestSubscriberFullDrainLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, acks, _ := newTestRunner(t, func(s *Subscriber) { s.lim.held = 1 })
		c := r.connectFake(1, acks)
		out := make(chan reading.Batch, 10)
		runLoop(t, r, out)
		start := time.Now()
		r.onMessage(nil, &fakeMsg{topic: "lora/a/la", payload: []byte("1"), acks: acks})
		r.onMessage(nil, &fakeMsg{topic: "lora/b/la", payload: []byte("1"), acks: acks})
		<-out // never made durable
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := c.closes(); len(got) != 1 || got[0].Sub(start) != drainLimit {
			t.Errorf("closed at %v, want once, %v after the drop", got, drainLimit)
		}
	})
}

// A refused batch (the disk fails) is left unacknowledged with every later message of
// its connection, which are dropped as they arrive; once the messages before it are
// acknowledged, the subscriber closes the connection for the broker to deliver them
// again. It holds nothing meanwhile. A QoS 0 message is not redeliverable, and its
// Durable error is no refusal.
func TestRefusedBatchForcesReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, acks, _ := newTestRunner(t)
		c1 := r.connectFake(1, acks)
		out := make(chan reading.Batch)
		runLoop(t, r, out)
		r.onMessage(nil, &fakeMsg{topic: "lora/a/la", payload: []byte("1"), acks: acks})
		r.onMessage(nil, &fakeMsg{topic: "lora/b/la", payload: []byte("2"), acks: acks})
		ba, bb := <-out, <-out
		bb.Durable(errors.New("buffer refused readings that have another copy"))
		synctest.Wait()
		r.onMessage(nil, &fakeMsg{topic: "lora/c/la", payload: []byte("3"), acks: acks})
		synctest.Wait()
		if st := r.s.Stats(); st.NotDurable != 2 || st.Held != 1 || len(c1.closes()) != 0 {
			t.Fatalf("Stats() = %+v, closes %v; want 2 not durable, the first message held, the connection open", st, c1.closes())
		}
		ba.Durable(nil)
		synctest.Wait()
		acked := time.Now()
		time.Sleep(ackFlush)
		synctest.Wait()
		if got := c1.closes(); len(got) != 1 || got[0].Sub(acked) != ackFlush {
			t.Fatalf("closes %v, want one %v after the PUBACK of the message before the refused one", got, ackFlush)
		}
		if got := acks.list(); !slices.Equal(got, []string{"lora/a/la"}) {
			t.Errorf("acked %q, want only the message before the refused one", got)
		}

		// The broker delivers them again on the next connection; the disk works.
		r.connectFake(2, acks)
		r.onMessage(nil, &fakeMsg{topic: "lora/b/la", payload: []byte("2"), acks: acks})
		r.onMessage(nil, &fakeMsg{topic: "lora/c/la", payload: []byte("3"), acks: acks})
		r.onMessage(nil, &fakeMsg{topic: "lora/q0/la", payload: []byte("4"), qos0: true, acks: acks})
		(<-out).Durable(nil)
		(<-out).Durable(nil)
		q0 := <-out
		if q0.Redeliverable {
			t.Errorf("the batch of a QoS 0 message is redeliverable")
		}
		q0.Durable(errors.New("buffer degraded: readings held in memory"))
		synctest.Wait()
		st := r.s.Stats()
		if got := acks.list(); !slices.Equal(got, []string{"lora/a/la", "lora/b/la", "lora/c/la"}) {
			t.Errorf("acked %q, want all three QoS 1 messages in order", got)
		}
		if st.NotDurable != 2 || st.ForcedReconnects != 1 || st.Acked != 3 || st.Held != 0 || st.HeldBytes != 0 || st.InFlight != 0 {
			t.Errorf("Stats() = %+v, want 2 not durable, 1 forced reconnect, 3 acked, nothing held", st)
		}
	})
}

// After a reconnect the messages of the earlier connection no longer hold up PUBACKs:
// paho would drop theirs, and the broker delivers them again. A refusal of one of
// them starts no episode on the new connection.
func TestStaleEntriesDoNotHoldAcks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, acks, _ := newTestRunner(t)
		r.connectFake(1, acks)
		out := make(chan reading.Batch)
		runLoop(t, r, out)
		r.onMessage(nil, &fakeMsg{topic: "lora/old/la", payload: []byte("1"), acks: acks})
		old := <-out
		synctest.Wait()
		c2 := r.connectFake(2, acks)
		r.onMessage(nil, &fakeMsg{topic: "lora/new/la", payload: []byte("2"), acks: acks})
		(<-out).Durable(nil)
		synctest.Wait()
		if got := acks.list(); !slices.Equal(got, []string{"lora/new/la"}) {
			t.Errorf("acked %q, want only the new connection's message", got)
		}
		old.Durable(errors.New("disk"))
		r.onMessage(nil, &fakeMsg{topic: "lora/new2/la", payload: []byte("3"), acks: acks})
		(<-out).Durable(nil)
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := acks.list(); !slices.Equal(got, []string{"lora/new/la", "lora/new2/la"}) {
			t.Errorf("acked %q, want both messages of the new connection", got)
		}
		if st := r.s.Stats(); st.Acked != 2 || st.InFlight != 0 || st.Held != 0 || st.ForcedReconnects != 0 || len(c2.closes()) != 0 {
			t.Errorf("Stats() = %+v, closes %v; want 2 acked, nothing in flight or held, no reconnect", st, c2.closes())
		}
	})
}

// On shutdown the runner waits for the pipeline's Durable calls, up to ackGrace.
func TestFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, acks, _ := newTestRunner(t)
		out := make(chan reading.Batch, 2)
		r.handle(t.Context(), r.msg(acks, "lora/a/la", "1"), out)
		r.handle(t.Context(), r.msg(acks, "lora/b/la", "2"), out)
		b1, b2 := <-out, <-out
		go func() {
			time.Sleep(ackGrace / 2)
			b1.Durable(nil)
		}()
		start := time.Now()
		r.finish()
		if got := time.Since(start); got != ackGrace {
			t.Errorf("finish took %v, want the grace period %v", got, ackGrace)
		}
		if got := acks.list(); !slices.Equal(got, []string{"lora/a/la"}) {
			t.Errorf("acked %q, want only the first message", got)
		}
		b2.Durable(nil) // after Run: harmless
	})
}

// A Run cancelled while the pipeline does not take its batch gives the message up.
func TestHandleCancelled(t *testing.T) {
	r, acks, _ := newTestRunner(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r.handle(ctx, r.msg(acks, "lora/a/la", "1"), make(chan reading.Batch))
	if st := r.s.Stats(); st.InFlight != 0 || st.Readings != 0 || len(acks.list()) != 0 {
		t.Errorf("Stats() = %+v, acks %q; want nothing in flight or acked", st, acks.list())
	}
}

// fakeClient answers SubscribeMultiple with the next of its results.
type fakeClient struct {
	mqtt.Client
	mu      sync.Mutex
	results []error // errTimeout: no SUBACK in time
	calls   []time.Time
}

var errTimeout = errors.New("no SUBACK")

func (c *fakeClient) IsConnectionOpen() bool { return true }

func (c *fakeClient) SubscribeMultiple(map[string]byte, mqtt.MessageHandler) mqtt.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, time.Now())
	var err error
	if len(c.results) > 0 {
		err, c.results = c.results[0], c.results[1:]
	}
	return &fakeToken{err: err}
}

type fakeToken struct{ err error }

func (t *fakeToken) Wait() bool { return true }
func (t *fakeToken) WaitTimeout(d time.Duration) bool {
	if t.err == errTimeout {
		time.Sleep(d)
		return false
	}
	return true
}
func (t *fakeToken) Done() <-chan struct{} { c := make(chan struct{}); close(c); return c }
func (t *fakeToken) Error() error          { return t.err }

// A failed or unanswered SUBSCRIBE is retried while connected, after 1s doubling up to
// MaxReconnect, and each state change is logged once.
func TestSubscribeRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		r, _, _ := newTestRunner(t)
		r.log = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil))
		refused := errors.New("broker refused lora/+/+ (SUBACK 0x80)")
		c := &fakeClient{results: []error{refused, errTimeout, refused, refused, refused, nil}}
		r.subscribe(c, 1)
		var gaps []time.Duration
		for i := 1; i < len(c.calls); i++ {
			gaps = append(gaps, c.calls[i].Sub(c.calls[i-1]))
		}
		want := []time.Duration{time.Second, subscribeTimeout + 2*time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
		if !slices.Equal(gaps, want) {
			t.Errorf("SUBSCRIBEs %v apart, want %v", gaps, want)
		}
		if !r.subscribed.Load() || !r.s.Stats().Subscribed {
			t.Errorf("not subscribed after the broker accepted")
		}
		if n, m := strings.Count(logs.String(), "mqtt subscribe failed"), strings.Count(logs.String(), "mqtt subscribed"); n != 1 || m != 1 {
			t.Errorf("logged %d failures and %d recoveries, want one each:\n%s", n, m, logs.String())
		}

		// Retries end with Run, or with the connection.
		c = &fakeClient{results: slices.Repeat([]error{refused}, 100)}
		go func() {
			time.Sleep(10 * time.Second)
			r.gen.Store(2)
		}()
		r.subscribe(c, 1)
		if len(c.calls) != 4 { // at 0, 1s, 3s, 7s
			t.Errorf("%d SUBSCRIBEs before the connection ended, want 4", len(c.calls))
		}
		c = &fakeClient{results: slices.Repeat([]error{refused}, 100)}
		close(r.done)
		r.subscribe(c, 2)
		if len(c.calls) != 1 {
			t.Errorf("%d SUBSCRIBEs after Run returned, want 1", len(c.calls))
		}
	})
}

func TestFormatDeadLetter(t *testing.T) {
	at := time.Date(2026, 11, 28, 16, 0, 0, 0, time.FixedZone("CST", 8*3600))
	de := &DecodeError{Kind: KindJSON, Err: errors.New("a\nb\tc")}
	payload := []byte("{\"x\":\n\xff}")
	got := formatDeadLetter(at, "env/a b/x", de, payload, len(payload))
	want := "2026-11-28T16:00:00+08:00 topic=\"env/a b/x\" reason=json: a; b c\t\"{\\\"x\\\":\\n\\xff}\"\n"
	if got != want {
		t.Errorf("formatDeadLetter = %q, want %q", got, want)
	}
	long := formatDeadLetter(at, "t", de, []byte(strings.Repeat("x", 2000)), 2000)
	if !strings.HasSuffix(long, `"...`+"\n") || strings.Count(long, "x") != deadLetterPayload {
		t.Errorf("formatDeadLetter(2000 bytes) = %q..., want 1 KiB and \"...\"", long[:60])
	}
	stub := formatDeadLetter(at, "t", de, []byte("xyz"), 5000)
	if !strings.HasSuffix(stub, "\t\"xyz\"...\n") {
		t.Errorf("formatDeadLetter(stub) = %q, want the stub and \"...\"", stub)
	}
}

// The dead-letter file is the bounded, rotated gateway/deadletter file: rotated before
// it passes 16 MiB, created 0640 in a 0750 directory, and what rotation deletes is
// counted in Stats.DeadLetterDropped (issue 10: it was one unbounded-count .1 in 0755).
func TestDeadLetterRotates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dl")
	path := filepath.Join(dir, "dead.log")
	d, err := newDeadLetter(path)
	if err != nil {
		t.Fatal(err)
	}
	de := &DecodeError{Kind: KindJSON, Err: errors.New("bad")}
	if err := d.write(arrival, "t", de, []byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := d.release(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name string
		want os.FileMode
	}{{dir, 0o750}, {path, 0o640}} {
		if fi, err := os.Stat(p.name); err != nil || fi.Mode().Perm()&^p.want != 0 {
			t.Errorf("%s: %v, %v; want at most %v", p.name, fi.Mode(), err, p.want)
		}
	}
	// Fill the current file and every rotated one, each with 3 lines, so that the next
	// rotations delete the oldest.
	line := strings.Repeat("y", (deadletter.DefaultMaxBytes-10)/3-1) + "\n"
	filler := strings.Repeat(line, 3)
	for i := range deadletter.DefaultKeep + 1 {
		name := path
		if i > 0 {
			name = fmt.Sprintf("%s.%d", path, i)
		}
		if err := os.WriteFile(name, []byte(filler), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := d.write(arrival, "t", de, []byte(strings.Repeat("p", 900)), 900); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.release(); err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(path)
	if err != nil || strings.Count(string(cur), "\n") != 2 {
		t.Errorf("current file after rotation: %q, %v; want the 2 new lines", cur, err)
	}
	if got := d.dropped(); got != 3 {
		t.Errorf("dropped = %d, want the 3 lines of the oldest rotated file", got)
	}
	if _, err := os.Stat(fmt.Sprintf("%s.%d", path, deadletter.DefaultKeep+1)); !os.IsNotExist(err) {
		t.Errorf("more than %d rotated files kept: %v", deadletter.DefaultKeep, err)
	}
}

func TestBrokerConnSessionPresent(t *testing.T) {
	for _, tc := range []struct {
		head []byte
		want bool
	}{
		{[]byte{0x20, 2, 1, 0}, true},
		{[]byte{0x20, 2, 0, 0}, false},
		{[]byte{0x20, 2, 1, 5}, false}, // refused
		{[]byte{0x30, 2, 1, 0}, false},
	} {
		var present atomic.Bool
		c := newBrokerConn(&byteConn{data: append(tc.head, 0x30, 0x00)}, &present)
		buf := make([]byte, 1)
		for range len(tc.head) + 2 {
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		if got := present.Load(); got != tc.want {
			t.Errorf("session present after % x = %v, want %v", tc.head, got, tc.want)
		}
	}
}

// paho reads a packet with a read for the type byte, one per length byte and one for
// the body; brokerConn serves them from a buffer, so that a burst of small PUBLISHes
// costs a read syscall per readBuffer bytes, not three per packet. Writes still get a
// deadline each and go straight through.
func TestBrokerConnBuffers(t *testing.T) {
	var packets []byte
	publish := []byte{0x32, 20, 0, 9, 'l', 'o', 'r', 'a', '/', 'a', '/', 'l', 'a', 0, 1, '6', '3', '.', '4', ' ', ' ', ' '}
	for range 1000 {
		packets = append(packets, publish...)
	}
	c := &byteConn{data: packets}
	bc := newBrokerConn(c, new(atomic.Bool))
	for i := range 1000 {
		var head [2]byte
		body := make([]byte, 20)
		if _, err := io.ReadFull(bc, head[:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(bc, head[1:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(bc, body); err != nil || head != [2]byte{0x32, 20} || !bytes.Equal(body, publish[2:]) {
			t.Fatalf("packet %d: % x % x, %v", i, head, body, err)
		}
	}
	if want := len(packets)/readBuffer + 1; c.reads != want {
		t.Errorf("%d reads of the connection for %d bytes, want %d", c.reads, len(packets), want)
	}
	for range 2 {
		if _, err := bc.Write([]byte{0x40, 2, 0, 1}); err != nil {
			t.Fatal(err)
		}
	}
	if c.deadlines != 2 || c.written.Len() != 8 {
		t.Errorf("%d write deadlines, %d bytes written; want 2 and 8", c.deadlines, c.written.Len())
	}
}

// byteConn is a net.Conn whose Read returns data and whose Write records.
type byteConn struct {
	net.Conn
	data      []byte
	reads     int
	deadlines int
	written   bytes.Buffer
}

func (c *byteConn) Read(b []byte) (int, error) {
	c.reads++
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *byteConn) SetWriteDeadline(time.Time) error { c.deadlines++; return nil }
func (c *byteConn) Write(b []byte) (int, error)      { return c.written.Write(b) }
