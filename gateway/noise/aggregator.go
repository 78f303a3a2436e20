package noise

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	ws "github.com/envgate/envgate/gateway/window"
)

// Defaults of Config.
const (
	DefaultBurstMargin = 15.0            // dB(A): GB 3096-2008 night burst rule (docs/standards.md §1.1)
	DefaultSample      = time.Second     // interval of `la` samples
	DefaultMinValid    = 0.75            // fraction [U: placeholder, not from HJ 906-2017, docs/standards.md §1.6]
	DefaultLateness    = 5 * time.Second // how long a window waits for late samples
)

// maxEmptyWindows bounds the empty windows of each kind a single jump of the clock
// closes one by one (empty hours and periods emit a valid-data rate of 0); older ones
// are skipped without output, so a device clock that leaps years ahead cannot flood the
// pipeline. Empty minutes emit nothing, so skipping them changes no output.
const maxEmptyWindows = 1000

// maxWeatherMinutes bounds the remembered minutes of bad weather (four days of minutes),
// so a weather station with a broken clock cannot grow the state without limit.
const maxWeatherMinutes = 4 * 24 * 60

// Config configures the Aggregator of one noise device.
type Config struct {
	Site, Device string // copied into every derived reading; inputs of other devices are rejected

	// Zone gives the GB 3096-2008 limits. DayLimit and NightLimit, if set, override
	// them (a quiet-district target stricter than the zone, or the 70/55 of an old
	// railway line); with both set, Zone may be empty.
	Zone                 Zone
	DayLimit, NightLimit *float64

	// BurstMargin: at night, a run of samples with Lmax − night limit > BurstMargin is a
	// burst event. 0 selects 15 dB (GB 3096-2008); GB 12348-2008 uses 10 for frequent noise.
	BurstMargin float64

	// Sample is the expected interval of `la` samples: each valid sample covers this much
	// of its window for the valid-data rate. 0 selects 1 s.
	Sample time.Duration

	// LaeqPeriod is a smart meter's own Leq period: each `laeq` input covers this much
	// of its windows, its weight in the energy mean and its share of the valid-data
	// rate. 0 learns it from the meter's steady cadence: the most common spacing, in
	// whole seconds, between its latest 16 distinct `laeq` times (spacings over an hour
	// are outages, ties go to the shorter). A value is never weighted by the gap before
	// it, so a gap lowers the valid-data rate (docs/standards.md §1.3, §1.6).
	LaeqPeriod time.Duration

	// MinValidHour and MinValidPeriod are the valid-data rates (fractions) below which
	// minute/hour and period results are Suspect. 0 selects 0.75 [U: not from HJ 906].
	MinValidHour, MinValidPeriod float64

	// Lateness is how long after a window ends samples for it are still accepted.
	// 0 selects 5 s.
	Lateness time.Duration

	// Periods sets the day/night boundaries and the time zone of every window.
	Periods Periods

	// Lden sets the EU day, evening and night of Lden and of its parts (lden_day,
	// lden_evening, lden_night), in the time zone of Periods. The zero value selects
	// 07:00/19:00/23:00 (docs/standards.md §1.3).
	Lden LdenPeriods

	// RainMax (mm/h) and WindMax (m/s): a `rain_rate` or `wind_speed` reading above the
	// threshold makes the windows it falls in Suspect. 0 ignores that quantity. No
	// default: the HJ 906 thresholds were not read [U]. GB 3096-2008 measures in no rain
	// and wind below 5 m/s, a common choice for WindMax.
	RainMax, WindMax float64
}

