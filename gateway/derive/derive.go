// Package derive runs the domain derivations of a gateway — noise levels against
// GB 3096 (gateway/noise), the AQI per HJ 633 (gateway/air) and the GB 3838 class of
// water sections (gateway/water) — over the stream of readings, for the live pipeline
// and for `envgate replay` alike, so both give the same numbers for the same input.
//
// A Set holds the monitors of one gateway. The pipeline's writer hands it every stored
// reading (Add) and ticks it once a second (Tick); the derived readings it returns are
// stored like any other. Metrics read the live state concurrently (NoiseStates,
// AirStates, WaterStates).
package derive

import (
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/screen"
	"github.com/envgate/envgate/gateway/water"
	"github.com/envgate/envgate/gateway/window"
	"github.com/envgate/envgate/internal/clock"
)

func init() {
	reading.Register(noise.Quantities()...)
	reading.Register(air.Quantities()...)
	reading.Register(water.Quantities()...)
}

// Noise is one noise monitor: the aggregator of a device's levels, and the weather
// device whose rain and wind readings judge its validity.
type Noise struct {
	Zone          string // GB 3096 class, or "custom"
	QuietDistrict bool
	Weather       string // device whose rain_rate and wind_speed apply; "" for none
	Config        noise.Config
}

// Air is one air monitor: a device's pollutant readings give its AQI.
type Air struct {
	Config air.Config
}

// Water is one water section: the readings of every device at its site give its class.
type Water struct {
	Config water.Config
}

// Monitors is everything a Set derives.
type Monitors struct {
	Noise []Noise
	Air   []Air
	Water []Water
	// CloseAfter is how long a silent device waits before the wall clock closes its
	// windows; ≤ 0 selects DefaultCloseAfter.
	CloseAfter time.Duration
	// Screening, if set, screens every reading before the monitors take it.
	Screening *Screening
}

// Screening is data-quality screening in front of the monitors (gateway/screen;
// docs/data-model.md, "Data-quality screening"). A reading it flags is returned by
// Add as a flag record — the same reading, Suspect, with its reason — for the caller
// to store, so that every sink gets the flag; the monitors take it as Bad (left out:
// it lowers the valid-data rate), or as Suspect with UseSuspect. Flag records given
// back to Add (or found by Restore) are not taken again.
type Screening struct {
	Rules      func(screen.Key) (screen.Rules, bool)
	References []string      // devices some channel's drift is judged against
	UseSuspect bool          // monitors take flagged readings as Suspect, not Bad
	Hold       time.Duration // a held jump of a channel silent this long is released as a step; ≤ 0: screen.DefaultHold
	// Reach is how far back a channel's verdict depends on its samples (its longest
	// flatline or drift window): Restore reads that much of the log so that a restart
	// flags what the running gateway would have.
	Reach time.Duration
}

// aggregator is what the three domain aggregators have in common.
type aggregator interface {
	Add(reading.Reading) []reading.Reading
	Tick(time.Time) []reading.Reading
	// FlushTime is when every window containing t has closed (the end of a recording).
	FlushTime(t time.Time) time.Time
}

// monitor is one aggregator with its routing and its wall-clock bookkeeping.
type monitor struct {
	agg         aggregator
	fresh       func() aggregator          // a new aggregator, after a jump of the clock
	feeds       func(reading.Reading) bool // the reading goes to this monitor
	own         func(reading.Reading) bool // ... and is one of its own samples (not weather); nil: all are
	closeAfter  time.Duration              // silence after which the wall clock closes its windows
	lastArrival time.Time                  // wall time of the latest own sample (or of New)
	clock       time.Time                  // latest time given to the aggregator; zero before the first
	outOfRange  int                        // readings refused for a time too far from the wall clock
	resets      int                        // aggregators replaced after a jump of more than MaxGap
	// reach is how far before the newest reading a reading can still count in a window
	// not yet closed, or in a figure not yet derived: the log keeps that much for Restore.
	reach time.Duration
	base  counters // the aggregator's counters when Restore ended: not this process's
	// ledger, for an air monitor, is its ledger of closed days (state.go); carried over
	// when the aggregator is replaced after a jump of the clock.
	ledger *ledgerFile
}

// counters are the cumulative counts of an aggregator that metrics export.
type counters struct {
	energy, seconds                             float64
	bursts, accepted, late, rejected, duplicate int
}

