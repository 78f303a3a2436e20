package testsvc

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

const (
	mqttWait  = 10 * time.Second       // for something that should happen
	mqttQuiet = 500 * time.Millisecond // to conclude that nothing more arrives
)

// sub is a paho client whose received messages go to msgs, in order.
type sub struct {
	mqtt.Client
	msgs chan mqtt.Message
}

// clientOptions returns MQTT 3.1.1 options for a client of server with id, no automatic
// reconnect, and every received message (subscribed now or in an earlier session)
// delivered to msgs, unless it is nil.
func clientOptions(server, id string, msgs chan mqtt.Message) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().
		AddBroker(server).
		SetClientID(id).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectTimeout(mqttWait)
	if msgs != nil {
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { msgs <- m })
	}
	return o
}

// connect connects a client and disconnects it in t.Cleanup; the connect error is
// returned for the caller to check.
func connect(t *testing.T, opts *mqtt.ClientOptions, msgs chan mqtt.Message) (*sub, error) {
	t.Helper()
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(mqttWait) {
		t.Fatalf("connect to %v: no answer within %v", opts.Servers, mqttWait)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return &sub{c, msgs}, nil
}

// mustConnect connects a client with options from clientOptions, changed by configure
// when it is not nil.
func mustConnect(t *testing.T, server, id string, configure func(*mqtt.ClientOptions)) *sub {
	t.Helper()
	msgs := make(chan mqtt.Message, 100)
	opts := clientOptions(server, id, msgs)
	if configure != nil {
		configure(opts)
	}
	s, err := connect(t, opts, msgs)
	if err != nil {
		t.Fatalf("connect %s to %s: %v", id, server, err)
	}
	return s
}

func (s *sub) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	tok := s.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(mqttWait) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tokenError(tok, mqttWait))
	}
}

// expect waits for the next messages and checks their topics and payloads, given as
// "topic=payload".
func (s *sub) expect(t *testing.T, want ...string) []mqtt.Message {
	t.Helper()
	var got []mqtt.Message
	timer := time.NewTimer(mqttWait)
	defer timer.Stop()
	for range want {
		select {
		case m := <-s.msgs:
			got = append(got, m)
		case <-timer.C:
			t.Fatalf("got %v, want %q: nothing more within %v", texts(got), want, mqttWait)
		}
	}
	if g := texts(got); strings.Join(g, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", g, want)
	}
	return got
}

// expectNone checks that no message arrives within mqttQuiet.
func (s *sub) expectNone(t *testing.T) {
	t.Helper()
	select {
	case m := <-s.msgs:
		t.Errorf("got %s=%s, want nothing more", m.Topic(), m.Payload())
	case <-time.After(mqttQuiet):
	}
}

func texts(ms []mqtt.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Topic() + "=" + string(m.Payload())
	}
	return out
}

func TestMosquittoPublishSubscribe(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{})
	if !strings.HasPrefix(m.URL, "tcp://127.0.0.1:") || m.TLSURL != "" {
		t.Errorf("URL = %q, TLSURL = %q; want tcp://127.0.0.1:port and empty", m.URL, m.TLSURL)
	}
	s := mustConnect(t, m.URL, "sub", nil)
	s.subscribe(t, "site/+/noise", 1)
	m.Publish(t, "site/1/noise", 0, false, []byte("55.5"))
	m.Publish(t, "site/2/noise", 1, false, []byte("56"))
	m.Publish(t, "site/3/noise", 2, false, []byte("运河"))
	m.Publish(t, "site/3/air", 1, false, []byte("not subscribed"))
	got := s.expect(t, "site/1/noise=55.5", "site/2/noise=56", "site/3/noise=运河")
	for i, wantQoS := range []byte{0, 1, 1} { // QoS is the lower of publish and subscription
		if got[i].Qos() != wantQoS {
			t.Errorf("message %d: QoS %d, want %d", i, got[i].Qos(), wantQoS)
		}
	}
	s.expectNone(t)

	// A retained message reaches a later subscriber, flagged as retained.
	m.Publish(t, "site/1/status", 1, true, []byte("online"))
	late := mustConnect(t, m.URL, "late", nil)
	late.subscribe(t, "site/1/status", 1)
	if got := late.expect(t, "site/1/status=online"); !got[0].Retained() {
		t.Errorf("late subscriber: retained flag not set")
	}
}

