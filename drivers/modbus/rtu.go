package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Port is what the RTU master needs from a serial port; go.bug.st/serial's serial.Port
// satisfies it. Read returns (0, nil) when the read timeout passes without data, as
// go.bug.st/serial does; a read error that is a timeout (os.ErrDeadlineExceeded) is
// treated the same way.
type Port interface {
	io.ReadWriter
	SetReadTimeout(t time.Duration) error
	ResetInputBuffer() error
	Close() error
}

// RTUOptions are the line settings and timing of one RS-485 bus.
type RTUOptions struct {
	Baud       int           // bits per second; 0 means 9600
	DataBits   int           // 0 means 8, the only size Modbus RTU allows
	Parity     string        // none, even or odd; "" means none
	StopBits   int           // 1 or 2; 0 means 1
	Timeout    time.Duration // response timeout: first byte of the reply after the request is sent; 0 means 1s
	Turnaround time.Duration // extra silence between transactions, on top of t3.5
}

// Defaults, Modbus over Serial Line V1.02: the response time-out is application defined,
// "typically 1 s to several seconds at 9600 bps" (§2.4.1); most sensors here run 9600 8N1.
const (
	defaultBaud            = 9600
	defaultResponseTimeout = time.Second
)

// Timing of the reader, not from the spec but from USB serial adapters: an FTDI chip
// holds received bytes for up to its latency timer, 16 ms by default (docs/engineering-notes.md §2), so
// bytes of one frame can reach us in bursts that far apart.
const (
	// minFrameGap is the least silence inside a reply that we take as "the slave
	// stopped": the reply was cut short.
	minFrameGap = 50 * time.Millisecond
	// minQuiet is the least silence that ends a drain after a failed transaction.
	minQuiet = 20 * time.Millisecond
	// maxDrain bounds a drain on a line that never goes quiet.
	maxDrain = time.Second
	// pollSlice bounds one blocking read so that ctx cancellation is noticed promptly.
	pollSlice = 20 * time.Millisecond
)

// Protocol limits, MODBUS Application Protocol V1.1b3 §6.1–6.4.
const (
	maxReadRegisters = 125
	maxReadBits      = 2000
	maxADU           = 256 // Modbus over Serial Line V1.02 §2.5.1
)

func (o RTUOptions) withDefaults() RTUOptions {
	if o.Baud == 0 {
		o.Baud = defaultBaud
	}
	if o.DataBits == 0 {
		o.DataBits = 8
	}
	o.Parity = strings.ToLower(o.Parity)
	if o.Parity == "" {
		o.Parity = "none"
	}
	if o.StopBits == 0 {
		o.StopBits = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultResponseTimeout
	}
	return o
}

// validate reports every bad setting at once. o must have its defaults applied.
func (o RTUOptions) validate() error {
	var errs []error
	if o.Baud < 0 {
		errs = append(errs, fmt.Errorf("baud: must be positive, got %d", o.Baud))
	}
	if o.DataBits != 8 {
		errs = append(errs, fmt.Errorf("data_bits: must be 8 (Modbus RTU sends 8-bit characters), got %d", o.DataBits))
	}
	switch o.Parity {
	case "none", "even", "odd":
	default:
		errs = append(errs, fmt.Errorf("parity: must be none, even or odd, got %q", o.Parity))
	}
	if o.StopBits != 1 && o.StopBits != 2 {
		errs = append(errs, fmt.Errorf("stop_bits: must be 1 or 2, got %d", o.StopBits))
	}
	if o.Turnaround < 0 {
		errs = append(errs, fmt.Errorf("turnaround: must not be negative, got %s", o.Turnaround))
	}
	return errors.Join(errs...)
}

// charBits is the length of one character on the wire: 1 start bit, the data bits, a
// parity bit if any, and the stop bits (Modbus over Serial Line V1.02 §2.5.1).
func (o RTUOptions) charBits() int {
	o = o.withDefaults()
	n := 1 + o.DataBits + o.StopBits
	if o.Parity != "none" {
		n++
	}
	return n
}

