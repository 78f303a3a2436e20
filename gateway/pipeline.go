// Package gateway wires sources to the durable buffer and the buffer to the sinks, and
// owns every goroutine of a running envgate:
//
//	source (schedule.Run per device) ─┐
//	source ───────────────────────────┼─> ingest ─> writer: validate, metrics, buffer.Append, group-commit Sync
//	health (the gateway itself) ──────┘                                  │
//	                                              buffer.Reader per sink ─> forwarder ─> Sink.Write, Ack
//
// Shutdown order: sources return → the writer drains the ingest channel and syncs →
// forwarders get a grace period to deliver what is pending (whatever is unsent stays on
// disk) → Run returns. The caller then shuts its HTTP server down.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/derive"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/schedule"
	"github.com/envgate/envgate/internal/clock"
)

// A Sink stores a batch of readings. Write is called from one goroutine at a time (the
// sink's forwarder; a Preparer's writes may run concurrently). It returns nil once every reading is stored or deliberately set aside
// (dead-lettered); any error means "keep the batch and retry". Errors may implement
// RetryAfter() time.Duration (the server asked for a delay) or Persistent() bool (an
// operator must act, e.g. a bad token: retry slowly and raise the alarm).
type Sink interface {
	Write(ctx context.Context, batch []reading.Reading) error
}

// A Source delivers readings: a Modbus bus scheduling all its devices, an MQTT
// subscription, a particulate sensor on a UART, or a polled device adapted by
// schedule.Source. The pipeline calls Run once, from a goroutine of its own; Run sends
// batches to out until ctx is done, then returns; it never closes out. A send may
// block (the writer is busy): a source that must not block its device selects on
// ctx.Done() as well. An error return is logged; it does not stop the gateway.
//
// A batch whose readings have another copy (reading.Batch.Redeliverable, with a
// Durable callback) is refused while the disk fails, at once and without being kept
// anywhere: its source must not acknowledge it and must get it again (the MQTT source
// leaves it unacknowledged and reconnects, and the broker delivers it again). Every other
// batch is held in memory while the disk fails, within buffer.memory_readings.
type Source interface {
	Name() string // device, bus or subscription name, for the log
	Run(ctx context.Context, out chan<- reading.Batch) error
}

// SinkSpec is a sink with its forwarding policy.
type SinkSpec struct {
	Name          string
	Sink          Sink
	BatchSize     int           // readings per Write
	FlushInterval time.Duration // how long to wait for a full batch
	RetryInitial  time.Duration // first back-off after a failure
	RetryMax      time.Duration // back-off cap
	AuthRetry     time.Duration // retry period while the sink reports a persistent failure
	// ProbeInterval is how often a sink that is a Prober is probed while a back-off
	// runs (jittered to half to whole); 0 means DefaultProbeInterval.
	ProbeInterval time.Duration
	// Counters, if set, reports the sink's own rejected and dead-lettered totals.
	Counters func() (rejected, deadLettered uint64)
	// DeadLetterDropped, if set, reports the dead-lettered readings deleted by rotation.
	DeadLetterDropped func() uint64
	// StallAfter is how long one call of the forwarder (a buffer read, an ack, a cursor
	// save, a Write) may run before Wedged reports it; 0 means DefaultSinkStallAfter.
	StallAfter time.Duration
	// MaxInFlight is how many writes a sink that is a Preparer may have in flight at
	// once (see Preparer); 0 means DefaultMaxInFlight.
	MaxInFlight int
	// DrainBatchSize, if larger than BatchSize, is how many readings a write may carry
	// while a backlog waits (see DrainBatch); 0 keeps every write to BatchSize.
	DrainBatchSize int
	// Ordered keeps every write in buffer order: no live lane sends live readings ahead
	// of a backlog (see forwarder.liveLane). For a sink whose consumers see the order
	// of arrival (the MQTT uplink), where a live reading ahead of older ones of its
	// device would look like time going backwards, and for a Prometheus remote-write
	// receiver, which rejects a sample older than the newest of its series.
	Ordered bool
	// RetryJitter spreads a fleet's retries after a shared outage: the first attempt
	// after every back-off (its timer ran out, or a probe found the server back) waits a
	// further random delay drawn uniformly from [0, RetryJitter). 0: none, the attempt
	// goes at once (config's retry_jitter defaults to 5 s).
	RetryJitter time.Duration
	// Companion, if set, runs beside the sink's forwarder for as long as the sources run:
	// Run calls it on a goroutine of its own with the sources' ctx and waits for it to
	// return before returning itself, so the sink may be closed after Run. It must
	// return promptly once ctx is done. The remote-write sink's metrics push, which
	// sends live state and so stops with the sources, not after the shutdown grace.
	Companion func(ctx context.Context)
	// MaxRate, if positive, caps the readings per second the forwarder sends (see
	// forwarder.throttle): its writes carry at most one second's worth (BatchSize and
	// DrainBatchSize are cut to ceil(MaxRate)), and over any T seconds it sends at most
	// MaxRate×T readings plus one such batch. 0: unlimited.
	MaxRate float64
}