// Live is the Aggregator's state at an instant, for metrics.
type Live struct {
	Time  time.Time
	Night bool // the instant is in a night period

	// Running LAeq of the 1-min, 1-h and day/night windows containing Time; NaN
	// without data.
	LeqMinute, LeqHour, LeqPeriod float64

	Limit      float64 // the limit at Time, day or night, dB(A)
	Exceedance float64 // LeqPeriod − Limit, dB; NaN without data

	// Energy and Seconds accumulate Σ 10^(L/10)·Δt and Σ Δt over the accepted samples
	// ("la", or "laeq" while the device has sent no "la"), so that the LAeq over any
	// span is 10·lg(ΔEnergy/ΔSeconds) between two snapshots (Prometheus counters). The
	// "laeq" values that arrive before the meter's period is known (the first of a
	// recording) enter when their minute closes, weighted by the period then known.
	Energy, Seconds float64

	LastBurst float64 // peak of the most recent ended burst, dB(A); NaN before the first

	Bursts    int // night burst events since the Aggregator was made
	Accepted  int // samples that entered at least one window
	Duplicate int // samples of a quantity and time the windows had already counted: ignored
	Late      int // samples whose window had closed: ignored
	Rejected  int // readings of another device, unknown quantity, Quality Bad or implausible
}

// Aggregator derives the windowed series of one noise device (see the package doc).
// It is not safe for concurrent use.
//
// Its clock is the latest sample time of the device (Add) or the latest Tick; a window
// closes when its end + Lateness is not after the clock. Weather readings do not move
// the clock: they come from another device. The first sample or Tick opens the windows
// containing it; a window is always a whole clock minute, clock hour or period, so a
// start mid-hour gives that hour a partial valid-data rate.
type Aggregator struct {
	cfg        Config
	p          Periods
	lden       LdenPeriods
	day, night float64 // limits, dB(A)
	sample     float64 // seconds
	laeqPeriod float64 // seconds: Config.LaeqPeriod, 0 to learn it
	cadence    cadence // of the `laeq` times, when learning the period
	clock      time.Time
	series     [kinds]*ws.Series[windowData] // by kind
	wet        []time.Time                   // minute starts with bad weather, ascending, unique
	hours      []hourResult                  // closed hours of the current Lden part
	parts      [3]*ldenPart                  // day, evening and night of the current Lden 24 hours
	lastDay    *periodResult
	lastLA     time.Time
	burst      burst
	live       Live // counters only
}

// The window kinds, in the order windows with the same end close.
const (
	kMinute = iota
	kHour
	kPeriod
	kDay  // calendar day, local midnight to midnight
	kinds // how many
)

// A window is one minute, hour, day/night period or calendar day of a series.
type window = ws.Window[windowData]

// windowData is what a window accumulates.
type windowData struct {
	night    bool // period windows
	la, laeq energy
	// pending holds the `laeq` inputs that arrived before the meter's period was known,
	// with a weight of 1 each (d counts them): they are weighted by the period known
	// when the window is read (see Aggregator.laeqEstimate). livePending, in minute
	// windows only, holds those of them that also count in Live.Energy and Seconds.
	pending, livePending energy
	levels               []float64 // hour windows: the `la` samples, for statistics
}

// energy accumulates Σ d·10^(0.1·L) and Σ d (seconds). Inputs are plausible levels
// (≤ 160 dB), so the sums cannot overflow.
type energy struct{ e, d float64 }

func (a *energy) add(level, d float64) {
	a.e += d * math.Pow(10, 0.1*level)
	a.d += d
}

func (a energy) leq() float64 {
	if a.d <= 0 {
		return math.NaN()
	}
	return 10 * math.Log10(a.e/a.d)
}

// source returns the data a window is computed from: its `la` samples if it has any,
// otherwise its `laeq` inputs, those still pending weighted by period (seconds), so a
// meter that sends both is not counted twice.
func (w *windowData) source(period float64) (e energy, fromLA bool) {
	if w.la.d > 0 {
		return w.la, true
	}
	return w.laeq.plus(w.pending, period), false
}

// plus returns a with the energy of p, whose entries have a weight of 1 each, added
// with the weight period.
func (a energy) plus(p energy, period float64) energy {
	return energy{a.e + period*p.e, a.d + period*p.d}
}

// vdrOf returns the valid-data rate of e over the window w, 0 to 1.
func vdrOf(w *window, e energy) float64 {
	return min(1, e.d/w.End.Sub(w.Start).Seconds())
}

type hourResult struct {
	start time.Time
	leq   float64 // NaN without data
	good  bool
}

