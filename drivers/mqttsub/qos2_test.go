package mqttsub

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/envgate/envgate/gateway/reading"
)

// qos2Msg is a fakeMsg delivered at QoS 2, with packet identifier 0x0102.
type qos2Msg struct{ fakeMsg }

func (*qos2Msg) Qos() byte         { return 2 }
func (*qos2Msg) MessageID() uint16 { return 0x0102 }

// A QoS 2 PUBLISH (which only a broker breaking MQTT 3.1.1 §3.8.4 sends to the QoS 1
// subscription) goes to paho, and then to the subscriber's handler: it is acknowledged,
// once durable, with a PUBREC (MQTT 3.1.1 §4.3.3), as paho's Message.Ack did before
// the subscriber wrote its acknowledgements itself, not with a PUBACK, which the
// broker does not take for it and which would leave it to be delivered again forever.
// paho answers the broker's PUBREL with the PUBCOMP.
func TestQoS2AcknowledgedWithPubrec(t *testing.T) {
	r, _, _ := newTestRunner(t)
	conn := &byteConn{}
	bc := newBrokerConn(conn, new(atomic.Bool))
	bc.gen = 2
	r.gen.Store(2)
	r.conn.Store(bc)
	out := make(chan reading.Batch, 1)
	r.handle(t.Context(), r.newArrived(&qos2Msg{fakeMsg{topic: "lora/q2/la", payload: []byte("50")}}), out)
	(<-out).Durable(nil)
	r.ackReady()
	if want := []byte{0x50, 2, 1, 2}; !bytes.Equal(conn.written.Bytes(), want) {
		t.Errorf("wrote % x for a QoS 2 message, want the PUBREC % x", conn.written.Bytes(), want)
	}
}
