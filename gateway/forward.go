package gateway

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
	"golang.org/x/time/rate"
)

// forwarder moves readings from one buffer reader to one sink, in order, and acks them
// only after the sink stored them.
type forwarder struct {
	spec SinkSpec
	r    *buffer.Reader
	log  *slog.Logger
	busy busy // the call run is in, for Wedged
	// handover, closed by Pipeline.Handover, stops run after the write in flight (a
	// reload: the next pipeline's forwarder goes on from the same cursor).
	handover <-chan struct{}

	mu          sync.Mutex
	written     uint64
	retried     uint64
	lastSuccess time.Time
	failing     bool
	persistent  bool
	nextRetry   time.Time // when the back-off after the last failure ends; zero while none runs
	probesOK    uint64
	probesFail  uint64
	liveWritten uint64
	rateLimited time.Duration // time the ordered lane waited for the rate cap

	// lim caps the readings sent per second (SinkSpec.MaxRate); nil: unlimited.
	lim *rate.Limiter
	// saveEvery is SinkSpec.BatchSize as configured, before the rate cap cuts it:
	// saveCursor's bound, which the re-send promise and the SD card's wear are counted in.
	saveEvery int

	live      *buffer.Follower // the live lane while a backlog drains; run's goroutine only
	liveSince time.Time        // when the live lane opened
	lastLive  time.Time        // when the live lane last sent
}

func newForwarder(spec SinkSpec, r *buffer.Reader, log *slog.Logger) *forwarder {
	if spec.BatchSize <= 0 {
		spec.BatchSize = 1000
	}
	if spec.RetryInitial <= 0 {
		spec.RetryInitial = time.Second
	}
	if spec.RetryMax < spec.RetryInitial {
		spec.RetryMax = max(2*time.Minute, spec.RetryInitial)
	}
	if spec.AuthRetry <= 0 {
		spec.AuthRetry = time.Minute
	}
	if spec.StallAfter <= 0 {
		spec.StallAfter = DefaultSinkStallAfter
	}
	if spec.ProbeInterval <= 0 {
		spec.ProbeInterval = DefaultProbeInterval
	}
	if spec.MaxInFlight <= 0 {
		spec.MaxInFlight = DefaultMaxInFlight
	}
	f := &forwarder{spec: spec, r: r, log: log, saveEvery: spec.BatchSize}
	if spec.MaxRate > 0 {
		// A bucket of one second's worth, and no write larger than it: a write of n
		// readings waits for n tokens, so a larger one could never go.
		burst := int(min(math.Ceil(spec.MaxRate), math.MaxInt32))
		f.lim = rate.NewLimiter(rate.Limit(spec.MaxRate), burst)
		f.spec.BatchSize = min(spec.BatchSize, burst)
		f.spec.DrainBatchSize = min(spec.DrainBatchSize, burst)
	}
	return f
}

// stats is called on every scrape and health poll. f.mu covers only the copy of the
// forwarder's own fields: the reader's and the sink's calls may wait (the buffer's lock
// behind a hung disk), and the forwarder must never wait for a scrape.
func (f *forwarder) stats() metrics.SinkStats {
	s := metrics.SinkStats{Unsent: f.r.Unsent()}
	if t := f.r.OldestUnsent(); !t.IsZero() {
		s.OldestUnsentAge = max(clock.Now().Sub(t), 0)
	}
	if f.spec.Counters != nil {
		s.Rejected, s.DeadLettered = f.spec.Counters()
	}
	if f.spec.DeadLetterDropped != nil {
		s.DeadLetterDropped = f.spec.DeadLetterDropped()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Written, s.Retried, s.LastSuccess, s.Failing, s.Persistent = f.written, f.retried, f.lastSuccess, f.failing, f.persistent
	s.ProbesOK, s.ProbesFailed, s.LiveWritten = f.probesOK, f.probesFail, f.liveWritten
	s.RateLimited = f.rateLimited
	return s
}

// linger waits up to wait for a full batch: it returns as soon as one is durable, the
// wait is over, or the gateway shuts down.
func (f *forwarder) linger(ctx context.Context, drained <-chan struct{}, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		changed := f.r.Changed()
		if f.r.Durable() >= int64(f.spec.BatchSize) { // cheap: sequence arithmetic, no decoding
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-drained:
			return
		case <-t.C:
			return
		case <-changed:
		}
	}
}

func (f *forwarder) succeeded(n int) {
	f.mu.Lock()
	f.written += uint64(n)
	f.lastSuccess = time.Now()
	f.nextRetry = time.Time{}
	recovered := f.failing
	f.failing, f.persistent = false, false
	f.mu.Unlock()
	if recovered {
		f.log.Info("sink recovered") // outside f.mu: a log write can block
	}
}

// maxRetryAfter bounds how long a server's Retry-After can hold a sink back, whatever
// the sink reports (influx.MaxRetryAfter caps it the same way): an absurd value must not
// stop delivery until someone restarts the box.
const maxRetryAfter = 10 * time.Minute

