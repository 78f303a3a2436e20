// Package schedule runs the polling loop of one source: wall-clock aligned ticks, a
// timeout per poll, and skipped ticks instead of a backlog when a poll overruns.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// A Poller reads its device once per call, from one goroutine; it returns promptly when
// ctx is done. It may return readings together with an error (a partial read).
type Poller interface {
	Poll(ctx context.Context) ([]reading.Reading, error)
}

// Options configures Run.
type Options struct {
	Interval time.Duration // time between polls; > 0
	Timeout  time.Duration // limit of one poll; 0 means Interval
}

// Run polls p at every multiple of opt.Interval on the wall clock, counted from the Unix
// epoch (a 10 s interval polls at :00, :10, :20, ...), until ctx is done, then returns nil.
// It returns an error at once if opt is invalid.
//
// Each poll runs under its own context with timeout opt.Timeout. Every non-empty result
// is sent to out as one reading.Batch (not redeliverable, no Durable), also one returned
// with an error; the send blocks, but Run still returns when ctx is done. observe, if not nil, is called from Run's goroutine after every poll
// with the poll's duration and error.
//
// A poll that overruns its interval makes Run skip the ticks it missed: the next poll is
// at the first tick after the overrunning poll ended, never a burst of catch-up polls. If
// the wall clock steps, polling continues on the ticks of the new time.
func Run(ctx context.Context, p Poller, opt Options, out chan<- reading.Batch, observe func(d time.Duration, err error)) error {
	if opt.Interval <= 0 {
		return fmt.Errorf("schedule: interval %v must be positive", opt.Interval)
	}
	if opt.Timeout < 0 {
		return fmt.Errorf("schedule: timeout %v must not be negative", opt.Timeout)
	}
	timeout := opt.Timeout
	if timeout == 0 {
		timeout = opt.Interval
	}
	iv := opt.Interval.Nanoseconds()

	// Since Go 1.23 Reset discards a value the timer sent before, so the timer needs no
	// draining between uses.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var last int64 = -1 << 63 // tick of the previous poll, in Unix nanoseconds
	for {
		next := ceilMultiple(time.Now().UnixNano(), iv)
		if next == last {
			// The previous poll ended exactly on its own tick (or the timer fired a
			// little early against the wall clock): that tick is done.
			next += iv
		}
		timer.Reset(time.Until(time.Unix(0, next)))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return nil
		}
		last = next

		pctx, cancel := context.WithTimeout(ctx, timeout)
		began := time.Now()
		rs, err := p.Poll(pctx)
		d := time.Since(began)
		cancel()
		if observe != nil {
			observe(d, err)
		}
		if len(rs) == 0 {
			continue
		}
		// Prefer delivery: a result already read is sent if out has room, even when
		// ctx is done.
		b := reading.Batch{Readings: rs}
		select {
		case out <- b:
			continue
		default:
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return nil
		}
	}
}

// ceilMultiple returns the smallest multiple of m that is ≥ n, for m > 0.
func ceilMultiple(n, m int64) int64 {
	q := n / m
	if n%m > 0 {
		q++
	}
	return q * m
}

// Source adapts a Poller to the shape of every other source of the pipeline (a Run that
// sends batches until ctx is done): it polls on the schedule of Run, reports every poll
// to Observe and logs the device's state changes (down with the error, up again), not
// each failed poll.
type Source struct {
	Device  string // the device's name, for Observe and the log
	Poller  Poller
	Options Options
	// Observe, if set, is called after every poll with the device's name, the poll's
	// duration and its error (metrics.Metrics.ObservePoll fits).
	Observe func(device string, d time.Duration, err error)
	Log     *slog.Logger // nil: no log
}

// Name returns the device's name.
func (s *Source) Name() string { return s.Device }

// Run polls until ctx is done (see the package function Run); it returns an error at
// once if the Options are invalid. Call it from one goroutine at a time.
func (s *Source) Run(ctx context.Context, out chan<- reading.Batch) error {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("device", s.Device)
	up := true
	observe := func(d time.Duration, err error) {
		if s.Observe != nil {
			s.Observe(s.Device, d, err)
		}
		switch {
		case err != nil && up:
			log.Warn("device down", "err", err)
		case err == nil && !up:
			log.Info("device up")
		}
		up = err == nil
	}
	return Run(ctx, s.Poller, s.Options, out, observe)
}
