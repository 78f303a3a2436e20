package pm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/envgate/envgate/drivers/serialport"
	"github.com/envgate/envgate/gateway/reading"
)

// Errors Run passes to obs, wrapped with the port and the details.
var (
	// ErrStale means no valid frame arrived for Config.Stale.
	ErrStale = errors.New("no valid frame")
	// ErrNoReply means a read (PMS passive) or query (SDS011) command got no valid answer.
	ErrNoReply = errors.New("no valid reply")
)

// Timing of the run loop. The datasheets give no figures for these.
const (
	// readSlice bounds one blocking read so that ctx and the timers are noticed promptly.
	readSlice = 50 * time.Millisecond
	// cmdGap spaces commands so that the sensor's MCU has handled one (and sent its
	// acknowledgement) before the next arrives; both sensors answer within a few ms.
	cmdGap = 100 * time.Millisecond
	// maxReplyWait bounds the wait for the answer to a read or query command; the answer
	// itself takes 33 ms (PMS, 32 bytes) or 10 ms (SDS011) on the wire at 9600 baud.
	maxReplyWait = 2 * time.Second
	// maxReopenBackoff caps the wait between attempts to reopen a lost port; the first
	// wait is Interval, at most a second, and it doubles after each failure.
	maxReopenBackoff = 30 * time.Second
)

// Run owns the port until ctx is done. It opens the port (retrying with back-off while it
// is missing), wakes the sensor and sets its mode, reads frames and sends one
// reading.Batch (Durable nil) per Interval: pm1, pm25 and pm10 for a PMS, pm25 and pm10
// for the SDS011, none while the sensor warms up or sleeps. When the port fails (a USB
// adapter unplugged) it closes it and opens it again.
//
// obs, if not nil, is called from Run's goroutine once per Interval with the device name;
// the time since the last valid frame (streaming) or the query's round trip (passive and
// query modes); and nil, or why the device is down: the port is missing, no valid frame
// for Config.Stale (ErrStale), or no answer to a query (ErrNoReply). A sleeping sensor
// is not down.
//
// Run never closes out. It closes the port and returns nil when ctx is done; it returns an
// error only if the Sensor is already running.
func (s *Sensor) Run(ctx context.Context, out chan<- reading.Batch, obs func(device string, d time.Duration, err error)) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("pm sensor %s: Run called while already running", s.cfg.Name)
	}
	defer s.running.Store(false)
	now := time.Now()
	r := &runner{s: s, cfg: s.cfg, log: s.log, out: out, obs: obs,
		store: make([]byte, 0, 512), nextTick: now.Add(s.cfg.Interval), openAt: now}
	r.buf = r.store
	r.backoff = r.firstBackoff()
	defer r.closePort()
	for ctx.Err() == nil {
		r.step(ctx)
	}
	return nil
}

// command is one frame to send to the sensor.
type command struct {
	b     []byte
	query bool // a read or query command: its answer completes r.query
}

// pendingQuery is the read or query command of the current interval; sent is zero while
// the command waits in the queue.
type pendingQuery struct{ sent, deadline time.Time }

// runner is the state of one Run: one goroutine, driven by step.
type runner struct {
	s   *Sensor
	cfg Config
	log *slog.Logger
	out chan<- reading.Batch
	obs func(string, time.Duration, error)

	port     Port
	portErr  error // why there is no port
	opened   bool  // the port was opened at least once
	openedAt time.Time
	openAt   time.Time // next attempt to open the port
	backoff  time.Duration
	failing  bool // the port is missing and that was logged

	store   []byte // backing array of buf
	buf     []byte // received bytes not parsed yet: less than one frame after each read
	scratch [256]byte
	hunting bool // skipping garbage: the next skip is not a new resync

	nextTick time.Time

	asleep    bool
	phaseEnd  time.Time // end of the duty cycle's work or sleep phase
	wokeAt    time.Time // last wake-up (or port opening): staleness counts from here at most
	warmUntil time.Time
	lastValid time.Time
	latest    []reading.Reading // newest warm sample not emitted yet (streaming modes)

	queue    []command
	nextSend time.Time
	query    *pendingQuery
}

