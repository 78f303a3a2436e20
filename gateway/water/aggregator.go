package water

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window"
)

// Defaults of Config.
const (
	// DefaultDevice is the device name of the derived readings: a section evaluation
	// belongs to the site, not to one instrument.
	DefaultDevice = "section"
	// DefaultWindow is one cycle of a surface-water automatic station, which reports
	// every 4 hours; the window is aligned to local midnight (00, 04, …, 20 h). The
	// cycle is not in docs/standards.md [U].
	DefaultWindow = 4 * time.Hour
	// DefaultMinSamples: a 4-hour window of a 4-hourly station holds one result.
	DefaultMinSamples = 1
	// DefaultLateness lets the analysers' results (tens of minutes for CODMn, NH3-N,
	// TP) and a second device's readings arrive after the window ends. A project
	// choice, not from a standard.
	DefaultLateness = time.Hour
)

// maxEmptyWindows bounds the empty windows a single jump of the clock closes one by
// one (each emits params_missing); older ones are skipped and counted in Live.Skipped,
// so a device clock that leaps years ahead cannot flood the pipeline.
const maxEmptyWindows = 1000

// Config configures the Aggregator of one water section (a monitoring site).
type Config struct {
	// Site is the section; readings of any device at this site are used, of other
	// sites rejected.
	Site string
	// Device names the derived readings. "" selects DefaultDevice.
	Device string

	// Waterbody selects Table 1's TP limits (and TN's, lakes and reservoirs only).
	Waterbody Waterbody
	// Target is the class the section must meet, from the water-function zoning.
	// 0 selects ClassIII.
	Target Class
	// TNInClass and DOExceedance: see Rules.
	TNInClass, DOExceedance bool

	// Window is the evaluation window: a clock interval aligned to local midnight
	// whose length divides 24 h. 0 selects DefaultWindow (4 h).
	Window time.Duration
	// MinSamples is the number of samples of a parameter a window needs for a valid
	// mean and a class. 0 selects DefaultMinSamples (1).
	MinSamples int
	// Required are the parameters whose missing mean makes the section class Suspect
	// and counts in params_missing. nil selects ph, do, codmn, nh3n and tp, plus tn
	// when TNInClass is set for a lake or reservoir (not cod and bod5, which count
	// when reported); an empty non-nil slice requires nothing.
	Required []Param
	// Location aligns the windows. nil selects Asia/Shanghai (fixed UTC+8, no DST).
	// Windows keep their length, so in a zone with DST they stay aligned to the
	// offset in force when they were first opened until a gap realigns them.
	Location *time.Location
	// Lateness is how long after a window ends its samples are still accepted. 0
	// selects DefaultLateness (1 h).
	Lateness time.Duration
}

// Live is the Aggregator's view at an instant, for metrics: the evaluation of the
// newest window with data among the one containing Time and the one before it.
type Live struct {
	Time time.Time
	// Start is the start of the window evaluated; zero if neither has data.
	Start time.Time
	// Open: the window has not closed; its means are running means of the samples so
	// far, each parameter with at least one sample (MinSamples is judged at close).
	Open bool
	// Section is the evaluation: Class (0 without data), Target (always set), the class
	// per parameter (Params), the parameters missing the target (Missed) and Worst.
	Section
	// Missing counts required parameters without a (valid) mean in that window.
	Missing int

	Accepted  int // samples that entered a window
	Duplicate int // samples of a device, quantity and time the window had already counted: ignored
	Late      int // samples whose window had closed: ignored
	Rejected  int // readings of another site, with Quality Bad, a wrong unit or implausible
	Ignored   int // readings of the site this package does not classify (water_temperature, turbidity…)
	Skipped   int // empty windows skipped without output by a jump of the clock
}

// Aggregator evaluates one section window by window (see the package doc). It is not
// safe for concurrent use.
//
// Its clock is the latest sample time (Add) or the latest Tick; a window closes when
// its end + Lateness is not after the clock. The first sample or Tick opens the window
// containing it: a start mid-window gives that window only the samples from then on.
type Aggregator struct {
	cfg      Config
	rules    Rules
	required []bool // by aggIndex
	clock    time.Time
	windows  *window.Series[[]acc] // data: by aggIndex
	last     *closed               // the latest closed window, for Live
	live     Live                  // counters only
}

// acc accumulates the samples of one parameter in one window.
type acc struct {
	sum
	suspect bool // a Suspect sample was used
}

type closed struct {
	start   time.Time
	section Section
	missing int
}

