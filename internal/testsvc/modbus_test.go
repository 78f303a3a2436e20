package testsvc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// These tests check the harness with a minimal Modbus master written here, independent
// of drivers/modbus, so that a bug shared by the driver and its tests cannot hide.

// noReply is how long a test waits to conclude that a slave stays silent.
const noReply = 500 * time.Millisecond

// crc16 is CRC-16/MODBUS (Modbus over Serial Line V1.02 §6.2.2): reflected polynomial
// 0xA001, initial value 0xFFFF; it is sent low byte first.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// pdu is a request PDU: function code, start address, quantity (reads only).
func pdu(fc byte, addr, n uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16([]byte{fc}, addr), n)
}

// rtuFrame wraps a PDU for slave id in an RTU frame.
func rtuFrame(id byte, p []byte) []byte {
	f := append([]byte{id}, p...)
	return binary.LittleEndian.AppendUint16(f, crc16(f))
}

func TestCRC16(t *testing.T) {
	// Read one holding register at 0 from slave 1: the example every Modbus guide uses.
	if got, want := rtuFrame(1, pdu(3, 0, 1)), []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A}; !bytes.Equal(got, want) {
		t.Errorf("rtuFrame(1, 03 0000 0001) = % x, want % x", got, want)
	}
}

// conn is what the RTU helpers need of an *os.File or a net.Conn.
type conn interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	SetReadDeadline(time.Time) error
}

// readRTU reads one RTU response frame (function codes 1-4, or an exception) and
// checks its CRC; it returns the frame without the CRC. It gives up at the deadline,
// returning what it has read so far.
func readRTU(c conn, timeout time.Duration) ([]byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var buf []byte
	want := 5 // the shortest frame: an exception
	tmp := make([]byte, 256)
	for len(buf) < want {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			return buf, err
		}
		if len(buf) >= 3 && buf[1]&0x80 == 0 {
			want = 3 + int(buf[2]) + 2 // id, fc, byte count, data, CRC
		}
	}
	if len(buf) > want {
		return buf, fmt.Errorf("% x: %d bytes after the frame", buf, len(buf)-want)
	}
	body := buf[:want-2]
	if got, crc := binary.LittleEndian.Uint16(buf[want-2:]), crc16(body); got != crc {
		return buf, fmt.Errorf("% x: CRC %04x, want %04x", buf, got, crc)
	}
	return body, nil
}

// rtuQuery sends an RTU request and returns the response without its CRC.
func rtuQuery(t *testing.T, c conn, id byte, p []byte) []byte {
	t.Helper()
	req := rtuFrame(id, p)
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write % x: %v", req, err)
	}
	resp, err := readRTU(c, 2*time.Second)
	if err != nil {
		t.Fatalf("request % x: response % x: %v", req, resp, err)
	}
	return resp
}

// rtuSilent checks that nothing answers an RTU request within noReply.
func rtuSilent(t *testing.T, c conn, id byte, p []byte) {
	t.Helper()
	req := rtuFrame(id, p)
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write % x: %v", req, err)
	}
	resp, err := readRTU(c, noReply)
	if len(resp) > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("request % x: got % x, %v; want no reply within %v", req, resp, err, noReply)
	}
}

