package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/creack/pty"
)

// A fault is what the fake slave does wrong with one reply.
type fault int

const (
	faultAnswer     fault = iota // a correct reply
	faultSilent                  // no reply at all
	faultGarbage                 // junk bytes, then the correct reply
	faultBadCRC                  // the reply with its CRC broken
	faultTruncate                // the first half of the reply, then silence
	faultException               // exception 02, illegal data address
	faultSplit                   // the reply in three writes, a few ms apart
	faultWrongSlave              // a well-formed reply from another slave address
)

func (f fault) String() string {
	return [...]string{"answer", "silent", "garbage", "badCRC", "truncate", "exception", "split", "wrongSlave"}[f]
}

// rtuFake answers RTU read requests for several slave ids from register maps, the way
// a bus of sensors would, and misbehaves on request.
type rtuFake struct {
	mu       sync.Mutex
	regs     map[uint8][]uint16 // holding and input registers alike
	coils    map[uint8][]bool
	next     map[uint8]fault // one-shot fault for the next request to that slave
	mute     map[uint8]bool  // slaves that never answer
	delay    time.Duration   // processing time before each reply
	requests atomic.Int64
}

func newRTUFake() *rtuFake {
	s := &rtuFake{
		regs:  map[uint8][]uint16{},
		coils: map[uint8][]bool{},
		next:  map[uint8]fault{},
		mute:  map[uint8]bool{},
	}
	for _, id := range []uint8{1, 2, 7} {
		regs := make([]uint16, 128)
		for i := range regs {
			regs[i] = uint16(id)<<8 | uint16(i)
		}
		s.regs[id] = regs
		s.coils[id] = []bool{true, false, true, true, false, false, false, true, true, false, true}
	}
	s.regs[1][0] = 625 // a noise sensor's 62.5 dB (docs/engineering-notes.md §1.3)
	// 23.5 as float32 in each word order at 10, 12, 14, 16.
	for i, o := range []WordOrder{ABCD, CDAB, BADC, DCBA} {
		w, _ := Encode(23.5, Float32, o)
		copy(s.regs[1][10+2*i:], w)
	}
	return s
}

// setMute makes slave id never answer, like a sensor that is off the bus.
func (s *rtuFake) setMute(id uint8) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mute[id] = true
}

func (s *rtuFake) setFault(id uint8, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next[id] = f
}

// serve answers requests read from rw until reading fails (the other end closed).
func (s *rtuFake) serve(rw io.ReadWriter) {
	var pending []byte
	buf := make([]byte, 512)
	for {
		n, err := rw.Read(buf)
		if err != nil {
			return
		}
		pending = append(pending, buf[:n]...)
		// Every read request is 8 bytes; hunt for one with a good CRC.
		for len(pending) >= 8 {
			if !checkCRC(pending[:8]) {
				pending = pending[1:]
				continue
			}
			if err := s.handle(rw, pending[:8]); err != nil {
				return
			}
			pending = pending[8:]
		}
	}
}