// NewAggregator checks cfg, fills in its defaults and returns an Aggregator. The error
// lists every problem, each with its field.
func NewAggregator(cfg Config) (*Aggregator, error) {
	var errs []error
	if cfg.Device == "" {
		cfg.Device = DefaultDevice
	}
	if err := reading.CheckName(cfg.Site); err != nil {
		errs = append(errs, fmt.Errorf("site: %w", err))
	}
	if err := reading.CheckName(cfg.Device); err != nil {
		errs = append(errs, fmt.Errorf("device: %w", err))
	}
	rules := Rules{Waterbody: cfg.Waterbody, Target: cfg.Target, TNInClass: cfg.TNInClass, DOExceedance: cfg.DOExceedance}
	if err := rules.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case cfg.Window < 0 || cfg.Window > 0 && cfg.Window < time.Minute:
		errs = append(errs, fmt.Errorf("window: %v must be at least 1m", cfg.Window))
	case cfg.Window > 0 && (24*time.Hour)%cfg.Window != 0:
		// Windows tile the local day, so a class always describes the same clock interval.
		errs = append(errs, fmt.Errorf("window: %v does not divide 24h", cfg.Window))
	}
	if cfg.MinSamples < 0 {
		errs = append(errs, fmt.Errorf("min_samples: %d must not be negative", cfg.MinSamples))
	}
	if cfg.Lateness < 0 {
		errs = append(errs, fmt.Errorf("lateness: %v must not be negative", cfg.Lateness))
	}
	required := make([]bool, len(aggregated))
	for i, p := range cfg.Required {
		j := aggIndex(string(p))
		switch {
		case j < 0:
			errs = append(errs, fmt.Errorf("required[%d]: %q is not one of %v", i, p, aggregated))
		case p == ParamTN && !cfg.Waterbody.Still():
			errs = append(errs, fmt.Errorf("required[%d]: tn has no class in a %s (lakes and reservoirs only)", i, cfg.Waterbody))
		case required[j]:
			errs = append(errs, fmt.Errorf("required[%d]: %s listed twice", i, p))
		default:
			required[j] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MinSamples == 0 {
		cfg.MinSamples = DefaultMinSamples
	}
	if cfg.Lateness == 0 {
		cfg.Lateness = DefaultLateness
	}
	if cfg.Location == nil {
		cfg.Location = reading.ChinaStandardTime
	}
	rules = rules.norm()
	cfg.Target = rules.Target
	if cfg.Required == nil {
		for j, p := range aggregated {
			required[j] = requiredByDefault(p, rules)
		}
	}
	cfg.Required = nil
	for j, p := range aggregated {
		if required[j] {
			cfg.Required = append(cfg.Required, p)
		}
	}
	a := &Aggregator{cfg: cfg, rules: rules, required: required}
	a.windows = window.New(window.Config[[]acc]{
		Start:    a.align,
		End:      func(start time.Time) time.Time { return start.Add(cfg.Window) },
		Make:     func(_, _ time.Time) []acc { return make([]acc, len(aggregated)) },
		Lateness: cfg.Lateness,
		MaxEmpty: maxEmptyWindows,
	})
	return a, nil
}

// Config returns the configuration with its defaults filled in.
func (a *Aggregator) Config() Config {
	c := a.cfg
	c.Required = slices.Clone(c.Required)
	return c
}

// Add consumes one reading and returns the derived readings of the windows it closed
// (those whose end + Lateness is not after r.Time).
//
// The caller routes the site's readings here. The readings used are those Takes
// accepts (ph, do, codmn, cod, bod5, nh3n, tp, tn) of any device at the site, with
// Quality Good or Suspect (a Suspect sample makes its mean and class Suspect), the catalog unit and a plausible value;
// several devices measuring one parameter are averaged together. Other water quantities of the site (water_temperature,
// conductivity, turbidity) and other quantities are ignored; readings of other sites,
// Bad or implausible ones are rejected; samples whose window has closed are counted
// as late and dropped. A window counts a reading of one device, quantity and time once:
// a redelivered one is ignored (Live.Duplicate), so feeding readings again gives the
// same results.
func (a *Aggregator) Add(r reading.Reading) []reading.Reading {
	if r.Site != a.cfg.Site {
		a.live.Rejected++
		return nil
	}
	i := aggIndex(r.Quantity)
	if i < 0 {
		a.live.Ignored++
		return nil
	}
	if q, ok := reading.Lookup(r.Quantity); !ok || r.Unit != q.Unit || !q.Plausible(r.Value) ||
		r.Quality >= reading.Bad || r.Time.IsZero() {
		a.live.Rejected++
		return nil
	}
	t := r.Time.In(a.cfg.Location)
	if !a.windows.Started() {
		a.start(t)
	}
	var out []reading.Reading
	if t.After(a.clock) {
		out = a.advance(t)
	}
	w := a.windows.Find(t)
	switch {
	case w == nil:
		a.live.Late++
		return out
	case !w.Once(window.KeyOf(r)):
		a.live.Duplicate++
		return out
	}
	a.live.Accepted++
	c := &w.Data[i]
	c.add(r.Value)
	if r.Quality == reading.Suspect {
		c.suspect = true
	}
	return out
}

// Tick moves the clock to now (if later) and returns the derived readings of the
// windows that closed: end + Lateness ≤ now. A window without data emits only
// params_missing, so a silent station is explicit. The first Tick opens the window
// containing now if no sample has.
func (a *Aggregator) Tick(now time.Time) []reading.Reading {
	now = now.In(a.cfg.Location)
	if !a.windows.Started() {
		a.start(now)
	}
	if !now.After(a.clock) {
		return nil
	}
	return a.advance(now)
}

// Now reports the live state at now without changing anything. It evaluates the
// newest window with data among the window containing now and the one before it,
// open (running means) or closed (the emitted result); with neither, Start is zero
// and Class 0, and Missing counts every required parameter.
func (a *Aggregator) Now(now time.Time) Live {
	now = now.In(a.cfg.Location)
	l := a.live
	l.Time = now
	l.Skipped = a.windows.Skipped()
	cur := a.align(now)
	prev := a.align(cur.Add(-1))
	for _, start := range []time.Time{cur, prev} {
		if w := a.windows.Find(start); w != nil && w.Start.Equal(start) && hasData(w.Data) {
			l.Start, l.Open = w.Start, true
			l.Section, l.Missing = a.evaluate(w.Data, 1)
			return l
		}
		if c := a.last; c != nil && c.start.Equal(start) && c.section.Class.Valid() {
			l.Start, l.Section, l.Missing = c.start, c.section, c.missing
			return l
		}
	}
	l.Section = Section{Target: a.rules.Target}
	l.Missing = len(a.cfg.Required)
	return l
}

func hasData(accs []acc) bool {
	for _, c := range accs {
		if c.n > 0 {
			return true
		}
	}
	return false
}

// evaluate evaluates the parameters of w with at least minSamples samples and counts
// the required ones without.
func (a *Aggregator) evaluate(accs []acc, minSamples int) (Section, int) {
	means := make(map[Param]float64, len(aggregated))
	missing := 0
	for i, p := range aggregated {
		if accs[i].n >= minSamples {
			means[p] = accs[i].mean()
		} else if a.required[i] {
			missing++
		}
	}
	// The rules were validated and the means of plausible values are numbers.
	return evaluate(means, a.rules), missing
}

// align returns the start of the window containing t: local midnight plus a whole
// number of windows.
// FlushTime returns the clock time at which the window containing t has closed: its
// end plus the lateness. Tick(FlushTime(t)) ends a recording whose last sample is at t.
func (a *Aggregator) FlushTime(t time.Time) time.Time {
	return a.align(t).Add(a.cfg.Window + a.cfg.Lateness)
}

func (a *Aggregator) align(t time.Time) time.Time {
	t = t.In(a.cfg.Location)
	_, off := t.Zone()
	shift := time.Duration(off) * time.Second
	return t.Add(shift).Truncate(a.cfg.Window).Add(-shift)
}

// start opens the window containing t.
func (a *Aggregator) start(t time.Time) {
	a.clock = t
	a.windows.Begin(t)
}

// advance moves the clock to t: it closes, oldest first, every window with
// end + Lateness ≤ t, including the empty ones a gap skipped (at most
// maxEmptyWindows of those; Live.Skipped counts the rest), then opens the windows up to t.
func (a *Aggregator) advance(t time.Time) []reading.Reading {
	a.clock = t
	var out []reading.Reading
	a.windows.Advance(t, func(w *window.Window[[]acc]) { out = a.close(w, out) })
	return out
}

// close emits the results of w (see the package doc).
func (a *Aggregator) close(w *window.Window[[]acc], out []reading.Reading) []reading.Reading {
	s, missing := a.evaluate(w.Data, a.cfg.MinSamples)
	a.last = &closed{start: w.Start, section: s, missing: missing}
	byParam := make(map[Param]ParamResult, len(s.Params))
	for _, pr := range s.Params {
		byParam[pr.Param] = pr
	}
	sectionQ := reading.Good
	if missing > 0 {
		sectionQ = reading.Suspect
	}
	for i, p := range aggregated {
		c := w.Data[i]
		if c.n == 0 {
			continue
		}
		q := reading.Good
		if c.suspect || c.n < a.cfg.MinSamples { // too few samples: a mean, but no class
			q = reading.Suspect
		}
		pr, classified := byParam[p]
		out = a.emit(out, w.Start, MeanQuantity(p), c.mean(), q)
		if classified {
			out = a.emit(out, w.Start, ClassQuantity(p), float64(pr.Class), q)
			if pr.Evaluated && q == reading.Suspect {
				sectionQ = reading.Suspect
			}
		}
	}
	if s.Class.Valid() {
		out = a.emit(out, w.Start, QuantityClass, float64(s.Class), sectionQ)
		out = a.emit(out, w.Start, QuantityTargetClass, float64(s.Target), reading.Good)
		out = a.emit(out, w.Start, QuantityTargetMissed, float64(len(s.Missed)), sectionQ)
		out = a.emit(out, w.Start, QuantityWorstParam, float64(s.Worst.Code()), sectionQ)
	}
	return a.emit(out, w.Start, QuantityParamsMissing, float64(missing), reading.Good)
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
