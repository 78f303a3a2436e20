package gateway

import (
	"context"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// A Preparer is a Sink that can do the CPU work of a write (encoding, compression) apart
// from its request: Prepare(batch) returns the function that sends the batch, which does
// what Write(ctx, batch) would do and may be called again after an error. The forwarder
// prepares the next batch while up to SinkSpec.MaxInFlight earlier ones are in flight,
// so Prepare, the send functions and Write of a Preparer must be safe to run
// concurrently. A Sink that is not a Preparer gets one Write at a time, while the
// forwarder reads the next batch from the buffer.
type Preparer interface {
	Prepare(batch []reading.Reading) func(context.Context) error
}

// DefaultMaxInFlight is SinkSpec.MaxInFlight's default. With two requests in flight the
// server always has the next batch waiting while it stores one (bench/README.md,
// "BenchmarkDrain").
const DefaultMaxInFlight = 2

// DrainBatch bounds SinkSpec.DrainBatchSize as cmd/envgate sets it (DrainBatchSize):
// the forwarder sends batches of BatchSize when it keeps up, and while more than a
// batch waits behind what it has read it takes all of it, up to DrainBatchSize readings
// a request. 5000 lines are the client library's and Telegraf's batch, about
// 500 kB of line protocol, far below InfluxDB's body limits (25 MB in 1.8, unlimited
// in 2.x); a 413 splits them anyway.
const DrainBatch = 5000

// DrainBatchSize returns the largest batch for a backlog (SinkSpec.DrainBatchSize) of a
// sink whose batches are batchSize readings: five batches, at most DrainBatch, and
// never fewer than batchSize. Five times batch_size keeps what a crash re-sends
// proportional to batch_size (docs/design.md, "Re-sends after a crash").
func DrainBatchSize(batchSize int) int { return max(batchSize, min(DrainBatch, 5*batchSize)) }

// The states of a batch in the forwarder's window.
const (
	batchQueued   = iota // read (and prepared), not sent, or to be sent again
	batchInFlight        // its send runs
	batchDone            // the sink stored it; acknowledged when every batch before it is
)

// batch is one request's worth of readings in the forwarder's window.
type batch struct {
	rs    []reading.Reading
	next  uint64                      // the cursor that acknowledges it and everything before it
	req   func(context.Context) error // sends it; nil until prepared (see pipe.ready)
	state int
	epoch uint64 // the forwarder's failure epoch when it was sent
	sent  bool   // it has been sent at least once
}

// noRequest is the request of a batch with no readings (records lost to corruption).
func noRequest(context.Context) error { return nil }

// sent is what a send reports when it returns.
type sent struct {
	b   *batch
	err error
}

// pipe is the state of run: the window of batches read ahead of the cursor, oldest
// first, and the sends in flight. It belongs to run's goroutine.
type pipe struct {
	f        *forwarder
	ahead    *buffer.Ahead
	window   []*batch
	inFlight int
	max      int       // sends in flight at most
	results  chan sent // one per send; buffered for max, so no send ever waits on it
	cursor   uint64    // the reader's cursor: where the window begins
	epoch    uint64    // failures handled so far; a send's failure counts only if it began after the last one
	failure  error     // a failure to back off from, not yet handled
	prepare  Preparer  // the sink, if it is a Preparer
	lastSend time.Time // when the last batch of the window was taken
	backoff  time.Duration
	held     time.Duration // how long the next send must wait for the rate cap (startSends)
}

// run delivers until ctx is done, or until drained is closed and nothing is left.
//
// It pipelines: it reads the next batch from the buffer (and has a Preparer sink encode
// it) while up to MaxInFlight sends are in flight, each in its own goroutine, and
// acknowledges in order: the cursor moves past a batch only once the sink has stored it
// and every batch before it. A batch that fails is sent again after the back-off; the
// batches after it that succeeded are not, and wait for it (nothing is acknowledged
// past a batch the sink has not stored). Only run's goroutine touches the window; on
// return no send is left running.
func (f *forwarder) run(ctx context.Context, drained <-chan struct{}) {
	ahead, err := f.r.Ahead()
	if err != nil {
		f.log.Error("cannot read buffer", "err", err)
		return
	}
	defer ahead.Close()
	p := &pipe{f: f, ahead: ahead, cursor: ahead.Next(), max: 1, backoff: f.spec.RetryInitial}
	if pr, ok := f.spec.Sink.(Preparer); ok {
		p.prepare, p.max = pr, f.spec.MaxInFlight
	}
	p.results = make(chan sent, p.max)
	defer f.stopLive()
	defer p.finish()
	lingered, readFailing, probed := false, false, false
	for ctx.Err() == nil {
		p.collect(false)
		p.ackDone(ctx, drained)
		if ctx.Err() != nil {
			return
		}
		if f.handover != nil && isClosed(f.handover) {
			p.finish()
			f.flush()
			return
		}
		if err := p.failure; err != nil {
			// The other sends' answers first (the server is likely down for them too):
			// what they stored is acknowledged before the back-off, and their failures
			// count with this one.
			f.busy.do(&callWrite, func() { p.collect(true) })
			p.ackDone(ctx, closedChan)
			f.stopLive() // reopened at the next attempt: what arrives during the back-off is backlog
			p.failure = nil
			p.epoch++
			wait := f.failed(err, &p.backoff)
			if n, _ := f.r.Unsaved(); n > 0 {
				f.flush() // the sink may be down for hours: save what it has, once
			}
			// A write a probe let through failed anyway (the server answers its ping but
			// not yet its writes): this back-off is waited out in full, so a server in that
			// state gets at most one extra write per back-off.
			probed = f.backOff(ctx, err, wait, !probed)
			f.retryJitter(ctx)
			continue
		}
		p.startSends(ctx)
		if d := p.held; d > 0 { // the rate cap holds the next send back; take answers meanwhile
			p.held = 0
			start := time.Now()
			p.wait(ctx, nil, d)
			f.mu.Lock()
			f.rateLimited += time.Since(start)
			f.mu.Unlock()
			continue
		}
		if len(p.window) > p.max { // the next batch is read; prepare it, wait for a send to return
			for _, b := range p.window {
				if b.state == batchQueued && b.req == nil { // not in flight: its send's goroutine has returned
					f.busy.do(&callPrepare, func() { p.ready(b) })
				}
			}
			p.wait(ctx, nil, 0)
			continue
		}

		size := f.spec.BatchSize
		if waiting := f.r.Durable() - int64(ahead.Next()-p.cursor); waiting > int64(size) && f.spec.DrainBatchSize > size {
			size = int(min(waiting, int64(f.spec.DrainBatchSize)))
		}
		var rs []reading.Reading
		var next uint64
		f.busy.do(&callPeek, func() { rs, next, err = ahead.Peek(size) })
		if err != nil {
			if !readFailing {
				f.log.Error("cannot read buffer", "err", err)
			}
			readFailing = true
			if p.inFlight == 0 {
				sleep(ctx, f.spec.RetryInitial)
			} else {
				p.wait(ctx, nil, f.spec.RetryInitial)
			}
			continue
		}
		readFailing = false
		if len(rs) == 0 {
			if next > ahead.Next() { // records lost to corruption: acknowledged in turn
				ahead.Skip(next)
				p.window = append(p.window, &batch{next: next, state: batchDone, sent: true, req: noRequest})
				continue
			}
			if len(p.window) > 0 { // caught up with the buffer; wait for a send or for more readings
				p.wait(ctx, f.r.Changed(), 0)
				continue
			}
			if isClosed(drained) {
				f.flush()
				return
			}
			f.idle(ctx, drained)
			continue
		}
		// A short batch soon after the last one: wait out the flush interval once for
		// more readings, unless shutting down.
		if wait := f.spec.FlushInterval - time.Since(p.lastSend); len(rs) < f.spec.BatchSize && wait > 0 && !lingered && !isClosed(drained) {
			if len(p.window) == 0 {
				lingered = true
				f.linger(ctx, drained, wait)
			} else {
				p.wait(ctx, nil, wait) // a send that returns first lets it look again
			}
			continue
		}
		lingered = false
		p.lastSend = time.Now()
		ahead.Skip(next)
		b := &batch{rs: rs, next: next}
		if p.prepare == nil {
			sink := f.spec.Sink
			b.req = func(ctx context.Context) error { return sink.Write(ctx, rs) }
		}
		p.window = append(p.window, b)
	}
}

// idle waits, with nothing read ahead, until readings become durable past the cursor,
// drained is closed or ctx is done; it saves the cursor when its interval is over.
func (f *forwarder) idle(ctx context.Context, drained <-chan struct{}) {
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Caught up: save the cursor once it is due, not only at the next Ack, which may be
	// hours away (see saveCursor).
	if n, dueIn := f.r.Unsaved(); n > 0 {
		if dueIn <= 0 {
			f.flush()
		} else {
			cancel()
			waitCtx, cancel = context.WithTimeout(ctx, dueIn)
		}
	}
	go func() {
		select {
		case <-drained:
			cancel()
		case <-waitCtx.Done():
		}
	}()
	_ = f.r.Wait(waitCtx)
}

// startSends sends the queued batches of the window in order, while fewer than max are
// in flight and, for a batch never sent, fewer than max batches of the window have been
// sent: at most max batches are ever sent and not acknowledged, which bounds what a
// crash re-sends (docs/design.md, "Re-sends after a crash").
// It stops at a batch the rate cap holds back (forwarder.throttle), with p.held set to
// the wait.
func (p *pipe) startSends(ctx context.Context) {
	f := p.f
	nSent := 0
	for _, b := range p.window {
		if b.sent {
			nSent++
		}
	}
	for _, b := range p.window {
		if p.inFlight >= p.max {
			return
		}
		if b.state != batchQueued || !b.sent && nSent >= p.max {
			continue
		}
		if p.held = f.throttle(len(b.rs)); p.held > 0 {
			return // in order: nothing after it goes first
		}
		if !b.sent {
			b.sent = true
			nSent++
		}
		if f.live == nil && f.r.Durable()-int64(b.next-p.cursor) > int64(f.spec.BatchSize) {
			f.startLive() // readings that arrive while this batch is in flight are live
		}
		b.state, b.epoch = batchInFlight, p.epoch
		p.inFlight++
		go func() {
			p.ready(b)
			err := b.req(ctx)
			p.results <- sent{b, err}
		}()
	}
}

// ready prepares b (Preparer.Prepare) unless it is. A batch read while every send slot
// is taken is prepared by run's goroutine as it waits; one sent at once, by its send's
// goroutine, so that the batches in flight are encoded on as many cores as there are.
// Never both: run prepares only a batch not in flight, and sends a batch only from run.
func (p *pipe) ready(b *batch) {
	if b.req == nil {
		b.req = p.prepare.Prepare(b.rs)
	}
}

// callPrepare is the forwarder's call that encodes a batch, for Wedged.
var callPrepare = "sink prepare"

// wait blocks until a send returns, ctx is done, more (if not nil) is closed, or d (if
// positive) has passed. It counts as the forwarder's "sink write" call while sends are
// in flight.
func (p *pipe) wait(ctx context.Context, more <-chan struct{}, d time.Duration) {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	op := &callPeek
	if p.inFlight > 0 {
		op = &callWrite
	}
	p.f.busy.do(op, func() {
		select {
		case r := <-p.results:
			p.result(ctx, r)
		case <-ctx.Done():
		case <-more:
		case <-timeout:
		case <-p.f.handover: // nil unless set: never ready
		}
	})
}

// collect takes the results of the sends that have returned; with all, it waits for
// every send in flight.
func (p *pipe) collect(all bool) {
	for p.inFlight > 0 {
		if all {
			p.result(nil, <-p.results)
			continue
		}
		select {
		case r := <-p.results:
			p.result(nil, r)
		default:
			return
		}
	}
}

// result records what a send returned. A failure of a send that began after the last
// back-off is the next failure to back off from; one that began before it is not
// counted again. Either way the batch is sent again, in order, after the back-off.
func (p *pipe) result(ctx context.Context, r sent) {
	p.inFlight--
	if r.err == nil {
		r.b.state = batchDone
		return
	}
	r.b.state = batchQueued
	if ctx != nil && ctx.Err() != nil {
		return // shutting down: not a failure of the sink
	}
	if r.b.epoch == p.epoch && p.failure == nil {
		p.failure = r.err
	}
}

// ackDone acknowledges the longest prefix of the window the sink has stored, batch by
// batch, and then lets the live lane send.
func (p *pipe) ackDone(ctx context.Context, drained <-chan struct{}) {
	f := p.f
	acked := false
	for len(p.window) > 0 && p.window[0].state == batchDone {
		b := p.window[0]
		p.window[0] = nil
		p.window = p.window[1:]
		var aerr error
		f.busy.do(&callAck, func() { aerr = p.ahead.Ack(b.next) })
		if aerr != nil {
			f.log.Warn("cannot persist cursor", "err", aerr)
		}
		p.cursor = b.next
		if len(b.rs) == 0 {
			continue // records lost to corruption
		}
		f.saveCursor()
		f.succeeded(len(b.rs))
		p.backoff = f.spec.RetryInitial
		acked = true
	}
	if !acked {
		return
	}
	if isClosed(drained) {
		f.stopLive() // shutting down: the grace period is for the ordered lane
		return
	}
	// A sink that is not a Preparer gets one write at a time: the live lane's too.
	if p.prepare != nil || p.inFlight == 0 {
		f.liveLane(ctx, p.cursor)
	}
}

// finish waits for every send in flight and acknowledges what the sink stored.
func (p *pipe) finish() {
	p.collect(true)
	p.ackDone(context.Background(), closedChan)
}

// closedChan is a closed channel: finish's "drained", which keeps the live lane shut.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
