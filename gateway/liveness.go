package gateway

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// The liveness contract behind the systemd watchdog (docs/design.md §10). A loop that
// can wedge records when its current call began, on the monotonic clock, and clears it
// when the call returns; a wait for work or a back-off sleep is not a call. The loop is
// wedged once one call has run longer than its bound. Wedged checks every loop without
// waiting for any of them: each check reads one atomic.

// A Staller is a Source that reports when its loop is wedged: Stalled returns why, or
// nil. It is called from any goroutine, must not block, and may be called before Run
// and after it returned. A Modbus bus (modbus.Bus) is one.
type Staller interface {
	Stalled() error
}

// epoch is the origin of busy's monotonic times.
var epoch = time.Now()

// busy records the call a loop is in.
type busy struct {
	since atomic.Int64           // when the current call began, ns since epoch; 0: none runs
	op    atomic.Pointer[string] // which call
}

// do runs f as the loop's current call op.
func (b *busy) do(op *string, f func()) {
	b.op.Store(op)
	b.since.Store(max(1, int64(time.Since(epoch))))
	defer b.since.Store(0)
	f()
}

// running returns how long the current call has run and which it is; 0 while none runs.
func (b *busy) running() (time.Duration, string) {
	since := b.since.Load()
	if since == 0 {
		return 0, ""
	}
	return max(0, time.Since(epoch)-time.Duration(since)), *b.op.Load()
}

// The forwarder's calls that busy tracks.
var (
	callPeek   = "buffer read"
	callAck    = "ack"
	callWrite  = "sink write"
	callCursor = "cursor save"
	callProbe  = "sink probe"
)

// DefaultSinkStallAfter is SinkSpec.StallAfter's default.
const DefaultSinkStallAfter = 2 * time.Minute

// stalled reports a forwarder stuck in one call beyond its StallAfter.
func (f *forwarder) stalled() error {
	d, op := f.busy.running()
	if d <= f.spec.StallAfter {
		return nil
	}
	return fmt.Errorf("sink %s: forwarder stuck for %s in %s", f.spec.Name, d.Truncate(time.Second), op)
}

// Wedged reports every loop of the pipeline that has stopped making progress, or nil:
// the writer stuck in one buffer call, or an fsync hung, beyond Config.StallAfter (the
// rule of Healthy); a forwarder stuck in one call (a buffer read, an ack, a cursor save,
// a Sink.Write) beyond its SinkSpec.StallAfter; a source that is a Staller and says so.
// Unlike Healthy it ignores a degraded buffer: the writer then still loops, holding
// readings in memory, and a restart would lose them. It never waits; the systemd
// watchdog of cmd/envgate calls it before every keep-alive.
func (p *Pipeline) Wedged() error {
	errs := []error{p.stalled()}
	for _, f := range p.forwarders {
		errs = append(errs, f.stalled())
	}
	for _, s := range p.cfg.Sources {
		if st, ok := s.(Staller); ok {
			if err := st.Stalled(); err != nil {
				errs = append(errs, fmt.Errorf("source %s: %w", s.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Backlog is one sink's unsent readings, for the service manager's status line.
type Backlog struct {
	Sink   string
	Unsent int64
	Oldest time.Duration // age of the oldest unsent reading; 0 if none
}

// Backlogs returns every sink's backlog. It may wait for the buffer's lock (behind a
// hung disk): call it from a goroutine that may block.
func (p *Pipeline) Backlogs() []Backlog {
	out := make([]Backlog, len(p.forwarders))
	for i, f := range p.forwarders {
		s := f.stats()
		out[i] = Backlog{Sink: f.spec.Name, Unsent: s.Unsent, Oldest: s.OldestUnsentAge}
	}
	return out
}
