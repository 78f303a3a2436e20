package config

import (
	"strings"
	"testing"
	"time"
)

// Issue 14: buffer.ack_delay and mqtt[].max_inflight are checked like every key; 0 is
// kept for ack_delay (sync at once) and refused for max_inflight.
func TestAckDelayAndMaxInflight(t *testing.T) {
	cfg, err := Parse([]byte(minimal+"buffer: {ack_delay: 0s}\n"), "x.yaml")
	if err != nil || cfg.Buffer.AckDelay != 0 {
		t.Fatalf("ack_delay: 0s: %v, %v; want kept as 0", err, cfg.Buffer.AckDelay)
	}
	cfg, err = Parse([]byte(minimal+"buffer: {ack_delay: 2s}\n"), "x.yaml")
	if err != nil || cfg.Buffer.AckDelay != 2*time.Second {
		t.Fatalf("ack_delay: 2s: %v, %v", err, cfg.Buffer.AckDelay)
	}
	for _, bad := range []string{"-1s", "31s"} {
		_, err := Parse([]byte(minimal+"buffer: {ack_delay: "+bad+"}\n"), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), "buffer.ack_delay") || !strings.Contains(err.Error(), "between 0 and 30s") {
			t.Errorf("ack_delay: %s: %v; want an error at buffer.ack_delay", bad, err)
		}
	}
	withInflight := func(v string) string {
		return strings.Replace(minimalMQTT, "client_id: envgateBox1\n", "client_id: envgateBox1\n    max_inflight: "+v+"\n", 1)
	}
	cfg, err = Parse([]byte(withInflight("1000")), "x.yaml")
	if err != nil || cfg.MQTT[0].MaxInflight != 1000 {
		t.Fatalf("max_inflight: 1000: %v", err)
	}
	if sc, err := cfg.MQTT[0].Subscriber(time.Hour); err != nil || sc.MaxInflight != 1000 {
		t.Fatalf("Subscriber().MaxInflight = %d, %v; want 1000", sc.MaxInflight, err)
	}
	for v, want := range map[string]string{"0": "must not be 0", "8193": "between 1 and 8192"} {
		_, err := Parse([]byte(withInflight(v)), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), "mqtt[0].max_inflight") || !strings.Contains(err.Error(), want) {
			t.Errorf("max_inflight: %s: %v; want %q at mqtt[0].max_inflight", v, err, want)
		}
	}
}
