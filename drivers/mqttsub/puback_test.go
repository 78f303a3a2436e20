package mqttsub

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// countConn is a closeConn that counts its writes and can fail them.
type countConn struct {
	closeConn
	writes  int
	failing error
}

func (c *countConn) Write(b []byte) (int, error) {
	c.writes++
	if c.failing != nil {
		return 0, c.failing
	}
	return c.closeConn.Write(b)
}

func (r *runner) connectCounting(gen uint64, acks *ackLog) *countConn {
	c := &countConn{closeConn: closeConn{acks: acks}}
	bc := newBrokerConn(c, &r.sessionPresent)
	bc.gen = gen
	r.gen.Store(gen)
	r.conn.Store(bc)
	return c
}

// Issue 14: paho wrote each PUBACK with a write(2) of its own (and a write deadline),
// from its writer goroutine; after a group commit the subscriber writes the PUBACKs of
// all the messages it covers in one write, in arrival order.
func TestPubacksOneWritePerGroupCommit(t *testing.T) {
	r, acks, _ := newTestRunner(t)
	c := r.connectCounting(1, acks)
	ctx := t.Context()
	out := make(chan reading.Batch, 100)
	var topics []string
	for i := range 50 {
		topic := fmt.Sprintf("lora/m%d/la", i)
		topics = append(topics, topic)
		r.handle(ctx, r.msg(acks, topic, "50"), out)
	}
	for range 50 {
		(<-out).Durable(nil)
	}
	r.ackReady()
	if got := acks.list(); !slices.Equal(got, topics) {
		t.Errorf("acked %q, want %q", got, topics)
	}
	if c.writes != 1 {
		t.Errorf("%d writes for 50 PUBACKs, want 1", c.writes)
	}
	r.ackReady() // nothing new: no write
	if c.writes != 1 || r.s.Stats().Acked != 50 {
		t.Errorf("%d writes, Stats() = %+v; want 1 write, 50 acked", c.writes, r.s.Stats())
	}
}

// A failed PUBACK write ends the connection so that paho notices and reconnects (its
// reads fail with the write's error, not with the "closed connection" error paho
// ignores); the messages are not counted as acknowledged, and the broker delivers them
// again on the next connection. PUBACKs for an earlier connection are not written to
// the current one.
func TestPubackWriteFailureEndsConnection(t *testing.T) {
	r, acks, _ := newTestRunner(t)
	c := r.connectCounting(1, acks)
	c.failing = errors.New("i/o timeout")
	ctx := t.Context()
	out := make(chan reading.Batch, 10)
	r.handle(ctx, r.msg(acks, "lora/a/la", "1"), out)
	(<-out).Durable(nil)
	r.ackReady()
	if len(c.closes()) != 1 {
		t.Errorf("connection closed %d times after a failed PUBACK write, want 1", len(c.closes()))
	}
	if _, err := r.conn.Load().Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "i/o timeout") {
		t.Errorf("Read after the failed write: %v, want the write's error", err)
	}
	if st := r.s.Stats(); st.Acked != 0 || st.InFlight != 0 {
		t.Errorf("Stats() = %+v, want nothing acknowledged or in flight", st)
	}

	// A message of connection 2 made durable after connection 3 began: not written.
	c2 := r.connectCounting(2, acks)
	r.handle(ctx, r.msg(acks, "lora/b/la", "2"), out)
	b := <-out
	c3 := r.connectCounting(3, acks)
	b.Durable(nil)
	r.ackReady()
	if c2.writes != 0 || c3.writes != 0 || len(acks.list()) != 0 {
		t.Errorf("writes %d on connection 2, %d on 3, acked %q; want none", c2.writes, c3.writes, acks.list())
	}
}

// paho's store keeps no received PUBLISH (the subscriber sends the PUBACKs, and paho
// would keep each until its packet identifier came round again), and keeps the rest.
func TestSessionStoreKeepsNoPublish(t *testing.T) {
	s := sessionStore{mqtt.NewMemoryStore()}
	s.Open()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID = 1, 7
	s.Put("i.7", pub)
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID = 8
	s.Put("o.8", sub)
	if got := s.All(); !slices.Equal(got, []string{"o.8"}) {
		t.Errorf("store holds %q, want only the SUBSCRIBE", got)
	}
}

// Against a real broker: the PUBACKs the subscriber writes itself reach the broker
// (it logs one for every message, and delivers none of them again to the next Run),
// and paho's keep-alive goes on while only the subscriber writes: with a keep-alive of
// 1s, several PINGREQs pass while messages are acknowledged, without a reconnect.
func TestRunPubacksReachBroker(t *testing.T) {
	const n = 500
	b := startBroker(t, testsvc.MosquittoOptions{MaxQueued: n + 100})
	cfg := testConfig(b, "envgatePubacks", loraNumber)
	cfg.KeepAlive = time.Second
	many := loraNumber
	many.MaxDevices = n + 10
	cfg.Subscriptions = []Subscription{many}
	r := runSub(t, cfg, func(s *Subscriber) { s.lim.group = maxGroup })
	r.waitSubscribed()
	// Group commits every 5ms, as a writer does.
	c := consume(t, r.out, 0, 5*time.Millisecond, func() error { return nil })
	b.publishMany(n, func(i int) (string, string) { return fmt.Sprintf("lora/d%d/la", i), "50" })
	r.waitUnique(c, n)
	b.waitAcked("envgatePubacks", n)

	// Keep-alive: messages go on being acknowledged until the broker has seen three
	// PINGREQs (about 3s with a 1s keep-alive), on the one connection.
	pings := func() int { return strings.Count(readFile(t, b.Log), "Received PINGREQ from envgatePubacks") }
	deadline := time.Now().Add(waitLimit)
	for i := 0; pings() < 3; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d PINGREQs within %v, want 3:\n%s", pings(), waitLimit, b.tail())
		}
		b.publish([2]string{fmt.Sprintf("lora/k%d/la", i%5), "51"})
		time.Sleep(100 * time.Millisecond)
	}
	r.settle(c, 200*time.Millisecond)
	if st := r.s.Stats(); st.Reconnects != 0 || st.ForcedReconnects != 0 || !st.Connected || st.Acked != st.Messages {
		t.Errorf("Stats() = %+v, want every message acknowledged on one connection", st)
	}
	r.stop()

	// Nothing unacknowledged is left in the session: the next Run gets only what is
	// published now.
	r2 := runSub(t, cfg)
	r2.waitSubscribed()
	b.publish([2]string{"lora/marker/la", "52"})
	if got := r2.next(); !sameReadings(got.Readings, laNumber("marker", 52)) {
		t.Errorf("first batch after the restart %v, want the marker: a message was delivered again", got.Readings)
	}
}
