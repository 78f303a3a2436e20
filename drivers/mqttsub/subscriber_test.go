package mqttsub

import (
	"context"
	"errors"
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

	"github.com/envgate/envgate/gateway/reading"
)

// fakeMsg is an mqtt.Message that records its Ack in a shared log.
type fakeMsg struct {
	topic   string
	payload []byte
	acks    *ackLog
}

type ackLog struct {
	mu     sync.Mutex
	topics []string
}

func (l *ackLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.topics)
}

func (m *fakeMsg) Duplicate() bool   { return false }
func (m *fakeMsg) Qos() byte         { return 1 }
func (m *fakeMsg) Retained() bool    { return false }
func (m *fakeMsg) Topic() string     { return m.topic }
func (m *fakeMsg) MessageID() uint16 { return 0 }
func (m *fakeMsg) Payload() []byte   { return m.payload }
func (m *fakeMsg) Ack() {
	m.acks.mu.Lock()
	m.acks.topics = append(m.acks.topics, m.topic)
	m.acks.mu.Unlock()
}

var _ mqtt.Message = (*fakeMsg)(nil)

// newTestRunner returns the runner of a Run without a broker: tests feed it messages.
func newTestRunner(t *testing.T) (*runner, *ackLog, string) {
	t.Helper()
	cfg := validConfig()
	cfg.DeadLetter = filepath.Join(t.TempDir(), "dl", "mqtt-dead.log")
	cfg.MaxPayload = 100
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{s: s, log: s.log, inbox: make(chan arrived, 2), notify: make(chan struct{}, 1), dl: &deadLetter{path: cfg.DeadLetter}}
	t.Cleanup(func() { _ = r.dl.close() })
	return r, &ackLog{}, cfg.DeadLetter
}

// PUBACKs go out in arrival order, only after Durable(nil); malformed messages wait
// only for the messages before them; a failed batch is never acknowledged.
func TestAckOrder(t *testing.T) {
	r, acks, dlPath := newTestRunner(t)
	ctx := t.Context()
	out := make(chan reading.Batch, 10)
	msg := func(topic, payload string) arrived {
		return arrived{msg: &fakeMsg{topic: topic, payload: []byte(payload), acks: acks}, at: arrival}
	}
	check := func(step string, want ...string) {
		t.Helper()
		r.ackReady()
		if got := acks.list(); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: acked %q, want %q", step, got, want)
		}
	}

	r.handle(ctx, msg("lora/a/la", "50"), out)
	r.handle(ctx, msg("lora/b/la", "51"), out)
	r.handle(ctx, msg("lora/bad/la", "loud"), out)
	r.handle(ctx, msg("lora/c/la", "52"), out)
	b1, b2, b4 := <-out, <-out, <-out
	if want := []reading.Reading{rd(arrival, "park-2", "a", "la", 50)}; !sameReadings(b1.Readings, want) {
		t.Errorf("batch 1 = %v, want %v", b1.Readings, want)
	}
	check("nothing durable")
	b2.Durable(nil)
	check("second durable first")
	b1.Durable(nil)
	check("first durable", "lora/a/la", "lora/b/la", "lora/bad/la")
	b4.Durable(errors.New("fsync: input/output error"))
	b4.Durable(nil) // a second call is ignored
	check("disk failed", "lora/a/la", "lora/b/la", "lora/bad/la")
	r.handle(ctx, msg("lora/bad2/la", "1e999"), out)
	check("malformed at the head is acked at once", "lora/a/la", "lora/b/la", "lora/bad/la", "lora/bad2/la")
	r.handle(ctx, msg("lora/d/la", "53"), out)
	(<-out).Durable(nil)
	check("disk back", "lora/a/la", "lora/b/la", "lora/bad/la", "lora/bad2/la", "lora/d/la")

	st := r.s.Stats()
	if st.Messages != 6 || st.Readings != 4 || st.DeadLettered != 2 || st.Acked != 5 || st.NotDurable != 1 || st.InFlight != 0 ||
		st.ErrorsByKind[KindNumber] != 1 || st.ErrorsByKind[KindRange] != 1 || st.Bytes != 2+2+4+2+5+2 {
		t.Errorf("Stats() = %+v", st)
	}
	b, err := os.ReadFile(dlPath)
	if err != nil {
		t.Fatal(err)
	}
	want := "2026-11-28T08:00:00Z topic=lora/bad/la reason=number: payload \"loud\" is not a number\t\"loud\"\n" +
		"2026-11-28T08:00:00Z topic=lora/bad2/la reason=range: la: \"1e999\": value out of range\t\"1e999\"\n"
	if string(b) != want {
		t.Errorf("dead-letter file =\n%s\nwant\n%s", b, want)
	}
}