// advanceTo prepares m for time t: after a jump of more than MaxGap from its clock (a
// box that booted in 1970 before NTP, a recording with a week-long pause), it closes
// the old aggregator's windows as at the end of a recording and starts a fresh one,
// rather than walking every window in between. It returns what the old one emitted.
func (m *monitor) advanceTo(dst []reading.Reading, t time.Time) []reading.Reading {
	if !m.clock.IsZero() && t.Sub(m.clock) > MaxGap {
		dst = append(dst, m.agg.Tick(m.agg.FlushTime(m.clock))...)
		old := m.agg
		m.agg = m.fresh()
		if m.ledger != nil {
			// The months and years in progress go on: only the windows start afresh.
			_ = m.agg.(*air.Aggregator).RestoreLedger(old.(*air.Aggregator).Ledger())
		}
		m.base = counters{}
		m.resets++
		m.clock = time.Time{}
	}
	if t.After(m.clock) {
		m.clock = t
	}
	return dst
}

// Set is the monitors of one gateway. Its methods are safe for concurrent use.
//
// Windows close on the device's own clock: a sample past a window's end (plus the
// lateness) closes it, so a backlog (an MQTT session catching up after an outage, a
// replayed file) is aggregated exactly as if it had arrived live. Only when a monitor
// has received nothing for CloseAfter of wall time does Tick close its windows by the
// wall clock, so a dead sensor's windows still end, with their data rate showing the
// gap. Samples of a window closed that way count as late.
type Set struct {
	mu     sync.Mutex
	all    []*monitor
	noise  []noiseEntry
	air    []*monitor
	water  []*monitor
	now    func() time.Time // wall clock of arrivals; clock.Now
	replay bool             // no wall-clock bound on reading times
	// logged is the derived readings found in the log by Restore: none of them is
	// emitted again. It is dropped once every window open at the restart has closed
	// (the wall clock passes loggedUntil).
	logged      map[window.Key]struct{}
	loggedUntil time.Time

	scr       *screen.Screen // nil without screening
	screening Screening
	screened  []reading.Reading // scratch: what the screen released

	// exclude, if set, says which readings are kept out of every monitor: those of a
	// device in a maintenance or calibration window (Exclude). excluded counts them by
	// device, from Add only.
	exclude  func(device string, t time.Time) bool
	excluded map[string]uint64
}

type noiseEntry struct {
	*monitor
	spec Noise
}

// Live sets refuse readings stamped too far from the wall clock (a sensor whose clock
// was reset or runs in another year): one of them would make an aggregator open or
// close every window in between. Replay has no such bound.
// MaxFuture is small: a sample ahead of its device's clock moves the windows on, and
// the device's next samples would be late.
const (
	MaxFuture = time.Minute
	MaxPast   = 7 * 24 * time.Hour
)

// MaxGap is the largest jump of a monitor's clock walked window by window; beyond it
// the monitor closes its windows and starts afresh (see monitor.advanceTo).
const MaxGap = 8 * 24 * time.Hour

// How far back the windows of a monitor reach (monitor.reach), before the lateness:
// noise's longest windows are a day (laeq_24h, the 24 hours of Ldn and Lden) and a
// period, plus the hour that may straddle their start; air's are the local day, whose
// 24-h moving means and 8-h windows start in the day before. A water section's is two
// of its windows.
const (
	noiseReach = 25 * time.Hour
	airReach   = 48 * time.Hour
)

// DefaultCloseAfter is how long a silent device's windows wait before the wall clock
// closes them: a backlog up to this old still counts in full.
const DefaultCloseAfter = 30 * time.Minute