// CharTime returns how long one character takes on the wire at o's baud rate and
// framing: 1.042 ms for 9600 8N1, 1.146 ms for 9600 8E1.
func (o RTUOptions) CharTime() time.Duration {
	o = o.withDefaults()
	return time.Duration(o.charBits()) * time.Second / time.Duration(o.Baud)
}

// T35 returns t3.5, the silence that separates frames: 3.5 character times, or a fixed
// 1.75 ms above 19200 baud (Modbus over Serial Line V1.02 §2.5.1.1).
func (o RTUOptions) T35() time.Duration {
	o = o.withDefaults()
	if o.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	return time.Duration(o.charBits()) * 35 * time.Second / time.Duration(10*o.Baud)
}

// RTU is a Modbus RTU master on one serial line. It implements Client: one goroutine
// (the bus's) uses it; Close may be called from another goroutine to stop it.
type RTU struct {
	port  Port
	opt   RTUOptions
	name  string        // device path, for error messages; "" when unknown
	char  time.Duration // one character on the wire
	t35   time.Duration
	gap   time.Duration // silence inside a reply that means it was cut short
	quiet time.Duration // silence that ends a drain

	idleSince time.Time // when the line last went quiet (end of the previous transaction)
	dirty     bool      // stale input may be pending: drain before the next request
	closed    atomic.Bool
	buf       [maxADU]byte
}

var _ Client = (*RTU)(nil)

// NewRTU returns an RTU master that talks over p with the settings in opt (zero fields
// take their documented defaults). The RTU owns p: its Close closes p.
func NewRTU(p Port, opt RTUOptions) *RTU {
	opt = opt.withDefaults()
	r := &RTU{port: p, opt: opt, char: opt.CharTime(), t35: opt.T35()}
	r.gap = max(minFrameGap, 4*r.t35)
	r.quiet = max(minQuiet, 2*r.t35)
	return r
}

// ReadRegisters reads count registers from addr on slave with function 3 (holding) or 4
// (input). Errors: see Client.
func (r *RTU) ReadRegisters(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]uint16, error) {
	if err := checkRead(fn, false, addr, count); err != nil {
		return nil, r.wrap(fn, slave, addr, count, err)
	}
	data, err := r.transact(ctx, slave, fn, addr, count)
	if err != nil {
		return nil, r.wrap(fn, slave, addr, count, err)
	}
	return unpackRegisters(data), nil
}

// ReadBits reads count coils (function 1) or discrete inputs (function 2) from addr on
// slave. Errors: see Client.
func (r *RTU) ReadBits(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]bool, error) {
	if err := checkRead(fn, true, addr, count); err != nil {
		return nil, r.wrap(fn, slave, addr, count, err)
	}
	data, err := r.transact(ctx, slave, fn, addr, count)
	if err != nil {
		return nil, r.wrap(fn, slave, addr, count, err)
	}
	return unpackBits(data, count), nil
}

// Close closes the port. Only the first call closes it and reports its error; later
// calls return nil.
func (r *RTU) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	return r.port.Close()
}

func (r *RTU) wrap(fn Function, slave uint8, addr, count uint16, err error) error {
	where := fmt.Sprintf("slave %d", slave)
	if r.name != "" {
		where += " on " + r.name
	}
	return fmt.Errorf("read %s from %s: %w", describeRead(fn, addr, count), where, err)
}

// errClosed is returned by a transaction on a closed RTU.
var errClosed = fmt.Errorf("serial port: %w", os.ErrClosed)

