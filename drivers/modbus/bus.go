package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	gwclock "github.com/envgate/envgate/internal/clock"
)

// BusConfig describes one bus (an RS-485 pair behind one serial port, or one TCP
// connection) and the slaves on it.
type BusConfig struct {
	Name         string
	Devices      []Device
	MaxRegisters uint16 // registers per request; 0 means MaxReadRegisters. Bit reads: MaxReadBits
	// StallAfter is how long one call on the bus (opening it, or one request) may run
	// before Stalled reports the bus wedged; 0 means DefaultStallAfter.
	StallAfter time.Duration
}

// DefaultStallAfter is BusConfig.StallAfter's default: a request ends within its
// response timeout (1 s by default, a few seconds at most at 9600 bps) and an open
// within the dial timeout; half a minute in one call is a hung port or driver.
const DefaultStallAfter = 30 * time.Second

// Opener returns a connected Client for the bus (serial port, TCP connection). The bus
// calls it at start and again, with back-off, after an I/O error, from its own
// goroutine. It should honour ctx and not block for long (dial with a timeout).
type Opener func(ctx context.Context) (Client, error)

// ErrBusDown is the poll error of every device while the bus has no Client (the port
// could not be opened or failed with an I/O error). It also wraps that error.
var ErrBusDown = errors.New("bus not connected")

// Reconnect back-off after an I/O error (USB adapter unplugged, TCP reset): the first
// retry waits 0.5 s, which is about how long a USB serial adapter takes to enumerate
// again; then doubling up to 30 s.
const (
	reopenMinBackoff = 500 * time.Millisecond
	reopenMaxBackoff = 30 * time.Second
)

// Bus polls every device on one bus from one goroutine (Run). Devices and register
// groups are read at their own intervals; a device that stops answering is skipped by
// its circuit breaker so it cannot starve the others.
type Bus struct {
	name    string
	open    Opener
	obs     Observer
	log     *slog.Logger
	devices []*busDevice
	jobs    []*job // every request of every device, in config order

	newClock func() clock // tests and benchmarks replace the wall clock
	running  atomic.Bool

	// The call Run is in, for Stalled: when it began in ns since busEpoch on the
	// monotonic clock (0 while none runs: Run waits for the next due request or sends),
	// and what it is ("open", or the device's name).
	stallAfter time.Duration
	callSince  atomic.Int64
	callWhat   atomic.Pointer[string]
}

// busEpoch is the origin of Bus.callSince.
var busEpoch = time.Now()

var openCall = "open"

// begin records that Run enters a call on the bus; end that it left it.
func (b *Bus) begin(what *string) {
	b.callWhat.Store(what)
	b.callSince.Store(max(1, int64(time.Since(busEpoch))))
}

func (b *Bus) end() { b.callSince.Store(0) }

// Stalled reports the bus wedged: Run has been in one call (opening the bus, or one
// request) for longer than BusConfig.StallAfter. It reads the real monotonic clock,
// whatever clock the scheduler uses, never blocks, and may be called from any
// goroutine (gateway.Staller: the systemd watchdog asks it).
func (b *Bus) Stalled() error {
	since := b.callSince.Load()
	if since == 0 {
		return nil
	}
	d := time.Since(busEpoch) - time.Duration(since)
	if d <= b.stallAfter {
		return nil
	}
	what := *b.callWhat.Load()
	if what != openCall {
		what = "a request to " + what
	}
	return fmt.Errorf("modbus bus %s stuck for %s in %s", b.name, d.Truncate(time.Second), what)
}

// busDevice is a Device with its plan and the state the bus goroutine keeps for it.
type busDevice struct {
	Device
	points  []pointInfo // parallel to Device.Points
	jobs    []*job
	br      breaker
	failing bool // last poll failed (for logging state changes only)
}