// Config is everything Run needs. Queue and Metrics are owned by the caller, who closes
// the queue after Run returns.
type Config struct {
	GatewayID      string
	Site           string // site of the gateway's own health readings
	Sources        []Source
	Sinks          []SinkSpec
	Queue          *buffer.Queue
	Metrics        *metrics.Metrics
	SyncEvery      bool          // fsync after every ingested batch instead of every SyncInterval
	SyncInterval   time.Duration // group-commit period
	AckDelay       time.Duration // longest wait of a batch for its Durable call; 0: none (see write)
	HealthInterval time.Duration // 0: no health readings
	ShutdownGrace  time.Duration // time forwarders get to deliver after the sources stopped
	// StallAfter is how long one buffer call (an append or an fsync) may run before
	// Healthy reports the writer stalled; 0 means DefaultStallAfter.
	StallAfter time.Duration
	// Derive, if set, derives domain series (noise levels, ...) from the stored
	// readings; the writer stores what it derives with the readings that closed the
	// windows, and ticks it every DeriveTick so windows close when samples stop.
	Derive     *derive.Set
	DeriveTick time.Duration // default 1s
	// DeriveState is the directory of the derivations' own state (derive.Set.SaveState:
	// the air monitors' ledgers); "" keeps none.
	DeriveState string
	// Tap, if set, is called by the writer with every reading it admits (from the
	// sources and the derivations, before the buffer append), for the status page's
	// stream (status.Feed.Publish). It must not block.
	Tap func(reading.Reading)
	Log *slog.Logger
}

// DefaultStallAfter is Config.StallAfter's default. An SD card's fsync normally takes
// milliseconds and under heavy wear-levelling a few seconds; half a minute is a disk
// that no longer answers.
const DefaultStallAfter = 30 * time.Second

// Pipeline is a running gateway. Create it with New, then call Run once.
type Pipeline struct {
	cfg        Config
	log        *slog.Logger
	forwarders []*forwarder
	start      time.Time
	queue      queue // cfg.Queue; tests wrap it

	// The writer's state for Healthy, which must answer without waiting for the
	// buffer (its calls can hang on a stalled disk): callSince is when the current
	// buffer call began, in nanoseconds since start on the monotonic clock (0 while
	// none runs), so that a step of the wall clock (NTP setting a box that booted in
	// 1970) neither fakes a stall nor hides one; callOp is which call it is.
	callSince atomic.Int64
	callOp    atomic.Int32
	degraded  atomic.Bool // the writer's last buffer call failed and no sync has succeeded since

	// gate holds readings stamped by a wall clock before the build time (timegate.go).
	gate *timeGate
	// handover, closed by Handover, makes the shutdown a reload's: the forwarders stop
	// after the write in flight instead of delivering what is pending.
	handover     chan struct{}
	handoverOnce sync.Once
}