// failed records a failure and returns how long to wait before the next attempt.
func (f *forwarder) failed(err error, backoff *time.Duration) time.Duration {
	var persistent interface{ Persistent() bool }
	var retryAfter interface{ RetryAfter() time.Duration }
	isPersistent := errors.As(err, &persistent) && persistent.Persistent()
	wait := jitter(*backoff)
	*backoff = min(2**backoff, f.spec.RetryMax)
	if isPersistent {
		wait = f.spec.AuthRetry
	}
	if errors.As(err, &retryAfter) {
		wait = max(wait, min(retryAfter.RetryAfter(), maxRetryAfter))
	}
	f.mu.Lock()
	f.retried++
	f.nextRetry = time.Now().Add(wait)
	changed := !f.failing || isPersistent != f.persistent
	f.failing, f.persistent = true, isPersistent
	f.mu.Unlock()
	if changed { // outside f.mu: a log write can block
		if isPersistent {
			f.log.Error("sink refuses writes; check its credentials and bucket, retrying slowly", "err", err, "retry_in", wait)
		} else {
			f.log.Warn("sink write failed, will retry", "err", err, "retry_in", wait)
		}
	}
	return wait
}

// A Prober is a Sink that can ask its server cheaply whether it is back (InfluxDB's
// /ping). While the forwarder waits out a long back-off after a transient failure it
// probes every SinkSpec.ProbeInterval (jittered, and never before the server's
// Retry-After is over) and retries the write as soon as a probe succeeds (after
// SinkSpec.RetryJitter, see retryJitter), so delivery resumes within seconds of the
// server's return instead of up to retry_max later.
// Probe returns nil when the server answers as ready; it bounds its own duration (a
// few seconds) and is called from the forwarder's goroutine only.
type Prober interface {
	Probe(ctx context.Context) error
}

// DefaultProbeInterval is SinkSpec.ProbeInterval's default: a request every 2.5 to 5 s
// to a server that is down costs it nothing, and resuming within 5 s of its return is
// soon enough for a backlog of an outage.
const DefaultProbeInterval = 5 * time.Second

// backOff waits wait after a failed write, the back-off failed chose. If the sink is a
// Prober, the failure transient (not Persistent) and probe true, it probes the server
// from the end of the failure's Retry-After (if any) every jittered ProbeInterval until
// the back-off is over, and returns true as soon as a probe succeeds, cutting the wait
// short. A back-off shorter than the next probe is simply slept.
func (f *forwarder) backOff(ctx context.Context, err error, wait time.Duration, probe bool) bool {
	p, ok := f.spec.Sink.(Prober)
	var persistent interface{ Persistent() bool }
	if !ok || !probe || (errors.As(err, &persistent) && persistent.Persistent()) {
		sleepOr(ctx, f.handover, wait)
		return false
	}
	end := time.Now().Add(wait)
	next := jitter(f.spec.ProbeInterval)
	var retryAfter interface{ RetryAfter() time.Duration }
	if errors.As(err, &retryAfter) {
		next = max(next, min(retryAfter.RetryAfter(), maxRetryAfter))
	}
	for {
		if left := time.Until(end); next >= left {
			sleepOr(ctx, f.handover, left)
			return false
		}
		sleepOr(ctx, f.handover, next)
		if ctx.Err() != nil || f.handover != nil && isClosed(f.handover) {
			return false
		}
		var perr error
		f.busy.do(&callProbe, func() { perr = p.Probe(ctx) })
		f.mu.Lock()
		if perr == nil {
			f.probesOK++
		} else {
			f.probesFail++
		}
		f.mu.Unlock()
		if perr == nil {
			f.log.Info("sink answers again, retrying now", "probe", "ok")
			return true
		}
		f.log.Debug("sink probe failed", "err", perr)
		next = jitter(f.spec.ProbeInterval)
	}
}

// retryJitter waits, after a back-off, a random delay uniform in [0, RetryJitter)
// before the attempt that ends it, or until ctx is done or a handover. A fleet that lost
// its server together (a regional 4G outage, a restart of the central store) sees it
// return together: the back-off's own jitter (half to whole) and the probes' (every
// half to whole ProbeInterval) spread the boxes over a few seconds at most, which is
// what this spreads over the window.
func (f *forwarder) retryJitter(ctx context.Context) {
	if f.spec.RetryJitter <= 0 {
		return
	}
	sleepOr(ctx, f.handover, rand.N(f.spec.RetryJitter))
}

// throttle reports how long a write of n readings must wait for the rate cap
// (SinkSpec.MaxRate), 0 if it may go now; when it may, it takes n tokens. A write that
// has to wait takes none: run waits the delay (and for any send that returns meanwhile)
// and asks again, so the cap never holds up the acknowledgements of the sends in
// flight. Every send counts, a batch sent again after a failure too: the server is
// asked to take it again.
func (f *forwarder) throttle(n int) time.Duration {
	if f.lim == nil || n == 0 {
		return 0
	}
	n = min(n, f.lim.Burst())
	now := time.Now()
	if f.lim.AllowN(now, n) {
		return 0
	}
	short := float64(n) - f.lim.TokensAt(now)
	return max(time.Duration(math.Ceil(short/float64(f.lim.Limit())*float64(time.Second))), time.Millisecond)
}