func TestMosquittoPersistentSession(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{})
	const id = "envgate-gw1"
	session := func(configure func(*mqtt.ClientOptions)) *sub {
		t.Helper()
		return mustConnect(t, m.URL, id, func(o *mqtt.ClientOptions) {
			o.SetCleanSession(false)
			if configure != nil {
				configure(o)
			}
		})
	}
	s := session(nil)
	s.subscribe(t, "gw/#", 1)
	s.Disconnect(100)

	m.Publish(t, "gw/a", 1, false, []byte("1"))
	m.Publish(t, "gw/b", 1, false, []byte("2"))
	m.Publish(t, "gw/a", 0, false, []byte("qos 0 is not queued for offline clients"))
	s = session(nil)
	got := s.expect(t, "gw/a=1", "gw/b=2")
	if got[0].Duplicate() {
		t.Errorf("first delivery has the DUP flag")
	}
	s.expectNone(t)
	s.Disconnect(100)

	// A client that stays connected sees the outage and reconnects on its own: Start
	// reuses the ports.
	lost, back := make(chan error, 1), make(chan struct{}, 2)
	watcher := mustConnect(t, m.URL, "watcher", func(o *mqtt.ClientOptions) {
		o.SetAutoReconnect(true).
			SetMaxReconnectInterval(100 * time.Millisecond).
			SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err }).
			SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {}).
			SetOnConnectHandler(func(mqtt.Client) { back <- struct{}{} })
	})
	<-back // the first connect

	// Queued messages and the subscription itself survive a restart.
	m.Publish(t, "gw/c", 1, false, []byte("3"))
	m.Stop(t)
	if _, err := os.Stat(filepath.Join(m.Dir, "data", "mosquitto.db")); err != nil {
		t.Errorf("no persistence file after Stop: %v", err)
	}
	select {
	case err := <-lost:
		t.Logf("watcher lost its connection: %v", err)
	case <-time.After(mqttWait):
		t.Errorf("watcher: no connection lost within %v of Stop", mqttWait)
	}
	m.Stop(t) // a second Stop does nothing
	m.Start(t)
	select {
	case <-back:
	case <-time.After(mqttWait):
		t.Errorf("watcher: not reconnected within %v of Start", mqttWait)
	}
	if !watcher.IsConnectionOpen() {
		t.Errorf("watcher: connection not open after reconnecting")
	}
	m.Publish(t, "gw/d", 1, false, []byte("4"))
	s = session(nil)
	s.expect(t, "gw/c=3", "gw/d=4")
	s.expectNone(t)
}

func TestMosquittoMaxInflight(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{MaxInflight: 2})
	conf, err := os.ReadFile(filepath.Join(m.Dir, "mosquitto.conf"))
	if err != nil || !strings.Contains(string(conf), "\nmax_inflight_messages 2\n") {
		t.Errorf("mosquitto.conf: %v; want a line max_inflight_messages 2 in:\n%s", err, conf)
	}
	s := mustConnect(t, m.URL, "slow", func(o *mqtt.ClientOptions) { o.SetAutoAckDisabled(true) })
	s.subscribe(t, "q", 1)
	for i := range 5 {
		m.Publish(t, "q", 1, false, fmt.Appendf(nil, "%d", i))
	}
	// Two unacknowledged messages are in flight; the broker holds back the rest.
	got := s.expect(t, "q=0", "q=1")
	s.expectNone(t)
	// Once they are acknowledged the rest follow, in order. How many at a time is not
	// checked: mosquitto 2.0.11 (Debian bookworm) sends two queued messages after the
	// first PUBACK, one over the limit. Its maintainer points to inflight quota fixes
	// in 2.0.13: https://github.com/eclipse-mosquitto/mosquitto/issues/2362.
	got[0].Ack()
	got[1].Ack()
	for range 3 {
		got = append(got, s.expect(t, fmt.Sprintf("q=%d", len(got)))...)
		got[len(got)-1].Ack()
	}
	s.expectNone(t)
}

func TestMosquittoMaxQueued(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{MaxQueued: 3})
	opts := func(o *mqtt.ClientOptions) { o.SetCleanSession(false) }
	s := mustConnect(t, m.URL, "offline", opts)
	s.subscribe(t, "q", 1)
	s.Disconnect(100)
	for i := range 6 {
		m.Publish(t, "q", 1, false, fmt.Appendf(nil, "%d", i))
	}
	s = mustConnect(t, m.URL, "offline", opts)
	s.expect(t, "q=0", "q=1", "q=2")
	s.expectNone(t)
}

func TestMosquittoUsers(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{Users: map[string]string{"gw1": "s3cret pass", "other": "x"}})
	login := func(user, password string) error {
		t.Helper()
		opts := clientOptions(m.URL, "login-"+user, nil).SetUsername(user).SetPassword(password)
		_, err := connect(t, opts, nil)
		return err
	}
	for _, tc := range []struct{ user, password string }{{"", ""}, {"gw1", "wrong"}, {"nobody", "s3cret pass"}, {"testsvc-publish", ""}} {
		if err := login(tc.user, tc.password); !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			t.Errorf("login %q/%q: %v, want %v", tc.user, tc.password, err, packets.ErrorRefusedNotAuthorised)
		}
	}
	s := mustConnect(t, m.URL, "gw1", func(o *mqtt.ClientOptions) { o.SetUsername("gw1").SetPassword("s3cret pass") })
	s.subscribe(t, "t", 1)
	m.Publish(t, "t", 1, false, []byte("from the publish user"))
	s.expect(t, "t=from the publish user")
}