// step handles every timer that is due, then reads (or waits) until the next one.
func (r *runner) step(ctx context.Context) {
	now := time.Now()
	if r.port == nil && !now.Before(r.openAt) {
		r.tryOpen(now)
	}
	if r.port != nil {
		r.cycle(now)
		r.send(ctx, now)
	}
	if q := r.query; q != nil && !q.sent.IsZero() && !now.Before(q.deadline) {
		r.finishQuery(ctx, now, nil)
	}
	if !now.Before(r.nextTick) {
		r.tick(ctx, now)
		r.nextTick = r.nextTick.Add(r.cfg.Interval)
		if !r.nextTick.After(now) { // the loop stalled (out was full): skip, don't stack
			r.nextTick = r.nextTick.Add((now.Sub(r.nextTick)/r.cfg.Interval + 1) * r.cfg.Interval)
		}
	}
	wait := time.Until(r.nextEvent())
	if r.port == nil {
		sleepCtx(ctx, wait)
	} else if wait > 0 {
		r.read(ctx, min(wait, readSlice))
	}
}

// nextEvent returns when the next timer is due.
func (r *runner) nextEvent() time.Time {
	t := r.nextTick
	if r.port == nil {
		return earliest(t, r.openAt)
	}
	if r.cfg.dutyCycled() {
		t = earliest(t, r.phaseEnd)
	}
	if len(r.queue) > 0 {
		t = earliest(t, r.nextSend)
	}
	if q := r.query; q != nil && !q.sent.IsZero() {
		t = earliest(t, q.deadline)
	}
	return t
}

// tryOpen opens the port and queues the commands that wake the sensor and set its mode:
// after a restart or a power cut, it may be asleep or in the wrong mode.
func (r *runner) tryOpen(now time.Time) {
	p, err := r.s.open(r.cfg.Port)
	if err != nil {
		r.portErr = err
		if !r.failing {
			r.log.Warn("cannot open port", "err", err, "retry_in", r.backoff)
			r.failing = true
		}
		r.openAt = now.Add(r.backoff)
		r.backoff = min(2*r.backoff, maxReopenBackoff)
		return
	}
	if r.opened {
		r.s.reopens.Add(1)
		r.log.Info("port reopened")
	}
	r.port, r.portErr, r.opened, r.failing = p, nil, true, false
	r.openedAt, r.nextSend = now, now
	r.backoff = r.firstBackoff()
	r.buf, r.hunting = r.store[:0], false
	r.wake(now)
	if r.cfg.dutyCycled() {
		r.phaseEnd = now.Add(r.cfg.DutyCycle.Work)
	}
}

func (r *runner) firstBackoff() time.Duration { return min(r.cfg.Interval, time.Second) }

// lost closes a failed port and schedules its reopening.
func (r *runner) lost(ctx context.Context, now time.Time, err error) {
	r.closePort()
	r.portErr = fmt.Errorf("serial port %s lost: %w", r.cfg.Port, serialport.ExplainLoss(err))
	r.log.Warn("port lost", "err", err, "retry_in", r.backoff)
	r.failing = true
	r.openAt = now.Add(r.backoff)
	r.backoff = min(2*r.backoff, maxReopenBackoff)
	r.queue, r.latest, r.buf = r.queue[:0], nil, r.store[:0]
	if r.query != nil {
		r.finishQuery(ctx, now, nil)
	}
}

func (r *runner) closePort() {
	if r.port == nil {
		return
	}
	if err := r.port.Close(); err != nil {
		r.log.Debug("close port", "err", err) // it failed anyway; nothing else to do
	}
	r.port = nil
}