type periodResult struct {
	start, end time.Time
	leq        float64
	quality    reading.Quality
}

// ldenPart is the day, evening or night of an Lden 24 hours, once its last hour closed.
type ldenPart struct {
	start   time.Time
	leq     float64 // energy mean of its hourly LAeq
	hours   int     // clock hours in the part: its weight in Lden
	quality reading.Quality
}

type burst struct {
	active   bool
	peak     float64
	at, last time.Time
}

// NewAggregator checks cfg, fills in its defaults and returns an Aggregator. The error
// lists every problem, each with its field.
func NewAggregator(cfg Config) (*Aggregator, error) {
	var errs []error
	if err := reading.CheckName(cfg.Site); err != nil {
		errs = append(errs, fmt.Errorf("site: %w", err))
	}
	if err := reading.CheckName(cfg.Device); err != nil {
		errs = append(errs, fmt.Errorf("device: %w", err))
	}
	day, night, ok := Limits(cfg.Zone)
	if !ok && (cfg.Zone != "" || cfg.DayLimit == nil || cfg.NightLimit == nil) {
		errs = append(errs, fmt.Errorf("zone: %q is not a GB 3096-2008 class (0, 1, 2, 3, 4a, 4b)", cfg.Zone))
	}
	for _, l := range []struct {
		name string
		v    *float64
		dst  *float64
	}{{"day_limit", cfg.DayLimit, &day}, {"night_limit", cfg.NightLimit, &night}} {
		if l.v == nil {
			continue
		}
		if !(*l.v >= 0 && *l.v <= 160) {
			errs = append(errs, fmt.Errorf("%s: %v dB(A) is not within 0 to 160", l.name, *l.v))
		}
		*l.dst = *l.v
	}
	nonNegative := func(name string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%s: %v must be a non-negative number", name, v))
		}
	}
	nonNegative("burst_margin", cfg.BurstMargin)
	nonNegative("rain_max", cfg.RainMax)
	nonNegative("wind_max", cfg.WindMax)
	for _, f := range []struct {
		name string
		v    float64
	}{{"min_valid_hour", cfg.MinValidHour}, {"min_valid_period", cfg.MinValidPeriod}} {
		if !(f.v >= 0 && f.v <= 1) {
			errs = append(errs, fmt.Errorf("%s: %v is not a fraction within 0 to 1", f.name, f.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"sample", cfg.Sample}, {"laeq_period", cfg.LaeqPeriod}, {"lateness", cfg.Lateness}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %v must not be negative", d.name, d.v))
		}
	}
	if err := cfg.Periods.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("periods: %w", err))
	}
	if err := cfg.Lden.Validate(); err != nil {
		errs = append(errs, err) // its messages start with their lden_… key
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if cfg.BurstMargin == 0 {
		cfg.BurstMargin = DefaultBurstMargin
	}
	if cfg.Sample == 0 {
		cfg.Sample = DefaultSample
	}
	if cfg.MinValidHour == 0 {
		cfg.MinValidHour = DefaultMinValid
	}
	if cfg.MinValidPeriod == 0 {
		cfg.MinValidPeriod = DefaultMinValid
	}
	if cfg.Lateness == 0 {
		cfg.Lateness = DefaultLateness
	}
	cfg.Periods = cfg.Periods.norm()
	cfg.Lden = cfg.Lden.norm()
	a := &Aggregator{
		cfg:    cfg,
		p:      cfg.Periods,
		lden:   cfg.Lden,
		day:    day,
		night:  night,
		sample: cfg.Sample.Seconds(),
		live:   Live{LastBurst: math.NaN()},
	}
	a.laeqPeriod = cfg.LaeqPeriod.Seconds()
	for k := range a.series {
		a.series[k] = ws.New(ws.Config[windowData]{
			Start: func(t time.Time) time.Time { start, _, _ := a.span(k, t); return start },
			End:   func(start time.Time) time.Time { _, end, _ := a.span(k, start); return end },
			Make: func(start, _ time.Time) windowData {
				_, _, night := a.span(k, start)
				return windowData{night: night}
			},
			Lateness: cfg.Lateness,
			MaxEmpty: maxEmptyWindows,
		})
	}
	return a, nil
}

