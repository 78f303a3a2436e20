package mqttpub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/envgate/envgate/gateway/reading"
)

// doneToken is a completed paho token with err.
type doneToken struct{ err error }

func (doneToken) Wait() bool                     { return true }
func (doneToken) WaitTimeout(time.Duration) bool { return true }
func (doneToken) Done() <-chan struct{}          { c := make(chan struct{}); close(c); return c }
func (t doneToken) Error() error                 { return t.err }

// heldToken is a paho token whose PUBACK has not come: it completes when its
// connection closes, with the error paho gives the tokens of a closed connection.
type heldToken struct {
	done chan struct{}
	err  error // set before done is closed
}

func (t *heldToken) Wait() bool                     { <-t.done; return true }
func (t *heldToken) WaitTimeout(time.Duration) bool { <-t.done; return true }
func (t *heldToken) Done() <-chan struct{}          { return t.done }
func (t *heldToken) Error() error                   { return t.err }

// errLost is what paho's tokens of a closed connection fail with.
var errLost = errors.New("connection lost before Publish completed")

// fakeConn records what is published on it and when; fail, if set, decides the
// outcome of the n-th message (0-based) of the connection. With hold, no message is
// ever acknowledged: its token completes with errLost when the connection closes.
type fakeConn struct {
	mu     sync.Mutex
	sent   []message
	at     []time.Time
	fail   func(n int) error
	hold   bool
	held   []*heldToken
	closed bool
}

func (c *fakeConn) publish(topic string, payload []byte) mqtt.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.sent)
	c.sent = append(c.sent, message{topic, payload})
	c.at = append(c.at, time.Now())
	if c.hold && !c.closed {
		t := &heldToken{done: make(chan struct{})}
		c.held = append(c.held, t)
		return t
	}
	if c.fail != nil {
		return doneToken{c.fail(n)}
	}
	return doneToken{}
}

func (c *fakeConn) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed
}

func (c *fakeConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, t := range c.held {
		t.err = errLost
		close(t.done)
	}
	c.held = nil
}

// newFake returns a sink whose connections are fakes, and the connections it made.
func newFake(t *testing.T, cfg Config, fail func(conn, n int) error) (*Sink, *[]*fakeConn) {
	t.Helper()
	if cfg.Broker == "" {
		cfg.Broker = "tcp://127.0.0.1:1883"
	}
	cfg.Name, cfg.ClientID, cfg.GatewayID = "up", "envgate-gw-7-up", "gw-7"
	if cfg.Format == "" {
		cfg.Format = FormatJSON
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	var err error
	if cfg.Topic, err = ParseTopic(DefaultTopic); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var conns []*fakeConn
	s.dial = func(context.Context) (conn, error) {
		c := &fakeConn{}
		if fail != nil {
			k := len(conns)
			c.fail = func(n int) error { return fail(k, n) }
		}
		conns = append(conns, c)
		return c, nil
	}
	return s, &conns
}

func batchOf(n int, start time.Time) []reading.Reading {
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = reading.New(start.Add(time.Duration(i)*time.Second), "canal-east-3", fmt.Sprintf("aq-%d", i%3), "pm25", float64(i))
	}
	return rs
}

func TestPayload(t *testing.T) {
	r := reading.New(time.Date(2026, 3, 1, 8, 0, 0, 123000000, time.FixedZone("CST", 8*3600)), "canal-east-3", "aq-1", "pm25", 35)
	check := func(format string, r reading.Reading, want string) {
		t.Helper()
		if got := string(Payload(r, "gw-7", format)); got != want {
			t.Errorf("Payload(%s) = %s, want %s", format, got, want)
		}
	}
	check(FormatJSON, r, `{"gateway":"gw-7","site":"canal-east-3","device":"aq-1","quantity":"pm25","value":35,"unit":"ug/m3","time":"2026-03-01T00:00:00.123Z","quality":"good"}`)
	check(FormatLine, r, "air,device=aq-1,gateway=gw-7,site=canal-east-3 pm25=35 1772323200123000000")
	r.Quality, r.Value = reading.Suspect, 35.5
	check(FormatJSON, r, `{"gateway":"gw-7","site":"canal-east-3","device":"aq-1","quantity":"pm25","value":35.5,"unit":"ug/m3","time":"2026-03-01T00:00:00.123Z","quality":"suspect"}`)
	check(FormatLine, r, "air,device=aq-1,gateway=gw-7,site=canal-east-3 pm25=35.5,pm25_quality=1i 1772323200123000000")
}