// pointInfo is what decoding needs of a Point, resolved once.
type pointInfo struct {
	scale, offset float64
	lo, hi        float64 // quality Good within [lo, hi], in the catalog unit
	quantity      string
	from          string // the value's unit when it is not the catalog's; "" otherwise
	unit          string // the catalog unit
}

// job is one request with its next due time.
type job struct {
	dev  *busDevice
	req  Request
	next time.Time
	last time.Time
}

// NewBus checks cfg and plans every device's requests. It returns every problem at
// once: device names must be valid and unique, slave ids 1-255 and unique on the bus,
// and every point decodable (see Plan). obs and log may be nil.
func NewBus(cfg BusConfig, open Opener, obs Observer, log *slog.Logger) (*Bus, error) {
	var errs []error
	if err := reading.CheckName(cfg.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if open == nil {
		errs = append(errs, errors.New("opener: must not be nil"))
	}
	if len(cfg.Devices) == 0 {
		errs = append(errs, errors.New("devices: must not be empty"))
	}
	if cfg.MaxRegisters > MaxReadRegisters {
		errs = append(errs, fmt.Errorf("max_registers: %d is above the protocol limit of %d", cfg.MaxRegisters, MaxReadRegisters))
	}
	names := map[string]int{}
	slaves := map[uint8]int{}
	b := &Bus{name: cfg.Name, open: open, obs: obs, log: log, newClock: newWallClock, stallAfter: cfg.StallAfter}
	if b.stallAfter <= 0 {
		b.stallAfter = DefaultStallAfter
	}
	for i, d := range cfg.Devices {
		path := fmt.Sprintf("devices[%d].", i)
		if err := reading.CheckName(d.Name); err != nil {
			errs = append(errs, fmt.Errorf("%sname: %w", path, err))
		} else if j, dup := names[d.Name]; dup {
			errs = append(errs, fmt.Errorf("%sname: %q is also devices[%d]", path, d.Name, j))
		} else {
			names[d.Name] = i
		}
		if err := reading.CheckName(d.Site); err != nil {
			errs = append(errs, fmt.Errorf("%ssite: %w", path, err))
		}
		// 0 is broadcast, which never answers (Modbus over Serial Line V1.02; docs/engineering-notes.md §1.3).
		if d.Slave == 0 {
			errs = append(errs, fmt.Errorf("%sslave: 0 is the broadcast address; reads need 1-255", path))
		} else if j, dup := slaves[d.Slave]; dup {
			errs = append(errs, fmt.Errorf("%sslave: unit %d is also devices[%d]", path, d.Slave, j))
		} else {
			slaves[d.Slave] = i
		}
		if cfg.MaxRegisters > MaxReadRegisters {
			continue // reported once above
		}
		reqs, perrs := plan(d, cfg.MaxRegisters, path)
		errs = append(errs, perrs...)
		if len(perrs) > 0 {
			continue
		}
		bd := &busDevice{Device: d, points: make([]pointInfo, len(d.Points))}
		for k, p := range d.Points {
			q, _ := reading.Lookup(p.Quantity)
			pi := pointInfo{scale: p.Scale, offset: p.Offset, lo: q.Min, hi: q.Max, quantity: p.Quantity, unit: q.Unit}
			if p.Unit != q.Unit {
				pi.from = p.Unit
			}
			if pi.scale == 0 {
				pi.scale = 1
			}
			if p.Min != nil {
				pi.lo = *p.Min
			}
			if p.Max != nil {
				pi.hi = *p.Max
			}
			bd.points[k] = pi
		}
		for _, r := range reqs {
			j := &job{dev: bd, req: r}
			bd.jobs = append(bd.jobs, j)
			b.jobs = append(b.jobs, j)
		}
		b.devices = append(b.devices, bd)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("modbus bus %q: %w", cfg.Name, err)
	}
	if b.obs == nil {
		b.obs = nopObserver{}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("bus", cfg.Name)
	return b, nil
}

// Run owns the bus until ctx is done: it is the only goroutine talking on it. It
// opens the Client (retrying with back-off; a missing port is not fatal), reads every
// request when it comes due, and sends each poll's readings (one batch per device per
// due time, never empty, owned by the receiver, neither redeliverable nor with a
// Durable: a register read exists nowhere else) to out, blocking. It never closes out.
// It returns nil when ctx is done, after closing the Client; its only error is being
// called while another Run of the same Bus is active.
//
// Scheduling: each request is due at multiples of its Interval since the Unix epoch.
// The earliest due request goes first; one that comes due while another runs waits its
// turn. A request more than one interval late skips to its next aligned tick, and the
// skipped ticks count nothing (no stacking, no bursts). Requests of one device due at
// the same instant form one poll: one timestamp (the poll's start, truncated to ms),
// one slice of readings, one Observer.Poll.
func (b *Bus) Run(ctx context.Context, out chan<- reading.Batch) error {
	if !b.running.CompareAndSwap(false, true) {
		return fmt.Errorf("modbus bus %q: Run called twice", b.name)
	}
	defer b.running.Store(false)

	r := &runner{Bus: b, out: out, clock: b.newClock()}
	now := r.clock.Now()
	for _, j := range b.jobs {
		j.next = alignUp(now, j.req.Interval)
	}
	for _, d := range b.devices {
		d.br = breaker{}
		d.failing = false
	}
	// Connect before the first poll: nextOpen = now sorts before any due request.
	r.nextOpen, r.downSince = now, now
	r.downErr = fmt.Errorf("bus %s: %w", b.name, ErrBusDown)

	for ctx.Err() == nil {
		r.step(ctx)
	}
	if r.client != nil {
		if err := r.client.Close(); err != nil {
			b.log.Warn("close bus", "err", err)
		}
	}
	return nil
}

// Name returns the bus's name (BusConfig.Name).
func (b *Bus) Name() string { return b.name }

// runner is the state of one Run, touched only by its goroutine.
type runner struct {
	*Bus
	out   chan<- reading.Batch
	clock clock

	client     Client    // nil while the bus is down
	downErr    error     // poll error while down; wraps ErrBusDown and the cause
	downSince  time.Time // when the bus went down
	downLogged bool      // "bus down" was logged for this outage
	backoff    time.Duration
	nextOpen   time.Time // while down: when to call the Opener again
}

// step does one thing: waits for the next event, reopens the bus, or runs one poll.
func (r *runner) step(ctx context.Context) {
	now := r.clock.Now()
	var first *job
	for _, j := range r.jobs {
		// More than one interval late (the bus was busy, or the wall clock jumped
		// forward): skip to the next aligned tick. More than one interval early: the
		// wall clock jumped back; realign rather than fall silent until it catches up.
		if d := now.Sub(j.next); d > j.req.Interval || -d > j.req.Interval {
			j.next = alignUp(now, j.req.Interval)
		}
		if first == nil || j.next.Before(first.next) || j.next.Equal(first.next) && j.last.Before(first.last) {
			first = j
		}
	}
	if r.client == nil && !r.nextOpen.After(first.next) {
		if r.nextOpen.After(now) {
			r.clock.Wait(ctx, r.nextOpen)
			return
		}
		r.reopen(ctx)
		return
	}
	if first.next.After(now) {
		r.clock.Wait(ctx, first.next)
		return
	}
	r.poll(ctx, first.dev, first.next, now)
}

// poll runs every request of d that is due at due, then reports and sends the result.
func (r *runner) poll(ctx context.Context, d *busDevice, due, start time.Time) {
	ts := start.Truncate(time.Millisecond)
	var rs []reading.Reading
	var firstErr error
	for _, j := range d.jobs {
		if !j.next.Equal(due) {
			continue
		}
		j.next = due.Add(j.req.Interval)
		j.last = start
		var err error
		rs, err = r.read(ctx, j, ts, rs)
		if ctx.Err() != nil {
			return
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	end := r.clock.Now()
	for _, j := range d.jobs {
		if j.last.Equal(start) && !j.next.After(end) {
			j.next = alignUp(end, j.req.Interval)
		}
	}
	r.obs.Poll(d.Name, r.clock.Now().Sub(start), firstErr)
	// Log device state changes, not every failed poll. While the bus is down (also when
	// this poll's I/O error took it down) only the bus's state is logged.
	switch {
	case r.client == nil:
	case firstErr != nil && !d.failing:
		d.failing = true
		r.log.Warn("device down", "device", d.Name, "slave", d.Slave, "err", firstErr)
	case firstErr == nil && d.failing:
		d.failing = false
		r.log.Info("device up", "device", d.Name, "slave", d.Slave)
	}
	if len(rs) > 0 {
		select {
		case r.out <- reading.Batch{Readings: rs}:
		case <-ctx.Done():
		}
	}
}

// read runs one request if the bus is up and the device's breaker allows it, appends
// the decoded readings to rs and returns the request's error.
func (r *runner) read(ctx context.Context, j *job, ts time.Time, rs []reading.Reading) ([]reading.Reading, error) {
	d, q := j.dev, &j.req
	if r.client == nil {
		return rs, r.downErr
	}
	t0 := r.clock.Now()
	if !d.br.allow(t0) {
		return rs, d.br.err
	}
	var (
		regs []uint16
		bits []bool
		err  error
	)
	r.begin(&d.Name)
	if q.Function.IsBits() {
		bits, err = r.client.ReadBits(ctx, d.Slave, q.Function, q.Address, q.Count)
		if err == nil && len(bits) < int(q.Count) {
			err = fmt.Errorf("%w: %d bits, want %d", ErrFrame, len(bits), q.Count)
		}
	} else {
		regs, err = r.client.ReadRegisters(ctx, d.Slave, q.Function, q.Address, q.Count)
		if err == nil && len(regs) < int(q.Count) {
			err = fmt.Errorf("%w: %d registers, want %d", ErrFrame, len(regs), q.Count)
		}
	}
	r.end()
	t1 := r.clock.Now()
	if ctx.Err() != nil {
		return rs, ctx.Err() // shutting down: the exchange was cut short, not failed
	}
	rtt := t1.Sub(t0)
	r.obs.Transaction(r.name, d.Name, rtt, err)
	r.obs.Busy(r.name, rtt)

	if err != nil && !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrCRC) &&
		!errors.Is(err, ErrFrame) && !isException(err) {
		r.down(err, t1)
	} else if changed, retryIn := d.br.record(t1, err); retryIn > 0 {
		r.log.Debug("breaker open", "device", d.Name, "slave", d.Slave, "err", err, "retry_in", retryIn)
	} else if changed {
		r.log.Debug("breaker closed", "device", d.Name, "slave", d.Slave)
	}
	if err == nil {
		r.backoff = 0 // the connection works, not just opens
	}
	if err != nil {
		return rs, err // the client's error already names the function, registers and slave
	}

	if rs == nil {
		rs = make([]reading.Reading, 0, len(d.points))
	}
	for _, s := range q.Slots {
		p, pi := &d.Points[s.Point], &d.points[s.Point]
		var raw float64
		if p.Function.IsBits() {
			if bits[s.Offset] {
				raw = 1
			}
		} else {
			off := int(s.Offset)
			v, err := Decode(regs[off:off+Registers(p.Type)], p.Type, p.Order)
			if err != nil {
				continue // unreachable: NewBus checked every point
			}
			raw = v
		}
		v := Scale(raw, pi.scale, pi.offset)
		quality := reading.Good
		if pi.from != "" {
			var err error
			if v, err = reading.Convert(pi.quantity, v, pi.from); err != nil {
				quality = reading.Bad // not finite: NewBus checked the unit
			}
		}
		if !(v >= pi.lo && v <= pi.hi) { // also catches NaN
			quality = reading.Bad
		}
		rs = append(rs, reading.Reading{
			Time: ts, Site: d.Site, Device: d.Name,
			Quantity: p.Quantity, Value: v, Unit: pi.unit, Quality: quality,
		})
	}
	return rs, nil
}

// down closes the Client after an I/O error and schedules the first reopen.
func (r *runner) down(cause error, now time.Time) {
	if err := r.client.Close(); err != nil {
		r.log.Debug("close failed bus", "err", err)
	}
	r.client = nil
	r.downErr = fmt.Errorf("bus %s: %w: %w", r.name, ErrBusDown, cause)
	r.downSince = now
	r.backoff = min(max(2*r.backoff, reopenMinBackoff), reopenMaxBackoff)
	wait := jitter(r.backoff)
	r.nextOpen = now.Add(wait)
	r.downLogged = true
	r.log.Warn("bus down", "err", cause, "retry_in", wait)
}

// reopen calls the Opener once; on failure it doubles the back-off.
func (r *runner) reopen(ctx context.Context) {
	r.begin(&openCall)
	c, err := r.open(ctx)
	r.end()
	if err == nil && c == nil {
		err = errors.New("opener returned no client")
	}
	if ctx.Err() != nil {
		if c != nil {
			_ = c.Close() // shutting down; nothing was sent on it
		}
		return
	}
	now := r.clock.Now()
	if err != nil {
		r.backoff = min(max(2*r.backoff, reopenMinBackoff), reopenMaxBackoff)
		wait := jitter(r.backoff)
		r.nextOpen = now.Add(wait)
		r.downErr = fmt.Errorf("bus %s: %w: %w", r.name, ErrBusDown, err)
		if !r.downLogged {
			r.downLogged = true
			r.log.Warn("bus down", "err", err, "retry_in", wait)
		} else {
			r.log.Debug("reopen failed", "err", err, "retry_in", wait)
		}
		return
	}
	r.client = c
	if r.downLogged {
		r.log.Info("bus up", "down_for", now.Sub(r.downSince).Round(time.Millisecond))
	} else {
		r.log.Debug("bus open")
	}
	r.downLogged = false
}

// jitter shortens a back-off by up to 20 % at random.
func jitter(d time.Duration) time.Duration { return d - rand.N(d/5+1) }

// alignUp returns the first multiple of every since the Unix epoch at or after t.
func alignUp(t time.Time, every time.Duration) time.Time {
	n, e := t.UnixNano(), int64(every)
	k := n / e
	if n%e < 0 { // floor division before 1970 (an RTC-less box that just booted)
		k--
	}
	if k*e < n {
		k++
	}
	return time.Unix(0, k*e)
}

// functionName names a read function for error messages.
func functionName(f Function) string {
	switch f {
	case ReadCoils:
		return "coils"
	case ReadDiscreteInputs:
		return "discrete inputs"
	case ReadHoldingRegisters:
		return "holding registers"
	case ReadInputRegisters:
		return "input registers"
	}
	return fmt.Sprintf("function %d", f)
}

// clock is the wall clock as the scheduler sees it.
type clock interface {
	Now() time.Time
	// Wait blocks until the wall clock reaches t or ctx is done.
	Wait(ctx context.Context, t time.Time)
}

// wallClock is the gateway's wall clock (internal/clock, which stamps every reading);
// its timer is reused across waits.
type wallClock struct{ timer *time.Timer }

func newWallClock() clock { return &wallClock{} }

func (c *wallClock) Now() time.Time { return gwclock.Now() }

func (c *wallClock) Wait(ctx context.Context, t time.Time) {
	d := t.Sub(c.Now())
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d) // Go ≥ 1.23: no stale tick to drain
	}
	select {
	case <-c.timer.C:
	case <-ctx.Done():
		c.timer.Stop()
	}
}

type nopObserver struct{}

func (nopObserver) Transaction(string, string, time.Duration, error) {}
func (nopObserver) Poll(string, time.Duration, error)                {}
func (nopObserver) Busy(string, time.Duration)                       {}
