package pm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/envgate/envgate/drivers/serialport"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// Errors Run passes to Config.Observe, wrapped with the port and the details.
var (
	// ErrStale means no valid frame arrived for Config.Stale of awake time, or none in
	// the part of a duty cycle's work period after the warm-up.
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
	// wait is Interval, at most a second, and it doubles after each failure until a
	// valid frame arrives.
	maxReopenBackoff = 30 * time.Second
	// failLogEvery throttles the log of read failures (bad checksums and lengths,
	// resyncs, unanswered commands, I/O errors) to one line per device per period; the
	// line says how many failures it left out. Stats counts every one.
	failLogEvery = time.Minute
)

// Run owns the port until ctx is done. It opens the port (retrying with back-off while it
// is missing), wakes the sensor and sets its mode, reads frames and sends reading.Batch
// values (Durable nil): pm1, pm25 and pm10 for a PMS, pm25 and pm10 for the SDS011.
// Always on, it sends one batch per Interval (the latest valid frame, or the query's
// answer), none while the sensor warms up. Duty-cycled, it sends one batch per work
// period, just before the sensor goes to sleep: the mean of the valid samples taken
// after the warm-up. When the port fails (a USB adapter unplugged) it closes it and
// opens it again. When no valid frame arrives for Config.Stale, it sends the wake-up and
// mode commands again (and again every Stale while the silence lasts): a sensor that
// rebooted after a brown-out is back in its default mode, and one that missed a wake-up
// command still sleeps.
//
// Config.Observe, if set, is called from Run's goroutine with the device name, a duration and
// nil or why the device is down. It is called once per Interval while the port is
// missing (with the reason) and while the sensor is awake: the duration is the awake
// time since the last valid frame (streaming) or the query's round trip (passive and
// query modes); the error is ErrStale after Config.Stale of awake time without a valid
// frame, or ErrNoReply for an unanswered query. Duty-cycled, it is also called at the
// end of each work period: nil if it gave a reading, ErrStale if it did not. There is
// no call while the sensor sleeps as planned, nor before the first valid frame after
// the port opens (until Stale has passed), nor for a query unanswered during the
// warm-up: those are neither successes nor failures, and the last verdict stands.
//
// Run logs the device's state changes (down with the error, up again), not each
// failure; read failures go to a log line at most once per failLogEvery.
//
// Run never closes out. It closes the port and returns nil when ctx is done; it returns an
// error only if the Sensor is already running.
func (s *Sensor) Run(ctx context.Context, out chan<- reading.Batch) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("pm sensor %s: Run called while already running", s.cfg.Name)
	}
	defer s.running.Store(false)
	now := clock.Now() // the gateway's clock, which stamps the readings
	r := &runner{s: s, cfg: s.cfg, log: s.log, out: out, obs: s.cfg.Observe,
		store: make([]byte, 0, 512), nextTick: now.Add(s.cfg.Interval), openAt: now}
	r.buf = r.store
	r.backoff = r.firstBackoff()
	defer r.closePort()
	for ctx.Err() == nil {
		r.step(ctx)
	}
	return nil
}

// Name returns the sensor's name (Config.Name).
func (s *Sensor) Name() string { return s.cfg.Name }

// command is one frame to send to the sensor.
type command struct {
	b     []byte
	query bool // a read or query command: its answer completes r.query
}

// pendingQuery is the read or query command in flight; sent is zero while the command
// waits in the queue.
type pendingQuery struct{ sent, deadline time.Time }

// runner is the state of one Run: one goroutine, driven by step.
type runner struct {
	s   *Sensor
	cfg Config
	log *slog.Logger
	out chan<- reading.Batch
	obs func(string, time.Duration, error)

	port    Port
	portErr error // why there is no port
	opened  bool  // the port was opened at least once
	openAt  time.Time
	backoff time.Duration // wait before the next open attempt; reset by a valid frame
	synced  bool          // a valid frame arrived since the port was opened
	down    bool          // the device's last verdict was a failure, and that was logged

	store   []byte // backing array of buf
	buf     []byte // received bytes not parsed yet: less than one frame after each read
	scratch [256]byte
	hunting bool // skipping garbage: the next skip is not a new resync
	dropped bool // the last thing parsed was a bad frame: the hunt that follows is part of that failure

	nextTick time.Time

	asleep    bool
	phaseEnd  time.Time // end of the duty cycle's work or sleep phase
	sleptAt   time.Time // start of the current sleep
	warmUntil time.Time
	warmQuery bool // duty-cycled query modes: query as soon as the warm-up ends
	lastValid time.Time
	// staleFrom is where the awake silence starts: the last valid frame or the port's
	// opening, moved on by each planned sleep so that sleeping never counts as silence.
	staleFrom time.Time
	rewakeAt  time.Time // the earliest time to send the wake-up and mode commands again
	rewoken   bool      // they were sent again since the last valid frame
	lastRTT   time.Duration
	latest    []reading.Reading // always on, streaming: newest warm sample not emitted yet
	samples   window            // duty-cycled: this work period's samples after the warm-up

	queue    []command
	nextSend time.Time
	query    *pendingQuery

	failLoggedAt   time.Time // last "read failed" line
	failSuppressed int       // failures not logged since then
}