// TestWritePublishesInOrder: one message per reading, in batch order, on one connection
// kept from Write to Write; Bad and invalid readings are counted, not sent.
func TestWritePublishesInOrder(t *testing.T) {
	s, conns := newFake(t, Config{}, nil)
	rs := batchOf(10, time.Now().Add(-time.Hour))
	rs[3].Quality = reading.Bad
	rs[5].Unit = "mg/m3"
	for range 2 {
		if err := s.Write(t.Context(), rs); err != nil {
			t.Fatal(err)
		}
	}
	if len(*conns) != 1 {
		t.Fatalf("%d connections, want 1 kept open", len(*conns))
	}
	c := (*conns)[0]
	if len(c.sent) != 16 {
		t.Fatalf("%d messages, want 16 (8 per write)", len(c.sent))
	}
	want := []int{0, 1, 2, 4, 6, 7, 8, 9}
	for i, m := range c.sent[:8] {
		r := rs[want[i]]
		if wantTopic := "envgate/gw-7/canal-east-3/" + r.Device + "/air/pm25"; m.topic != wantTopic {
			t.Errorf("message %d topic %q, want %q", i, m.topic, wantTopic)
		}
		if !strings.Contains(string(m.payload), fmt.Sprintf(`"value":%d,`, want[i])) {
			t.Errorf("message %d payload %s, want value %d", i, m.payload, want[i])
		}
	}
	if st := s.Stats(); st.Published != 16 || st.Invalid != 4 || st.Connects != 1 || !st.Connected {
		t.Errorf("stats %+v, want 16 published, 4 invalid, 1 connect, connected", st)
	}
	s.Close()
	if s.Stats().Connected {
		t.Error("connected after Close")
	}
}

// TestWriteFailureResendsBatch: a message without PUBACK fails the write and drops the
// connection; the next Write connects anew and publishes the whole batch again.
func TestWriteFailureResendsBatch(t *testing.T) {
	lost := errors.New("connection lost before Publish completed")
	s, conns := newFake(t, Config{}, func(conn, n int) error {
		if conn == 0 && n >= 4 {
			return lost
		}
		return nil
	})
	rs := batchOf(10, time.Now().Add(-time.Hour))
	err := s.Write(t.Context(), rs)
	if !errors.Is(err, lost) || !strings.Contains(err.Error(), "(message 5 of 10)") {
		t.Fatalf("Write = %v, want the lost connection at message 5 of 10", err)
	}
	if !(*conns)[0].closed {
		t.Error("the failed connection is not closed")
	}
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	if len(*conns) != 2 || len((*conns)[1].sent) != 10 {
		t.Fatalf("%d connections; want the second with the whole batch of 10", len(*conns))
	}
	if st := s.Stats(); st.Published != 10 || st.Connects != 2 {
		t.Errorf("stats %+v, want 10 published (acknowledged once), 2 connects", st)
	}
	s.Close()
	if err := s.Write(t.Context(), rs); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	s.Close() // twice is fine
}

// TestSkippedCountedOnce: the readings a batch skips are counted once, when the batch
// is delivered, however often a failure makes the forwarder send it again.
func TestSkippedCountedOnce(t *testing.T) {
	lost := errors.New("connection lost before Publish completed")
	s, _ := newFake(t, Config{}, func(conn, n int) error {
		if conn < 3 {
			return lost
		}
		return nil
	})
	rs := batchOf(10, time.Now().Add(-time.Hour))
	rs[2].Quality = reading.Bad
	rs[7].Unit = "mg/m3"
	for range 3 {
		if err := s.Write(t.Context(), rs); !errors.Is(err, lost) {
			t.Fatalf("Write = %v, want the lost connection", err)
		}
	}
	if st := s.Stats(); st.Invalid != 0 {
		t.Errorf("%d readings counted skipped before their batch was delivered, want 0", st.Invalid)
	}
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Invalid != 2 || st.Published != 8 {
		t.Errorf("stats %+v, want 2 skipped and 8 published after 3 failed attempts and 1 delivery", st)
	}
}

// TestRateCap: with max_bytes_per_second R, the bytes published by any time t since
// the first message never exceed R×t plus one second's burst, and a backlog goes out
// at R (not much slower), in the fake clock of a synctest bubble.
func TestRateCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 2000
		s, conns := newFake(t, Config{MaxBytesPerSecond: rate}, nil)
		start := time.Now()
		rs := batchOf(300, start.Add(-time.Hour))
		for i := 0; i < len(rs); i += 100 {
			if err := s.Write(t.Context(), rs[i:i+100]); err != nil {
				t.Fatal(err)
			}
		}
		c := (*conns)[0]
		total := 0
		for i, m := range c.sent {
			total += MessageBytes(m.topic, m.payload)
			// One byte of slack: the limiter rounds its waits to whole nanoseconds.
			if allowed := rate + float64(rate)*c.at[i].Sub(start).Seconds() + 1; float64(total) > allowed {
				t.Fatalf("%d bytes published after %v, more than the %.0f allowed", total, c.at[i].Sub(start), allowed)
			}
		}
		elapsed := time.Since(start)
		if want := time.Duration(float64(total-rate) / rate * float64(time.Second)); elapsed < want || elapsed > want+time.Second {
			t.Errorf("%d bytes took %v, want about %v at %d B/s after a burst of %d", total, elapsed, want, rate, rate)
		}
		if st := s.Stats(); st.Bytes != uint64(total) || st.Throttled <= 0 {
			t.Errorf("stats %+v, want %d bytes and some throttled time", st, total)
		}
		t.Logf("%d messages, %d bytes in %v", len(c.sent), total, elapsed)
	})
}