// Add consumes one reading and returns the derived readings of the windows it closed
// (those whose end + Lateness is not after r.Time) and of a burst it ended.
//
//   - "la" of this device: an instantaneous level covering Sample.
//   - "laeq" of this device: a meter's own Leq, placed in the windows containing its
//     time (the start of the period it covers) and weighted by that period:
//     Config.LaeqPeriod, or else the meter's learned cadence (see Config.LaeqPeriod)
//     once its most common spacing has been seen twice. A value that arrives before
//     that (the first of a recording) is weighted when its windows are read, by the
//     cadence known then (one spacing is enough), or by Sample if the meter has sent
//     a single value. Windows with any "la" sample use
//     only those, so a meter sending both is not counted twice; percentile levels,
//     Lmax, Lmin, SD and bursts need instantaneous levels and come from "la" only.
//   - "rain_rate", "wind_speed" of any device (the caller routes the site's weather):
//     a value above RainMax or WindMax marks every window containing its time Suspect.
//
// Weather readings never close windows (they carry another device's clock). Readings
// of other devices or quantities, with Quality Bad or outside the catalog's plausible
// range are rejected; a Suspect sample is used like a Good one; samples whose 1-min window has closed are counted as
// late and ignored. Samples are expected in time order; a late one still counts in its
// windows, but not for burst detection. The windows count a sample of one quantity and
// time once: a redelivered one is ignored (Live.Duplicate), so feeding samples again
// gives the same results.
func (a *Aggregator) Add(r reading.Reading) []reading.Reading {
	if !plausible(r) {
		a.live.Rejected++
		return nil
	}
	switch r.Quantity {
	case inRainRate, inWindSpeed:
		a.addWeather(r)
		return nil
	case inLA, inLAeq:
		if r.Site == a.cfg.Site && r.Device == a.cfg.Device {
			return a.addLevel(r)
		}
	}
	a.live.Rejected++
	return nil
}

// laeqFixed returns the period (seconds) a `laeq` value arriving now is weighted by:
// the configured one, or the learned cadence once its spacing has been seen twice; 0
// while neither is known, and the value waits in its windows' pending energy.
func (a *Aggregator) laeqFixed() float64 {
	if a.laeqPeriod > 0 {
		return a.laeqPeriod
	}
	if p, n := a.cadence.period(); n >= 2 {
		return p
	}
	return 0
}

// laeqEstimate returns the period (seconds) pending `laeq` values are weighted by when
// a window is read: the configured one, the learned cadence even if its spacing has been
// seen once, or Sample if the meter has sent no two values a period apart.
func (a *Aggregator) laeqEstimate() float64 {
	if a.laeqPeriod > 0 {
		return a.laeqPeriod
	}
	if p, n := a.cadence.period(); n > 0 {
		return p
	}
	return a.sample
}

func plausible(r reading.Reading) bool {
	q, ok := reading.Lookup(r.Quantity)
	return ok && r.Quality < reading.Bad && !r.Time.IsZero() && q.Plausible(r.Value)
}