// cycle moves the duty cycle on: sleep after Work, wake after Sleep.
func (r *runner) cycle(now time.Time) {
	if !r.cfg.dutyCycled() || now.Before(r.phaseEnd) {
		return
	}
	next := func(d time.Duration) time.Time {
		if t := r.phaseEnd.Add(d); t.After(now) {
			return t
		}
		return now.Add(d)
	}
	if r.asleep {
		r.log.Debug("waking sensor")
		r.wake(now)
		r.phaseEnd = next(r.cfg.DutyCycle.Work)
		return
	}
	r.log.Debug("putting sensor to sleep", "for", r.cfg.DutyCycle.Sleep)
	r.asleep, r.latest = true, nil
	r.enqueue(command{b: r.sleepCmd()})
	r.phaseEnd = next(r.cfg.DutyCycle.Sleep)
}

// wake queues the wake-up and mode commands and starts the warm-up.
func (r *runner) wake(now time.Time) {
	r.asleep, r.wokeAt, r.warmUntil = false, now, now.Add(r.cfg.Warmup)
	if r.cfg.Model.isPMS() {
		mode := uint16(1) // active
		if r.cfg.Mode == ModePassive {
			mode = 0
		}
		r.enqueue(command{b: PMSCommand(PMSCmdSleep, 1)})
		r.enqueue(command{b: PMSCommand(PMSCmdMode, mode)})
		return
	}
	query := byte(1)
	if r.cfg.Mode == ModeActive {
		query = 0
	}
	r.enqueue(command{b: SDSCommand(SDSCmdSleepWork, [12]byte{1, 1}, SDSAnyID)})
	r.enqueue(command{b: SDSCommand(SDSCmdReportMode, [12]byte{1, query}, SDSAnyID)})
}

func (r *runner) sleepCmd() []byte {
	if r.cfg.Model.isPMS() {
		return PMSCommand(PMSCmdSleep, 0)
	}
	return SDSCommand(SDSCmdSleepWork, [12]byte{1, 0}, SDSAnyID)
}

func (r *runner) queryCmd() []byte {
	if r.cfg.Model.isPMS() {
		return PMSCommand(PMSCmdRead, 0)
	}
	return SDSCommand(SDSCmdQuery, [12]byte{}, SDSAnyID)
}

func (r *runner) enqueue(c command) { r.queue = append(r.queue, c) }

// send writes the next queued command once cmdGap has passed since the last one.
func (r *runner) send(ctx context.Context, now time.Time) {
	if len(r.queue) == 0 || now.Before(r.nextSend) {
		return
	}
	c := r.queue[0]
	r.queue = r.queue[1:]
	n, err := r.port.Write(c.b)
	if err == nil && n < len(c.b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		r.lost(ctx, now, fmt.Errorf("write command % X: %w", c.b, err))
		return
	}
	r.nextSend = now.Add(cmdGap)
	if c.query && r.query != nil {
		r.query.sent, r.query.deadline = now, now.Add(min(r.cfg.Interval/2, maxReplyWait))
	}
}

// read reads what arrives within timeout and parses it.
func (r *runner) read(ctx context.Context, timeout time.Duration) {
	if err := r.port.SetReadTimeout(timeout); err != nil {
		r.lost(ctx, time.Now(), fmt.Errorf("set read timeout: %w", err))
		return
	}
	n, err := r.port.Read(r.scratch[:])
	now := time.Now()
	if n > 0 {
		r.buf = append(r.buf, r.scratch[:n]...)
		r.parse(ctx, now)
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		r.lost(ctx, now, fmt.Errorf("read: %w", err))
	}
}

