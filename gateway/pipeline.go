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
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/derive"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/schedule"
	"github.com/envgate/envgate/internal/clock"
)

// A Sink stores a batch of readings. Write is called from one goroutine (the sink's
// forwarder). It returns nil once every reading is stored or deliberately set aside
// (dead-lettered); any error means "keep the batch and retry". Errors may implement
// RetryAfter() time.Duration (the server asked for a delay) or Persistent() bool (an
// operator must act, e.g. a bad token: retry slowly and raise the alarm).
type Sink interface {
	Write(ctx context.Context, batch []reading.Reading) error
}

// Source is a device polled on a schedule, or a streaming source that owns its own
// timing (a Modbus bus scheduling all its devices, an MQTT subscription).
type Source struct {
	Name    string // device or bus name, for metrics and logs
	Poller  schedule.Poller
	Options schedule.Options
	// Stream, if set, is run instead of a poll loop: it sends readings to out until ctx
	// is done, then returns; it never closes out. An error return is logged.
	Stream func(ctx context.Context, out chan<- []reading.Reading) error
	// Batches, if set, is run like Stream for a source that must learn when its readings
	// are durable (MQTT acknowledges a message only then): the writer calls each batch's
	// Durable after the fsync that covers it, and syncs as soon as it has nothing else
	// to do rather than waiting for the sync interval.
	Batches func(ctx context.Context, out chan<- reading.Batch) error
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
	// Counters, if set, reports the sink's own rejected and dead-lettered totals.
	Counters func() (rejected, deadLettered uint64)
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
	HealthInterval time.Duration // 0: no health readings
	ShutdownGrace  time.Duration // time forwarders get to deliver after the sources stopped
	// Derive, if set, derives domain series (noise levels, ...) from the stored
	// readings; the writer stores what it derives with the readings that closed the
	// windows, and ticks it every DeriveTick so windows close when samples stop.
	Derive     *derive.Set
	DeriveTick time.Duration // default 1s
	Log        *slog.Logger
}

// Pipeline is a running gateway. Create it with New, then call Run once.
type Pipeline struct {
	cfg        Config
	log        *slog.Logger
	forwarders []*forwarder
	start      time.Time
}

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
	if !cfg.Derive.Empty() {
		cfg.Metrics.SetNoise(func() []metrics.NoiseState { return cfg.Derive.NoiseStates(clock.Now()) })
		cfg.Metrics.SetAir(func() []metrics.AirState { return cfg.Derive.AirStates(clock.Now()) })
		cfg.Metrics.SetWater(func() []metrics.WaterState { return cfg.Derive.WaterStates(clock.Now()) })
	}
	p := &Pipeline{cfg: cfg, log: cfg.Log, start: time.Now()}
	for _, s := range cfg.Sinks {
		r, err := cfg.Queue.Reader(s.Name)
		if err != nil {
			return nil, fmt.Errorf("sink %s: %w", s.Name, err)
		}
		f := newForwarder(s, r, cfg.Log.With("sink", s.Name))
		p.forwarders = append(p.forwarders, f)
		cfg.Metrics.AddSink(s.Name, f.stats)
	}
	cfg.Metrics.AddBuffer(func() metrics.BufferStats {
		s := cfg.Queue.Stats()
		return metrics.BufferStats{Bytes: s.Bytes, MaxBytes: s.MaxBytes, Segments: s.Segments, Appended: s.Appended, Dropped: s.Dropped,
			QuarantinedRecords: s.QuarantinedRecords, QuarantinedBytes: s.QuarantinedBytes,
			Degraded: s.Degraded, MemoryReadings: s.MemoryReadings}
	})
	return p, nil
}

// Healthy reports why the gateway is unhealthy, or nil. It backs /healthz.
func (p *Pipeline) Healthy() error {
	if p.cfg.Queue.Stats().Degraded {
		return errors.New("buffer degraded: disk writes fail, readings held in memory")
	}
	return nil
}

// Run runs the gateway until ctx is done, then shuts down in order. It returns nil after
// a clean shutdown.
func (p *Pipeline) Run(ctx context.Context) error {
	ingest := make(chan []reading.Reading, 256)
	batches := make(chan reading.Batch, 256)
	var sources sync.WaitGroup
	for _, s := range p.cfg.Sources {
		sources.Go(func() { p.runSource(ctx, s, ingest, batches) })
	}
	if p.cfg.HealthInterval > 0 {
		h := Source{Name: "gateway", Poller: &healthPoller{p: p}, Options: schedule.Options{Interval: p.cfg.HealthInterval}}
		sources.Go(func() { _ = schedule.Run(ctx, h.Poller, h.Options, ingest, nil) })
	}
	// One owner closes the ingest channels: after every source has returned.
	go func() { sources.Wait(); close(ingest); close(batches) }()

	// Forwarders run on a context that outlives ctx by the shutdown grace period.
	fctx, cancelForwarders := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelForwarders()
	drained := make(chan struct{})
	var fwd sync.WaitGroup
	for _, f := range p.forwarders {
		fwd.Go(func() { f.run(fctx, drained) })
	}

	p.write(ingest, batches)
	close(drained)
	p.log.Info("sources stopped, buffer synced; delivering what is pending", "grace", p.cfg.ShutdownGrace)
	timer := time.AfterFunc(p.cfg.ShutdownGrace, cancelForwarders)
	defer timer.Stop()
	fwd.Wait()
	return nil
}