func (a *Aggregator) addLevel(r reading.Reading) []reading.Reading {
	t := r.Time.In(a.p.Location)
	if !a.started() {
		a.start(t)
	}
	d := a.sample
	if r.Quantity == inLAeq {
		// Learned before the clock moves, so the windows this value closes are read
		// with the latest spacing too.
		if a.laeqPeriod == 0 {
			a.cadence.add(t)
		}
		d = a.laeqFixed() // 0: pending
	}
	var out []reading.Reading
	if t.After(a.clock) {
		out = a.advance(t)
	}

	var wins [kinds]*windowData
	for k := range a.series {
		w := a.series[k].Find(t)
		if w == nil {
			a.live.Late++
			return out
		}
		// The windows containing t close together or are open together, and the
		// minute is the smallest of them: its seen-set is enough.
		if k == kMinute && !w.Once(ws.KeyOf(r)) {
			a.live.Duplicate++
			return out
		}
		wins[k] = &w.Data
	}
	a.live.Accepted++
	if r.Quantity == inLA || a.lastLA.IsZero() {
		if d > 0 {
			a.live.Energy += math.Pow(10, r.Value/10) * d
			a.live.Seconds += d
		} else {
			wins[kMinute].livePending.add(r.Value, 1)
		}
	}
	for k, w := range wins {
		if r.Quantity == inLAeq {
			if d > 0 {
				w.laeq.add(r.Value, d)
			} else {
				w.pending.add(r.Value, 1)
			}
			continue
		}
		w.la.add(r.Value, d)
		if k == kHour {
			w.levels = append(w.levels, r.Value)
		}
	}
	if r.Quantity == inLA && !t.Before(a.lastLA) {
		a.lastLA = t
		out = a.detectBurst(t, r.Value, out)
	}
	return out
}

// detectBurst follows runs of night samples above the night limit + margin. A run ends
// at a sample that is not above (or is in the day), or after a gap of more than two
// sample intervals; its event is emitted then, at the time of its peak.
func (a *Aggregator) detectBurst(t time.Time, level float64, out []reading.Reading) []reading.Reading {
	over := a.p.IsNight(t) && level-a.night > a.cfg.BurstMargin
	b := &a.burst
	if b.active && (!over || t.Sub(b.last) > 2*a.cfg.Sample) {
		out = a.endBurst(out)
	}
	if !over {
		return out
	}
	if !b.active {
		*b = burst{active: true, peak: level, at: t, last: t}
		a.live.Bursts++
		return out
	}
	if level > b.peak {
		b.peak, b.at = level, t
	}
	b.last = t
	return out
}

func (a *Aggregator) endBurst(out []reading.Reading) []reading.Reading {
	b := &a.burst
	b.active = false
	a.live.LastBurst = b.peak
	q := reading.Good
	if m := a.p.align(b.at, time.Minute); a.wetIn(m, m.Add(time.Minute)) {
		q = reading.Suspect
	}
	return a.emit(out, b.at, QuantityLmaxBurst, b.peak, q)
}

func (a *Aggregator) addWeather(r reading.Reading) {
	limit := a.cfg.RainMax
	if r.Quantity == inWindSpeed {
		limit = a.cfg.WindMax
	}
	if limit == 0 || r.Value <= limit {
		return
	}
	m := a.p.align(r.Time, time.Minute)
	if a.started() && m.Before(a.oldestOpen()) {
		a.live.Late++
		return
	}
	i := sort.Search(len(a.wet), func(i int) bool { return !a.wet[i].Before(m) })
	if i < len(a.wet) && a.wet[i].Equal(m) {
		return
	}
	if len(a.wet) >= maxWeatherMinutes {
		a.live.Rejected++
		return
	}
	a.wet = append(a.wet, time.Time{})
	copy(a.wet[i+1:], a.wet[i:])
	a.wet[i] = m
}

// wetIn reports whether bad weather was seen in [start, end).
func (a *Aggregator) wetIn(start, end time.Time) bool {
	i := sort.Search(len(a.wet), func(i int) bool { return !a.wet[i].Before(start) })
	return i < len(a.wet) && a.wet[i].Before(end)
}

// Tick moves the clock to now (if later) and returns the derived readings of the windows
// that closed: end + Lateness ≤ now. Windows without data emit their valid-data rate 0
// and no levels. It also ends a burst whose samples stopped for two sample intervals
// plus Lateness. The first Tick opens the windows if no sample has, so a device that
// never reports still shows 0 % valid data.
func (a *Aggregator) Tick(now time.Time) []reading.Reading {
	now = now.In(a.p.Location)
	if !a.started() {
		a.start(now)
	}
	var out []reading.Reading
	if now.After(a.clock) {
		out = a.advance(now)
	}
	if a.burst.active && now.Sub(a.burst.last) > 2*a.cfg.Sample+a.cfg.Lateness {
		out = a.endBurst(out)
	}
	return out
}

