package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// DefaultMaxHeld bounds the readings held while the wall clock is wrong: a day of a busy
// gateway's readings is far less; beyond it the oldest held reading is dropped and
// counted (reason "clock_hold_full").
const DefaultMaxHeld = 100_000

// unsyncedGrace is how long held readings wait, once the wall clock is plausible, for
// the kernel to report it synchronised. A clock set by hand or by a daemon that does
// not clear the kernel's unsync flag never does: past this the readings are released
// re-stamped but marked Suspect.
const unsyncedGrace = 5 * time.Minute

// inFlightWindow is how long after the last reading held by a wrong clock a reading
// stamped before the build time is taken for one stamped by that clock just before it
// stepped (waiting in the ingest channel, or polled as NTP set the clock), and moved by
// the step, rather than refused.
const inFlightWindow = 10 * time.Minute

// monoStart is the origin of every time gate's monotonic clock, so that a reload's new
// pipeline can take over what the old one held (Pipeline.AdoptHeld).
var monoStart = time.Now()

// timeGate keeps readings stamped by a wall clock that is certainly wrong (before
// clock.BuildTime: a box without a real-time clock, booted in 1970) out of the
// pipeline: it holds them, in memory and bounded, with the monotonic time of their
// arrival, and once the wall clock is plausible (and the kernel reports it synchronised,
// or has not for unsyncedGrace) re-stamps them by the step the wall clock made since
// and releases them (docs/design.md, section 11). Readings stamped at or after the
// build time pass at once whatever the clock says (an MQTT payload's own time).
//
// pass and release are called by the writer only; held and restamped are read by the
// metrics at any time.
type timeGate struct {
	now     func() time.Time            // wall clock: clock.Now
	mono    func() time.Duration        // monotonic clock since some fixed instant
	synced  func() (synced, known bool) // the kernel's clock state: metrics.ClockSynced
	maxHeld int
	drop    func(r reading.Reading) // counts a reading dropped from a full hold

	mu    sync.Mutex
	held  []heldReading
	since time.Duration // mono when the wall clock was first seen plausible with readings held; -1 none
	// last is the wall and monotonic clocks when a reading was last held: the wrong
	// clock's reading against the monotonic one, from which the step follows.
	last     heldReading
	lastSeen bool

	heldN     atomic.Int64
	restamped atomic.Uint64
}

type heldReading struct {
	r       reading.Reading
	trusted bool
	wall    time.Time     // the wall clock at arrival
	mono    time.Duration // the monotonic clock at arrival
}

func newTimeGate(synced func() (bool, bool), drop func(reading.Reading)) *timeGate {
	return &timeGate{now: clock.Now, mono: func() time.Duration { return time.Since(monoStart) },
		synced: synced, maxHeld: DefaultMaxHeld, drop: drop, since: -1}
}

// pass returns the readings of rs that go on now, holding the rest. It does not modify
// rs: without a reading to hold (always, once the clock is set) it returns rs itself.
func (g *timeGate) pass(rs []reading.Reading, trusted bool) []reading.Reading {
	build := clock.BuildTime()
	first := -1
	for i, r := range rs {
		if r.Time.Before(build) {
			first = i
			break
		}
	}
	if first < 0 {
		return rs
	}
	wall, mono := g.now().Round(0), g.mono() // Round(0): the wall reading alone
	if clock.Plausible(wall) {
		return g.afterStep(rs, first, wall, mono)
	}
	out := append([]reading.Reading(nil), rs[:first]...)
	for _, r := range rs[first:] {
		if !r.Time.Before(build) {
			out = append(out, r) // stamped by a clock that is right (an MQTT payload's time)
			continue
		}
		g.hold(heldReading{r: r, trusted: trusted, wall: wall, mono: mono})
	}
	return out
}

// afterStep handles readings stamped before the build time that arrive once the wall
// clock is plausible: those the wrong clock can have stamped just before it stepped —
// within inFlightWindow of the last held reading, and between that reading's time and
// what the wrong clock would read now — move by the step; the rest keep their times,
// which check refuses (a payload's own wrong time, such as a device's RTC in 1970).
func (g *timeGate) afterStep(rs []reading.Reading, first int, wall time.Time, mono time.Duration) []reading.Reading {
	g.mu.Lock()
	last, seen := g.last, g.lastSeen
	g.mu.Unlock()
	if !seen || mono-last.mono > inFlightWindow {
		return rs
	}
	step := wall.Sub(last.wall) - (mono - last.mono)
	oldNow := last.wall.Add(mono - last.mono) // the wrong clock, had it not stepped
	out := append([]reading.Reading(nil), rs[:first]...)
	moved := 0
	for _, r := range rs[first:] {
		byOld := !r.Time.Before(last.wall.Add(-inFlightWindow)) && !r.Time.After(oldNow.Add(time.Second))
		if t := r.Time.Add(step); byOld && r.Time.Before(clock.BuildTime()) && clock.Plausible(t) {
			r.Time = t
			moved++
		}
		out = append(out, r)
	}
	g.restamped.Add(uint64(moved))
	return out
}

func (g *timeGate) hold(h heldReading) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.last, g.lastSeen = h, true
	if len(g.held) >= g.maxHeld {
		g.drop(g.held[0].r)
		g.held = append(g.held[:0], g.held[1:]...)
	}
	g.held = append(g.held, h)
	g.heldN.Store(int64(len(g.held)))
}

// release returns the held readings, re-stamped, once the wall clock is plausible and
// synchronised (or the kernel has not said so for unsyncedGrace: then they are Suspect);
// nil otherwise. Each list keeps arrival order; the writer admits trusted (the gateway's
// own health readings) and untrusted ones apart.
func (g *timeGate) release() (untrusted, trusted []reading.Reading) {
	if g.heldN.Load() == 0 {
		return nil, nil
	}
	wall, mono := g.now().Round(0), g.mono()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !clock.Plausible(wall) {
		g.since = -1
		return nil, nil
	}
	if g.since < 0 {
		g.since = mono
	}
	suspect := false
	if synced, known := g.synced(); known && !synced {
		if mono-g.since < unsyncedGrace {
			return nil, nil
		}
		suspect = true
	}
	for _, h := range g.held {
		r := h.r
		// The wall clock stepped by (wall - mono) - (h.wall - h.mono) since the reading
		// arrived; its stamp, on the wall clock of then, moves by as much.
		r.Time = r.Time.Add(wall.Sub(h.wall) - (mono - h.mono))
		if suspect && r.Quality == reading.Good {
			r.Quality = reading.Suspect
		}
		if h.trusted {
			trusted = append(trusted, r)
		} else {
			untrusted = append(untrusted, r)
		}
	}
	g.restamped.Add(uint64(len(g.held)))
	g.held = nil
	g.since = -1
	g.heldN.Store(0)
	return untrusted, trusted
}

// AdoptHeld moves what old's time gate holds to p's, before p runs: a reload's new
// pipeline takes over the readings held for the clock, which the old one never stored.
func (p *Pipeline) AdoptHeld(old *Pipeline) {
	o, n := old.gate, p.gate
	o.mu.Lock()
	held, last, seen := o.held, o.last, o.lastSeen
	o.held = nil
	o.heldN.Store(0)
	o.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.held = append(held, n.held...)
	n.heldN.Store(int64(len(n.held)))
	if seen && (!n.lastSeen || last.mono > n.last.mono) {
		n.last, n.lastSeen = last, true
	}
}
