package modbus

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	smb "github.com/simonvetter/modbus"
)

// tcpHandler is a simonvetter/modbus RequestHandler. Unit 1 answers from its maps; other
// units misbehave: 2 illegal data address, 3 server busy, 4 gateway target failed,
// 5 answers after tcpSlow (longer than the client's timeout), 6 illegal function.
type tcpHandler struct {
	holding []uint16
}

const tcpSlow = 300 * time.Millisecond

func newTCPHandler() *tcpHandler {
	h := &tcpHandler{holding: make([]uint16, 64)}
	for i := range h.holding {
		h.holding[i] = uint16(0x0100 + i)
	}
	for i, o := range []WordOrder{ABCD, CDAB, BADC, DCBA} {
		w, _ := Encode(23.5, Float32, o)
		copy(h.holding[10+2*i:], w)
	}
	return h
}

func (h *tcpHandler) unit(id uint8) error {
	switch id {
	case 2:
		return smb.ErrIllegalDataAddress
	case 3:
		return smb.ErrServerDeviceBusy
	case 4:
		return smb.ErrGWTargetFailedToRespond
	case 5:
		time.Sleep(tcpSlow)
	case 6:
		return smb.ErrIllegalFunction
	}
	return nil
}

func (h *tcpHandler) regs(id uint8, addr, n uint16, offset uint16) ([]uint16, error) {
	if err := h.unit(id); err != nil {
		return nil, err
	}
	if int(addr)+int(n) > len(h.holding) {
		return nil, smb.ErrIllegalDataAddress
	}
	out := slices.Clone(h.holding[addr : addr+n])
	for i := range out {
		out[i] += offset
	}
	return out, nil
}

func (h *tcpHandler) bools(id uint8, addr, n uint16, invert bool) ([]bool, error) {
	if err := h.unit(id); err != nil {
		return nil, err
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = (int(addr)+i)%3 == 0 != invert
	}
	return out, nil
}

func (h *tcpHandler) HandleCoils(req *smb.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		return nil, smb.ErrIllegalFunction
	}
	return h.bools(req.UnitId, req.Addr, req.Quantity, false)
}

func (h *tcpHandler) HandleDiscreteInputs(req *smb.DiscreteInputsRequest) ([]bool, error) {
	return h.bools(req.UnitId, req.Addr, req.Quantity, true)
}

func (h *tcpHandler) HandleHoldingRegisters(req *smb.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, smb.ErrIllegalFunction
	}
	return h.regs(req.UnitId, req.Addr, req.Quantity, 0)
}

func (h *tcpHandler) HandleInputRegisters(req *smb.InputRegistersRequest) ([]uint16, error) {
	return h.regs(req.UnitId, req.Addr, req.Quantity, 0x1000)
}

// startTCPServer runs simonvetter's Modbus TCP server on a free loopback port. The server
// does not report the port it bound, so take a free one from 127.0.0.1:0 first.
func startTCPServer(t *testing.T) string {
	t.Helper()
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		srv, err := smb.NewServer(&smb.ServerConfiguration{
			URL:     "tcp://" + addr,
			Timeout: 10 * time.Second,
			Logger:  log.New(io.Discard, "", 0),
		}, newTCPHandler())
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			continue // someone took the port in between
		}
		t.Cleanup(func() { srv.Stop() })
		return addr
	}
	t.Fatal("no free port for the modbus tcp server")
	return ""
}

// startRTUOverTCP serves the fake RTU slave on a loopback TCP port, as a serial-to-
// Ethernet converter in transparent mode would.
func startRTUOverTCP(t *testing.T) (string, *rtuFake) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newRTUFake()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				s.serve(c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), s
}

func TestTCP(t *testing.T) {
	addr := startTCPServer(t)
	c, err := OpenTCP(addr, false, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("OpenTCP(%s) = %v", addr, err)
	}
	defer c.Close()
	ctx := t.Context()

	regs, err := c.ReadRegisters(ctx, 1, ReadHoldingRegisters, 0, 3)
	if want := []uint16{0x0100, 0x0101, 0x0102}; err != nil || !slices.Equal(regs, want) {
		t.Errorf("ReadRegisters(holding 0-2) = %04X, %v; want %04X", regs, err, want)
	}
	regs, err = c.ReadRegisters(ctx, 1, ReadInputRegisters, 1, 2)
	if want := []uint16{0x1101, 0x1102}; err != nil || !slices.Equal(regs, want) {
		t.Errorf("ReadRegisters(input 1-2) = %04X, %v; want %04X", regs, err, want)
	}
	bits, err := c.ReadBits(ctx, 1, ReadCoils, 0, 7)
	if want := []bool{true, false, false, true, false, false, true}; err != nil || !slices.Equal(bits, want) {
		t.Errorf("ReadBits(coils 0-6) = %v, %v; want %v", bits, err, want)
	}
	bits, err = c.ReadBits(ctx, 1, ReadDiscreteInputs, 1, 3)
	if want := []bool{true, true, false}; err != nil || !slices.Equal(bits, want) {
		t.Errorf("ReadBits(inputs 1-3) = %v, %v; want %v", bits, err, want)
	}
	checkWordOrders(t, c, 1)

	for _, e := range []struct {
		unit uint8
		code uint8
	}{{2, 0x02}, {3, 0x06}, {4, 0x0B}, {6, 0x01}} {
		_, err := c.ReadRegisters(ctx, e.unit, ReadHoldingRegisters, 0, 1)
		var exc *ExceptionError
		if !errors.As(err, &exc) || exc.Code != e.code || exc.Function != ReadHoldingRegisters {
			t.Errorf("ReadRegisters(unit %d) = %v, want exception %02X to function 3", e.unit, err, e.code)
		}
		_, err = c.ReadBits(ctx, e.unit, ReadDiscreteInputs, 0, 1)
		if !errors.As(err, &exc) || exc.Code != e.code || exc.Function != ReadDiscreteInputs {
			t.Errorf("ReadBits(unit %d) = %v, want exception %02X to function 2", e.unit, err, e.code)
		}
	}

	_, err = c.ReadRegisters(ctx, 5, ReadHoldingRegisters, 0, 1)
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("ReadRegisters(slow unit) = %v, want ErrTimeout", err)
	}
	if want := "read holding register 0 from unit 5 at " + addr + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if regs, err := c.ReadRegisters(ctx, 1, ReadHoldingRegisters, 0, 1); err != nil || regs[0] != 0x0100 {
		t.Errorf("ReadRegisters after a timeout = %04X, %v; want [0100]", regs, err)
	}
	if _, err := c.ReadRegisters(ctx, 1, ReadHoldingRegisters, 0, 126); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("ReadRegisters(126) = %v, want a quantity error", err)
	}

	if err := c.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := c.ReadRegisters(ctx, 1, ReadHoldingRegisters, 0, 1); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadRegisters after Close = %v, want net.ErrClosed", err)
	}
}