// queue is what the writer, the health poller and Healthy call on the buffer.
type queue interface {
	Append(rs ...reading.Reading) error
	AppendRedeliverable(rs ...reading.Reading) error
	Sync() error
	Stats() buffer.Stats
	SyncInProgressSince() time.Time
}

// Buffer calls the writer tracks (callOp).
const (
	opAppend int32 = iota
	opSync
)

var opNames = [...]string{opAppend: "append", opSync: "sync"}

// New checks cfg and opens a buffer reader for every sink.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Queue == nil || cfg.Metrics == nil {
		return nil, errors.New("gateway: Queue and Metrics are required")
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.DeriveTick <= 0 {
		cfg.DeriveTick = time.Second
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = DefaultStallAfter
	}
	if !cfg.Derive.Empty() {
		cfg.Metrics.SetNoise(func() []metrics.NoiseState { return cfg.Derive.NoiseStates(clock.Now()) })
		cfg.Metrics.SetAir(func() []metrics.AirState { return cfg.Derive.AirStates(clock.Now()) })
		cfg.Metrics.SetWater(func() []metrics.WaterState { return cfg.Derive.WaterStates(clock.Now()) })
		cfg.Metrics.SetScreen(cfg.Derive.ScreenStates)
	}
	p := &Pipeline{cfg: cfg, log: cfg.Log, start: time.Now(), queue: cfg.Queue, handover: make(chan struct{})}
	p.gate = newTimeGate(metrics.ClockSynced, func(r reading.Reading) { cfg.Metrics.CountInvalid(r.Device, "clock_hold_full") })
	cfg.Metrics.SetClockHold(func() (int64, uint64) { return p.gate.heldN.Load(), p.gate.restamped.Load() })
	for _, s := range cfg.Sinks {
		r, err := cfg.Queue.Reader(s.Name)
		if err != nil {
			return nil, fmt.Errorf("sink %s: %w", s.Name, err)
		}
		f := newForwarder(s, r, cfg.Log.With("sink", s.Name))
		f.handover = p.handover
		p.forwarders = append(p.forwarders, f)
		cfg.Metrics.AddSink(s.Name, f.stats)
	}
	cfg.Metrics.AddBuffer(func() metrics.BufferStats {
		s := cfg.Queue.Stats()
		return metrics.BufferStats{Bytes: s.Bytes, KeptBytes: s.KeptBytes, MaxBytes: s.MaxBytes, Segments: s.Segments, Appended: s.Appended, Dropped: s.Dropped,
			QuarantinedRecords: s.QuarantinedRecords, QuarantinedBytes: s.QuarantinedBytes,
			Degraded: s.Degraded, MemoryReadings: s.MemoryReadings,
			QuarantineRemoved: s.QuarantineRemoved, SyncInProgress: syncAge(s.SyncInProgressSince)}
	})
	cfg.Metrics.SetWriterStall(func() time.Duration { d, _ := p.writerCall(); return d })
	return p, nil
}

// syncAge is how long the buffer fsync that started at since has been running. since
// comes from time.Now and keeps its monotonic reading, so a wall-clock step does not
// change the age.
func syncAge(since time.Time) time.Duration {
	if since.IsZero() {
		return 0
	}
	return max(time.Since(since), 0)
}

// Healthy reports why the gateway is unhealthy, or nil. It backs /healthz. It never
// waits for the disk: it reads the writer's own record of its buffer calls and the
// buffer's lock-free record of the fsync in progress, so it answers at once even while
// a write or an fsync hangs on a failing disk. Of the two stalls it reports the longer
// one beyond StallAfter: the writer's covers its appends and syncs, the buffer's the
// fsyncs of anyone else (an Append's group commit, Close).
func (p *Pipeline) Healthy() error {
	if err := p.stalled(); err != nil {
		return err
	}
	if p.degraded.Load() {
		return errors.New("buffer degraded: disk writes fail, readings held in memory")
	}
	return nil
}