// FlushTime returns the clock time at which every window containing t has closed: the
// latest end of the clock hour, the day or night period, the calendar day and the Lden
// 24 hours containing t, plus the lateness. Tick(FlushTime(t)) ends a recording whose
// last sample is at t.
func (a *Aggregator) FlushTime(t time.Time) time.Time {
	lt := t.In(a.p.Location)
	_, end, _ := a.p.bounds(lt)
	hour := a.p.align(lt, time.Hour)
	for _, e := range []time.Time{
		hour.Add(time.Hour), // with a period boundary inside an hour (day_start 06:30)
		a.dayEnd(lt),
		a.ldenBounds(hour)[3],
	} {
		if e.After(end) {
			end = e
		}
	}
	return end.Add(a.cfg.Lateness)
}

// dayEnd returns the end of the calendar day containing t: the next local midnight.
func (a *Aggregator) dayEnd(t time.Time) time.Time {
	y, m, d := t.In(a.p.Location).Date()
	return a.p.at(y, m, d+1, 0)
}

// Now reports the live state at now without changing anything: running LAeq of the
// windows containing now (NaN if none is open or it has no data), the limit at now, the
// running period exceedance and the counters.
func (a *Aggregator) Now(now time.Time) Live {
	now = now.In(a.p.Location)
	l := a.live
	l.Time = now
	l.Night = a.p.IsNight(now)
	l.Limit = a.limitAt(now)
	running := func(k int) float64 {
		if w := a.series[k].Find(now); w != nil {
			e, _ := w.Data.source(a.laeqEstimate())
			return e.leq()
		}
		return math.NaN()
	}
	l.LeqMinute, l.LeqHour, l.LeqPeriod = running(kMinute), running(kHour), running(kPeriod)
	l.Exceedance = l.LeqPeriod - l.Limit
	return l
}

func (a *Aggregator) limitAt(t time.Time) float64 {
	if a.p.IsNight(t) {
		return a.night
	}
	return a.day
}

func (a *Aggregator) started() bool { return a.series[kMinute].Started() }

// start opens the windows containing t.
func (a *Aggregator) start(t time.Time) {
	a.clock = t
	for _, s := range a.series {
		s.Begin(t)
	}
}

// span returns the window of kind k containing t.
func (a *Aggregator) span(k int, t time.Time) (start, end time.Time, night bool) {
	switch k {
	case kMinute:
		start = a.p.align(t, time.Minute)
		return start, start.Add(time.Minute), false
	case kHour:
		start = a.p.align(t, time.Hour)
		return start, start.Add(time.Hour), false
	case kDay:
		end = a.dayEnd(t)
		y, m, d := t.In(a.p.Location).Date()
		return a.p.at(y, m, d, 0), end, false
	}
	return a.p.bounds(t)
}

// oldestOpen returns the start of the oldest period or calendar-day window not closed:
// the longest windows, which weather can still make Suspect.
func (a *Aggregator) oldestOpen() time.Time {
	p, d := a.series[kPeriod].Oldest(), a.series[kDay].Oldest()
	if d.Before(p) {
		return d
	}
	return p
}

// advance moves the clock to t: it closes, in order of their ends (minute before hour
// before period at the same end), every window with end + Lateness ≤ t, including the
// empty ones a gap skipped (at most maxEmptyWindows of each kind), then opens the
// windows up to t.
func (a *Aggregator) advance(t time.Time) []reading.Reading {
	a.clock = t
	var out []reading.Reading
	ws.Advance(t, func(k int, w *window) { out = a.close(k, w, out) }, a.series[:]...)
	// Bad weather before the oldest open window can no longer matter.
	oldest := a.oldestOpen()
	i := sort.Search(len(a.wet), func(i int) bool { return !a.wet[i].Before(oldest) })
	a.wet = append(a.wet[:0], a.wet[i:]...)
	return out
}

func (a *Aggregator) close(k int, w *window, out []reading.Reading) []reading.Reading {
	switch k {
	case kMinute:
		return a.closeMinute(w, out)
	case kHour:
		return a.closeHour(w, out)
	case kDay:
		return a.closeDay(w, out)
	}
	return a.closePeriod(w, out)
}

