// Package screen is data-quality screening at the edge: per channel (one device's
// quantity at one site), rules that flag readings a sensor got wrong while it kept
// answering — a value outside its range, a flatline, a spike, a drift from its
// reference — before they reach a derivation (docs/data-model.md, "Data-quality
// screening").
//
// A Screen never changes a value and never drops a reading: it sets Quality Suspect
// and a reading.Reason on the ones it flags and passes the rest through unchanged.
// It is deterministic: the same readings in the same order give the same flags, so
// the live pipeline, a restart that rebuilds from the buffer and `envgate replay`
// agree. The spike rule needs the samples after a jump to tell a spike from a step,
// so a channel with it holds back up to Rules.SpikeWithin readings; everything else
// is decided on arrival.
package screen

import (
	"math"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Rules are one channel's screening rules. A zero rule is off.
type Rules struct {
	// Low and High are the channel's limits (site limits, or the sensor's rated
	// range): a value outside [Low, High] is flagged Range. Values outside the
	// quantity's plausible range (gateway/reading) are flagged Range whatever these
	// say. Unset limits are -Inf and +Inf.
	Low, High float64

	// A flatline: the value stays within Resolution of where a run started for at
	// least FlatFor and at least FlatSamples samples; from then on every sample of
	// the run is flagged Flatline. FlatFor 0 turns it off; FlatSamples < 2 means 2.
	Resolution  float64
	FlatFor     time.Duration
	FlatSamples int

	// A spike: a change of more than SpikeJump from one sample to the next, after
	// which one of the next SpikeWithin samples comes back to within SpikeJump/2 of
	// the level before the jump. The samples from the jump to the return are flagged
	// Spike. If none comes back, the jump was a step change and nothing is flagged.
	// SpikeJump 0 turns it off; SpikeWithin < 1 means 2.
	SpikeJump   float64
	SpikeWithin int

	// Drift against a reference (see Reference): the mean of (value − reference) over
	// the last DriftWindow (once it spans at least half of it) is beyond ±DriftMax; or,
	// against a check device, the latest check's error is. DriftMax 0 turns it off.
	DriftMax    float64
	DriftWindow time.Duration
	Reference   Reference
}

// Reference is what a channel's drift is judged against: a co-located device's same
// quantity (the reference value is its latest reading at most Match before the
// channel's own), or a check device whose readings are checks of a known value
// Expected (a daily zero or span check: the error is check − Expected, and the latest
// check's error stands until the next).
type Reference struct {
	Device   string        // the reference or check device
	Match    time.Duration // pair: how old the reference reading may be; 0 means 2 minutes
	Check    bool          // Device's readings are checks of Expected, not a second sensor
	Expected float64
}

// Off reports whether no rule is on (the channel passes through unscreened).
func (r Rules) Off() bool {
	return r.FlatFor <= 0 && r.SpikeJump <= 0 && r.DriftMax <= 0 && math.IsInf(r.Low, -1) && math.IsInf(r.High, 1)
}

// NoLimits returns Rules with both limits unset: a base to turn rules on.
func NoLimits() Rules { return Rules{Low: math.Inf(-1), High: math.Inf(1)} }

// Key names a channel.
type Key struct{ Site, Device, Quantity string }

// KeyOf returns r's channel.
func KeyOf(r reading.Reading) Key { return Key{r.Site, r.Device, r.Quantity} }

// channel is one channel's screening state.
type channel struct {
	rules   Rules
	last    time.Time // time of the latest sample taken (only later ones are screened)
	have    bool
	arrived time.Time // wall time the latest sample arrived (FlushBefore)

	lastValue float64 // value of the latest sample judged (not a spike)
	judged    bool

	// flatline: the run's first value, time and length
	runValue float64
	runStart time.Time
	runCount int

	// spike: the level before a pending jump, the samples held since it, and how
	// many copies of each arrived while it was held
	level  float64
	held   []reading.Reading
	copies map[time.Time]int

	// drift against a pair: (time, value − reference) within DriftWindow, and their sum
	diffs []timedDiff
	sum   float64

	latest  reading.Reason // verdict of the latest sample released
	flagged [int(reading.Drift) + 1]uint64
	// recent remembers the last flagged samples, so that a copy of one that arrives
	// again (an MQTT redelivery) gets the same flag; next is the slot to write.
	recent [recentFlags]timedReason
	next   int
}

// recentFlags is how many flagged samples a channel remembers for copies.
const recentFlags = 256

type timedReason struct {
	t      time.Time
	reason reading.Reason
}

type timedDiff struct {
	t time.Time
	d float64
}

// Screen screens every configured channel. It is not safe for concurrent use.
type Screen struct {
	rules    func(Key) (Rules, bool)
	channels map[Key]*channel
	// refs holds the latest reading of each device some channel names as Reference,
	// by channel (a reference is at the site of the channel it serves).
	refs       map[Key]reading.Reading
	refDevices map[string]bool
}

// New returns a Screen whose channels' rules come from rules: ok false (or rules
// that are Off) leaves a channel unscreened. references names the devices that are
// some channel's Reference, whose readings it must remember.
func New(rules func(Key) (Rules, bool), references []string) *Screen {
	s := &Screen{rules: rules, channels: map[Key]*channel{}, refs: map[Key]reading.Reading{}, refDevices: map[string]bool{}}
	for _, r := range references {
		s.refDevices[r] = true
	}
	return s
}

// Add screens r, arrived at wall time now, and appends to dst the readings whose
// verdict is now known, in time order: r itself, unless its channel holds it back for
// the spike rule (and then, with a later sample, the held ones). A reading already
// flagged (a Reason) passes as it is. A reading not later than its channel's latest
// passes unscreened: a redelivered copy or a late one, which the derivations judge on
// their own. now only decides FlushBefore; the flags depend on the readings alone.
func (s *Screen) Add(dst []reading.Reading, r reading.Reading, now time.Time) []reading.Reading {
	if r.Reason != reading.NoReason {
		return append(dst, r)
	}
	k := KeyOf(r)
	if s.refDevices[r.Device] {
		if old, ok := s.refs[k]; !ok || r.Time.After(old.Time) {
			s.refs[k] = r
		}
	}
	c := s.channel(k)
	if c == nil {
		return append(dst, r)
	}
	if c.have && !r.Time.After(c.last) {
		return c.again(dst, r)
	}
	c.last, c.have, c.arrived = r.Time, true, now
	return c.step(dst, r, s)
}

// again takes a sample not later than the channel's latest: a copy of a held sample
// is released with its original, and with its verdict; a copy of a recently flagged
// one gets its flag again; anything else (a copy of a valid sample, or a late one)
// passes unscreened.
func (c *channel) again(dst []reading.Reading, r reading.Reading) []reading.Reading {
	for _, h := range c.held {
		if h.Time.Equal(r.Time) && h.Value == r.Value {
			if c.copies == nil {
				c.copies = map[time.Time]int{}
			}
			c.copies[r.Time]++
			return dst
		}
	}
	for _, f := range c.recent {
		if f.reason != reading.NoReason && f.t.Equal(r.Time) {
			r.Quality, r.Reason = reading.Suspect, f.reason
			break
		}
	}
	return append(dst, r)
}

// channel returns k's state, created on first use; nil if k is not screened.
func (s *Screen) channel(k Key) *channel {
	if c, ok := s.channels[k]; ok {
		return c
	}
	rules, ok := s.rules(k)
	if !ok || rules.Off() {
		s.channels[k] = nil
		return nil
	}
	rules.FlatSamples = max(rules.FlatSamples, 2)
	if rules.SpikeWithin < 1 {
		rules.SpikeWithin = 2
	}
	if rules.Reference.Match <= 0 {
		rules.Reference.Match = 2 * time.Minute
	}
	c := &channel{rules: rules}
	s.channels[k] = c
	return c
}

// Flush releases every held reading (the end of a replay): a pending jump stands as
// a step, since no sample came back.
func (s *Screen) Flush(dst []reading.Reading) []reading.Reading {
	return s.FlushBefore(dst, time.Time{})
}

// FlushBefore releases the held readings of every channel whose latest sample arrived
// before wall time t (all channels if t is zero): once a channel has been silent that
// long, no later sample will decide its pending jump, which stands as a step.
func (s *Screen) FlushBefore(dst []reading.Reading, t time.Time) []reading.Reading {
	for _, c := range s.channels {
		if c != nil && len(c.held) > 0 && (t.IsZero() || c.arrived.Before(t)) {
			held := c.held
			c.held = nil
			for _, r := range held {
				dst = c.emit(dst, c.judge(r, s))
			}
		}
	}
	return dst
}

// step takes the channel's next sample.
func (c *channel) step(dst []reading.Reading, r reading.Reading, s *Screen) []reading.Reading {
	ru := &c.rules
	if len(c.held) > 0 {
		c.held = append(c.held, r)
		if math.Abs(r.Value-c.level) <= ru.SpikeJump/2 {
			// Back to the level before the jump: a spike. The sample that came back
			// is judged as usual.
			held := c.held
			c.held = nil
			for _, h := range held[:len(held)-1] {
				dst = c.emit(dst, c.flag(h, reading.Spike))
			}
			return c.emit(dst, c.judge(r, s))
		}
		if len(c.held) <= ru.SpikeWithin {
			return dst
		}
		// Nothing came back in time: the jump was a step. The jump is judged as a
		// sample of the new level; the ones after it are screened afresh (one may
		// be a jump from the new level).
		held := c.held
		c.held = nil
		dst = c.emit(dst, c.judge(held[0], s))
		for _, h := range held[1:] {
			dst = c.step(dst, h, s) // its copies wait with it if it is held again
		}
		return dst
	}
	if ru.SpikeJump > 0 && c.judged && math.Abs(r.Value-c.lastValue) > ru.SpikeJump {
		c.level = c.lastValue
		c.held = append(c.held, r)
		return dst
	}
	return c.emit(dst, c.judge(r, s))
}

// emit appends r, a held sample now judged, and the copies of it that arrived while
// it was held, with its verdict.
func (c *channel) emit(dst []reading.Reading, r reading.Reading) []reading.Reading {
	dst = append(dst, r)
	if n := c.copies[r.Time]; n > 0 {
		delete(c.copies, r.Time)
		for range n {
			dst = append(dst, r)
		}
	}
	return dst
}

// judge applies the range, flatline and drift rules to a sample that is not part of
// a spike, and moves the channel's state on.
func (c *channel) judge(r reading.Reading, s *Screen) reading.Reading {
	ru := &c.rules
	reason := reading.NoReason
	q, _ := reading.Lookup(r.Quantity)
	if r.Value < ru.Low || r.Value > ru.High || q.Unit != "" && !q.Plausible(r.Value) {
		reason = reading.Range
	}
	// Flatline: the run goes on while the value stays within Resolution of its start.
	if c.judged && c.runCount > 0 && math.Abs(r.Value-c.runValue) <= ru.Resolution {
		c.runCount++
	} else {
		c.runValue, c.runStart, c.runCount = r.Value, r.Time, 1
	}
	if reason == reading.NoReason && ru.FlatFor > 0 && c.runCount >= ru.FlatSamples && r.Time.Sub(c.runStart) >= ru.FlatFor {
		reason = reading.Flatline
	}
	if d, ok := c.drift(r, s); ok && reason == reading.NoReason && math.Abs(d) > ru.DriftMax {
		reason = reading.Drift
	}
	c.lastValue, c.judged = r.Value, true
	if reason == reading.NoReason {
		c.latest = reading.NoReason
		return r
	}
	return c.flag(r, reason)
}

// drift returns the channel's current error against its reference, if it has one
// and the rule is on.
func (c *channel) drift(r reading.Reading, s *Screen) (float64, bool) {
	ru := &c.rules
	if ru.DriftMax <= 0 || ru.Reference.Device == "" {
		return 0, false
	}
	ref, ok := s.refs[Key{r.Site, ru.Reference.Device, r.Quantity}]
	if ru.Reference.Check {
		// The latest check before this sample stands until the next.
		if !ok || ref.Time.After(r.Time) {
			return 0, false
		}
		return ref.Value - ru.Reference.Expected, true
	}
	if ok && !ref.Time.After(r.Time) && r.Time.Sub(ref.Time) <= ru.Reference.Match {
		c.diffs = append(c.diffs, timedDiff{r.Time, r.Value - ref.Value})
		c.sum += r.Value - ref.Value
	}
	drop := 0
	for drop < len(c.diffs) && r.Time.Sub(c.diffs[drop].t) >= ru.DriftWindow {
		c.sum -= c.diffs[drop].d
		drop++
	}
	if drop > 0 {
		c.diffs = append(c.diffs[:0], c.diffs[drop:]...)
		if len(c.diffs) == 0 {
			c.sum = 0 // no rounding residue carried into the next window
		}
	}
	// A mean over less than half the window is not yet a drift.
	if len(c.diffs) == 0 || r.Time.Sub(c.diffs[0].t) < ru.DriftWindow/2 {
		return 0, false
	}
	return c.sum / float64(len(c.diffs)), true
}

// flag marks r with reason and counts it.
func (c *channel) flag(r reading.Reading, reason reading.Reason) reading.Reading {
	r.Quality, r.Reason = reading.Suspect, reason
	c.flagged[reason]++
	c.latest = reason
	c.recent[c.next] = timedReason{r.Time, reason}
	c.next = (c.next + 1) % recentFlags
	return r
}

// State is one screened channel's counters, for /metrics and the status page.
type State struct {
	Key
	Latest  reading.Reason            // verdict of the latest sample released
	Flagged map[reading.Reason]uint64 // flagged readings by reason, since start
}

// States returns every screened channel's state.
func (s *Screen) States() []State {
	var out []State
	for k, c := range s.channels {
		if c == nil {
			continue
		}
		st := State{Key: k, Latest: c.latest, Flagged: map[reading.Reason]uint64{}}
		for _, reason := range reading.Reasons() {
			st.Flagged[reason] = c.flagged[reason]
		}
		out = append(out, st)
	}
	return out
}