// New builds a Set. The error names the failing monitor and gives its problems.
func New(ms Monitors) (*Set, error) {
	if ms.CloseAfter <= 0 {
		ms.CloseAfter = DefaultCloseAfter
	}
	s := &Set{now: clock.Now}
	if sc := ms.Screening; sc != nil && sc.Rules != nil {
		s.scr, s.screening = screen.New(sc.Rules, sc.References), *sc
		if s.screening.Hold <= 0 {
			s.screening.Hold = screen.DefaultHold
		}
	}
	for _, n := range ms.Noise {
		a, err := noise.NewAggregator(n.Config)
		if err != nil {
			return nil, &MonitorError{Kind: "noise", Site: n.Config.Site, Device: n.Config.Device, Err: err}
		}
		site, dev, weather := n.Config.Site, n.Config.Device, n.Weather
		m := &monitor{agg: a, closeAfter: ms.CloseAfter, reach: noiseReach + max(n.Config.Lateness, noise.DefaultLateness), // at least the default lateness
			fresh: func() aggregator { a, _ := noise.NewAggregator(n.Config); return a },
			feeds: func(r reading.Reading) bool {
				switch r.Quantity {
				case "la", "laeq":
					return r.Device == dev && r.Site == site
				case "rain_rate", "wind_speed":
					return weather != "" && r.Device == weather
				}
				return false
			},
			own: func(r reading.Reading) bool { return r.Device == dev },
		}
		s.all = append(s.all, m)
		s.noise = append(s.noise, noiseEntry{monitor: m, spec: n})
	}
	for _, x := range ms.Air {
		a, err := air.NewAggregator(x.Config)
		if err != nil {
			return nil, &MonitorError{Kind: "air", Site: x.Config.Site, Device: x.Config.Device, Err: err}
		}
		site, dev := x.Config.Site, x.Config.Device
		var plan []string // the quantities of the monitoring plan (all six by default)
		for _, p := range a.Config().Method.Plan {
			plan = append(plan, p.Quantity())
		}
		cfg := a.Config()
		m := &monitor{agg: a, closeAfter: max(ms.CloseAfter, time.Hour+cfg.Lateness), reach: airReach + cfg.Lateness,
			fresh: func() aggregator { a, _ := air.NewAggregator(cfg); return a },
			feeds: func(r reading.Reading) bool {
				return r.Device == dev && r.Site == site && slices.Contains(plan, r.Quantity)
			},
		}
		m.ledger = &ledgerFile{name: "air-" + hex.EncodeToString([]byte(site)) + "-" + hex.EncodeToString([]byte(dev)) + ".ledger"}
		s.all = append(s.all, m)
		s.air = append(s.air, m)
	}
	for _, w := range ms.Water {
		a, err := water.NewAggregator(w.Config)
		if err != nil {
			return nil, &MonitorError{Kind: "water", Site: w.Config.Site, Err: err}
		}
		cfg := a.Config()
		m := &monitor{agg: a, closeAfter: max(ms.CloseAfter, cfg.Window+cfg.Lateness), reach: 2*cfg.Window + cfg.Lateness,
			fresh: func() aggregator { a, _ := water.NewAggregator(cfg); return a },
			feeds: func(r reading.Reading) bool {
				// Only what it aggregates: a temperature probe still reporting must not keep
				// a section whose analysers died "alive" (no wall-clock close).
				return r.Site == cfg.Site && water.Takes(r.Quantity)
			},
		}
		s.all = append(s.all, m)
		s.water = append(s.water, m)
	}
	// A backlog arriving just after the start must not find its windows closed by the
	// first Tick: every monitor counts as having heard from its device now.
	now := s.now()
	for _, m := range s.all {
		m.lastArrival = now
	}
	return s, nil
}

// MonitorError is a monitor whose configuration its aggregator refused.
type MonitorError struct {
	Kind, Site, Device string
	Err                error
}

func (e *MonitorError) Error() string {
	name := e.Site
	if e.Device != "" {
		name += "/" + e.Device
	}
	return e.Kind + " monitor " + name + ": " + e.Err.Error()
}

func (e *MonitorError) Unwrap() error { return e.Err }

// Reach is how long readings must stay in the log after their delivery for Restore to
// rebuild every window a restart finds open: the longest reach of the monitors. Zero
// for a Set that derives nothing.
func (s *Set) Reach() time.Duration {
	var d time.Duration
	if s != nil {
		for _, m := range s.all {
			d = max(d, m.reach)
		}
		if s.scr != nil {
			d = max(d, s.screening.Reach)
		}
	}
	return d
}

// Keep is how long the buffer keeps delivered readings for Restore, and how far back
// Restore reads: the Reach, plus ten minutes for a device clock ahead of the box's and a
// slow restart. Zero for a Set that derives nothing.
func (s *Set) Keep() time.Duration {
	if s.Empty() {
		return 0
	}
	return s.Reach() + 10*time.Minute
}

// derivedNames is every quantity a Set derives.
var derivedNames = func() map[string]bool {
	m := map[string]bool{}
	for _, qs := range [][]reading.Quantity{noise.Quantities(), air.Quantities(), water.Quantities()} {
		for _, q := range qs {
			m[q.Name] = true
		}
	}
	return m
}()

