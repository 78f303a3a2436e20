package mqttpub

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/testsvc"
)

// newSink returns a real sink to broker with the default topic and JSON payloads.
func newSink(t *testing.T, broker string, tc *tls.Config) *Sink {
	t.Helper()
	topic, err := ParseTopic(DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Name: "up", Broker: broker, ClientID: DefaultClientID("gw-7", "up"), Topic: topic,
		Format: FormatJSON, GatewayID: "gw-7", Timeout: 5 * time.Second, TLS: tc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMutualTLS is issue 15, item 2: against a Mosquitto TLS listener that requires a
// client certificate, the sink with the box's certificate publishes; without one its
// Write fails with an error that says the broker wants a certificate.
func TestMutualTLS(t *testing.T) {
	ca := testsvc.NewTestCA(t)
	m := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{TLS: ca, RequireClientCert: true})
	rec := m.Record(t, "envgate/#")
	rs := batchOf(5, time.Now().Add(-time.Minute))

	cert, key := ca.Issue(t, "gw-7", false)
	with := ca.ClientTLS(t, cert, key)
	with.ServerName = "localhost" // the certificate's SAN, as server_name sets it
	if err := newSink(t, m.TLSURL, with).Write(t.Context(), rs); err != nil {
		t.Fatalf("Write with a client certificate: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); rec.Len() < len(rs); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived", rec.Len(), len(rs))
		}
	}
	var got jsonReading
	if err := json.Unmarshal(rec.Messages()[0].Payload, &got); err != nil || got.Device != rs[0].Device || got.Gateway != "gw-7" {
		t.Errorf("first message %s (%v), want the first reading", rec.Messages()[0].Payload, err)
	}

	err := newSink(t, m.TLSURL, ca.ClientTLS(t, "", "")).Write(t.Context(), rs)
	if err == nil {
		t.Fatal("Write without a client certificate succeeded")
	}
	if !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("Write without a client certificate = %v; want it to say a client certificate is needed", err)
	}
	t.Logf("without a certificate: %v", err)
}

// TestBrokerGoneFailsWrite: with the broker stopped Write fails; once it is back,
// the same batch goes through on a new connection.
func TestBrokerGoneFailsWrite(t *testing.T) {
	m := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{})
	s := newSink(t, m.URL, nil)
	rs := batchOf(20, time.Now().Add(-time.Minute))
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	m.Stop(t)
	if err := s.Write(t.Context(), rs); err == nil {
		t.Fatal("Write with the broker stopped succeeded")
	}
	m.Start(t)
	if err := s.Write(t.Context(), rs); err != nil {
		t.Fatalf("Write after the broker is back: %v", err)
	}
	if st := s.Stats(); st.Connects != 2 || st.Published != 40 {
		t.Errorf("stats %+v, want 2 connects and 40 published", st)
	}
}

// TestRefusedIsPersistent: a broker refusing the box's password fails the Write with an
// error the forwarder treats as persistent (retry every auth_retry, alarm metric).
func TestRefusedIsPersistent(t *testing.T) {
	m := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{Users: map[string]string{"box": "right"}})
	topic, err := ParseTopic(DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Name: "up", Broker: m.URL, ClientID: "envgate-gw-7-up", Username: "box", Password: "wrong",
		Topic: topic, Format: FormatJSON, GatewayID: "gw-7", Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Write(t.Context(), batchOf(1, time.Now()))
	var p interface{ Persistent() bool }
	if !errors.As(err, &p) || !p.Persistent() || !strings.Contains(err.Error(), "not Authorized") && !strings.Contains(err.Error(), "bad user name or password") {
		t.Fatalf("Write with a wrong password = %v, want a persistent refusal", err)
	}
	t.Logf("refused: %v", err)
}

// TestProbe: the sink is a gateway.Prober (the forwarder probes it while it backs off,
// so delivery resumes within seconds of the broker's return, as for InfluxDB): a probe
// fails while the broker is stopped and succeeds once it is back, also for a TLS
// listener (a TCP connection only, no handshake), and brokerAddr fills the scheme's port.
func TestProbe(t *testing.T) {
	ca := testsvc.NewTestCA(t)
	m := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{TLS: ca})
	for _, url := range []string{m.URL, m.TLSURL} {
		var tc *tls.Config
		if url == m.TLSURL {
			tc = &tls.Config{}
		}
		s := newSink(t, url, tc)
		if err := s.Probe(t.Context()); err != nil {
			t.Fatalf("%s: probe of a running broker: %v", url, err)
		}
	}
	s := newSink(t, m.URL, nil)
	m.Stop(t)
	if err := s.Probe(t.Context()); err == nil {
		t.Fatal("probe of a stopped broker succeeded")
	}
	m.Start(t)
	if err := s.Probe(t.Context()); err != nil {
		t.Fatalf("probe after the broker is back: %v", err)
	}
	for in, want := range map[string]string{"tcp://h": "h:1883", "mqtt://h": "h:1883", "ssl://h": "h:8883",
		"mqtts://h": "h:8883", "tcp://h:99": "h:99", "ssl://[::1]": "[::1]:8883"} {
		if got := brokerAddr(in); got != want {
			t.Errorf("brokerAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
