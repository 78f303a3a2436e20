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
	sink, err := mqttpub.New(mqttpub.Config{Name: "uplink", Broker: m.URL, ClientID: mqttpub.DefaultClientID("box-test", "uplink"),
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
	restarted := false
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
		if i == perDevice/3 { // the broker goes away with readings in flight and more coming
			m.Stop(t)
		}
		if i == perDevice/2 {
			m.Start(t)
			restarted = true
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !restarted {
		t.Fatal("the broker was not restarted")
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