// Restored is what Restore did.
type Restored struct {
	Readings int // samples given to the monitors
	Logged   int // derived readings found in the log, not to be emitted again
	Missing  int // derived readings the log lacks (returned to be stored)
}

// Restore rebuilds, after a restart, the windows the monitors had open, from the
// readings still in the durable log: scan calls its argument with each of them, oldest
// first, in the order they were stored (buffer.Queue.Recent, which keeps delivered
// readings for Reach). It must be called on a new Set, before Add.
//
// Every monitor takes the log's samples as Add took them before the restart, so its
// open windows hold what they held — also when the device's clock is days behind the
// box's (a backlog drained after an outage). What it derives on the way was emitted
// before, and is in the log after the samples of its window (the log is kept as a
// suffix, so whatever holds a sample of a window also holds what the window derived):
// it is not emitted again — neither now nor later, when a rebuilt window closes, for
// any derived reading of the same site, device, quantity and time found in the log.
// Restore returns only derived readings that the log lacks (their append was cut by
// the crash) of windows that began after the monitor's first sample in the log (an
// earlier one holds only part of its samples); the caller stores them. The counters
// the monitors export as metrics start from zero after it.
func (s *Set) Restore(scan func(func(reading.Reading)) error) ([]reading.Reading, Restored, error) {
	var st Restored
	if s.Empty() {
		return nil, st, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	logged := map[window.Key]struct{}{}
	first := map[*monitor]time.Time{} // each monitor's first own sample in the log
	// Only what the samples after the log's last derived reading derive can be missing:
	// a crash cuts the end of the log. Anything derived before that point was stored
	// then, or was never derived before the restart (the samples of a window the log
	// has only in part: its start is older than the log, or a hole in it lost some).
	type candidate struct {
		r   reading.Reading
		pos int // position of the sample that derived it
	}
	var emitted []candidate
	var out []reading.Reading
	pos, lastDerived := 0, -1
	for _, m := range s.air {
		m.agg.(*air.Aggregator).KeepRecordedDays(true)
	}
	take := func(r reading.Reading) {
		took := false
		for _, m := range s.all {
			if !m.feeds(r) || !inRange(r, now) {
				continue // refused before the restart too, and counted then
			}
			if f, ok := first[m]; (m.own == nil || m.own(r)) && (!ok || r.Time.Before(f)) {
				first[m] = r.Time
			}
			from := len(out)
			out = m.add(out[:from], r, now)
			for _, d := range out[from:] {
				// A window that began before the monitor's first sample in the log holds
				// only part of its samples; a month or a year comes from the ledger, whole.
				if f, ok := first[m]; ok && !d.Time.Before(f) || air.FromLedger(d.Quantity) {
					emitted = append(emitted, candidate{d, pos})
				}
			}
			out = out[:from]
			took = true
		}
		if took {
			st.Readings++
		}
	}
	err := scan(func(r reading.Reading) {
		pos++
		if derivedNames[r.Quantity] || r.Reason != reading.NoReason {
			logged[window.KeyOf(r)] = struct{}{} // a derived reading, or a flag record
			lastDerived = pos
			return
		}
		if s.excludes(r) {
			return // kept out before the restart too (Exclude), and not screened
		}
		if s.scr == nil {
			take(r)
			return
		}
		s.screened = s.scr.Add(s.screened[:0], r, now)
		for _, x := range s.screened {
			if x.Reason != reading.NoReason {
				emitted = append(emitted, candidate{x, pos})
			}
			take(s.forMonitors(x))
		}
	})
	for _, m := range s.air {
		m.agg.(*air.Aggregator).KeepRecordedDays(false)
	}
	var missing []reading.Reading
	for _, c := range emitted {
		k := window.KeyOf(c.r)
		if _, ok := logged[k]; !ok && c.pos > lastDerived {
			missing = append(missing, c.r)
			logged[k] = struct{}{}
		}
	}
	st.Logged, st.Missing = len(logged)-len(missing), len(missing)
	// Every window open now closes within the reach by the device's clock, or by the
	// wall clock once the device has been silent for closeAfter.
	var closeAfter time.Duration
	for _, m := range s.all {
		closeAfter = max(closeAfter, m.closeAfter)
		m.base = m.counters()
		m.outOfRange = 0
	}
	s.logged, s.loggedUntil = logged, now.Add(s.Reach()+closeAfter)
	return missing, st, err
}

// inRange reports whether a live Set takes r at wall time now (MaxFuture, MaxPast).
func inRange(r reading.Reading, now time.Time) bool {
	return !r.Time.After(now.Add(MaxFuture)) && !r.Time.Before(now.Add(-MaxPast))
}

// add gives r, arrived at wall time now, to m's aggregator and appends what it derives.
func (m *monitor) add(dst []reading.Reading, r reading.Reading, now time.Time) []reading.Reading {
	n := len(dst)
	if m.own == nil || m.own(r) {
		m.lastArrival = now
		dst = m.advanceTo(dst, r.Time)
	}
	dst = append(dst, m.agg.Add(r)...)
	m.derived(len(dst) > n)
	return dst
}

// derived notes that the aggregator emitted something: an air day may have closed and
// changed the ledger.
func (m *monitor) derived(some bool) {
	if some && m.ledger != nil {
		m.ledger.dirty = true
	}
}

// counters reads the aggregator's cumulative counts.
func (m *monitor) counters() counters {
	switch a := m.agg.(type) {
	case *noise.Aggregator:
		l := a.Now(time.Time{})
		return counters{energy: l.Energy, seconds: l.Seconds, bursts: l.Bursts, accepted: l.Accepted, late: l.Late, rejected: l.Rejected, duplicate: l.Duplicate}
	case *air.Aggregator:
		l := a.Now(time.Time{})
		return counters{accepted: l.Accepted, late: l.Late, rejected: l.Rejected, duplicate: l.Duplicate}
	case *water.Aggregator:
		l := a.Now(time.Time{})
		return counters{accepted: l.Accepted, late: l.Late, rejected: l.Rejected, duplicate: l.Duplicate}
	}
	return counters{}
}

// Exclude keeps out of every monitor the readings for which excludes(device, t) is
// true: the readings a device measured during a maintenance or calibration window
// (gateway/maint.Log.At). They are still stored and forwarded; they only derive
// nothing, as if the device had been silent, so a window that a maintenance covers
// closes with fewer samples (its data rate shows the gap). Restore and Add apply the
// same rule, so a restart derives what the live run did as long as the windows are the
// same; a reading that arrives twice is judged twice alike. excludes is called once
// for every reading a monitor wants (for every reading while the Set screens), under
// the Set's lock: it must be cheap and must not call the Set. Call Exclude before Restore and Add.
func (s *Set) Exclude(excludes func(device string, t time.Time) bool) {
	if s.Empty() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exclude = excludes
}

// Excluded returns, per device, how many readings Add has kept out of the monitors
// (Exclude) since the Set was made. Readings no monitor wants are not counted.
func (s *Set) Excluded() map[string]uint64 {
	if s.Empty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.excluded))
	for d, n := range s.excluded {
		out[d] = n
	}
	return out
}