// quality is Suspect if the valid-data rate is below minValid or weather invalidated w.
func (a *Aggregator) quality(w *window, vdr, minValid float64) reading.Quality {
	if vdr < minValid || a.wetIn(w.Start, w.End) {
		return reading.Suspect
	}
	return reading.Good
}

func (a *Aggregator) closeMinute(w *window, out []reading.Reading) []reading.Reading {
	p := a.laeqEstimate()
	if l := w.Data.livePending; l.d > 0 {
		a.live.Energy += p * l.e
		a.live.Seconds += p * l.d
	}
	e, _ := w.Data.source(p)
	if e.d == 0 {
		return out
	}
	return a.emit(out, w.Start, QuantityLAeqMinute, e.leq(), a.quality(w, vdrOf(w, e), a.cfg.MinValidHour))
}

func (a *Aggregator) closeHour(w *window, out []reading.Reading) []reading.Reading {
	e, fromLA := w.Data.source(a.laeqEstimate())
	vdr := vdrOf(w, e)
	q := a.quality(w, vdr, a.cfg.MinValidHour)
	h := hourResult{start: w.Start, leq: math.NaN()}
	if e.d > 0 {
		h.leq, h.good = e.leq(), q == reading.Good
		out = a.emit(out, w.Start, QuantityLAeqHourly, h.leq, q)
		if fromLA {
			s := Summarize(w.Data.levels)
			for _, v := range []struct {
				name  string
				value float64
			}{
				{QuantityL5Hourly, s.L5}, {QuantityL10Hourly, s.L10}, {QuantityL50Hourly, s.L50},
				{QuantityL90Hourly, s.L90}, {QuantityL95Hourly, s.L95},
				{QuantityLmaxHourly, s.Lmax}, {QuantityLminHourly, s.Lmin}, {QuantitySDHourly, s.SD},
			} {
				out = a.emit(out, w.Start, v.name, v.value, q)
			}
		}
		// HJ 212 interval data are classified by their start (docs/standards.md §1.2).
		out = a.emit(out, w.Start, QuantityExceedanceHourly, h.leq-a.limitAt(w.Start), q)
	}
	out = a.emit(out, w.Start, QuantityVDRHourly, 100*vdr, reading.Good)

	a.hours = append(a.hours, h)
	return a.ldenClose(w.Start, out)
}

// ldenBounds returns the Lden 24 hours containing t: the starts of its day, evening
// and night (Config.Lden, local time) and of the next day. The 24 hours run from one
// Lden day start to the next, so the night is one night, from its start into the next
// morning.
func (a *Aggregator) ldenBounds(t time.Time) [4]time.Time {
	b := a.lden.bounds(a.p, t)
	if t.Before(b[0]) {
		b = a.lden.bounds(a.p, b[0].AddDate(0, 0, -1))
	}
	return b
}

// ldenPartNames are the quantities of the day, evening and night of Lden.
var ldenPartNames = [3]string{QuantityLdenDay, QuantityLdenEvening, QuantityLdenNight}