// transact runs one request/response exchange and returns the data bytes of the
// reply (after the byte count).
func (r *RTU) transact(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]byte, error) {
	if slave == 0 {
		return nil, errors.New("slave 0 is the broadcast address, which never answers a read; use 1-247")
	}
	if r.closed.Load() {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.dirty {
		if err := r.drain(ctx); err != nil {
			return nil, err
		}
	}
	// The slave needs t3.5 of silence to see the end of the previous frame (Modbus over
	// Serial Line V1.02 §2.5.1.1); slow devices may ask for more (Turnaround).
	if err := sleepCtx(ctx, time.Until(r.idleSince.Add(r.t35+r.opt.Turnaround))); err != nil {
		return nil, err
	}
	// Drop anything unsolicited that arrived since the last reply: it can only derail
	// the framing of ours.
	if err := r.port.ResetInputBuffer(); err != nil {
		return nil, ioError(err)
	}
	req := AppendCRC(append(r.buf[:0:8], slave, byte(fn), byte(addr>>8), byte(addr), byte(count>>8), byte(count)))
	start := time.Now()
	n, err := r.port.Write(req)
	if err == nil && n < len(req) {
		err = io.ErrShortWrite
	}
	if err != nil {
		r.dirty = true
		return nil, ioError(err)
	}
	// Write returns once the bytes are queued; they are on the wire for len×char.
	sent := start.Add(time.Duration(len(req)) * r.char)
	if now := time.Now(); now.After(sent) {
		sent = now
	}
	data, err := r.readReply(ctx, slave, fn, count, sent.Add(r.opt.Timeout))
	r.idleSince = time.Now()
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrCRC), errors.Is(err, ErrFrame):
		// Resynchronise: whatever is still arriving belongs to the failed exchange.
		if derr := r.drain(ctx); derr != nil && !isCtxErr(derr) {
			return nil, derr
		}
	case isCtxErr(err):
		r.dirty = true
	}
	return nil, err
}

// readReply reads one reply to request (slave, fn, count) and returns its data bytes.
// The first byte must arrive before deadline; after that, the frame must keep coming.
func (r *RTU) readReply(ctx context.Context, slave uint8, fn Function, count uint16, deadline time.Time) ([]byte, error) {
	fr := frameReader{r: r, deadline: deadline}
	if err := fr.fill(ctx, 2); err != nil {
		return nil, err
	}
	b := r.buf[:]
	if b[0] != slave {
		// Often a late answer to the previous request: its slave needs a longer timeout.
		return nil, fmt.Errorf("%w: reply comes from slave %d (a late answer to an earlier request?)", ErrFrame, b[0])
	}
	if b[1] == byte(fn)|0x80 {
		// Exception reply: addr, fc|0x80, code, CRC (Application Protocol V1.1b3 §7).
		if err := fr.fill(ctx, 5); err != nil {
			return nil, err
		}
		if !checkCRC(b[:5]) {
			return nil, ErrCRC
		}
		return nil, &ExceptionError{Function: fn, Code: b[2]}
	}
	if b[1] != byte(fn) {
		return nil, fmt.Errorf("%w: reply has function code %d", ErrFrame, b[1])
	}
	if err := fr.fill(ctx, 3); err != nil {
		return nil, err
	}
	want := byteCount(fn, count)
	if int(b[2]) != want {
		return nil, fmt.Errorf("%w: reply byte count %d, want %d", ErrFrame, b[2], want)
	}
	end := 3 + want + 2
	if err := fr.fill(ctx, end); err != nil {
		return nil, err
	}
	if !checkCRC(b[:end]) {
		return nil, ErrCRC
	}
	return b[3 : 3+want], nil
}

// frameReader reads a reply into r.buf, byte count by byte count.
type frameReader struct {
	r        *RTU
	n        int       // bytes in r.buf
	deadline time.Time // for the next byte
}

// fill reads until the frame holds need bytes. It never reads past need, so the
// framing of anything after the reply is left to the drain.
func (fr *frameReader) fill(ctx context.Context, need int) error {
	for fr.n < need {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := time.Until(fr.deadline)
		if wait <= 0 {
			if fr.n == 0 {
				return ErrTimeout
			}
			return fmt.Errorf("%w: reply cut short after %d bytes (the line went quiet)", ErrFrame, fr.n)
		}
		k, err := fr.r.read(fr.r.buf[fr.n:need], min(wait, pollSlice))
		if err != nil {
			return err
		}
		if k > 0 {
			fr.n += k
			fr.deadline = time.Now().Add(fr.r.gap)
		}
	}
	return nil
}