func (s *rtuFake) handle(w io.Writer, req []byte) error {
	s.requests.Add(1)
	id, fn := req[0], Function(req[1])
	addr, count := int(req[2])<<8|int(req[3]), int(req[4])<<8|int(req[5])
	s.mu.Lock()
	f := s.next[id]
	delete(s.next, id)
	regs, coils, mute, delay := s.regs[id], s.coils[id], s.mute[id], s.delay
	s.mu.Unlock()
	if mute || regs == nil || f == faultSilent {
		return nil
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	reply := []byte{id, byte(fn)}
	switch {
	case f == faultException:
		reply = []byte{id, byte(fn) | 0x80, 2}
	case (fn == ReadHoldingRegisters || fn == ReadInputRegisters) && addr+count <= len(regs):
		reply = append(reply, byte(2*count))
		for _, r := range regs[addr : addr+count] {
			reply = append(reply, byte(r>>8), byte(r))
		}
	case fn.IsBits() && addr+count <= len(coils):
		reply = append(reply, byte((count+7)/8))
		packed := make([]byte, (count+7)/8)
		for i, b := range coils[addr : addr+count] {
			if b {
				packed[i/8] |= 1 << (i % 8)
			}
		}
		reply = append(reply, packed...)
	default:
		reply = []byte{id, byte(fn) | 0x80, 2}
	}
	if f == faultWrongSlave {
		reply[0] = id + 1
	}
	reply = AppendCRC(reply)
	switch f {
	case faultBadCRC:
		reply[len(reply)-1] ^= 0x5A
	case faultTruncate:
		reply = reply[:len(reply)/2]
	case faultGarbage:
		reply = append([]byte{0x00, 0xFF, 0x55, 0xAA, 0x13}, reply...)
	case faultSplit:
		for len(reply) > 2 {
			if _, err := w.Write(reply[:2]); err != nil {
				return err
			}
			reply = reply[2:]
			time.Sleep(3 * time.Millisecond)
		}
	}
	_, err := w.Write(reply)
	return err
}

// ptyBus is an RTU master on the slave end of a pty with a fake slave on the master end.
type ptyBus struct {
	rtu    *RTU
	slave  *rtuFake
	master *os.File
	path   string
	done   chan struct{} // closed when the fake slave stops
}

// newPTYBus opens a pty pair: the RTU opens the slave's path through go.bug.st/serial
// (OpenSerial), the fake slave serves the master end.
func newPTYBus(t testing.TB, opt RTUOptions) *ptyBus {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pty on this machine: %v", err)
		}
		t.Skipf("no pty on this machine: %v", err)
	}
	path := tty.Name()
	rtu, err := OpenSerial(path, opt)
	// The RTU has its own descriptor now; a second one would keep the line up after the
	// RTU closes, and the master would never see the hangup (docs/engineering-notes.md §8).
	tty.Close()
	if err != nil {
		ptmx.Close()
		t.Fatalf("OpenSerial(%s) = %v", path, err)
	}
	master := pollable(t, ptmx)
	b := &ptyBus{rtu: rtu, slave: newRTUFake(), master: master, path: path, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.slave.serve(master)
	}()
	t.Cleanup(func() {
		rtu.Close()
		master.Close()
		<-b.done
	})
	return b
}

// pollable returns a copy of the pty master that Go's poller manages, so that Close
// interrupts a blocked Read. creack/pty calls Fd() on the master, which switches it to
// blocking mode, and Close on a blocking *os.File waits for the Read to finish.
func pollable(t testing.TB, ptmx *os.File) *os.File {
	t.Helper()
	fd, err := syscall.Dup(int(ptmx.Fd()))
	if err != nil {
		t.Fatalf("dup pty master: %v", err)
	}
	ptmx.Close()
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatalf("set pty master non-blocking: %v", err)
	}
	return os.NewFile(uintptr(fd), "ptmx")
}

// errClass names the class of a transaction error, for assertions.
func errClass(err error) string {
	var exc *ExceptionError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrCRC):
		return "crc"
	case errors.Is(err, ErrFrame):
		return "frame"
	case errors.As(err, &exc):
		return "exception"
	case isCtxErr(err):
		return "ctx"
	}
	return "io"
}

var rtuTestOpt = RTUOptions{Baud: 9600, Parity: "none", StopBits: 1, Timeout: 150 * time.Millisecond}