// ldenClose is called when the hour starting at hour has closed. If that hour ends the
// day, evening or night of its Lden 24 hours, it emits that part (docs/standards.md
// §1.3): the energy mean of the part's hourly LAeq, labelled by the part's start. Like
// ld and ln, a part is Suspect when fewer than MinValidPeriod of its clock hours have a
// good laeq_1h; without any hourly LAeq there is none. After the night it emits Lden
// from the three parts, each weighted by its hour count (12/4/8 by default) with the
// evening +5 dB and the night +10 dB, labelled by the start of the day: Suspect if any
// part is, and none if a part is missing.
func (a *Aggregator) ldenClose(hour time.Time, out []reading.Reading) []reading.Reading {
	b := a.ldenBounds(hour)
	end := hour.Add(time.Hour)
	p := 0
	for p < 3 && !end.Equal(b[p+1]) {
		p++
	}
	if p == 3 {
		return out
	}
	var levels []float64
	var good, hours int
	for h := b[p]; h.Before(b[p+1]); h = h.Add(time.Hour) {
		hours++
	}
	keep := a.hours[:0]
	for _, h := range a.hours {
		switch {
		case !h.start.Before(b[p+1]):
			keep = append(keep, h)
		case h.start.Before(b[p]) || math.IsNaN(h.leq): // of an earlier part a jump skipped, or empty
		default:
			levels = append(levels, h.leq)
			if h.good {
				good++
			}
		}
	}
	a.hours = keep
	a.parts[p] = nil
	if len(levels) > 0 {
		q := reading.Good
		if float64(good) < a.cfg.MinValidPeriod*float64(hours) {
			q = reading.Suspect
		}
		a.parts[p] = &ldenPart{start: b[p], leq: Leq(levels), hours: hours, quality: q}
		out = a.emit(out, b[p], ldenPartNames[p], a.parts[p].leq, q)
	}
	if p < 2 {
		return out
	}
	parts := a.parts
	a.parts = [3]*ldenPart{}
	q := reading.Good
	for i, part := range parts {
		if part == nil || !part.start.Equal(b[i]) {
			return out
		}
		if part.quality != reading.Good {
			q = reading.Suspect
		}
	}
	v := Lden(parts[0].leq, parts[1].leq, parts[2].leq,
		float64(parts[0].hours), float64(parts[1].hours), float64(parts[2].hours))
	return a.emit(out, b[0], QuantityLden, v, q)
}

// closeDay emits the LAeq of a calendar day, local midnight to midnight (laeq_24h), and
// its valid-data rate, judged like a day or night period: the energy mean of the valid
// samples, Suspect if the rate is below MinValidPeriod or weather invalidated the day.
func (a *Aggregator) closeDay(w *window, out []reading.Reading) []reading.Reading {
	e, _ := w.Data.source(a.laeqEstimate())
	vdr := vdrOf(w, e)
	if e.d > 0 {
		out = a.emit(out, w.Start, QuantityLAeqDaily, e.leq(), a.quality(w, vdr, a.cfg.MinValidPeriod))
	}
	return a.emit(out, w.Start, QuantityVDRDaily, 100*vdr, reading.Good)
}

func (a *Aggregator) closePeriod(w *window, out []reading.Reading) []reading.Reading {
	e, _ := w.Data.source(a.laeqEstimate())
	vdr := vdrOf(w, e)
	q := a.quality(w, vdr, a.cfg.MinValidPeriod)
	name, exceedance, limit := QuantityLd, QuantityExceedanceDay, a.day
	if w.Data.night {
		name, exceedance, limit = QuantityLn, QuantityExceedanceNight, a.night
	}
	if e.d > 0 {
		out = a.emit(out, w.Start, name, e.leq(), q)
		// The figure of a compliance table: the period's LAeq minus its GB 3096 limit.
		out = a.emit(out, w.Start, exceedance, e.leq()-limit, q)
	}
	out = a.emit(out, w.Start, QuantityVDRPeriod, 100*vdr, reading.Good)

	if !w.Data.night {
		a.lastDay = nil
		if e.d > 0 {
			a.lastDay = &periodResult{start: w.Start, end: w.End, leq: e.leq(), quality: q}
		}
		return out
	}
	if d := a.lastDay; d != nil && d.end.Equal(w.Start) && e.d > 0 {
		if d.quality != reading.Good {
			q = reading.Suspect
		}
		v := Ldn(d.leq, e.leq(), d.end.Sub(d.start).Hours(), w.End.Sub(w.Start).Hours())
		out = a.emit(out, d.start, QuantityLdn, v, q)
	}
	a.lastDay = nil
	return out
}

func (a *Aggregator) emit(out []reading.Reading, t time.Time, name string, v float64, q reading.Quality) []reading.Reading {
	return append(out, reading.Reading{
		Time:     t,
		Site:     a.cfg.Site,
		Device:   a.cfg.Device,
		Quantity: name,
		Value:    v,
		Unit:     derivedByName[name].Unit,
		Quality:  q,
	})
}