// read reads what is there within timeout; (0, nil) means nothing came.
func (r *RTU) read(b []byte, timeout time.Duration) (int, error) {
	if r.closed.Load() {
		return 0, errClosed
	}
	if err := r.port.SetReadTimeout(timeout); err != nil {
		return 0, ioError(err)
	}
	n, err := r.port.Read(b)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, nil
		}
		return n, ioError(err)
	}
	return n, nil
}

// drain waits for the line to go quiet and throws away what arrived, so that the next
// transaction starts at a frame boundary. It returns an I/O error or ctx's error; on
// the latter the RTU stays dirty and drains again before its next request.
func (r *RTU) drain(ctx context.Context) error {
	r.dirty = true
	if err := sleepCtx(ctx, r.quiet); err != nil {
		return err
	}
	if err := r.port.ResetInputBuffer(); err != nil {
		return ioError(err)
	}
	var scratch [64]byte
	for limit := time.Now().Add(maxDrain); time.Now().Before(limit); {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.read(scratch[:], r.quiet)
		if err != nil {
			return err
		}
		if n == 0 {
			r.dirty = false
			break
		}
	}
	// A line that never goes quiet stays dirty: the next transaction drains again.
	r.idleSince = time.Now()
	return nil
}

// ioError marks err as a failure of the port itself (unplugged adapter, closed port):
// not a protocol error, the bus should reopen the port.
func ioError(err error) error {
	return fmt.Errorf("serial port: %w", err)
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkRead validates a read request against the protocol's limits before anything is
// sent (MODBUS Application Protocol V1.1b3 §6.1–6.4).
func checkRead(fn Function, wantBits bool, addr, count uint16) error {
	limit := maxReadRegisters
	if wantBits {
		limit = maxReadBits
	}
	switch {
	case wantBits && !fn.IsBits():
		return fmt.Errorf("function %d does not read bits; use 1 (coils) or 2 (discrete inputs)", fn)
	case !wantBits && fn != ReadHoldingRegisters && fn != ReadInputRegisters:
		return fmt.Errorf("function %d does not read registers; use 3 (holding) or 4 (input)", fn)
	case count < 1 || int(count) > limit:
		return fmt.Errorf("quantity %d out of range 1-%d", count, limit)
	case int(addr)+int(count)-1 > 0xFFFF:
		return fmt.Errorf("addresses %d-%d run past 65535", addr, int(addr)+int(count)-1)
	}
	return nil
}

// byteCount is the byte count a correct reply to a read of count items carries.
func byteCount(fn Function, count uint16) int {
	if fn.IsBits() {
		return (int(count) + 7) / 8
	}
	return 2 * int(count)
}

// unpackRegisters decodes big-endian registers; the result does not share data's memory.
func unpackRegisters(data []byte) []uint16 {
	regs := make([]uint16, len(data)/2)
	for i := range regs {
		regs[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
	}
	return regs
}

// unpackBits unpacks count bits, least significant bit of the first byte first (Application
// Protocol V1.1b3 §6.1).
func unpackBits(data []byte, count uint16) []bool {
	out := make([]bool, count)
	for i := range out {
		out[i] = data[i/8]&(1<<(i%8)) != 0
	}
	return out
}

// describeRead describes a read for error messages: "holding registers 0-3", "coil 5".
func describeRead(fn Function, addr, count uint16) string {
	var what string
	switch fn {
	case ReadCoils:
		what = "coil"
	case ReadDiscreteInputs:
		what = "discrete input"
	case ReadHoldingRegisters:
		what = "holding register"
	case ReadInputRegisters:
		what = "input register"
	default:
		what = fmt.Sprintf("function %d item", fn)
	}
	if count <= 1 {
		return fmt.Sprintf("%s %d", what, addr)
	}
	return fmt.Sprintf("%ss %d-%d", what, addr, int(addr)+int(count)-1)
}