// liveLane keeps live readings flowing while a backlog drains, after an outage or in a
// reconnect storm when the server is slow: the ordered lane (the reader's cursor) goes
// on delivering the backlog oldest first, and once the drain has run for liveAfter,
// after each of its batches and at most once per FlushInterval, the live lane sends
// what arrived since the drain began that it has not sent yet, a batch at most (a
// buffer Follower from the durable end of the log when the drain began). Live readings
// are thus at most about liveAfter, one FlushInterval and MaxInFlight + 1 requests
// behind (the ordered ones in flight, then its own), however long the backlog. The ordered lane later sends them again: InfluxDB stores a point with the
// same series, field and time once, so the second write overwrites it with the same
// value. Nothing changes for at-least-once: only the ordered lane acknowledges, and a
// live write that fails is simply left to it. Readings the sink would dead-letter
// (Quality Bad, invalid) are left to the ordered lane, so they are set aside once.
// The lane opens (startLive) when an ordered write begins with more than a batch waiting
// behind it, closes once no more than a batch is, and closes at a failed write: what
// arrives during a back-off is backlog too.
func (f *forwarder) liveLane(ctx context.Context, acked uint64) {
	if f.live == nil {
		return
	}
	if f.r.Durable() <= int64(f.spec.BatchSize) {
		f.stopLive()
		return
	}
	if f.live.Next() < acked { // the ordered lane overtook it (its writes failed): start anew
		f.live.Skip(acked)
	}
	if time.Since(f.liveSince) < liveAfter || time.Since(f.lastLive) < f.spec.FlushInterval {
		return
	}
	var rs []reading.Reading
	var next uint64
	var err error
	f.busy.do(&callPeek, func() { rs, next, err = f.live.Peek(f.spec.BatchSize) })
	if err != nil || len(rs) == 0 {
		return
	}
	f.lastLive = time.Now()
	send := make([]reading.Reading, 0, len(rs))
	for _, r := range rs {
		if r.Quality != reading.Bad && r.Validate() == nil {
			send = append(send, r)
		}
	}
	if len(send) > 0 {
		if f.lim != nil {
			// The live lane never waits for the rate cap, but its readings count: it takes
			// their tokens on credit, and the ordered lane's next writes wait them out.
			f.lim.ReserveN(time.Now(), len(send))
		}
		f.busy.do(&callWrite, func() { err = f.spec.Sink.Write(ctx, send) })
		if err != nil {
			f.log.Debug("live lane write failed; the ordered lane will deliver its readings", "err", err)
			return
		}
	}
	f.live.Skip(next)
	f.mu.Lock()
	f.liveWritten += uint64(len(send))
	f.mu.Unlock()
}

// startLive opens the live lane at the durable end of the log.
func (f *forwarder) startLive() {
	if f.spec.Ordered {
		return
	}
	live, err := f.r.Follow()
	if err != nil {
		return // the queue is closed: the ordered lane will find out
	}
	f.live, f.liveSince, f.lastLive = live, time.Now(), time.Time{}
}

// liveAfter is how long a drain runs before the live lane sends: a drain shorter than
// that delivers everything once, in order; a longer one (an outage of minutes or hours)
// keeps live readings at most about liveAfter plus flush_interval and MaxInFlight + 1
// requests behind.
const liveAfter = 5 * time.Second

// stopLive closes the live lane, if open.
func (f *forwarder) stopLive() {
	if f.live != nil {
		f.live.Close()
		f.live = nil
	}
}

// saveCursor bounds what a crash makes the sink deliver again (docs/design.md, "Re-sends
// after a crash"). Ack saves the cursor at most once per cursor interval, which in
// steady state is all it takes; but while a backlog is caught up, batch after batch,
// one interval can hold many batches, so the cursor is also saved as soon as a whole
// batch's worth has been acknowledged since it was last saved. A crash then re-sends
// fewer than BatchSize acknowledged readings plus the batch in flight. Going idle with
// acknowledged readings not yet saved, run saves them when the interval is over.
// BatchSize is the configured one (saveEvery): the rate cap's smaller writes do not
// make the saves more frequent.
func (f *forwarder) saveCursor() {
	if n, _ := f.r.Unsaved(); n >= uint64(f.saveEvery) {
		f.flush()
	}
}

func (f *forwarder) flush() {
	var err error
	f.busy.do(&callCursor, func() { err = f.r.Flush() })
	if err != nil {
		f.log.Warn("cannot persist cursor", "err", err)
	}
}

// jitter returns a duration uniformly distributed in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sleepOr waits d, or until ctx is done or stop (if set) is closed.
func sleepOr(ctx context.Context, stop <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-stop:
	case <-t.C:
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
