package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"time"

	smb "github.com/simonvetter/modbus"
)

// defaultTCPPort is the registered Modbus TCP port (MODBUS Messaging on TCP/IP
// Implementation Guide V1.0b §4.1).
const defaultTCPPort = "502"

// TCP is a Modbus TCP (MBAP) or RTU-over-TCP master on one connection, built on
// github.com/simonvetter/modbus. It implements Client: one goroutine (the bus's) uses it.
//
// Context: ctx is checked before each request; a request in flight is bounded by the
// timeout given to OpenTCP, as the library takes no context.
type TCP struct {
	mc     *smb.ModbusClient
	addr   string
	up     bool // mc has an open connection
	broken bool // the stream may be out of step (timeout, bad frame): reconnect first
	closed atomic.Bool
}

var _ Client = (*TCP)(nil)

// OpenTCP connects to the Modbus device or gateway at addr ("host:port"; the port
// defaults to 502). With rtuOverTCP the connection carries raw RTU frames (addr, PDU,
// CRC), as serial-to-Ethernet converters in transparent mode do, instead of MBAP
// frames. timeout bounds each request (0 means 1s).
func OpenTCP(addr string, rtuOverTCP bool, timeout time.Duration) (*TCP, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		if !strings.Contains(err.Error(), "missing port") {
			return nil, fmt.Errorf("modbus tcp address %q: %w (want host:port)", addr, err)
		}
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), defaultTCPPort)
	}
	if timeout <= 0 {
		timeout = defaultResponseTimeout
	}
	scheme := "tcp://"
	if rtuOverTCP {
		scheme = "rtuovertcp://"
	}
	mc, err := smb.NewClient(&smb.ClientConfiguration{
		URL:     scheme + addr,
		Timeout: timeout,
		// The library logs to stdout unless given a logger (docs/engineering-notes.md §1.1); its
		// messages repeat the errors we return, so drop them.
		Logger: log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, fmt.Errorf("modbus tcp %s: %w", addr, err)
	}
	if err := mc.Open(); err != nil {
		return nil, fmt.Errorf("connect to modbus device at %s: %w (is it powered, reachable and listening on that port?)", addr, err)
	}
	return &TCP{mc: mc, addr: addr, up: true}, nil
}

// ReadRegisters reads count registers from addr on unit slave with function 3 (holding)
// or 4 (input). Errors: see Client.
func (c *TCP) ReadRegisters(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]uint16, error) {
	if err := checkRead(fn, false, addr, count); err != nil {
		return nil, c.wrap(fn, slave, addr, count, err)
	}
	if err := c.prepare(ctx, slave); err != nil {
		return nil, c.wrap(fn, slave, addr, count, err)
	}
	rt := smb.HOLDING_REGISTER
	if fn == ReadInputRegisters {
		rt = smb.INPUT_REGISTER
	}
	regs, err := c.mc.ReadRegisters(addr, count, rt)
	if err != nil {
		return nil, c.wrap(fn, slave, addr, count, c.mapErr(fn, err))
	}
	if len(regs) != int(count) {
		c.broken = true
		return nil, c.wrap(fn, slave, addr, count, fmt.Errorf("%w: %d registers in reply", ErrFrame, len(regs)))
	}
	return regs, nil
}

// ReadBits reads count coils (function 1) or discrete inputs (function 2) from addr on
// unit slave. Errors: see Client.
func (c *TCP) ReadBits(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]bool, error) {
	if err := checkRead(fn, true, addr, count); err != nil {
		return nil, c.wrap(fn, slave, addr, count, err)
	}
	if err := c.prepare(ctx, slave); err != nil {
		return nil, c.wrap(fn, slave, addr, count, err)
	}
	var bits []bool
	var err error
	if fn == ReadCoils {
		bits, err = c.mc.ReadCoils(addr, count)
	} else {
		bits, err = c.mc.ReadDiscreteInputs(addr, count)
	}
	if err != nil {
		return nil, c.wrap(fn, slave, addr, count, c.mapErr(fn, err))
	}
	if len(bits) != int(count) {
		c.broken = true
		return nil, c.wrap(fn, slave, addr, count, fmt.Errorf("%w: %d bits in reply", ErrFrame, len(bits)))
	}
	return bits, nil
}

// Close closes the connection. Only the first call closes it and reports its error;
// later calls return nil.
func (c *TCP) Close() error {
	if c.closed.Swap(true) || !c.up {
		return nil
	}
	c.up = false
	return c.mc.Close()
}

// prepare checks ctx, reconnects after a desynchronising failure, and sets the unit id.
func (c *TCP) prepare(ctx context.Context, slave uint8) error {
	if c.closed.Load() {
		return fmt.Errorf("modbus tcp connection: %w", net.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.broken && c.up {
		// After a timeout or a bad frame the byte stream may be mid-frame; a new
		// connection is the only clean frame boundary TCP offers.
		_ = c.mc.Close() // the old connection is being replaced; its close error says nothing new
		c.up = false
	}
	if !c.up {
		if err := c.mc.Open(); err != nil {
			return fmt.Errorf("reconnect: %w", err)
		}
		c.up, c.broken = true, false
	}
	// The bus goroutine is the only user, so setting the unit id per call is safe
	// (docs/engineering-notes.md §1.1: SetUnitId is a separate call from the request).
	return c.mc.SetUnitId(slave)
}

func (c *TCP) wrap(fn Function, slave uint8, addr, count uint16, err error) error {
	return fmt.Errorf("read %s from unit %d at %s: %w", describeRead(fn, addr, count), slave, c.addr, err)
}

// mapErr turns the library's errors into ours; see Client for the classes.
func (c *TCP) mapErr(fn Function, err error) error {
	if code, ok := exceptionCode(err); ok {
		return &ExceptionError{Function: fn, Code: code}
	}
	c.broken = true
	switch {
	case errors.Is(err, smb.ErrRequestTimedOut):
		return ErrTimeout
	case errors.Is(err, smb.ErrBadCRC):
		return fmt.Errorf("%w: %w", ErrCRC, err)
	case errors.Is(err, smb.ErrShortFrame), errors.Is(err, smb.ErrProtocolError),
		errors.Is(err, smb.ErrBadUnitId), errors.Is(err, smb.ErrBadTransactionId),
		errors.Is(err, smb.ErrUnknownProtocolId):
		return fmt.Errorf("%w: %w", ErrFrame, err)
	}
	return fmt.Errorf("connection: %w", err)
}

// exceptionCode maps the library's exception errors back to the exception code on the
// wire (MODBUS Application Protocol V1.1b3 §7).
func exceptionCode(err error) (uint8, bool) {
	for _, e := range []struct {
		err  error
		code uint8
	}{
		{smb.ErrIllegalFunction, 0x01},
		{smb.ErrIllegalDataAddress, 0x02},
		{smb.ErrIllegalDataValue, 0x03},
		{smb.ErrServerDeviceFailure, 0x04},
		{smb.ErrAcknowledge, 0x05},
		{smb.ErrServerDeviceBusy, 0x06},
		{smb.ErrMemoryParityError, 0x08},
		{smb.ErrGWPathUnavailable, 0x0A},
		{smb.ErrGWTargetFailedToRespond, 0x0B},
	} {
		if errors.Is(err, e.err) {
			return e.code, true
		}
	}
	// Other codes come back as fmt.Errorf("unknown exception code (%v)", code).
	var code uint8
	if _, serr := fmt.Sscanf(err.Error(), "unknown exception code (%d)", &code); serr == nil {
		return code, true
	}
	return 0, false
}