func TestRTUOverPTY(t *testing.T) {
	b := newPTYBus(t, rtuTestOpt)
	ctx := t.Context()

	check := func(slave uint8, fn Function, addr, count uint16, want []uint16) {
		t.Helper()
		got, err := b.rtu.ReadRegisters(ctx, slave, fn, addr, count)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ReadRegisters(slave %d, fc %d, %d, %d) = %04X, %v; want %04X", slave, fn, addr, count, got, err, want)
		}
	}
	check(1, ReadHoldingRegisters, 0, 1, []uint16{625})
	check(2, ReadInputRegisters, 3, 4, []uint16{0x0203, 0x0204, 0x0205, 0x0206})
	check(7, ReadHoldingRegisters, 0, 125, b.slave.regs[7][:125])

	bits, err := b.rtu.ReadBits(ctx, 7, ReadCoils, 0, 11)
	if want := b.slave.coils[7]; err != nil || !slices.Equal(bits, want) {
		t.Errorf("ReadBits(slave 7, coils 0-10) = %v, %v; want %v", bits, err, want)
	}
	bits, err = b.rtu.ReadBits(ctx, 2, ReadDiscreteInputs, 2, 3)
	if want := b.slave.coils[2][2:5]; err != nil || !slices.Equal(bits, want) {
		t.Errorf("ReadBits(slave 2, inputs 2-4) = %v, %v; want %v", bits, err, want)
	}
	for i, o := range []WordOrder{ABCD, CDAB, BADC, DCBA} {
		regs, err := b.rtu.ReadRegisters(ctx, 1, ReadHoldingRegisters, uint16(10+2*i), 2)
		if err != nil {
			t.Fatalf("read float32 %s: %v", o, err)
		}
		if v, err := Decode(regs, Float32, o); v != 23.5 || err != nil {
			t.Errorf("Decode(%04X, float32, %s) = %v, %v; want 23.5", regs, o, v, err)
		}
	}
}

// TestRTUFaultsResync checks each fault of the slave gives its error class, and that the
// next transactions, to another slave and to the same one, succeed.
func TestRTUFaultsResync(t *testing.T) {
	b := newPTYBus(t, rtuTestOpt)
	ctx := t.Context()
	b.slave.setMute(9)
	for _, c := range []struct {
		fault fault
		slave uint8
		want  string
	}{
		{faultSilent, 1, "timeout"},
		{faultAnswer, 9, "timeout"}, // slave 9 is muted: never answers
		{faultGarbage, 1, "frame"},
		{faultBadCRC, 1, "crc"},
		{faultTruncate, 1, "frame"},
		{faultException, 1, "exception"},
		{faultWrongSlave, 1, "frame"},
		{faultSplit, 1, "ok"},
		{faultAnswer, 1, "ok"},
	} {
		t.Run(fmt.Sprintf("%s/slave%d", c.fault, c.slave), func(t *testing.T) {
			b.slave.setFault(c.slave, c.fault)
			start := time.Now()
			regs, err := b.rtu.ReadRegisters(ctx, c.slave, ReadHoldingRegisters, 0, 4)
			if got := errClass(err); got != c.want {
				t.Fatalf("ReadRegisters with %s = %v, %v (class %s); want class %s", c.fault, regs, err, got, c.want)
			}
			if err != nil {
				wantMsg := fmt.Sprintf("read holding registers 0-3 from slave %d on %s: ", c.slave, b.path)
				if !strings.HasPrefix(err.Error(), wantMsg) {
					t.Errorf("error %q does not start with %q", err, wantMsg)
				}
			} else if regs[0] != uint16(c.slave)<<8 && regs[0] != 625 {
				t.Errorf("ReadRegisters = %04X, want the slave's map", regs)
			}
			var exc *ExceptionError
			if errors.As(err, &exc) && (exc.Code != 2 || exc.Function != ReadHoldingRegisters) {
				t.Errorf("exception = %+v, want code 2 to function 3", exc)
			}
			t.Logf("%s: %v in %v", c.fault, err, time.Since(start).Round(time.Millisecond))
			for _, next := range []uint8{2, 1} {
				if regs, err := b.rtu.ReadRegisters(ctx, next, ReadHoldingRegisters, 1, 2); err != nil || regs[0] != uint16(next)<<8|1 {
					t.Errorf("next transaction to slave %d after %s = %04X, %v; want success", next, c.fault, regs, err)
				}
			}
		})
	}
}

