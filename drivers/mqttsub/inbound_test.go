package mqttsub

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"testing"
)

// publishPacket encodes a PUBLISH (MQTT 3.1.1 §3.3) with a one-byte remaining length.
func publishPacket(qos byte, id uint16, topic, payload string) []byte {
	body := []byte{byte(len(topic) >> 8), byte(len(topic))}
	body = append(body, topic...)
	if qos > 0 {
		body = append(body, byte(id>>8), byte(id))
	}
	body = append(body, payload...)
	return append([]byte{packetPublish<<4 | qos<<1, byte(len(body))}, body...)
}

// readAll reads c as paho does until an error, and returns what paho got.
func readAll(c *brokerConn) ([]byte, error) {
	var got []byte
	buf := make([]byte, 3) // small reads, as paho's
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// Issue 14: a QoS 0 or 1 PUBLISH goes from the connection to the subscriber without
// passing through paho; every other packet reaches paho's reads unchanged, the CONNACK
// first (and its session-present flag is seen).
func TestBrokerConnTakesPublish(t *testing.T) {
	connack := []byte{0x20, 2, 1, 0}
	suback := []byte{0x90, 3, 0, 1, 1}
	pingresp := []byte{0xd0, 0}
	qos2 := publishPacket(2, 9, "q/2", "z")
	var stream []byte
	for _, p := range [][]byte{connack, publishPacket(1, 7, "lora/a/la", "50"), suback, publishPacket(0, 0, "lora/b/la", ""),
		pingresp, qos2, publishPacket(1, 0x1234, "x", "{}")} {
		stream = append(stream, p...)
	}
	var present atomic.Bool
	c := newBrokerConn(&byteConn{data: stream}, &present)
	c.gen = 4
	var got []inboundPublish
	c.publish = func(gen uint64, p inboundPublish) {
		if gen != 4 {
			t.Errorf("publish of connection %d, want 4", gen)
		}
		got = append(got, p)
	}
	paho, err := readAll(c)
	if err != io.EOF {
		t.Errorf("read error %v, want EOF at the end", err)
	}
	if want := slices.Concat(connack, suback, pingresp, qos2); !bytes.Equal(paho, want) {
		t.Errorf("paho read % x, want % x", paho, want)
	}
	want := []inboundPublish{
		{topic: "lora/a/la", payload: []byte("50"), qos: 1, id: 7},
		{topic: "lora/b/la", payload: []byte{}, qos: 0},
		{topic: "x", payload: []byte("{}"), qos: 1, id: 0x1234},
	}
	if !slices.EqualFunc(got, want, func(a, b inboundPublish) bool {
		return a.topic == b.topic && bytes.Equal(a.payload, b.payload) && a.qos == b.qos && a.id == b.id
	}) {
		t.Errorf("publishes %+v, want %+v", got, want)
	}
	if !present.Load() {
		t.Errorf("session present not seen in the CONNACK")
	}
}

// A packet that is not well formed, or cut short, is a read error for paho, which ends
// the connection.
func TestBrokerConnMalformedPacket(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"length of 5 bytes", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, errRemainingLength},
		{"topic past the end", []byte{0x30, 3, 0, 9, 'a'}, nil},
		{"no packet identifier", []byte{0x32, 3, 0, 1, 'a'}, nil},
		{"cut in the length", []byte{0x30, 0x80}, io.ErrUnexpectedEOF},
		{"cut in the body", []byte{0x32, 10, 0, 1}, io.ErrUnexpectedEOF},
		{"cut in a SUBACK", []byte{0x90, 3, 0}, io.ErrUnexpectedEOF},
	} {
		c := newBrokerConn(&byteConn{data: tc.stream}, new(atomic.Bool))
		c.publish = func(uint64, inboundPublish) { t.Errorf("%s: a publish was taken", tc.name) }
		got, err := readAll(c)
		if err == nil || err == io.EOF || tc.want != nil && !errors.Is(err, tc.want) || len(got) != 0 {
			t.Errorf("%s: paho read % x, error %v; want nothing and %v", tc.name, got, err, tc.want)
		}
	}
}

// FuzzBrokerConn feeds any bytes to the connection's packet reader: no panic, and no
// more is handed on, to paho and the subscriber together, than was read.
func FuzzBrokerConn(f *testing.F) {
	f.Add(slices.Concat([]byte{0x20, 2, 1, 0}, publishPacket(1, 7, "lora/a/la", "50"), []byte{0xd0, 0}))
	f.Add(publishPacket(0, 0, "", ""))
	f.Add(publishPacket(2, 1, "a", "b"))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x32, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newBrokerConn(&byteConn{data: data}, new(atomic.Bool))
		taken := 0
		c.publish = func(_ uint64, p inboundPublish) {
			if p.qos > 1 {
				t.Fatalf("QoS %d PUBLISH taken", p.qos)
			}
			taken += len(p.topic) + len(p.payload) + 2 // at least a fixed header each
		}
		paho, err := readAll(c)
		if err == nil {
			t.Fatal("readAll returned no error")
		}
		if taken+len(paho) > len(data) {
			t.Fatalf("handed on %d bytes to the subscriber and %d to paho from %d", taken, len(paho), len(data))
		}
	})
}