// openPty opens a pty end for reading and writing; socat made it raw, so no termios
// calls are needed. The file is pollable, so read deadlines work.
func openPty(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// regs is the response to a register read carrying values.
func regs(id, fc byte, values ...uint16) []byte {
	b := []byte{id, fc, byte(2 * len(values))}
	for _, v := range values {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func testSlaves() map[uint8]SlaveData {
	return map[uint8]SlaveData{
		1: {Holding: map[uint16]uint16{0: 625}},
		7: {
			Holding:  map[uint16]uint16{0: 0x0102, 1: 0xFFFE, 2: 0},
			Input:    map[uint16]uint16{100: 42},
			Coils:    map[uint16]bool{0: true, 1: false, 2: true},
			Discrete: map[uint16]bool{5: true},
		},
	}
}

func TestModbusSlaveRTU(t *testing.T) {
	p := PtyPair(t)
	s := StartModbusSlave(t, SlaveOptions{Serial: p.A, Baud: 19200, Parity: "E", Slaves: testSlaves()})
	if s.Addr != "" {
		t.Errorf("serial slave: Addr = %q, want empty", s.Addr)
	}
	f := openPty(t, p.B)

	check := func(id byte, req, want []byte) {
		t.Helper()
		if got := rtuQuery(t, f, id, req); !bytes.Equal(got, want) {
			t.Errorf("slave %d request % x: got % x, want % x", id, req, got, want)
		}
	}
	check(1, pdu(3, 0, 1), regs(1, 3, 625))
	check(7, pdu(3, 0, 3), regs(7, 3, 0x0102, 0xFFFE, 0))
	check(7, pdu(4, 100, 1), regs(7, 4, 42))
	check(7, pdu(1, 0, 3), []byte{7, 1, 1, 0b101})
	check(7, pdu(2, 5, 1), []byte{7, 2, 1, 1})

	// Addresses outside the configured ones: exception 02 (illegal data address).
	check(1, pdu(3, 1, 1), []byte{1, 0x83, 2})
	check(1, pdu(3, 0, 2), []byte{1, 0x83, 2})
	check(1, pdu(4, 0, 1), []byte{1, 0x84, 2})
	check(7, pdu(3, 3, 1), []byte{7, 0x83, 2})
	check(7, pdu(1, 1, 3), []byte{7, 0x81, 2})

	// A slave id that is not configured stays silent, and the bus still works after.
	rtuSilent(t, f, 3, pdu(3, 0, 1))
	rtuSilent(t, f, 247, pdu(3, 0, 1))
	check(1, pdu(3, 0, 1), regs(1, 3, 625))

	s.SetRegister(t, 1, true, 0, 700)
	s.SetRegister(t, 7, false, 101, 43)
	check(1, pdu(3, 0, 1), regs(1, 3, 700))
	check(7, pdu(4, 100, 2), regs(7, 4, 42, 43))
}

func TestModbusSlaveTCP(t *testing.T) {
	s := StartModbusSlave(t, SlaveOptions{TCP: true, Slaves: testSlaves()})
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr, err)
	}
	t.Cleanup(func() { c.Close() })

	// mbap prefixes a PDU with the MBAP header (Modbus Messaging on TCP/IP V1.0b §3.1.3):
	// transaction id, protocol 0, length of unit id + PDU, unit id.
	mbap := func(tid uint16, unit byte, p []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, tid)
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(1+len(p)))
		return append(append(b, unit), p...)
	}
	send := func(req []byte) {
		t.Helper()
		if _, err := c.Write(req); err != nil {
			t.Fatalf("write % x: %v", req, err)
		}
	}
	check := func(tid uint16, unit byte, p, wantPDU []byte) {
		t.Helper()
		req := mbap(tid, unit, p)
		send(req)
		want := mbap(tid, unit, wantPDU)
		got := make([]byte, len(want))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := readFull(c, got); err != nil {
			t.Fatalf("request % x: response % x: %v", req, got[:n], err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("request % x: got % x, want % x", req, got, want)
		}
	}
	check(0x1234, 1, pdu(3, 0, 1), []byte{3, 2, 0x02, 0x71})
	check(0x1235, 7, pdu(3, 0, 2), []byte{3, 4, 0x01, 0x02, 0xFF, 0xFE})
	check(0x1236, 7, pdu(4, 100, 1), []byte{4, 2, 0, 42})
	check(0x1237, 1, pdu(3, 5, 1), []byte{0x83, 2})

	// An unknown unit id: no reply, and the connection stays usable.
	req := mbap(0x1238, 3, pdu(3, 0, 1))
	send(req)
	_ = c.SetReadDeadline(time.Now().Add(noReply))
	buf := make([]byte, 64)
	if n, err := c.Read(buf); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("request % x to a missing unit: got % x, %v; want no reply within %v", req, buf[:n], err, noReply)
	}
	s.SetRegister(t, 1, true, 0, 1)
	check(0x1239, 1, pdu(3, 0, 1), []byte{3, 2, 0, 1})

	// A request split across TCP segments is answered too: the slave reads a stream,
	// as devices do. The pause makes the two writes arrive as two reads.
	req = mbap(0x123A, 7, pdu(3, 1, 1))
	send(req[:7])
	time.Sleep(50 * time.Millisecond)
	send(req[7:])
	want := mbap(0x123A, 7, []byte{3, 2, 0xFF, 0xFE})
	got := make([]byte, len(want))
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := readFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Errorf("split request % x: got % x, %v; want % x", req, got[:n], err, want)
	}
}