// stalled is the stall rule shared by Healthy and Wedged (the systemd watchdog): of the
// writer's current buffer call and the buffer's fsync in progress, the longer one has
// run beyond StallAfter.
func (p *Pipeline) stalled() error {
	d, op := p.writerCall()
	if s := syncAge(p.queue.SyncInProgressSince()); s > d {
		d, op = s, ""
	}
	if d <= p.cfg.StallAfter {
		return nil
	}
	if op == "" {
		return fmt.Errorf("buffer fsync stalled for %s: the disk does not answer; readings wait in the sources",
			d.Truncate(time.Second))
	}
	return fmt.Errorf("writer stalled for %s in %s: the disk does not answer; readings wait in the sources",
		d.Truncate(time.Second), op)
}

// writerCall returns how long the writer's current buffer call has been running, and
// which call it is; 0 while the writer is not in one.
func (p *Pipeline) writerCall() (time.Duration, string) {
	since := p.callSince.Load()
	if since == 0 {
		return 0, ""
	}
	return max(0, time.Since(p.start)-time.Duration(since)), opNames[p.callOp.Load()]
}

// call runs one buffer call of the writer, recording it for Healthy.
func (p *Pipeline) call(op int32, f func() error) error {
	p.callOp.Store(op)
	p.callSince.Store(max(1, int64(time.Since(p.start)))) // monotonic; 0 means none runs
	err := f()
	p.callSince.Store(0)
	return err
}

// Run runs the gateway until ctx is done, then shuts down in order. It returns nil after
// a clean shutdown.
func (p *Pipeline) Run(ctx context.Context) error {
	p.restore()
	// Every source sends into ingest; the gateway's own health readings come on own,
	// which no source can reach, so that no source can pass its readings off as the
	// gateway's (admit).
	ingest := make(chan reading.Batch, 256)
	own := make(chan reading.Batch, 4)
	var sources sync.WaitGroup
	for _, s := range p.cfg.Sources {
		sources.Go(func() {
			if err := s.Run(ctx, ingest); err != nil && ctx.Err() == nil {
				p.log.Error("source stopped", "source", s.Name(), "err", err)
			}
		})
	}
	var health sync.WaitGroup
	if p.cfg.HealthInterval > 0 {
		h := &schedule.Source{Device: reading.HealthDevice, Poller: &healthPoller{p: p},
			Options: schedule.Options{Interval: p.cfg.HealthInterval}}
		health.Go(func() { _ = h.Run(ctx, own) })
	}
	var companions sync.WaitGroup
	for _, sp := range p.cfg.Sinks {
		if sp.Companion != nil {
			companions.Go(func() { sp.Companion(ctx) })
		}
	}
	defer companions.Wait()
	// One owner closes each channel: after everything sending on it has returned.
	go func() { sources.Wait(); close(ingest) }()
	go func() { health.Wait(); close(own) }()

	// Forwarders run on a context that outlives ctx by the shutdown grace period.
	fctx, cancelForwarders := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelForwarders()
	drained := make(chan struct{})
	var fwd sync.WaitGroup
	for _, f := range p.forwarders {
		fwd.Go(func() { f.run(fctx, drained) })
	}

	p.write(ctx, ingest, own)
	close(drained)
	p.log.Info("sources stopped, buffer synced; delivering what is pending", "grace", p.cfg.ShutdownGrace)
	timer := time.AfterFunc(p.cfg.ShutdownGrace, cancelForwarders)
	defer timer.Stop()
	fwd.Wait()
	return nil
}

// Handover makes the shutdown that follows (the end of Run's ctx) a hand-over to another
// pipeline over the same buffer, as a reload does: the sources stop and the writer
// stores and syncs what they sent, as at any shutdown, but the forwarders stop after the
// write in flight instead of spending the grace period on what is pending, which the
// next pipeline's forwarders deliver from the same cursors. Call it before cancelling.
func (p *Pipeline) Handover() { p.handoverOnce.Do(func() { close(p.handover) }) }