func TestRTURejectsBadRequests(t *testing.T) {
	b := newPTYBus(t, rtuTestOpt)
	ctx := t.Context()
	for _, c := range []struct {
		fn           Function
		slave        uint8
		addr, count  uint16
		bits         bool
		wantContains string
	}{
		{ReadHoldingRegisters, 1, 0, 0, false, "quantity 0 out of range 1-125"},
		{ReadHoldingRegisters, 1, 0, 126, false, "quantity 126 out of range 1-125"},
		{ReadInputRegisters, 1, 65535, 2, false, "run past 65535"},
		{ReadCoils, 1, 0, 2001, true, "quantity 2001 out of range 1-2000"},
		{ReadCoils, 1, 0, 1, false, "does not read registers"},
		{ReadHoldingRegisters, 1, 0, 1, true, "does not read bits"},
		{ReadHoldingRegisters, 0, 0, 1, false, "broadcast"},
	} {
		var err error
		if c.bits {
			_, err = b.rtu.ReadBits(ctx, c.slave, c.fn, c.addr, c.count)
		} else {
			_, err = b.rtu.ReadRegisters(ctx, c.slave, c.fn, c.addr, c.count)
		}
		if err == nil || !strings.Contains(err.Error(), c.wantContains) {
			t.Errorf("read fc %d slave %d %d+%d = %v, want an error containing %q", c.fn, c.slave, c.addr, c.count, err, c.wantContains)
		}
	}
	if n := b.slave.requests.Load(); n != 0 {
		t.Errorf("%d requests reached the slave, want none", n)
	}
	// The limits themselves are fine.
	if _, err := b.rtu.ReadBits(ctx, 1, ReadCoils, 0, 11); err != nil {
		t.Errorf("ReadBits(11 coils) = %v", err)
	}
	if _, err := b.rtu.ReadRegisters(ctx, 1, ReadHoldingRegisters, 3, 125); err != nil {
		t.Errorf("ReadRegisters(125) = %v", err)
	}
}

func TestRTUCancel(t *testing.T) {
	opt := rtuTestOpt
	opt.Timeout = 10 * time.Second
	b := newPTYBus(t, opt)
	b.slave.setMute(9)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.rtu.ReadRegisters(ctx, 9, ReadHoldingRegisters, 0, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ReadRegisters with a 100ms ctx = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("ReadRegisters returned %v after ctx ended, want promptly", d)
	}
	// A cancelled ctx fails before anything is sent.
	done, cancelNow := context.WithCancel(t.Context())
	cancelNow()
	if _, err := b.rtu.ReadRegisters(done, 1, ReadHoldingRegisters, 0, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadRegisters(cancelled ctx) = %v, want context.Canceled", err)
	}
	if regs, err := b.rtu.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1); err != nil || regs[0] != 625 {
		t.Errorf("ReadRegisters after cancellation = %v, %v; want [625]", regs, err)
	}
}

// TestRTUPortGone closes the pty master, as when a USB adapter is unplugged: the next
// transaction must return an I/O error, promptly, and Close must be idempotent.
func TestRTUPortGone(t *testing.T) {
	isIO := func(t *testing.T, err error, start time.Time) {
		t.Helper()
		if got := errClass(err); got != "io" {
			t.Errorf("transaction on a vanished port = %v (class %s), want an I/O error", err, got)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("transaction on a vanished port took %v, want it to fail promptly", d)
		}
		t.Logf("vanished port: %v", err)
	}
	opt := rtuTestOpt
	opt.Timeout = 5 * time.Second

	t.Run("between transactions", func(t *testing.T) {
		b := newPTYBus(t, opt)
		if _, err := b.rtu.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1); err != nil {
			t.Fatalf("first ReadRegisters = %v", err)
		}
		b.master.Close()
		<-b.done
		start := time.Now()
		_, err := b.rtu.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1)
		isIO(t, err, start)
		b.rtu.Close()
		if err := b.rtu.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		if _, err := b.rtu.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1); !errors.Is(err, os.ErrClosed) {
			t.Errorf("ReadRegisters after Close = %v, want os.ErrClosed", err)
		}
	})
	t.Run("while waiting for a reply", func(t *testing.T) {
		b := newPTYBus(t, opt)
		b.slave.setMute(9)
		stop := time.AfterFunc(50*time.Millisecond, func() { b.master.Close() })
		defer stop.Stop()
		start := time.Now()
		_, err := b.rtu.ReadRegisters(t.Context(), 9, ReadHoldingRegisters, 0, 1)
		isIO(t, err, start)
	})
}

