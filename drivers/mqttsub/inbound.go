package mqttsub

import (
	"errors"
	"fmt"
	"io"
)

// Receiving PUBLISH packets without paho (issue 14).
//
// paho reads each packet on one goroutine and hands a PUBLISH through four more
// (incoming comms, comms, the workers' relay, the router) before the message handler
// sees it, allocating a packet, a message and an ack closure on the way; for a small
// message that was about as much CPU as the rest of the subscriber. brokerConn sits
// beneath paho and reads whole packets itself: a PUBLISH at QoS 0 or 1 goes straight
// to the subscriber (runner.onPublish) on paho's reader goroutine, and every other
// packet (CONNACK, SUBACK, PINGRESP, and a QoS 2 PUBLISH, which a broker never sends
// to QoS 1 subscriptions, MQTT 3.1.1 §3.8.4) is handed to paho's reads byte for byte.
// paho's side of a QoS 0 or 1 PUBLISH is only the handler call and the PUBACK, and the
// subscriber writes its PUBACKs itself (runner.writePubacks). paho then never sees
// a PUBLISH, so its keep-alive, which counts the packets it reads and writes, sends a
// PINGREQ every keep-alive interval while messages flow; the broker answers each.
//
// A packet that is not well formed ends the connection as a read error, as paho's
// own reader would.

// inboundPublish is a received PUBLISH (MQTT 3.1.1 §3.3).
type inboundPublish struct {
	topic   string
	payload []byte
	qos     byte
	id      uint16 // packet identifier; QoS 1 only
	size    int    // the payload's length, if more than payload holds (see readLargePublish)
}

// MQTT 3.1.1 §2.2: the packet type is the high nibble of the first byte; for a
// PUBLISH, bits 1-2 are the QoS. The remaining length takes 1 to 4 bytes of 7 bits,
// least significant first, the high bit set on all but the last.
const (
	packetPublish   = 3
	maxLengthBytes  = 4
	errPacketPrefix = "mqtt packet from the broker"
)

var errRemainingLength = errors.New(errPacketPrefix + ": remaining length longer than 4 bytes")

// readForPaho serves paho's reads from the packets that are not taken here; it reads
// and takes PUBLISH packets until there is one.
func (c *brokerConn) readForPaho(b []byte) (int, error) {
	for len(c.pass) == 0 {
		if err := c.nextPacket(); err != nil {
			return 0, err
		}
	}
	n := copy(b, c.pass)
	c.pass = c.pass[n:]
	return n, nil
}

// nextPacket reads one packet: a QoS 0 or 1 PUBLISH goes to c.publish, any other is
// put in c.pass for paho.
func (c *brokerConn) nextPacket() error {
	h, err := c.br.ReadByte()
	if err != nil {
		return err
	}
	var lenBytes [maxLengthBytes]byte
	nl, rl := 0, 0
	for {
		x, err := c.br.ReadByte()
		if err != nil {
			return unexpectedEOF(err)
		}
		lenBytes[nl] = x
		rl |= int(x&0x7f) << (7 * nl)
		nl++
		if x&0x80 == 0 {
			break
		}
		if nl == maxLengthBytes {
			return errRemainingLength
		}
	}
	if h>>4 == packetPublish && (h>>1)&3 < 2 {
		if rl >= bigBody {
			p, err := c.readLargePublish(h, rl)
			if err != nil {
				return err
			}
			c.publish(c.gen, p)
			return nil
		}
		body, err := readBody(c.br, rl)
		if err != nil {
			return err
		}
		p, err := parsePublish(h, body)
		if err != nil {
			return err
		}
		c.publish(c.gen, p)
		return nil
	}
	body, err := readBody(c.br, rl)
	if err != nil {
		return err
	}
	c.passBuf = append(append(append(c.passBuf[:0], h), lenBytes[:nl]...), body...)
	c.pass = c.passBuf
	return nil
}

// bigBody is the remaining length from which a packet's body is read into a buffer
// that grows as the bytes arrive, so that a length field alone cannot allocate up to
// 256 MiB; a smaller body is allocated at once, at its size.
const bigBody = 64 << 10

// readBody reads the n bytes of a packet's body.
func readBody(r io.Reader, n int) ([]byte, error) {
	if n < bigBody {
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, unexpectedEOF(err)
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err == nil && len(body) < n {
		err = io.ErrUnexpectedEOF
	}
	return body, err
}

// readLargePublish reads a QoS 0 or 1 PUBLISH whose first byte is h and whose remaining
// length rl is at least bigBody, as parsePublish does, except that of a payload longer
// than c.maxPayload it keeps only the first stubPayload bytes (all the subscriber keeps
// of an oversize message) and reads past the rest: a publisher can send up to 256 MiB
// through a broker at its defaults, and that must not be held in memory.
func (c *brokerConn) readLargePublish(h byte, rl int) (inboundPublish, error) {
	qos := (h >> 1) & 3
	var tl [2]byte
	if _, err := io.ReadFull(c.br, tl[:]); err != nil {
		return inboundPublish{}, unexpectedEOF(err)
	}
	head := int(tl[0])<<8 | int(tl[1]) // the topic, then the packet identifier for QoS 1
	if qos > 0 {
		head += 2
	}
	if 2+head > rl {
		return inboundPublish{}, fmt.Errorf("%s: PUBLISH of %d bytes is shorter than its topic and packet identifier", errPacketPrefix, rl)
	}
	vh := make([]byte, head)
	if _, err := io.ReadFull(c.br, vh); err != nil {
		return inboundPublish{}, unexpectedEOF(err)
	}
	p := inboundPublish{qos: qos}
	if qos > 0 {
		p.topic = string(vh[:head-2])
		p.id = uint16(vh[head-2])<<8 | uint16(vh[head-1])
	} else {
		p.topic = string(vh)
	}
	n := rl - 2 - head
	if c.maxPayload <= 0 || n <= c.maxPayload {
		var err error
		p.payload, err = readBody(c.br, n)
		return p, err
	}
	p.size = n
	p.payload = make([]byte, min(n, stubPayload))
	if _, err := io.ReadFull(c.br, p.payload); err != nil {
		return inboundPublish{}, unexpectedEOF(err)
	}
	if _, err := io.CopyN(io.Discard, c.br, int64(n-len(p.payload))); err != nil {
		return inboundPublish{}, unexpectedEOF(err)
	}
	return p, nil
}

// parsePublish reads the variable header and payload of a QoS 0 or 1 PUBLISH whose
// first byte is h (MQTT 3.1.1 §3.3.2): a length-prefixed topic, the packet identifier
// for QoS 1, then the payload, which keeps body's memory.
func parsePublish(h byte, body []byte) (inboundPublish, error) {
	qos := (h >> 1) & 3
	if len(body) < 2 {
		return inboundPublish{}, fmt.Errorf("%s: PUBLISH of %d bytes has no topic length", errPacketPrefix, len(body))
	}
	end := 2 + (int(body[0])<<8 | int(body[1]))
	if qos > 0 {
		end += 2
	}
	if end > len(body) {
		return inboundPublish{}, fmt.Errorf("%s: PUBLISH of %d bytes is shorter than its topic and packet identifier", errPacketPrefix, len(body))
	}
	p := inboundPublish{qos: qos, payload: body[end:]}
	if qos > 0 {
		p.topic = string(body[2 : end-2])
		p.id = uint16(body[end-2])<<8 | uint16(body[end-1])
	} else {
		p.topic = string(body[2:end])
	}
	return p, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