// step handles every timer that is due, then reads (or waits) until the next one.
func (r *runner) step(ctx context.Context) {
	now := clock.Now()
	if r.port == nil && !now.Before(r.openAt) {
		r.tryOpen(now)
	}
	if r.port != nil {
		r.cycle(ctx, now)
		if r.warmQuery && !r.asleep && !now.Before(r.warmUntil) {
			r.warmQuery = false
			r.startQuery()
		}
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
	wait := r.nextEvent().Sub(clock.Now())
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
	// The end of a work period waits for the query in flight (see cycle): its timers
	// are below.
	if r.cfg.dutyCycled() && (r.asleep || r.query == nil) {
		t = earliest(t, r.phaseEnd)
	}
	if r.warmQuery && !r.asleep {
		t = earliest(t, r.warmUntil)
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
		r.log.Debug("cannot open port", "err", err, "retry_in", r.backoff)
		r.setDown(err)
		r.openAt = now.Add(r.backoff)
		r.backoff = min(2*r.backoff, maxReopenBackoff)
		return
	}
	if r.opened {
		r.s.reopens.Add(1)
		r.log.Debug("port reopened")
	}
	// The back-off is not reset here but by the first valid frame: a port that opens and
	// then fails at once, or never yields a frame, must not be reopened at full speed.
	r.port, r.portErr, r.opened, r.synced = p, nil, true, false
	r.staleFrom, r.nextSend = now, now
	r.buf, r.hunting = r.store[:0], false
	r.latest, r.samples = nil, window{}
	r.wake(now)
	if r.cfg.dutyCycled() {
		r.phaseEnd = now.Add(r.cfg.DutyCycle.Work)
	}
}

func (r *runner) firstBackoff() time.Duration { return min(r.cfg.Interval, time.Second) }

// lost closes a failed port and schedules its reopening.
func (r *runner) lost(ctx context.Context, now time.Time, err error) {
	r.closePort()
	r.s.ioErrors.Add(1)
	r.portErr = fmt.Errorf("serial port %s lost: %w", r.cfg.Port, serialport.ExplainLoss(err))
	r.log.Debug("port lost", "err", err, "retry_in", r.backoff)
	if !r.setDown(r.portErr) {
		r.failed(now, r.portErr)
	}
	r.openAt = now.Add(r.backoff)
	r.backoff = min(2*r.backoff, maxReopenBackoff)
	r.queue, r.latest, r.buf, r.samples = r.queue[:0], nil, r.store[:0], window{}
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

// cycle moves the duty cycle on: at the end of Work it emits the period's reading and
// puts the sensor to sleep; after Sleep it wakes it.
func (r *runner) cycle(ctx context.Context, now time.Time) {
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
		r.staleFrom = r.staleFrom.Add(now.Sub(r.sleptAt)) // a planned sleep is not silence
		r.wake(now)
		r.phaseEnd = next(r.cfg.DutyCycle.Work)
		return
	}
	if r.query != nil {
		// Let the query in flight be answered (or time out) first: its reply may be the
		// period's only sample. This delays the sleep by maxReplyWait at most.
		return
	}
	r.endWork(ctx, now)
	r.log.Debug("putting sensor to sleep", "for", r.cfg.DutyCycle.Sleep)
	r.asleep, r.sleptAt, r.latest, r.warmQuery = true, now, nil, false
	r.enqueue(command{b: r.sleepCmd()})
	r.phaseEnd = next(r.cfg.DutyCycle.Sleep)
}

// endWork emits the reading of the work period that ends at now and reports the
// period's verdict: a work period without a valid sample after the warm-up is a failure.
func (r *runner) endWork(ctx context.Context, now time.Time) {
	d := now.Sub(r.staleFrom)
	if r.cfg.queried() {
		d = r.lastRTT
	}
	rs := r.samples.take()
	if rs == nil {
		w := r.cfg.DutyCycle.Work
		r.observe(d, fmt.Errorf("%s: %w in the %s of the work period after the warm-up (duty_cycle.work %s, warmup %s)",
			r.cfg.Port, ErrStale, w-r.cfg.Warmup, w, r.cfg.Warmup))
		return
	}
	r.emit(ctx, rs)
	r.observe(d, nil)
}

// wake queues the wake-up and mode commands and starts the warm-up.
func (r *runner) wake(now time.Time) {
	r.asleep, r.warmUntil, r.rewakeAt = false, now.Add(r.cfg.Warmup), now.Add(r.cfg.Stale)
	r.warmQuery = r.cfg.dutyCycled() && r.cfg.queried()
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

// startQuery queues a read or query command unless one is already queued or in flight;
// that one's answer stands for both.
func (r *runner) startQuery() {
	if r.query != nil {
		return
	}
	r.query = &pendingQuery{}
	r.enqueue(command{b: r.queryCmd(), query: true})
}

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
		r.query.sent, r.query.deadline = now, now.Add(r.replyWait())
	}
}

