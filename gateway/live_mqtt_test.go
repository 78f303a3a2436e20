package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/mqttpub"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/testsvc"
)

// The uplink sink is probed while it backs off, as the InfluxDB sink is.
var _ Prober = (*mqttpub.Sink)(nil)

// uplinkKey identifies a reading at the consumer: (gateway, device, quantity, time) is
// unique for every reading of a box (docs/design.md, "MQTT uplink").
type uplinkKey struct {
	gateway, device, quantity string
	time                      time.Time
}

// checkUplink checks the messages rec received against want, the readings appended in
// order: each arrived at least once, and per device the first arrivals are in the
// order of appending (a message is either a repeat of one already received or newer
// than every message of its device before it). It returns the repeats.
func checkUplink(t *testing.T, msgs []testsvc.Message, want []reading.Reading, gatewayID string) int {
	t.Helper()
	seen := map[uplinkKey]bool{}
	last := map[string]time.Time{} // device → newest time received
	repeats := 0
	for i, m := range msgs {
		var p struct {
			Gateway, Device, Quantity, Time string
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatalf("message %d on %s: %v: %s", i, m.Topic, err, m.Payload)
		}
		ts, err := time.Parse(time.RFC3339Nano, p.Time)
		if err != nil {
			t.Fatalf("message %d: time %q: %v", i, p.Time, err)
		}
		k := uplinkKey{p.Gateway, p.Device, p.Quantity, ts}
		if seen[k] {
			repeats++
			continue
		}
		if !ts.After(last[p.Device]) {
			t.Fatalf("message %d (%s %s) arrived first after %s of the same device: out of order", i, p.Device, p.Time, last[p.Device])
		}
		seen[k], last[p.Device] = true, ts
	}
	for i, r := range want {
		if !seen[uplinkKey{gatewayID, r.Device, r.Quantity, r.Time.UTC()}] {
			t.Fatalf("reading %d (%s at %v) never arrived", i, r.Device, r.Time)
		}
	}
	return repeats
}

// TestMQTTUplinkBrokerRestart is issue 15, item 2: the MQTT uplink sink behind a real
// forwarder and buffer, with the broker stopped and started again on the same port
// mid-run, while three devices append readings. Every reading arrives at a subscriber
// (a persistent session, so the broker keeps what arrives while it reconnects) at
// least once, first arrivals are in order per device, and the cursor ends at the end.
func TestMQTTUplinkBrokerRestart(t *testing.T) {
	m := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{MaxQueued: 100000})
	rec := m.Record(t, "envgate/#")
	runUplink(t, m.URL, rec, map[int]step{
		400 / 3: {live: true, do: func() { m.Stop(t) }}, // the broker goes away with readings in flight and more coming
		400 / 2: {do: func() { m.Start(t) }},
	})
}

// TestMQTTUplinkNATSClusterNodeKilled is issue 15, item 4: the same against a 3-node
// NATS cluster (MQTT on JetStream, every stream on all three nodes), the sink on node 1
// and the subscriber on node 3. Node 2 is killed (SIGKILL) mid-run and started again,
// then node 1, the sink's own: every reading arrives once acknowledged, first arrivals
// in order per device.
func TestMQTTUplinkNATSClusterNodeKilled(t *testing.T) {
	c := testsvc.StartNATSCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	rec := c.Record(t, "envgate/#", n3, n2)
	runUplink(t, n1.MQTTURL, rec, map[int]step{
		80:  {live: true, do: func() { n2.Kill(t) }},
		160: {do: func() { n2.Start(t); c.WaitReady(t) }},
		240: {live: true, do: func() { n1.Kill(t) }},
		320: {do: func() { n1.Start(t) }},
	})
}

// step is something runUplink does to the broker at a round: do; with live, only once
// the readings flow (rec has received half of what was appended).
type step struct {
	do   func()
	live bool
}

// runUplink appends 400 readings of each of three devices to a buffer, one round every
// 2 ms, while a forwarder sends them through an MQTT uplink sink to broker; at round i
// it runs at[i] (the test's outage). It waits until every reading is acknowledged and
// received by rec, and checks them (checkUplink).
func runUplink(t *testing.T, broker string, rec *testsvc.Recording, at map[int]step) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	r, err := q.Reader("uplink")
	if err != nil {
		t.Fatal(err)
	}
	topic, err := mqttpub.ParseTopic(mqttpub.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := mqttpub.New(mqttpub.Config{Name: "uplink", Broker: broker, ClientID: mqttpub.DefaultClientID("box-test", "uplink"),
		Topic: topic, Format: mqttpub.FormatJSON, GatewayID: "box-test", Timeout: 5 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	f := newForwarder(SinkSpec{Name: "uplink", Sink: sink, BatchSize: 50, FlushInterval: 20 * time.Millisecond,
		RetryInitial: 100 * time.Millisecond, RetryMax: time.Second, Ordered: true}, r, log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
	defer func() { cancel(); <-done }()

	const perDevice = 400
	var want []reading.Reading
	start := time.Now().Add(-time.Hour)
	called := 0
	for i := range perDevice {
		for d := range 3 {
			rd := reading.New(start.Add(time.Duration(i)*time.Second), "canal-test", fmt.Sprintf("aq-%d", d), "pm25", float64(i))
			if err := q.Append(rd); err != nil {
				t.Fatal(err)
			}
			want = append(want, rd)
		}
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
		if st, ok := at[i]; ok {
			for deadline := time.Now().Add(time.Minute); st.live && rec.Len() < len(want)/2; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: %d of %d messages received after a minute", i, rec.Len(), len(want))
				}
			}
			st.do()
			called++
		}
		time.Sleep(2 * time.Millisecond)
	}
	if called != len(at) {
		t.Fatalf("%d of %d outage steps ran", called, len(at))
	}
	for deadline := time.Now().Add(time.Minute); r.Unsent() > 0 || rec.Len() < len(want); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d readings unacknowledged, %d of %d messages received", r.Unsent(), rec.Len(), len(want))
		}
	}
	repeats := checkUplink(t, rec.Messages(), want, "box-test")
	st, ss := f.stats(), sink.Stats()
	if st.Retried == 0 || ss.Connects < 2 {
		t.Errorf("forwarder retried %d times over %d connections; want the outage to show", st.Retried, ss.Connects)
	}
	t.Logf("%d readings, %d repeats, %d failed writes, %d connections", len(want), repeats, st.Retried, ss.Connects)
}