func TestOpenSerialErrors(t *testing.T) {
	_, err := OpenSerial("/dev/ttyNOPE9", rtuTestOpt)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "envgate ports") {
		t.Errorf("OpenSerial(missing) = %v, want fs.ErrNotExist and a hint to run `envgate ports`", err)
	}
	file := t.TempDir() + "/not-a-tty"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSerial(file, rtuTestOpt); err == nil || !strings.Contains(err.Error(), "not a serial port") {
		t.Errorf("OpenSerial(regular file) = %v, want a 'not a serial port' hint", err)
	}
	_, err = OpenSerial(file, RTUOptions{Parity: "mark", StopBits: 3, DataBits: 7})
	for _, want := range []string{"parity", "stop_bits", "data_bits"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenSerial(bad options) = %v, want it to name %s", err, want)
		}
	}
}

// memPort is an in-memory Port: each Write queues the next canned reply for reading.
// Reads without data sleep their timeout, so under synctest they cost no real time.
type memPort struct {
	replies [][]byte
	in      []byte
	timeout time.Duration
	writes  []time.Time
	closed  bool
}

func (p *memPort) Write(b []byte) (int, error) {
	p.writes = append(p.writes, time.Now())
	if len(p.replies) > 0 {
		p.in = append(p.in, p.replies[0]...)
		p.replies = p.replies[1:]
	}
	return len(b), nil
}

func (p *memPort) Read(b []byte) (int, error) {
	if len(p.in) == 0 {
		time.Sleep(p.timeout)
		return 0, nil
	}
	n := copy(b, p.in)
	p.in = p.in[n:]
	return n, nil
}

func (p *memPort) SetReadTimeout(t time.Duration) error { p.timeout = t; return nil }
func (p *memPort) ResetInputBuffer() error              { p.in = nil; return nil }
func (p *memPort) Close() error                         { p.closed = true; return nil }

// TestRTUReplyClasses runs canned replies through the reader: each gives its error class,
// and a good transaction follows.
func TestRTUReplyClasses(t *testing.T) {
	good := unhex(t, "01 03 02 02 71 79 00") // docs/engineering-notes.md §1.3: 625
	crc := func(s string) []byte { return AppendCRC(unhex(t, s)) }
	for _, c := range []struct {
		name  string
		reply []byte
		want  string
	}{
		{"valid", good, "ok"},
		{"valid then junk", append(slices.Clone(good), 0xDE, 0xAD), "ok"},
		{"exception", unhex(t, "01 83 02 C0 F1"), "exception"},
		{"exception bad crc", unhex(t, "01 83 02 C0 F2"), "crc"},
		{"bad crc", unhex(t, "01 03 02 02 71 79 01"), "crc"},
		{"wrong slave", crc("02 03 02 02 71"), "frame"},
		{"wrong function", crc("01 04 02 02 71"), "frame"},
		{"exception to other function", crc("01 84 02"), "frame"},
		{"byte count too big", crc("01 03 04 02 71 00 00"), "frame"},
		{"truncated", unhex(t, "01 03 02 02"), "frame"},
		{"one byte", unhex(t, "01"), "frame"},
		{"nothing", nil, "timeout"},
		{"garbage first", append([]byte{0xFF}, good...), "frame"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &memPort{replies: [][]byte{c.reply, good}}
				r := NewRTU(p, RTUOptions{Baud: 9600, Timeout: 200 * time.Millisecond})
				regs, err := r.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1)
				if got := errClass(err); got != c.want {
					t.Errorf("ReadRegisters(reply % X) = %v, %v (class %s); want class %s", c.reply, regs, err, got, c.want)
				}
				if regs, err := r.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1); err != nil || !slices.Equal(regs, []uint16{625}) {
					t.Errorf("next ReadRegisters = %v, %v; want [625]", regs, err)
				}
			})
		})
	}
}

// TestRTUSilence checks the gap before each request: t3.5 plus Turnaround after the end
// of the previous transaction, on a fake clock.
func TestRTUSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		good := unhex(t, "01 03 02 02 71 79 00")
		p := &memPort{replies: [][]byte{good, good}}
		opt := RTUOptions{Baud: 9600, Timeout: time.Second, Turnaround: 10 * time.Millisecond}
		r := NewRTU(p, opt)
		if _, err := r.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1); err != nil {
			t.Fatal(err)
		}
		end := time.Now()
		if _, err := r.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1); err != nil {
			t.Fatal(err)
		}
		if gap, want := p.writes[1].Sub(end), opt.T35()+opt.Turnaround; gap != want {
			t.Errorf("silence before the second request = %v, want t3.5 + turnaround = %v", gap, want)
		}
	})
}