func (r *runner) replyWait() time.Duration { return min(r.cfg.Interval/2, maxReplyWait) }

// read reads what arrives within timeout and parses it.
func (r *runner) read(ctx context.Context, timeout time.Duration) {
	if err := r.port.SetReadTimeout(timeout); err != nil {
		r.lost(ctx, clock.Now(), fmt.Errorf("set read timeout: %w", err))
		return
	}
	n, err := r.port.Read(r.scratch[:])
	now := clock.Now()
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
			r.hunting, r.dropped = false, false
			r.frame(ctx, now, rs)
			continue
		case errors.Is(err, ErrGarbage):
			r.s.garbageBytes.Add(uint64(n))
			if !r.hunting {
				r.s.resyncs.Add(1)
				// The first read after opening usually starts mid-frame, and the rest of a
				// dropped frame is skipped as garbage: neither is a failure of its own.
				if r.synced && !r.dropped {
					r.failed(now, fmt.Errorf("%w: lost frame alignment, skipping to the next frame start", ErrGarbage))
				}
			}
			r.hunting, r.dropped = true, false
		case errors.Is(err, ErrChecksum):
			r.s.checksumErrors.Add(1)
			r.hunting, r.dropped = false, true
			r.failed(now, err)
		case errors.Is(err, ErrLength):
			r.s.lengthErrors.Add(1)
			r.hunting, r.dropped = false, true
			r.failed(now, err)
		case errors.Is(err, ErrReply):
			r.hunting, r.dropped = false, false
		}
		if n == 0 { // ErrShort: wait for more bytes
			r.buf = r.store[:copy(r.store[:cap(r.store)], r.buf)]
			return
		}
	}
}

// frame takes a valid measurement received at now.
func (r *runner) frame(ctx context.Context, now time.Time, rs []reading.Reading) {
	r.lastValid, r.staleFrom, r.synced, r.rewoken = now, now, true, false
	r.backoff = r.firstBackoff() // the port works: the next loss retries quickly
	if q := r.query; q != nil && !q.sent.IsZero() {
		r.finishQuery(ctx, now, rs)
		return
	}
	if r.asleep || now.Before(r.warmUntil) || r.cfg.queried() {
		return
	}
	if r.cfg.dutyCycled() {
		r.samples.add(rs)
		return
	}
	r.latest = rs
}

// tick ends an interval: it emits the latest sample (always on, streaming) or queues the
// query (passive and query modes, whose replies are handled in finishQuery), and reports
// the device's state.
func (r *runner) tick(ctx context.Context, now time.Time) {
	switch {
	case r.port == nil:
		r.observe(0, r.portErr)
	case r.asleep:
		// A planned sleep is no poll: neither a success nor a failure.
	case r.cfg.queried():
		r.startQuery()
	default:
		age := now.Sub(r.staleFrom)
		if err := r.checkStale(now); err != nil {
			r.latest = nil
			r.observe(age, err)
			return
		}
		if !r.synced { // nothing heard since the port opened: no verdict yet
			return
		}
		if rs := r.latest; rs != nil {
			r.latest = nil
			r.emit(ctx, rs)
		}
		r.observe(age, nil)
	}
}