// restore rebuilds the derivations' open windows from the readings still in the buffer
// (derive.Set.Restore; the buffer keeps them for Set.Reach after delivery), before any
// source runs. Derived readings the log lacks — their append was cut by the crash —
// are stored now; those it has are not emitted again.
func (p *Pipeline) restore() {
	d := p.cfg.Derive
	if d.Empty() {
		return
	}
	began := time.Now()
	if err := d.LoadState(p.cfg.DeriveState); err != nil {
		p.log.Error("cannot load the derivations' saved state; those monitors start without it", "err", err)
	}
	// The segments written, or holding readings, within Keep (buffer.Recent), on the
	// gateway's clock, which the buffer and the readings use.
	since := clock.Now().Add(-d.Keep())
	missing, st, err := d.Restore(func(fn func(reading.Reading)) error { return p.cfg.Queue.Recent(since, fn) })
	if err != nil {
		p.log.Error("cannot read the buffer back: the derivations' open windows start with what was read", "err", err)
	}
	if rs := p.admit(nil, missing, false); len(rs) > 0 {
		err := p.call(opAppend, func() error { return p.queue.Append(rs...) })
		if err == nil {
			err = p.call(opSync, p.queue.Sync)
		}
		if err != nil {
			p.log.Error("cannot store the derived readings the buffer lacked", "readings", len(rs), "err", err)
		}
	}
	p.log.Info("derivations restored from the buffer", "samples", st.Readings, "derived_in_buffer", st.Logged,
		"derived_missing", st.Missing, "took", time.Since(began).Round(time.Millisecond))
}