// TestRTUTimeoutTiming checks that no faultAnswer is reported after Timeout, counted from
// the end of the request on the wire, and that the drain after it is short.
func TestRTUTimeoutTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &memPort{}
		opt := RTUOptions{Baud: 9600, Timeout: 300 * time.Millisecond}
		r := NewRTU(p, opt)
		start := time.Now()
		_, err := r.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("ReadRegisters(no reply) = %v, want ErrTimeout", err)
		}
		took := time.Since(start)
		lo := opt.Timeout + 8*opt.CharTime()
		if took < lo || took > lo+100*time.Millisecond {
			t.Errorf("timeout took %v, want %v plus a short drain", took, lo)
		}
	})
}

// TestCharTiming checks character time and t3.5 against docs/engineering-notes.md §1.3.
func TestCharTiming(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(math.Round(v * 1e6)) }
	for _, c := range []struct {
		opt       RTUOptions
		char, t35 time.Duration
	}{
		{RTUOptions{Baud: 4800, Parity: "even"}, ms(2.292), ms(8.021)},
		{RTUOptions{Baud: 4800}, ms(2.083), ms(7.292)},
		{RTUOptions{Baud: 9600, Parity: "odd"}, ms(1.146), ms(4.010)},
		{RTUOptions{Baud: 9600, StopBits: 2}, ms(1.146), ms(4.010)},
		{RTUOptions{Baud: 9600, Parity: "none", StopBits: 1}, ms(1.042), ms(3.646)},
		{RTUOptions{}, ms(1.042), ms(3.646)}, // defaults: 9600 8N1
		{RTUOptions{Baud: 19200, Parity: "even"}, ms(0.573), ms(2.005)},
		{RTUOptions{Baud: 19200}, ms(0.521), ms(1.823)},
		{RTUOptions{Baud: 115200, Parity: "even"}, ms(11.0 / 115.2), ms(1.750)},
		{RTUOptions{Baud: 115200}, ms(10.0 / 115.2), ms(1.750)},
		{RTUOptions{Baud: 38400}, ms(10.0 / 38.4), ms(1.750)},
	} {
		near := func(got, want time.Duration) bool { return (got - want).Abs() <= time.Microsecond }
		if got := c.opt.CharTime(); !near(got, c.char) {
			t.Errorf("%+v CharTime() = %v, want %v", c.opt, got, c.char)
		}
		if got := c.opt.T35(); !near(got, c.t35) {
			t.Errorf("%+v T35() = %v, want %v", c.opt, got, c.t35)
		}
	}
}

// BenchmarkRTUTransaction measures transactions per second over a pty against the fake
// slave. A pty has no wire time, so the figure is the software bound: t3.5 of silence
// plus our overhead per transaction. Compare the wire limit in docs/engineering-notes.md §2.
func BenchmarkRTUTransaction(b *testing.B) {
	for _, baud := range []int{9600, 115200} {
		for _, n := range []uint16{1, 10} {
			b.Run(fmt.Sprintf("baud=%d/regs=%d", baud, n), func(b *testing.B) {
				opt := RTUOptions{Baud: baud, Timeout: time.Second}
				bus := newPTYBus(b, opt)
				ctx := b.Context()
				for b.Loop() {
					if _, err := bus.rtu.ReadRegisters(ctx, 1, ReadHoldingRegisters, 0, n); err != nil {
						b.Fatal(err)
					}
				}
				perTx := b.Elapsed() / time.Duration(b.N)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
				b.ReportMetric(float64((perTx - opt.T35()).Microseconds()), "µs-overhead/tx")
				// Wire limit for 8N1 (docs/engineering-notes.md §2): T(N) = (13+2N)·C + 2·t3.5.
				wire := time.Duration(13+2*int(n))*opt.CharTime() + 2*opt.T35()
				b.ReportMetric(1/wire.Seconds(), "wire-limit-tx/s")
			})
		}
	}
}
