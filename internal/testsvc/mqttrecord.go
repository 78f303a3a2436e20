package testsvc

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Message is one message a Recording received.
type Message struct {
	Topic   string
	Payload []byte
}

// Recording is a subscriber that keeps every message it receives, in order of
// arrival, through broker restarts: it holds a persistent session (clean session off,
// QoS 1), so the broker queues what is published while it reconnects (up to
// MosquittoOptions.MaxQueued) and keeps the queue across Stop and Start.
type Recording struct {
	c  mqtt.Client
	mu sync.Mutex
	ms []Message
}

// Record subscribes to filter at QoS 1 on URL (logged in as Publish's user when the
// broker has Users) and returns once the broker confirmed the subscription. It
// disconnects in t.Cleanup.
func (m *Mosquitto) Record(t testing.TB, filter string) *Recording {
	t.Helper()
	return record(t, []string{m.URL}, m.password, filter)
}

// Record subscribes to filter at QoS 1 on the MQTT listeners of nodes (paho tries them
// in order, on every connection), with a persistent session kept in the cluster's
// JetStream, and returns once the cluster confirmed the subscription. It disconnects in
// t.Cleanup.
func (c *NATSCluster) Record(t testing.TB, filter string, nodes ...*NATSNode) *Recording {
	t.Helper()
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.MQTTURL)
	}
	return record(t, urls, "", filter)
}

// record subscribes a Recording to filter on the first of urls that answers; password,
// if set, is publishUser's.
func record(t testing.TB, urls []string, password, filter string) *Recording {
	t.Helper()
	rec := &Recording{}
	subscribe := func(c mqtt.Client) mqtt.Token { return c.Subscribe(filter, 1, nil) }
	opts := mqtt.NewClientOptions().
		SetClientID(fmt.Sprintf("testsvc-rec-%d-%d", os.Getpid(), publishSeq.Add(1))).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetOrderMatters(true). // the handler only appends: arrival order is kept
		SetAutoReconnect(true).
		SetMaxReconnectInterval(200 * time.Millisecond).
		SetConnectTimeout(publishTimeout).
		SetDefaultPublishHandler(func(_ mqtt.Client, msg mqtt.Message) {
			rec.mu.Lock()
			rec.ms = append(rec.ms, Message{Topic: msg.Topic(), Payload: slices.Clone(msg.Payload())})
			rec.mu.Unlock()
		}).
		// Subscribing again on every connection is harmless and survives a broker
		// that lost the session; the first one is waited for below.
		SetOnConnectHandler(func(c mqtt.Client) { go subscribe(c) })
	for _, u := range urls {
		opts.AddBroker(u)
	}
	if password != "" {
		opts.SetUsername(publishUser).SetPassword(password)
	}
	rec.c = mqtt.NewClient(opts)
	if tok := rec.c.Connect(); !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
		t.Fatalf("record %s: connect to %v: %v", filter, urls, tokenError(tok, publishTimeout))
	}
	if tok := subscribe(rec.c); !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
		t.Fatalf("record %s: subscribe: %v", filter, tokenError(tok, publishTimeout))
	}
	t.Cleanup(func() { rec.c.Disconnect(100) })
	return rec
}

// Messages returns a copy of what arrived so far, in order of arrival.
func (r *Recording) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ms)
}

// Len returns how many messages arrived so far.
func (r *Recording) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ms)
}