// runSource polls one device and tracks its up/down state for the log, or runs a
// streaming source.
func (p *Pipeline) runSource(ctx context.Context, s Source, ingest chan<- []reading.Reading, batches chan<- reading.Batch) {
	var err error
	switch {
	case s.Stream != nil:
		err = s.Stream(ctx, ingest)
	case s.Batches != nil:
		err = s.Batches(ctx, batches)
	default:
		p.poll(ctx, s, ingest)
		return
	}
	if err != nil && ctx.Err() == nil {
		p.log.Error("source stopped", "source", s.Name, "err", err)
	}
}

// poll runs a Poller on its schedule and logs the device's up/down changes.
func (p *Pipeline) poll(ctx context.Context, s Source, ingest chan<- []reading.Reading) {
	log := p.log.With("device", s.Name)
	up := true
	observe := func(d time.Duration, err error) {
		p.cfg.Metrics.ObservePoll(s.Name, d, err)
		switch {
		case err != nil && up:
			log.Warn("device down", "err", err)
		case err == nil && !up:
			log.Info("device up")
		}
		up = err == nil
	}
	_ = schedule.Run(ctx, s.Poller, s.Options, ingest, observe)
}

// write is the only goroutine that appends to the buffer. It returns when both ingest
// channels are closed and everything received is appended and synced.
func (p *Pipeline) write(ingest <-chan []reading.Reading, batches <-chan reading.Batch) {
	q := p.cfg.Queue
	tick := time.NewTicker(p.cfg.SyncInterval)
	defer tick.Stop()
	var dirty, failing bool
	var waiting []func(error) // Durable callbacks of batches appended since the last sync
	report := func(err error) {
		// Log state changes only: the metrics carry the rest.
		switch {
		case err != nil && !failing:
			p.log.Error("buffer write failed", "err", err)
		case err == nil && failing:
			p.log.Info("buffer writes work again")
		}
		failing = err != nil
	}
	sync := func() {
		err := q.Sync()
		report(err)
		dirty = false
		for _, done := range waiting {
			done(err)
		}
		waiting = waiting[:0]
	}
	valid := make([]reading.Reading, 0, 64)
	var derived []reading.Reading
	// store appends valid (admitted readings) to the buffer.
	store := func() error {
		if len(valid) == 0 {
			return nil
		}
		err := q.Append(valid...)
		dirty = true
		if err != nil {
			// Only a Sync proves the disk works again: an Append can succeed into the
			// page cache while fsync keeps failing.
			report(err)
		}
		return err
	}
	appendValid := func(rs []reading.Reading) error {
		valid = p.admit(valid[:0], rs)
		if d := p.cfg.Derive; !d.Empty() {
			// Derived readings go in the same append as the readings that closed their
			// windows: durable together.
			derived = d.Add(derived[:0], valid...)
			valid = p.admit(valid, derived)
		}
		return store()
	}
	var deriveTick <-chan time.Time
	if !p.cfg.Derive.Empty() {
		t := time.NewTicker(p.cfg.DeriveTick)
		defer t.Stop()
		deriveTick = t.C
	}
	for ingest != nil || batches != nil {
		select {
		case <-deriveTick:
			derived = p.cfg.Derive.Tick(derived[:0], clock.Now())
			valid = p.admit(valid[:0], derived)
			store()
			continue
		case rs, ok := <-ingest:
			if !ok {
				ingest = nil
				continue
			}
			appendValid(rs)
		case b, ok := <-batches:
			if !ok {
				batches = nil
				continue
			}
			err := appendValid(b.Readings)
			switch {
			case b.Durable == nil:
			case err != nil:
				b.Durable(err) // held in memory, not durable: the source must not acknowledge
			default:
				waiting = append(waiting, b.Durable)
			}
		case <-tick.C:
			if dirty || q.Stats().Degraded {
				sync()
			}
			continue
		}
		// Group commit: sync once nothing else is queued, when a batch waits for it or
		// every batch is to be synced.
		if (len(waiting) > 0 || p.cfg.SyncEvery) && len(ingest) == 0 && len(batches) == 0 {
			sync()
		}
	}
	sync()
}

// admit validates readings, feeds the latest-value gauges and returns the storable ones.
func (p *Pipeline) admit(dst, batch []reading.Reading) []reading.Reading {
	for _, r := range batch {
		if err := r.Validate(); err != nil {
			p.cfg.Metrics.CountInvalid(r.Device, "invalid")
			p.log.Debug("reading rejected", "device", r.Device, "quantity", r.Quantity, "err", err)
			continue
		}
		p.cfg.Metrics.ObserveReading(r)
		if r.Quality == reading.Bad {
			continue // counted by ObserveReading
		}
		dst = append(dst, r)
	}
	return dst
}