// parse takes every frame out of buf, counting what it skips, and keeps the incomplete
// rest at the front of store.
func (r *runner) parse(ctx context.Context, now time.Time) {
	for {
		rs, n, err := r.s.sample(r.buf, now)
		r.buf = r.buf[n:]
		switch {
		case err == nil:
			r.s.frames.Add(1)
			r.hunting = false
			r.frame(ctx, now, rs)
			continue
		case errors.Is(err, ErrGarbage):
			r.s.garbageBytes.Add(uint64(n))
			if !r.hunting {
				r.s.resyncs.Add(1)
			}
			r.hunting = true
		case errors.Is(err, ErrChecksum):
			r.s.checksumErrors.Add(1)
			r.hunting = false
			r.log.Debug("frame dropped", "err", err)
		case errors.Is(err, ErrLength):
			r.s.lengthErrors.Add(1)
			r.hunting = false
			r.log.Debug("frame dropped", "err", err)
		case errors.Is(err, ErrReply):
			r.hunting = false
		}
		if n == 0 { // ErrShort: wait for more bytes
			r.buf = r.store[:copy(r.store[:cap(r.store)], r.buf)]
			return
		}
	}
}

// frame takes a valid measurement received at now.
func (r *runner) frame(ctx context.Context, now time.Time, rs []reading.Reading) {
	r.lastValid = now
	if q := r.query; q != nil && !q.sent.IsZero() {
		r.finishQuery(ctx, now, rs)
		return
	}
	if r.asleep || now.Before(r.warmUntil) || r.cfg.queried() {
		return
	}
	r.latest = rs
}

// tick ends an interval: it emits the latest sample (streaming) or queues the query
// (passive and query modes, whose replies end the interval in finishQuery).
func (r *runner) tick(ctx context.Context, now time.Time) {
	if r.query != nil { // unanswered and not yet timed out: the queue was backed up
		r.finishQuery(ctx, now, nil)
	}
	switch {
	case r.port == nil:
		r.observe(0, r.portErr)
	case r.asleep:
		r.latest = nil
		r.observe(0, nil)
	case r.cfg.queried():
		r.query = &pendingQuery{}
		r.enqueue(command{b: r.queryCmd(), query: true})
	default:
		age := now.Sub(r.openedAt)
		if !r.lastValid.IsZero() {
			age = now.Sub(r.lastValid)
		}
		if err := r.staleErr(now); err != nil {
			r.latest = nil
			r.observe(age, err)
			return
		}
		if rs := r.latest; rs != nil {
			r.latest = nil
			r.emit(ctx, rs)
		}
		r.observe(age, nil)
	}
}

// finishQuery ends the interval of the pending query with its answer rs, or nil for
// none.
func (r *runner) finishQuery(ctx context.Context, now time.Time, rs []reading.Reading) {
	q := r.query
	r.query = nil
	var d time.Duration
	if !q.sent.IsZero() {
		d = now.Sub(q.sent)
	}
	warm := now.Before(r.warmUntil)
	var err error
	switch {
	case rs != nil:
		if !warm && !r.asleep {
			r.emit(ctx, rs)
		}
	case r.port == nil:
		err = r.portErr
	case r.asleep:
	default:
		err = r.staleErr(now)
		if err == nil && !warm { // a sensor still spinning up may not answer yet
			err = fmt.Errorf("%s: %w to % X within %s", r.cfg.Port, ErrNoReply, r.queryCmd(), min(r.cfg.Interval/2, maxReplyWait))
		}
	}
	r.observe(d, err)
}

// staleErr returns an ErrStale error if no valid frame arrived for Stale, counted from
// the last wake-up at the earliest.
func (r *runner) staleErr(now time.Time) error {
	since := r.wokeAt
	if r.lastValid.After(since) {
		since = r.lastValid
	}
	if d := now.Sub(since); d > r.cfg.Stale {
		return fmt.Errorf("%s: %w for %s (is the sensor powered, and its TX wired to the adapter's RX?)",
			r.cfg.Port, ErrStale, d.Round(time.Millisecond))
	}
	return nil
}

func (r *runner) emit(ctx context.Context, rs []reading.Reading) {
	select {
	case r.out <- reading.Batch{Readings: rs}:
	case <-ctx.Done():
	}
}

func (r *runner) observe(d time.Duration, err error) {
	if r.obs != nil {
		r.obs(r.cfg.Name, d, err)
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