func TestMosquittoTLS(t *testing.T) {
	ca := NewTestCA(t)
	m := StartMosquitto(t, MosquittoOptions{TLS: ca})
	if !strings.HasPrefix(m.TLSURL, "ssl://127.0.0.1:") || m.TLSURL == strings.Replace(m.URL, "tcp", "ssl", 1) {
		t.Errorf("TLSURL = %q (URL %q), want ssl://127.0.0.1:another port", m.TLSURL, m.URL)
	}
	s := mustConnect(t, m.TLSURL, "tls", func(o *mqtt.ClientOptions) { o.SetTLSConfig(ca.ClientTLS(t, "", "")) })
	s.subscribe(t, "t", 1)
	m.Publish(t, "t", 1, false, []byte("over TLS"))
	s.expect(t, "t=over TLS")

	// Without the CA the server certificate does not verify; another CA does not help.
	for name, cfg := range map[string]*tls.Config{
		"system roots": {},
		"another CA":   NewTestCA(t).ClientTLS(t, "", ""),
	} {
		opts := clientOptions(m.TLSURL, "no-ca", nil).SetTLSConfig(cfg)
		if _, err := connect(t, opts, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("TLS with %s: connect error %v, want a certificate error", name, err)
		}
	}
	// The plain listener does not speak TLS.
	opts := clientOptions(strings.Replace(m.URL, "tcp", "ssl", 1), "tls-on-plain", nil).SetTLSConfig(ca.ClientTLS(t, "", ""))
	if _, err := connect(t, opts, nil); err == nil {
		t.Errorf("TLS to the plain listener %s: connected", m.URL)
	}
}

func TestMosquittoMutualTLS(t *testing.T) {
	ca := NewTestCA(t)
	m := StartMosquitto(t, MosquittoOptions{TLS: ca, RequireClientCert: true})
	other := NewTestCA(t)
	otherCert, otherKey := other.Issue(t, "intruder", false)
	cfg := ca.ClientTLS(t, otherCert, otherKey)
	cfg.RootCAs = ca.Pool // trusts the broker, but presents a certificate from another CA
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":            ca.ClientTLS(t, "", ""),
		"client certificate of another CA": cfg,
	} {
		opts := clientOptions(m.TLSURL, "mtls-rejected", nil).SetTLSConfig(cfg)
		if _, err := connect(t, opts, nil); err == nil {
			t.Errorf("mTLS with %s: connected", name)
		} else {
			t.Logf("mTLS with %s: %v", name, err)
		}
	}
	cert, key := ca.Issue(t, "gw1", false)
	s := mustConnect(t, m.TLSURL, "mtls", func(o *mqtt.ClientOptions) { o.SetTLSConfig(ca.ClientTLS(t, cert, key)) })
	s.subscribe(t, "t", 1)
	m.Publish(t, "t", 1, false, []byte("over mTLS"))
	s.expect(t, "t=over mTLS")
}

func TestMosquittoConf(t *testing.T) {
	c := mosquittoConf{
		root: true, dataDir: "/tmp/a b/data", port: 1883, passwordFile: "/tmp/a b/passwd",
		tlsPort: 8883, cafile: "/ca.crt", certfile: "/s.crt", keyfile: "/s.key", requireCert: true,
		maxInflight: 2, maxQueued: 7,
	}
	got := c.String()
	for _, want := range []string{
		"user root", "per_listener_settings false", "allow_anonymous false", "password_file /tmp/a b/passwd",
		"persistence true", "persistence_location /tmp/a b/data", "max_inflight_messages 2", "max_queued_messages 7",
		"listener 1883 127.0.0.1", "listener 8883 127.0.0.1", "cafile /ca.crt", "require_certificate true",
		"log_timestamp_format %Y-%m-%dT%H:%M:%S",
	} {
		if !strings.Contains(got, "\n"+want+"\n") {
			t.Errorf("config has no line %q:\n%s", want, got)
		}
	}
	got = mosquittoConf{dataDir: "/d", port: 1883}.String()
	for _, absent := range []string{"user ", "password_file", "max_inflight_messages", "max_queued_messages", "cafile", "listener 0"} {
		if strings.Contains(got, absent) {
			t.Errorf("default config has %q:\n%s", absent, got)
		}
	}
	if !strings.Contains(got, "\nallow_anonymous true\n") {
		t.Errorf("default config does not allow anonymous clients:\n%s", got)
	}
}