func TestRejectOversizeAndUnknownTopic(t *testing.T) {
	r, acks, _ := newTestRunner(t)
	out := make(chan reading.Batch)
	r.handle(t.Context(), arrived{msg: &fakeMsg{topic: "lora/a/la", payload: []byte(strings.Repeat("1", 101)), acks: acks}, at: arrival}, out)
	r.handle(t.Context(), arrived{msg: &fakeMsg{topic: "other/topic", payload: []byte("1"), acks: acks}, at: arrival}, out)
	st := r.s.Stats()
	if st.ErrorsByKind[KindOversize] != 1 || st.ErrorsByKind[KindTopic] != 1 || len(acks.list()) != 2 {
		t.Errorf("Stats() = %+v, acks %q; want one oversize and one topic error, both acked", st, acks.list())
	}
}

// A full inbox drops the message without acknowledging it, and never blocks paho.
func TestInboxFull(t *testing.T) {
	r, acks, _ := newTestRunner(t)
	for range cap(r.inbox) + 1 {
		r.onMessage(nil, &fakeMsg{topic: "lora/a/la", payload: []byte("1"), acks: acks})
	}
	if st := r.s.Stats(); st.Dropped != 1 || len(acks.list()) != 0 {
		t.Errorf("Stats().Dropped = %d, acks %q; want 1 and none", st.Dropped, acks.list())
	}
}

// On shutdown the runner waits for the pipeline's Durable calls, up to ackGrace.
func TestFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, acks, _ := newTestRunner(t)
		out := make(chan reading.Batch, 2)
		r.handle(t.Context(), arrived{msg: &fakeMsg{topic: "lora/a/la", payload: []byte("1"), acks: acks}, at: arrival}, out)
		r.handle(t.Context(), arrived{msg: &fakeMsg{topic: "lora/b/la", payload: []byte("2"), acks: acks}, at: arrival}, out)
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
	r.handle(ctx, arrived{msg: &fakeMsg{topic: "lora/a/la", payload: []byte("1"), acks: acks}, at: arrival}, make(chan reading.Batch))
	if st := r.s.Stats(); st.InFlight != 0 || st.Readings != 0 || len(acks.list()) != 0 {
		t.Errorf("Stats() = %+v, acks %q; want nothing in flight or acked", st, acks.list())
	}
}

func TestFormatDeadLetter(t *testing.T) {
	at := time.Date(2026, 11, 28, 16, 0, 0, 0, time.FixedZone("CST", 8*3600))
	de := &DecodeError{Kind: KindJSON, Err: errors.New("a\nb\tc")}
	got := formatDeadLetter(at, "env/a b/x", de, []byte("{\"x\":\n\xff}"))
	want := "2026-11-28T16:00:00+08:00 topic=\"env/a b/x\" reason=json: a; b c\t\"{\\\"x\\\":\\n\\xff}\"\n"
	if got != want {
		t.Errorf("formatDeadLetter = %q, want %q", got, want)
	}
	long := formatDeadLetter(at, "t", de, []byte(strings.Repeat("x", 2000)))
	if !strings.HasSuffix(long, `"...`+"\n") || strings.Count(long, "x") != deadLetterPayload {
		t.Errorf("formatDeadLetter(2000 bytes) = %q..., want 1 KiB and \"...\"", long[:60])
	}
}

func TestDeadLetterRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.log")
	if err := os.WriteFile(path, make([]byte, deadLetterMax-10), 0o640); err != nil {
		t.Fatal(err)
	}
	d := &deadLetter{path: path}
	de := &DecodeError{Kind: KindJSON, Err: errors.New("bad")}
	for range 2 {
		if err := d.write(arrival, "t", de, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	old, err1 := os.Stat(path + ".1")
	cur, err2 := os.ReadFile(path)
	if err1 != nil || err2 != nil || old.Size() != deadLetterMax-10 || strings.Count(string(cur), "\n") != 2 {
		t.Errorf("after rotation: %v %v %v, current %q", old, err1, err2, cur)
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
		c := &brokerConn{Conn: &byteConn{data: append(tc.head, 0x30, 0x00)}, present: &present}
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

// byteConn is a net.Conn whose Read returns data.
type byteConn struct {
	net.Conn
	data []byte
}

func (c *byteConn) Read(b []byte) (int, error) {
	n := copy(b, c.data)
	c.data = c.data[n:]
	return n, nil
}