// Config.AckDelay is how long a batch waiting for its Durable call — an acknowledged
// source's, MQTT QoS 1: its PUBACK waits for it — may wait for the sync that covers it,
// so that one fsync covers the messages of AckDelay instead of one each (group commit
// for acknowledged sources, docs/design.md §5). 0: sync as soon as nothing else is
// queued. A batch marked WindowFull, SyncEvery, and the shutdown (ctx done) sync
// without waiting it out. Readings with another copy (Redeliverable) are synced by
// AckDelay alone, and wait in memory until just before their sync (deferred); every
// other reading is appended at once and synced within SyncInterval.
//
// write is the only goroutine that appends to the buffer. It returns when both channels
// are closed and everything received is appended and synced; or, once ctx is done and
// ingest is closed, without waiting for own to close: it takes the health readings
// already sent and returns, so that a health poll stuck on a hung disk cannot hold up
// shutdown.
func (p *Pipeline) write(ctx context.Context, ingest, own <-chan reading.Batch) {
	q := p.queue
	tick := time.NewTicker(p.cfg.SyncInterval)
	defer tick.Stop()
	var dirty bool            // readings without another copy appended since the last sync
	var waiting []func(error) // Durable callbacks of batches appended since the last sync
	// The group commit for acknowledged sources (Config.AckDelay): waiting is synced
	// once its oldest batch has waited AckDelay (ackC fires), or at once when a source's
	// window is full (urgent) or the pipeline is stopping (closing).
	var urgent, closing bool
	var ackTimer *time.Timer
	var ackC <-chan time.Time
	done := ctx.Done()
	report := func(err error) {
		// Log state changes only: the metrics carry the rest.
		failing := p.degraded.Load()
		switch {
		case err != nil && !failing:
			p.log.Error("buffer write failed", "err", err)
		case err == nil && failing:
			p.log.Info("buffer writes work again")
		}
		p.degraded.Store(err != nil)
	}
	// tell calls the Durable callbacks of the batches waiting for a sync.
	tell := func(err error) {
		for _, done := range waiting {
			done(err)
		}
		waiting = waiting[:0]
		urgent = false
		if ackC != nil {
			ackTimer.Stop()
			ackC = nil
		}
	}
	saveFailing := false
	// deferred are redeliverable batches not yet appended: with an ack delay they are
	// appended together just before the sync that covers them (flushDeferred), so a
	// sync period costs one write(2) and the file system one size change and journal
	// commit, not one per message (docs/design.md §1, Wear). They have another copy
	// until they are acknowledged, so nothing is lost while they wait in memory.
	var deferred []reading.Batch
	var flushDeferred func()
	sync := func() {
		flushDeferred()
		err := p.call(opSync, q.Sync)
		report(err)
		dirty = false
		tell(err)
		if err == nil {
			// Everything derived so far is durable: the derivations' state may say so.
			serr := p.call(opSync, func() error { return p.cfg.Derive.SaveState(p.cfg.DeriveState) })
			switch {
			case serr != nil && !saveFailing:
				p.log.Error("cannot save the derivations' state; retrying after each sync", "err", serr)
			case serr == nil && saveFailing:
				p.log.Info("derivations' state saved again")
			}
			saveFailing = serr != nil
		}
	}
	// appendFailed handles an error of Append or AppendRedeliverable. Either may have
	// run a group commit whose fsync failed (the error wraps buffer.ErrUnsynced): then
	// the readings of every batch waiting for the next sync were in it and are not
	// durable (those with another copy are discarded, the rest wait in memory), and a
	// later sync must not report them durable: each is told now. A failed write alone
	// leaves the earlier batches written, still waiting for the next sync.
	appendFailed := func(err error) {
		// Only a Sync proves the disk works again: an Append can succeed into the
		// page cache while fsync keeps failing.
		report(err)
		if errors.Is(err, buffer.ErrUnsynced) {
			tell(err)
		}
	}
	valid := make([]reading.Reading, 0, 64)
	var derived []reading.Reading
	// store appends rs (admitted readings) to the buffer.
	store := func(rs []reading.Reading) error {
		if len(rs) == 0 {
			return nil
		}
		err := p.call(opAppend, func() error { return q.Append(rs...) })
		dirty = true
		if err != nil {
			appendFailed(err)
		}
		return err
	}
	// derive returns the readings the derivations make of rs, admitted.
	derive := func(rs []reading.Reading) []reading.Reading {
		d := p.cfg.Derive
		if d.Empty() {
			return nil
		}
		derived = d.Add(derived[:0], rs...)
		return p.admit(derived[:0:0], derived, false)
	}
	take := func(b reading.Batch, trusted bool) {
		if b.Redeliverable && b.Durable != nil {
			if p.cfg.AckDelay > 0 && !p.cfg.SyncEvery {
				deferred = append(deferred, b)
				urgent = urgent || b.WindowFull
				return
			}
			if p.takeRedeliverable([]reading.Batch{b}, &waiting, appendFailed, derive, store) {
				urgent = urgent || b.WindowFull
			}
			return
		}
		valid = p.admit(valid[:0], p.gate.pass(b.Readings, trusted), trusted)
		// Derived readings go in the same append as the readings that closed their
		// windows: durable together.
		valid = append(valid, derive(valid)...)
		err := store(valid)
		switch {
		case b.Durable == nil:
		case err != nil:
			b.Durable(err) // held in memory, not durable
		default:
			waiting = append(waiting, b.Durable)
			urgent = urgent || b.WindowFull
		}
	}
	flushDeferred = func() {
		if len(deferred) > 0 {
			p.takeRedeliverable(deferred, &waiting, appendFailed, derive, store)
			clear(deferred)
			deferred = deferred[:0]
		}
	}
	var run []reading.Batch // redeliverable batches queued together: one append (takeRedeliverable)
	var deriveTick <-chan time.Time
	if !p.cfg.Derive.Empty() {
		t := time.NewTicker(p.cfg.DeriveTick)
		defer t.Stop()
		deriveTick = t.C
	}
	for ingest != nil || own != nil {
		var stop <-chan struct{}
		if ingest == nil {
			stop = ctx.Done()
		}
		select {
		case <-done:
			// Stopping (or reloading): what waits for its Durable call is synced as soon
			// as nothing else is queued, so its PUBACKs go before the sources return.
			done, closing = nil, true
		case <-ackC:
			ackC = nil
			if len(waiting)+len(deferred) > 0 {
				sync()
			}
			continue
		case <-stop:
			for own != nil {
				select {
				case b, ok := <-own:
					if ok {
						take(b, true)
					} else {
						own = nil
					}
				default:
					own = nil
				}
			}
			continue
		case <-deriveTick:
			derived = p.cfg.Derive.Tick(derived[:0], clock.Now())
			valid = p.admit(valid[:0], derived, false)
			store(valid)
			continue
		case b, ok := <-ingest:
			if !ok {
				ingest = nil
				continue
			}
			if b.Redeliverable && b.Durable != nil && len(ingest) > 0 && (p.cfg.AckDelay <= 0 || p.cfg.SyncEvery) {
				var next *reading.Batch
				run = append(run[:0], b)
				run, next, ingest = gatherRedeliverable(run, ingest)
				urgent = urgent || anyWindowFull(run)
				p.takeRedeliverable(run, &waiting, appendFailed, derive, store)
				clear(run)
				if next != nil {
					take(*next, false)
				}
				break
			}
			take(b, false)
		case b, ok := <-own:
			if !ok {
				own = nil
				continue
			}
			take(b, true)
		case <-tick.C:
			// Readings held for the wall clock go on once it is set (timegate.go).
			if rs, own := p.gate.release(); len(rs)+len(own) > 0 {
				p.log.Info("wall clock set: held readings re-stamped and stored", "readings", len(rs)+len(own))
				take(reading.Batch{Readings: rs}, false)
				take(reading.Batch{Readings: own}, true)
			}
			if dirty || p.degraded.Load() {
				sync()
			}
			continue
		}
		// Group commit: sync once nothing else is queued, when every batch is to be
		// synced, or a batch waits for it and may not wait out the ack delay. The ack
		// delay runs from the oldest waiting batch in any case: it bounds the wait even
		// while the ingest channel never empties.
		pending := len(waiting) + len(deferred)
		now := pending > 0 && (p.cfg.AckDelay <= 0 || urgent || closing)
		switch {
		case (now || p.cfg.SyncEvery) && len(ingest) == 0 && len(own) == 0:
			sync()
		case pending > 0 && ackC == nil && p.cfg.AckDelay > 0:
			if ackTimer == nil {
				ackTimer = time.NewTimer(p.cfg.AckDelay)
				defer func() { ackTimer.Stop() }()
			} else {
				ackTimer.Reset(p.cfg.AckDelay)
			}
			ackC = ackTimer.C
		}
	}
	sync()
}