// finishQuery ends the pending query with its answer rs, or nil for none.
func (r *runner) finishQuery(ctx context.Context, now time.Time, rs []reading.Reading) {
	q := r.query
	r.query = nil
	var d time.Duration
	if !q.sent.IsZero() {
		d = now.Sub(q.sent)
	}
	warm := now.Before(r.warmUntil)
	switch {
	case rs != nil:
		r.lastRTT = d
		if !warm && !r.asleep {
			if r.cfg.dutyCycled() {
				r.samples.add(rs)
			} else {
				r.emit(ctx, rs)
			}
		}
		r.observe(d, nil)
	case r.port == nil:
		r.observe(d, r.portErr)
	case r.asleep:
	default:
		r.s.timeouts.Add(1)
		noReply := fmt.Errorf("%s: %w to % X within %s", r.cfg.Port, ErrNoReply, r.queryCmd(), r.replyWait())
		if !warm {
			r.failed(now, noReply)
		}
		if err := r.checkStale(now); err != nil {
			r.observe(d, err)
			return
		}
		// A sensor still spinning up may not answer yet, and one not heard from since the
		// port opened gets until Stale: no verdict.
		if warm || !r.synced {
			return
		}
		r.observe(d, noReply)
	}
}

// checkStale returns an ErrStale error if the sensor has been awake for Stale without a
// valid frame. Then it also sends the wake-up and mode commands again, at most once per
// Stale: a sensor that rebooted after a brown-out is back in its default mode, and one
// that missed a wake-up command still sleeps.
func (r *runner) checkStale(now time.Time) error {
	d := now.Sub(r.staleFrom)
	if d <= r.cfg.Stale {
		return nil
	}
	if !now.Before(r.rewakeAt) {
		if r.rewoken {
			r.log.Debug("no valid frame: sending wake-up and mode commands again", "for", d)
		} else {
			r.log.Info("no valid frame: sending wake-up and mode commands again", "for", d)
		}
		r.rewoken = true
		r.wake(now)
	}
	return fmt.Errorf("%s: %w for %s (is the sensor powered, and its TX wired to the adapter's RX?)",
		r.cfg.Port, ErrStale, d.Round(time.Millisecond))
}

func (r *runner) emit(ctx context.Context, rs []reading.Reading) {
	select {
	case r.out <- reading.Batch{Readings: rs}:
	case <-ctx.Done():
	}
}

// observe reports a verdict to Config.Observe and logs the device's state changes.
func (r *runner) observe(d time.Duration, err error) {
	if r.obs != nil {
		r.obs(r.cfg.Name, d, err)
	}
	if err != nil {
		r.setDown(err)
		return
	}
	if r.down {
		r.down = false
		r.log.Info("device up")
	}
}

// setDown logs that the device went down, unless it already was; it reports whether it
// logged.
func (r *runner) setDown(err error) bool {
	if r.down {
		return false
	}
	r.down = true
	r.log.Warn("device down", "err", err)
	return true
}

// failed logs a read failure, at most once per failLogEvery; the line counts the
// failures left out since the previous one.
func (r *runner) failed(now time.Time, err error) {
	if !r.failLoggedAt.IsZero() && now.Sub(r.failLoggedAt) < failLogEvery {
		r.failSuppressed++
		return
	}
	r.log.Warn("read failed", "err", err, "suppressed", r.failSuppressed)
	r.failLoggedAt, r.failSuppressed = now, 0
}

// window collects the samples of one work period taken after the warm-up.
type window struct {
	good []int     // Good samples of each quantity
	sum  []float64 // and their sum
	last []reading.Reading
}

func (w *window) add(rs []reading.Reading) {
	if len(w.good) != len(rs) {
		w.good, w.sum = make([]int, len(rs)), make([]float64, len(rs))
	}
	for i, r := range rs {
		if r.Quality == reading.Good {
			w.good[i]++
			w.sum[i] += r.Value
		}
	}
	w.last = rs
}

// take returns one reading per quantity and empties w: the mean of the Good samples,
// rounded to 0.01 µg/m³ (finer than either sensor's resolution, docs/engineering-notes.md §3), with the
// newest sample's time; or the newest sample if none was Good. It returns nil if there
// was no sample.
func (w *window) take() []reading.Reading {
	if w.last == nil {
		return nil
	}
	out := make([]reading.Reading, len(w.last))
	for i, r := range w.last {
		if w.good[i] > 0 {
			r.Value = math.Round(w.sum[i]/float64(w.good[i])*100) / 100
			r.Quality = reading.Good
		}
		out[i] = r
	}
	*w = window{}
	return out
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