// readFull reads len(b) bytes or fails at the connection's deadline.
func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestModbusSlaveRTUOverTCP(t *testing.T) {
	s := StartModbusSlave(t, SlaveOptions{RTUOverTCP: true, Slaves: testSlaves()})
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if got, want := rtuQuery(t, c, 1, pdu(3, 0, 1)), regs(1, 3, 625); !bytes.Equal(got, want) {
		t.Errorf("RTU over TCP, slave 1: got % x, want % x", got, want)
	}
	rtuSilent(t, c, 2, pdu(3, 0, 1))
	if got, want := rtuQuery(t, c, 7, pdu(3, 1, 1)), regs(7, 3, 0xFFFE); !bytes.Equal(got, want) {
		t.Errorf("RTU over TCP, slave 7: got % x, want % x", got, want)
	}
}

func TestPtyCloseRestart(t *testing.T) {
	p := PtyPair(t)
	s := StartModbusSlave(t, SlaveOptions{Serial: p.A, Slaves: map[uint8]SlaveData{1: {Holding: map[uint16]uint16{0: 625}}}})
	old := openPty(t, p.B)
	if got, want := rtuQuery(t, old, 1, pdu(3, 0, 1)), regs(1, 3, 625); !bytes.Equal(got, want) {
		t.Fatalf("before Close: got % x, want % x", got, want)
	}

	p.Close(t)
	for _, l := range []string{p.A, p.B} {
		if _, err := os.Lstat(l); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Close: Lstat(%s) = %v, want not exist", l, err)
		}
	}
	// The open end has hung up: a read fails at once (EIO on Linux) instead of waiting.
	_ = old.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := old.Read(make([]byte, 16)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from a closed pty: %d bytes, %v; want a hang-up error", n, err)
	}
	p.Close(t) // a second Close does nothing

	p.Restart(t)
	f := openPty(t, p.B)
	// The slave reopens p.A on its own, every 0.1 s; ask until it answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req := rtuFrame(1, pdu(3, 0, 1))
		if _, err := f.Write(req); err != nil {
			t.Fatalf("write after Restart: %v", err)
		}
		resp, err := readRTU(f, 200*time.Millisecond)
		if err == nil {
			if want := regs(1, 3, 625); !bytes.Equal(resp, want) {
				t.Errorf("after Restart: got % x, want % x", resp, want)
			}
			break
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Now().After(deadline) {
			t.Fatalf("after Restart: response % x: %v", resp, err)
		}
	}
	s.Stop(t)
	s.Stop(t) // a second Stop does nothing
}

func TestPtyPairRelays(t *testing.T) {
	p := PtyPair(t)
	a, b := openPty(t, p.A), openPty(t, p.B)
	relay := func(from, to *os.File, msg []byte) {
		t.Helper()
		if _, err := from.Write(msg); err != nil {
			t.Fatalf("write % x: %v", msg, err)
		}
		got := make([]byte, len(msg))
		_ = to.SetReadDeadline(time.Now().Add(2 * time.Second))
		n := 0
		for n < len(got) {
			m, err := to.Read(got[n:])
			n += m
			if err != nil {
				t.Fatalf("relay % x: read % x: %v", msg, got[:n], err)
			}
		}
		if !bytes.Equal(got, msg) {
			t.Errorf("relay % x: got % x", msg, got)
		}
	}
	// Raw mode: CR, LF, NUL, XON/XOFF and ^C pass through unchanged.
	relay(a, b, []byte{0x01, 0x0D, 0x0A, 0x00, 0x11, 0x13, 0x03, 0xFF})
	relay(b, a, []byte{0x0A, 0x0D, 0x7F, 0x1C, 0x04})
}