// maxRun bounds the redeliverable batches the writer appends together, so that one
// append's encoding buffer stays small however far the ingest channel (256 batches)
// is behind.
const maxRun = 256

// gatherRedeliverable takes from ingest, without waiting, the redeliverable batches
// queued behind run[0], up to maxRun: they are appended with one write. The first other
// batch it takes is returned as next, to be taken after them (order is kept); a closed
// ingest comes back nil.
func gatherRedeliverable(run []reading.Batch, ingest <-chan reading.Batch) ([]reading.Batch, *reading.Batch, <-chan reading.Batch) {
	for len(run) < maxRun {
		select {
		case b, ok := <-ingest:
			if !ok {
				return run, nil, nil
			}
			if !b.Redeliverable || b.Durable == nil {
				return run, &b, ingest
			}
			run = append(run, b)
		default:
			return run, nil, ingest
		}
	}
	return run, nil, ingest
}

func anyWindowFull(bs []reading.Batch) bool {
	for _, b := range bs {
		if b.WindowFull {
			return true
		}
	}
	return false
}

// takeRedeliverable stores batches whose readings have another copy, in one append, or
// refuses them all. Refused (the disk fails), it calls their Durable with the error at
// once and keeps nothing; their readings reach neither the metrics nor the derivations,
// which see them when the source delivers them again. Stored, their derived readings
// follow in an ordinary append (they exist nowhere else), before the sync that covers
// both. It reports whether the batches now wait for a sync. Their own append does not
// make the writer dirty: readings with another copy are synced by the ack delay, not by
// SyncInterval.
func (p *Pipeline) takeRedeliverable(bs []reading.Batch, waiting *[]func(error),
	appendFailed func(error), derive func([]reading.Reading) []reading.Reading, store func([]reading.Reading) error) bool {
	n := 0
	for i := range bs {
		// Readings stamped by a wrong wall clock are held in memory, like any other
		// source's: this batch's copy elsewhere would come back with the same wrong stamp.
		bs[i].Readings = p.gate.pass(bs[i].Readings, false)
		n += len(bs[i].Readings)
	}
	// Checked once: the rejected are counted, and the rest observed, only once stored.
	rs := make([]reading.Reading, 0, n)
	var rejected []rejection
	for _, b := range bs {
		for _, r := range b.Readings {
			if reason := p.check(r, false); reason != "" {
				rejected = append(rejected, rejection{r, reason})
				continue
			}
			rs = append(rs, r)
		}
	}
	fail := func(err error) {
		for _, b := range bs {
			b.Durable(err)
		}
	}
	err := p.call(opAppend, func() error { return p.queue.AppendRedeliverable(rs...) })
	if err != nil {
		appendFailed(err)
		fail(err)
		return false
	}
	// Counted and observed only now that they are stored: a refused batch comes again.
	for _, x := range rejected {
		p.reject(x.r, x.reason)
	}
	for _, r := range rs {
		p.observe(r)
	}
	if err := store(derive(rs)); errors.Is(err, buffer.ErrUnsynced) {
		// Its group commit failed, and the readings of bs were in it.
		fail(err)
		return false
	}
	for _, b := range bs {
		*waiting = append(*waiting, b.Durable)
	}
	return true
}

