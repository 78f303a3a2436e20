package gateway_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/internal/testsvc"
)

// Issue 14: with the PUBACKs held for the ack delay, a broker whose in-flight window is
// full stops sending, and a stream faster than window/ack_delay would be throttled to
// it. The subscriber marks the batch that fills the window (max_inflight) and the
// writer syncs at once: with an ack delay of an hour and a real mosquitto window of 10,
// all but the last window of 300 messages are acknowledged long before the delay, in
// about one sync per window; the stop syncs and acknowledges the rest.
func TestFullWindowNotThrottledByAckDelay(t *testing.T) {
	const window, n = 10, 300
	b := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{MaxInflight: window})
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	bq, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bq.Close() })
	q := &countingQueue{Queue: bq}
	audit, err := q.Reader("audit")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := mqttsub.New(mqttsub.Config{Name: "lora", Broker: b.URL, ClientID: "envgateWindow", MaxReconnect: time.Second,
		MaxInflight: window,
		Subscriptions: []mqttsub.Subscription{{Topic: "lora/+/+", Template: "lora/{device}/{quantity}", Site: "park-2",
			Format: mqttsub.FormatNumber}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: bq, Metrics: metrics.New(), SyncInterval: time.Hour,
		AckDelay: time.Hour, ShutdownGrace: time.Second, Log: log, Sources: []gateway.Source{sub}})
	if err != nil {
		t.Fatal(err)
	}
	gateway.SetQueue(p, q)
	stop := start(t, p)
	waitFor(t, 10*time.Second, "subscribed", func() bool { st := sub.Stats(); return st.Connected && st.Subscribed })

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL).SetClientID("envgateWindowPub").SetProtocolVersion(4))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	var toks []mqtt.Token
	for i := range n {
		toks = append(toks, pub.Publish(fmt.Sprintf("lora/m%d/la", i), 1, false, fmt.Sprint(i%100)))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	waitFor(t, 60*time.Second, fmt.Sprintf("all but the last window of %d messages acknowledged (the ack delay is 1 h)", n), func() bool {
		return sub.Stats().Acked >= n-window
	})
	// One sync per window, give or take the broker going one over: not one per message.
	if s := q.syncs.Load(); s > 2*n/window {
		t.Errorf("%d syncs for %d messages with a window of %d; want about %d", s, n, window, n/window)
	}
	stop()
	if st := sub.Stats(); st.Acked != n || st.NotDurable != 0 || st.Dropped != 0 {
		t.Errorf("after stop: mqtt %+v, want all %d acknowledged (the stop syncs what waits)", st, n)
	}
	if rs, _, err := audit.Peek(2 * n); err != nil || len(rs) != n {
		t.Errorf("%d readings durable (%v), want %d", len(rs), err, n)
	}
}