// TestRateCapWaitIsCancelled: a Write waiting for the cap returns when ctx is done.
func TestRateCapWaitIsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newFake(t, Config{MaxBytesPerSecond: 100}, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		if err := s.Write(ctx, batchOf(100, time.Now().Add(-time.Hour))); err == nil {
			t.Fatal("Write of 100 messages at 100 B/s within 3 s succeeded")
		}
	})
}

// TestIdleConnectionLost: a connection lost between writes (a broker restart, a NAT
// timeout) is replaced at the next Write, which does not fail for it.
func TestIdleConnectionLost(t *testing.T) {
	s, conns := newFake(t, Config{}, nil)
	rs := batchOf(3, time.Now().Add(-time.Hour))
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	(*conns)[0].close() // as paho's connection-lost handling leaves it: not connected
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatalf("Write after the idle connection was lost = %v, want it to connect anew", err)
	}
	if len(*conns) != 2 || len((*conns)[1].sent) != 3 {
		t.Fatalf("%d connections, want a second one carrying the write", len(*conns))
	}
}

// TestLateLossReport: paho reports a lost connection from its own goroutine, which
// may run after a new connection is up; only the loss of the current connection makes
// Stats (envgate_uplink_connected) say disconnected.
func TestLateLossReport(t *testing.T) {
	s, conns := newFake(t, Config{}, nil)
	rs := batchOf(3, time.Now().Add(-time.Hour))
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	(*conns)[0].close()
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	s.lost((*conns)[0]) // the first connection's report, late
	if st := s.Stats(); !st.Connected || st.Connects != 2 {
		t.Errorf("stats %+v after the old connection's late loss report, want connected over 2 connects", st)
	}
	s.lost((*conns)[1])
	if s.Stats().Connected {
		t.Error("connected after the current connection was lost")
	}
}

// newHeld returns a sink whose connections never acknowledge a message, and the
// connections it made.
func newHeld(t *testing.T) (*Sink, *[]*fakeConn) {
	t.Helper()
	s, _ := newFake(t, Config{Timeout: time.Second}, nil)
	var conns []*fakeConn
	s.dial = func(context.Context) (conn, error) {
		c := &fakeConn{hold: true}
		conns = append(conns, c)
		return c, nil
	}
	return s, &conns
}

// TestNoPUBACK: a Write whose messages the broker never acknowledges fails once
// Timeout is over with no PUBACK, closes the connection, and counts nothing as
// published; cancelling its ctx, or Close, ends it at once with an error too.
func TestNoPUBACK(t *testing.T) {
	rs := batchOf(5, time.Now().Add(-time.Hour))
	check := func(name string, s *Sink, conns *[]*fakeConn, err error, took, want time.Duration, wantErr string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: Write = %v, want an error with %q", name, err, wantErr)
		}
		if took != want {
			t.Errorf("%s: Write returned after %v, want %v", name, took, want)
		}
		if len(*conns) != 1 || (*conns)[0].connected() {
			t.Errorf("%s: %d connections, want one, closed", name, len(*conns))
		}
		if st := s.Stats(); st.Published != 0 || st.Bytes != 0 || st.Connected {
			t.Errorf("%s: stats %+v, want nothing published and no connection", name, st)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		s, conns := newHeld(t)
		start := time.Now()
		err := s.Write(t.Context(), rs)
		check("no PUBACK", s, conns, err, time.Since(start), time.Second, "(message 1 of 5): no PUBACK within 1s")
	})
	synctest.Test(t, func(t *testing.T) {
		s, conns := newHeld(t)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		err := s.Write(ctx, rs)
		check("ctx cancelled", s, conns, err, time.Since(start), 300*time.Millisecond, context.Canceled.Error())
	})
	synctest.Test(t, func(t *testing.T) {
		s, conns := newHeld(t)
		time.AfterFunc(300*time.Millisecond, func() { s.Close() })
		start := time.Now()
		err := s.Write(t.Context(), rs)
		check("Close", s, conns, err, time.Since(start), 300*time.Millisecond, errLost.Error())
	})
}