// checkWordOrders reads 23.5 stored in all four word orders at 10, 12, 14 and 16.
func checkWordOrders(t *testing.T, c Client, unit uint8) {
	t.Helper()
	for i, o := range []WordOrder{ABCD, CDAB, BADC, DCBA} {
		regs, err := c.ReadRegisters(t.Context(), unit, ReadHoldingRegisters, uint16(10+2*i), 2)
		if err != nil {
			t.Errorf("read float32 in %s: %v", o, err)
			continue
		}
		if v, err := Decode(regs, Float32, o); v != 23.5 || err != nil {
			t.Errorf("Decode(%04X, float32, %s) = %v, %v; want 23.5", regs, o, v, err)
		}
	}
}

func TestTCPServerGone(t *testing.T) {
	addr := startTCPServer(t)
	c, err := OpenTCP(addr, false, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Cut the connection under the client: the next read fails as an I/O error.
	c.mc.Close()
	_, err = c.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1)
	if got := errClass(err); got != "io" {
		t.Errorf("ReadRegisters on a dead connection = %v (class %s), want an I/O error", err, got)
	}
	// The client reconnects by itself on the next call.
	if _, err := c.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 1); err != nil {
		t.Errorf("ReadRegisters after reconnect = %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	if _, err := OpenTCP(free, false, time.Second); err == nil || !strings.Contains(err.Error(), "connect to modbus device at "+free) {
		t.Errorf("OpenTCP(nobody listening) = %v, want a connect error naming the address", err)
	}
	if _, err := OpenTCP("127.0.0.1:notaport:1", false, time.Second); err == nil {
		t.Errorf("OpenTCP(bad address) = nil error")
	}
}

func TestRTUOverTCP(t *testing.T) {
	addr, s := startRTUOverTCP(t)
	s.setMute(9)
	c, err := OpenTCP(addr, true, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("OpenTCP(%s, rtu over tcp) = %v", addr, err)
	}
	defer c.Close()
	ctx := t.Context()
	if regs, err := c.ReadRegisters(ctx, 1, ReadHoldingRegisters, 0, 1); err != nil || regs[0] != 625 {
		t.Errorf("ReadRegisters(slave 1) = %v, %v; want [625]", regs, err)
	}
	if bits, err := c.ReadBits(ctx, 7, ReadCoils, 0, 11); err != nil || !slices.Equal(bits, s.coils[7]) {
		t.Errorf("ReadBits(slave 7) = %v, %v; want %v", bits, err, s.coils[7])
	}
	checkWordOrders(t, c, 1)

	for _, f := range []struct {
		fault fault
		slave uint8
		want  string
	}{
		{faultException, 1, "exception"},
		{faultBadCRC, 1, "crc"},
		{faultSilent, 1, "timeout"},
		{faultAnswer, 9, "timeout"},
		{faultWrongSlave, 1, "frame"},
		// simonvetter reads the rest of a frame under the request deadline and reports
		// a frame cut short as "request timed out": it cannot be told from silence.
		{faultTruncate, 1, "timeout"},
		{faultGarbage, 1, "frame"},
		{faultSplit, 1, "ok"},
	} {
		t.Run(fmt.Sprintf("%s/slave%d", f.fault, f.slave), func(t *testing.T) {
			s.setFault(f.slave, f.fault)
			_, err := c.ReadRegisters(ctx, f.slave, ReadHoldingRegisters, 0, 2)
			if got := errClass(err); got != f.want {
				t.Errorf("ReadRegisters with %s = %v (class %s), want class %s", f.fault, err, got, f.want)
			}
			var exc *ExceptionError
			if errors.As(err, &exc) && exc.Code != 2 {
				t.Errorf("exception code = %02X, want 02", exc.Code)
			}
			t.Logf("%s: %v", f.fault, err)
			if regs, err := c.ReadRegisters(ctx, 2, ReadHoldingRegisters, 1, 1); err != nil || regs[0] != 0x0201 {
				t.Errorf("next ReadRegisters after %s = %04X, %v; want [0201]", f.fault, regs, err)
			}
		})
	}
}