// excludes reports whether r is kept out of the monitors (Exclude). s.mu is held.
func (s *Set) excludes(r reading.Reading) bool {
	return s.exclude != nil && s.exclude(r.Device, r.Time)
}

// ForReplay makes the Set accept readings of any time: recorded data is old.
func (s *Set) ForReplay() { s.replay = true }

// Empty reports whether the Set derives nothing and screens nothing.
func (s *Set) Empty() bool { return s == nil || len(s.all) == 0 && s.scr == nil }

// forMonitors is a screened reading as the monitors take it: a flagged one as Bad
// (left out), or as Suspect with UseSuspect.
func (s *Set) forMonitors(r reading.Reading) reading.Reading {
	if r.Reason != reading.NoReason && !s.screening.UseSuspect {
		r.Quality = reading.Bad
	}
	r.Reason = reading.NoReason
	return r
}

// Add feeds readings to the monitors that want them and appends what they derive to dst.
func (s *Set) Add(dst []reading.Reading, rs ...reading.Reading) []reading.Reading {
	if s.Empty() {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var now time.Time
	if len(rs) > 0 {
		now = s.now()
	}
	from := len(dst)
	for _, r := range rs {
		dst = s.take(dst, r, now)
	}
	return s.unlogged(dst, from, now)
}

// take screens r, if the Set screens, and feeds what the screen releases to the
// monitors; a flagged reading is also appended to dst, as its flag record. A flag
// record given back is not taken again. A reading of a device in a maintenance or
// calibration window (Exclude) is judged here, once, as it arrives: it is not screened
// (a calibration's standards would look like spikes and drifts) and is kept out of the
// monitors whatever it is, counted if one of them wants it. Without screening only the
// readings a monitor wants are judged.
func (s *Set) take(dst []reading.Reading, r reading.Reading, now time.Time) []reading.Reading {
	if r.Reason != reading.NoReason {
		return dst
	}
	if s.exclude != nil && (s.scr != nil || s.wanted(r)) && s.exclude(r.Device, r.Time) {
		if s.wanted(r) {
			if s.excluded == nil {
				s.excluded = map[string]uint64{}
			}
			s.excluded[r.Device]++
		}
		return dst
	}
	if s.scr == nil {
		return s.feed(dst, r, now)
	}
	s.screened = s.scr.Add(s.screened[:0], r, now)
	return s.released(dst, now)
}

// wanted reports whether a monitor wants r.
func (s *Set) wanted(r reading.Reading) bool {
	return slices.ContainsFunc(s.all, func(m *monitor) bool { return m.feeds(r) })
}

// released feeds s.screened to the monitors, appending the flag records to dst.
func (s *Set) released(dst []reading.Reading, now time.Time) []reading.Reading {
	for _, x := range s.screened {
		if x.Reason != reading.NoReason {
			dst = append(dst, x)
		}
		dst = s.feed(dst, s.forMonitors(x), now)
	}
	return dst
}

// feed gives r to every monitor that wants it at wall time now and appends what they
// derive to dst. take has judged r's exclusion already.
func (s *Set) feed(dst []reading.Reading, r reading.Reading, now time.Time) []reading.Reading {
	for _, m := range s.all {
		if !m.feeds(r) {
			continue
		}
		if !s.replay && !inRange(r, now) {
			m.outOfRange++
			continue
		}
		dst = m.add(dst, r, now)
	}
	return dst
}

// unlogged removes from dst[from:] the derived readings Restore found in the log: they
// were stored before the restart and must not be emitted twice.
func (s *Set) unlogged(dst []reading.Reading, from int, now time.Time) []reading.Reading {
	if s.logged == nil {
		return dst
	}
	if now.After(s.loggedUntil) {
		s.logged = nil
		return dst
	}
	kept := dst[:from]
	for _, r := range dst[from:] {
		if _, ok := s.logged[window.KeyOf(r)]; !ok {
			kept = append(kept, r)
		}
	}
	return kept
}

// Tick closes, by the wall clock now, the windows of the monitors that have received
// nothing for CloseAfter, and appends what they derive to dst.
func (s *Set) Tick(dst []reading.Reading, now time.Time) []reading.Reading {
	if s.Empty() {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	from := len(dst)
	if s.scr != nil {
		// A jump whose channel fell silent is a step: no sample will come back.
		s.screened = s.scr.FlushBefore(s.screened[:0], now.Add(-s.screening.Hold))
		dst = s.released(dst, now)
	}
	for _, m := range s.all {
		if now.Sub(m.lastArrival) >= m.closeAfter {
			n := len(dst)
			dst = m.advanceTo(dst, now)
			dst = append(dst, m.agg.Tick(now)...)
			m.derived(len(dst) > n)
		}
	}
	return s.unlogged(dst, from, now)
}

// Flush closes every window containing t: noise up to the latest end of its hour, day
// or night period, calendar day and Lden 24 hours, air up to the end of its local day,
// water up to the end of its window (each plus its lateness; the aggregators'
// FlushTime). It is what replay does at the end of its input.
func (s *Set) Flush(dst []reading.Reading, t time.Time) []reading.Reading {
	if s.Empty() {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scr != nil {
		s.screened = s.scr.Flush(s.screened[:0])
		dst = s.released(dst, s.now())
	}
	for _, m := range s.all {
		if t.Sub(m.clock) <= MaxGap { // else the aggregator never saw anything near t
			dst = append(dst, m.agg.Tick(m.agg.FlushTime(t))...)
		}
	}
	return dst
}

// NoiseStates reports every noise monitor's live state at now, for metrics.
func (s *Set) NoiseStates(now time.Time) []metrics.NoiseState {
	if s.Empty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metrics.NoiseState, 0, len(s.noise))
	for _, m := range s.noise {
		l := m.agg.(*noise.Aggregator).Now(now)
		out = append(out, metrics.NoiseState{
			Site: m.spec.Config.Site, Device: m.spec.Config.Device,
			Zone: m.spec.Zone, QuietDistrict: m.spec.QuietDistrict,
			Night: l.Night, Limit: l.Limit,
			LeqMinute: l.LeqMinute, LeqHour: l.LeqHour, LeqPeriod: l.LeqPeriod,
			Exceedance: l.Exceedance,
			Energy:     l.Energy - m.base.energy, Seconds: l.Seconds - m.base.seconds,
			Bursts: uint64(l.Bursts - m.base.bursts), LastBurst: l.LastBurst,
			Accepted: uint64(l.Accepted - m.base.accepted), Late: uint64(l.Late - m.base.late),
			Duplicate: uint64(l.Duplicate - m.base.duplicate),
			Rejected:  uint64(l.Rejected - m.base.rejected + m.outOfRange),
		})
	}
	return out
}

// AirStates reports every air monitor's live state at now, for metrics.
func (s *Set) AirStates(now time.Time) []metrics.AirState {
	if s.Empty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metrics.AirState, 0, len(s.air))
	for _, m := range s.air {
		a := m.agg.(*air.Aggregator)
		l, cfg := a.Now(now), a.Config()
		st := metrics.AirState{
			Site: cfg.Site, Device: cfg.Device, Edition: cfg.Method.Edition.String(),
			Hour: math.NaN(), AQI: l.AQI, Level: int(l.Level), IAQI: map[string]float64{}, DailyAQI: l.DailyAQI,
			Accepted: uint64(l.Accepted - m.base.accepted), Late: uint64(l.Late - m.base.late),
			Duplicate: uint64(l.Duplicate - m.base.duplicate),
			Rejected:  uint64(l.Rejected - m.base.rejected + m.outOfRange),
		}
		if !l.Hour.IsZero() {
			st.Hour = float64(l.Hour.UnixMilli()) / 1000
		}
		if l.Day.IsZero() {
			st.DailyAQI = math.NaN()
		}
		for _, it := range l.Primary.List() {
			st.Primary = append(st.Primary, it.String())
		}
		for it, v := range l.IAQI {
			st.IAQI[it.String()] = v
		}
		for _, w := range []struct {
			name  string
			means map[air.Pollutant]float64
		}{{"1h", l.Mean1h}, {"24h", l.Mean24h}, {"8h", l.Mean8h}} {
			for p, v := range w.means {
				st.Means = append(st.Means, metrics.AirMean{Pollutant: p.Quantity(), Window: w.name, Unit: p.Unit(), Value: v})
			}
		}
		out = append(out, st)
	}
	return out
}

// WaterStates reports every water section's live state at now, for metrics.
func (s *Set) WaterStates(now time.Time) []metrics.WaterState {
	if s.Empty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metrics.WaterState, 0, len(s.water))
	for _, m := range s.water {
		a := m.agg.(*water.Aggregator)
		l, cfg := a.Now(now), a.Config()
		st := metrics.WaterState{
			Site: cfg.Site, Waterbody: string(cfg.Waterbody), WindowStart: math.NaN(),
			Class: int(l.Class), Target: int(l.Target), Missed: len(l.Missed), Missing: l.Missing,
			Params:   map[string]int{},
			Accepted: uint64(l.Accepted - m.base.accepted), Late: uint64(l.Late - m.base.late),
			Duplicate: uint64(l.Duplicate - m.base.duplicate),
			Rejected:  uint64(l.Rejected - m.base.rejected + m.outOfRange),
		}
		if !l.Start.IsZero() {
			st.WindowStart = float64(l.Start.UnixMilli()) / 1000
		}
		for _, p := range l.Params {
			if p.Class.Valid() {
				st.Params[string(p.Param)] = int(p.Class)
			}
		}
		out = append(out, st)
	}
	return out
}

// ScreenStates reports every screened channel's flags, for metrics and the status
// page; nil without screening.
func (s *Set) ScreenStates() []metrics.ScreenState {
	if s == nil || s.scr == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metrics.ScreenState
	for _, st := range s.scr.States() {
		m := metrics.ScreenState{Site: st.Site, Device: st.Device, Quantity: st.Quantity, Latest: st.Latest.String(),
			Flagged: make(map[string]uint64, len(st.Flagged))}
		for reason, n := range st.Flagged {
			m.Flagged[reason.String()] = n
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b metrics.ScreenState) int {
		return strings.Compare(a.Site+"\x00"+a.Device+"\x00"+a.Quantity, b.Site+"\x00"+b.Device+"\x00"+b.Quantity)
	})
	return out
}