// admit validates readings, feeds the latest-value gauges and returns the storable ones.
// trusted is set for the gateway's own health readings only: from anything else, a
// reading with the gateway's health device name or a health quantity is rejected
// (counted with reason "reserved"), so that no source can overwrite the gateway's own
// health series.
func (p *Pipeline) admit(dst, batch []reading.Reading, trusted bool) []reading.Reading {
	for _, r := range batch {
		if reason := p.check(r, trusted); reason != "" {
			p.reject(r, reason)
			continue
		}
		p.observe(r)
		dst = append(dst, r)
	}
	return dst
}

// rejection is a reading check refused, and why.
type rejection struct {
	r      reading.Reading
	reason string
}

// reject counts a reading check refused.
func (p *Pipeline) reject(r reading.Reading, reason string) {
	p.cfg.Metrics.CountInvalid(r.Device, reason)
	p.log.Debug("reading rejected", "device", r.Device, "quantity", r.Quantity, "reason", reason)
}

// observe feeds an admitted reading to the latest-value gauges and the tap.
func (p *Pipeline) observe(r reading.Reading) {
	p.cfg.Metrics.ObserveReading(r)
	if p.cfg.Tap != nil {
		p.cfg.Tap(r)
	}
}

// check returns why r is not stored ("invalid", "before_build", "reserved",
// "bad_quality"), or "".
func (p *Pipeline) check(r reading.Reading, trusted bool) string {
	switch {
	case r.Validate() != nil:
		return "invalid"
	case r.Time.Before(clock.BuildTime()):
		// Measured before this binary was built: a wrong clock (docs/design.md, section 11).
		return "before_build"
	case !trusted && reading.Reserved(r.Device, r.Quantity):
		return "reserved"
	case r.Quality == reading.Bad:
		return "bad_quality"
	}
	return ""
}
