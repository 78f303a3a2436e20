package mqttsub

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/testsvc"
)

// readerConn is a connection whose reads come from r.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c *readerConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// zeros reads zero bytes without end.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// remainingLength encodes n as MQTT 3.1.1 §2.2.3 does.
func remainingLength(n int) []byte {
	var b []byte
	for {
		x := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			x |= 0x80
		}
		b = append(b, x)
		if n == 0 {
			return b
		}
	}
}

// A PUBLISH far larger than max_payload (a publisher may send up to 256 MiB through a
// broker at its defaults) is kept as its stub and its size: the rest is read past, not
// into memory, and the packets after it are read as usual.
func TestBrokerConnHugePublishNotHeld(t *testing.T) {
	const size = 64 << 20
	topic := "lora/big/la"
	hdr := []byte{packetPublish<<4 | 1<<1}
	hdr = append(hdr, remainingLength(2+len(topic)+2+size)...)
	hdr = append(hdr, 0, byte(len(topic)))
	hdr = append(hdr, topic...)
	hdr = append(hdr, 0, 5)
	pingresp := []byte{0xd0, 0}
	stream := io.MultiReader(bytes.NewReader(hdr), io.LimitReader(zeros{}, size), bytes.NewReader(pingresp))
	c := newBrokerConn(&readerConn{r: stream}, new(atomic.Bool))
	c.maxPayload = 64 << 10
	var got []inboundPublish
	c.publish = func(_ uint64, p inboundPublish) { got = append(got, p) }

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	paho, err := readAll(c)
	runtime.ReadMemStats(&after)
	if err != io.EOF {
		t.Fatalf("read error %v, want EOF at the end", err)
	}
	if !bytes.Equal(paho, pingresp) {
		t.Errorf("paho read % x, want the PINGRESP % x", paho, pingresp)
	}
	if len(got) != 1 {
		t.Fatalf("%d publishes, want 1", len(got))
	}
	if p := got[0]; p.topic != topic || p.id != 5 || p.size != size || len(p.payload) > stubPayload {
		t.Fatalf("publish of %s, id %d, size %d, %d payload bytes kept; want %s, id 5, size %d, at most %d kept",
			p.topic, p.id, p.size, len(p.payload), topic, size, stubPayload)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("reading a %d-byte PUBLISH allocated %d bytes", size, alloc)
	}
	a := (&runner{s: &Subscriber{cfg: Config{MaxPayload: c.maxPayload, Now: time.Now}}}).arrival(1, got[0])
	if !a.oversize || a.size != size || len(a.payload) > stubPayload {
		t.Errorf("arrival: oversize %v, size %d, %d bytes kept; want oversize, %d, a stub", a.oversize, a.size, len(a.payload), size)
	}
}

// Through a real broker: a message of 1 MiB (max_payload 64 KiB) is dead-lettered as
// oversize with its size and acknowledged, and the message after it is delivered.
func TestRunOversizeThroughBroker(t *testing.T) {
	b := startBroker(t, testsvc.MosquittoOptions{})
	cfg := testConfig(b, "envgateHuge", loraNumber)
	cfg.DeadLetter = filepath.Join(t.TempDir(), "dead.log")
	r := runSub(t, cfg)
	r.waitSubscribed()
	b.publish([2]string{"lora/big-1/la", strings.Repeat("9", 1<<20)}, [2]string{"lora/nm-2/la", "61.5"})
	got := r.next()
	if w := laNumber("nm-2", 61.5); !sameReadings(got.Readings, w) {
		t.Fatalf("batch = %v, want %v", got.Readings, w)
	}
	got.Durable(nil)
	b.waitAcked("envgateHuge", 2)
	if st := r.s.Stats(); st.ErrorsByKind[KindOversize] != 1 {
		t.Errorf("Stats() = %+v, want 1 oversize", st)
	}
	r.stop()
	if dl := readFile(t, cfg.DeadLetter); !strings.Contains(dl, strconv.Itoa(1<<20)) {
		t.Errorf("dead-letter file does not give the size %d:\n%.600s", 1<<20, dl)
	}
}
