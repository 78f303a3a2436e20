package water

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

const site = "canal-bridge"

var cst = time.FixedZone("CST", 8*60*60)

func newAgg(t *testing.T, mutate func(*Config)) *Aggregator {
	t.Helper()
	cfg := Config{Site: site, Waterbody: River}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := NewAggregator(cfg)
	if err != nil {
		t.Fatalf("NewAggregator(%+v) = %v", cfg, err)
	}
	return a
}

func rd(t time.Time, device, quantity string, v float64) reading.Reading {
	return reading.New(t, site, device, quantity, v)
}

// derivedSet indexes derived readings by quantity and window start.
type derivedSet map[string]reading.Reading

func key(quantity string, t time.Time) string { return quantity + "@" + t.UTC().Format(time.RFC3339) }

// collect checks every derived reading against Quantities (the catalog does not know
// them yet, so Reading.Validate would reject them) and indexes them; a duplicate is an
// error.
func collect(t *testing.T, set derivedSet, out []reading.Reading) derivedSet {
	t.Helper()
	if set == nil {
		set = derivedSet{}
	}
	for _, r := range out {
		q, ok := derivedByName[r.Quantity]
		switch {
		case !ok:
			t.Errorf("derived reading %+v: quantity not listed in Quantities()", r)
		case r.Unit != q.Unit:
			t.Errorf("derived reading %+v: unit %q, want %q", r, r.Unit, q.Unit)
		case !q.Plausible(r.Value):
			t.Errorf("derived reading %+v: value outside %v..%v", r, q.Min, q.Max)
		}
		if r.Site != site || r.Device != DefaultDevice || r.Time.IsZero() || r.Quality == reading.Bad {
			t.Errorf("derived reading %+v: want site %s, device %s, a time, not bad", r, site, DefaultDevice)
		}
		k := key(r.Quantity, r.Time)
		if _, dup := set[k]; dup {
			t.Errorf("derived reading %s emitted twice", k)
		}
		set[k] = r
	}
	return set
}

// want checks one derived reading's value (within 1e-9) and quality.
func (s derivedSet) want(t *testing.T, quantity string, at time.Time, value float64, q reading.Quality) {
	t.Helper()
	r, ok := s[key(quantity, at)]
	if !ok {
		t.Errorf("no %s for %v", quantity, at)
		return
	}
	if math.Abs(r.Value-value) > 1e-9 || r.Quality != q {
		t.Errorf("%s@%v = %v (%v), want %v (%v)", quantity, at, r.Value, r.Quality, value, q)
	}
}

func (s derivedSet) absent(t *testing.T, quantity string, at time.Time) {
	t.Helper()
	if r, ok := s[key(quantity, at)]; ok {
		t.Errorf("%s@%v = %+v, want none", quantity, at, r)
	}
}

// TestAggregatorSyntheticDay runs a river section (target III, 4-hour windows) through
// a day: a probe sends pH and DO every 10 minutes, a station sends CODMn, NH3-N and TP
// once per window, with the cases of docs/standards.md §3.3, a station outage, a Suspect
// sample and an empty window.
func TestAggregatorSyntheticDay(t *testing.T) {
	a := newAgg(t, nil)
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	w := func(i int) time.Time { return day.Add(time.Duration(i) * 4 * time.Hour) }

	type plan struct {
		ph, doLow, doHigh float64 // DO alternates between doLow and doHigh
		codmn, nh3n, tp   float64 // station results; NaN = outage
		suspectPH         bool
		probe             bool
	}
	nan := math.NaN()
	plans := []plan{
		{7.5, 6.5, 6.5, 3.5, 0.40, 0.08, false, true}, // §3.3: II
		{7.5, 3.5, 4.5, 3.5, 0.40, 0.08, false, true}, // DO mean 4.0: IV
		{7.5, 1.9, 1.9, 3.5, 0.40, 0.08, false, true}, // DO 1.9: 劣V
		{7.0, 7.5, 7.5, nan, nan, nan, false, true},   // station outage: I from pH and DO, Suspect
		{8.0, 5.0, 5.0, 6.0, 1.0, 0.2, true, true},    // all on the III limits; one Suspect pH
		{0, 0, 0, nan, nan, nan, false, false},        // nothing at all
	}
	var in []reading.Reading
	for i, p := range plans {
		if p.probe {
			for m := 0; m < 240; m += 10 {
				at := w(i).Add(time.Duration(m) * time.Minute)
				ph := rd(at, "probe-1", "ph", p.ph)
				if p.suspectPH && m == 120 {
					ph.Quality = reading.Suspect
				}
				do := p.doLow
				if m%20 == 10 {
					do = p.doHigh
				}
				in = append(in, ph, rd(at, "probe-1", "do", do), rd(at, "probe-1", "water_temperature", 24))
			}
		}
		if !math.IsNaN(p.codmn) {
			at := w(i)
			in = append(in, rd(at, "station-1", "codmn", p.codmn), rd(at, "station-1", "nh3n", p.nh3n), rd(at, "station-1", "tp", p.tp))
		}
	}
	// TN in a river: averaged, never classified.
	in = append(in, rd(w(0).Add(time.Hour), "station-1", "tn", 1.2))
	slices.SortStableFunc(in, func(x, y reading.Reading) int { return x.Time.Compare(y.Time) })

	var out []reading.Reading
	for _, r := range in {
		out = append(out, a.Add(r)...)
	}
	// Noise the Aggregator must refuse: a late DO for the first window (closed at
	// 05:00), another site, a Bad sample, an impossible value, a wrong unit, turbidity.
	late := rd(w(1).Add(-time.Minute), "probe-1", "do", 0)
	other := rd(w(5), "probe-1", "do", 0)
	other.Site = "elsewhere"
	bad := rd(w(4).Add(time.Minute), "probe-1", "do", 0)
	bad.Quality = reading.Bad
	wrongUnit := rd(w(4).Add(time.Minute), "probe-1", "do", 0)
	wrongUnit.Unit = "%"
	for _, r := range []reading.Reading{late, other, bad, wrongUnit,
		rd(w(4), "probe-1", "do", 30), rd(w(4), "probe-1", "turbidity", 3)} {
		out = append(out, a.Add(r)...)
	}
	set := collect(t, nil, out)
	set = collect(t, set, a.Tick(w(6).Add(DefaultLateness)))

	good, suspect := reading.Good, reading.Suspect
	// 00–04: the worked example, class II.
	set.want(t, QuantityPHMean, w(0), 7.5, good)
	set.want(t, QuantityDOMean, w(0), 6.5, good)
	set.want(t, QuantityTNMean, w(0), 1.2, good)
	set.absent(t, QuantityClassTN, w(0))
	for _, c := range []struct {
		q     string
		class Class
	}{{QuantityClassPH, ClassI}, {QuantityClassDO, ClassII}, {QuantityClassCODMn, ClassII}, {QuantityClassNH3N, ClassII}, {QuantityClassTP, ClassII}} {
		set.want(t, c.q, w(0), float64(c.class), good)
	}
	set.want(t, QuantityClass, w(0), 2, good)
	set.want(t, QuantityTargetClass, w(0), 3, good)
	set.want(t, QuantityTargetMissed, w(0), 0, good)
	set.want(t, QuantityWorstParam, w(0), 1019, good) // codmn, largest multiple among class II
	set.want(t, QuantityParamsMissing, w(0), 0, good)
	// 04–08: DO averages 4.0, class IV.
	set.want(t, QuantityDOMean, w(1), 4.0, good)
	set.want(t, QuantityClassDO, w(1), 4, good)
	set.want(t, QuantityClass, w(1), 4, good)
	set.want(t, QuantityTargetMissed, w(1), 1, good)
	set.want(t, QuantityWorstParam, w(1), 1009, good)
	// 08–12: DO 1.9, 劣V.
	set.want(t, QuantityClass, w(2), 6, good)
	set.want(t, QuantityWorstParam, w(2), 1009, good)
	// 12–16: station outage, a lower bound from pH and DO only.
	set.absent(t, QuantityCODMnMean, w(3))
	set.absent(t, QuantityClassTP, w(3))
	set.want(t, QuantityClass, w(3), 1, suspect)
	set.want(t, QuantityTargetMissed, w(3), 0, suspect)
	set.want(t, QuantityParamsMissing, w(3), 3, good)
	// 16–20: every value on its class III limit meets III; the Suspect pH sample
	// taints pH and the section.
	for _, c := range []struct {
		q string
		v float64
	}{{QuantityDOMean, 5}, {QuantityCODMnMean, 6}, {QuantityNH3NMean, 1}, {QuantityTPMean, 0.2}} {
		set.want(t, c.q, w(4), c.v, good)
	}
	set.want(t, QuantityClassDO, w(4), 3, good)
	set.want(t, QuantityClassTP, w(4), 3, good)
	set.want(t, QuantityPHMean, w(4), 8, suspect)
	set.want(t, QuantityClassPH, w(4), 1, suspect)
	set.want(t, QuantityClass, w(4), 3, suspect)
	set.want(t, QuantityTargetMissed, w(4), 0, suspect)
	set.want(t, QuantityParamsMissing, w(4), 0, good)
	// 20–24: nothing but the count of missing parameters.
	set.want(t, QuantityParamsMissing, w(5), 5, good)
	set.absent(t, QuantityClass, w(5))

	if n := len(set); n != 16+15+15+9+15+1 {
		t.Errorf("%d derived readings, want 71", n)
	}
	l := a.Now(w(6).Add(DefaultLateness))
	probe, station := 6*24*2-24*2, 4*3+1 // 5 windows of pH and DO; 4 station results + TN
	if l.Accepted != probe+station || l.Late != 1 || l.Rejected != 4 || l.Ignored != probe/2+1 {
		t.Errorf("counters accepted %d late %d rejected %d ignored %d, want %d, 1, 4, %d",
			l.Accepted, l.Late, l.Rejected, l.Ignored, probe+station, probe/2+1)
	}
	// Window starts are local midnight + 4 h steps: 2026-05-31 16:00 UTC first.
	if r := set[key(QuantityClass, w(0))]; !r.Time.Equal(time.Date(2026, 5, 31, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("first window starts %v", r.Time)
	}
}

func TestAggregatorLive(t *testing.T) {
	a := newAgg(t, nil)
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	if l := a.Now(day); l.Class != 0 || !l.Start.IsZero() || l.Missing != 5 || l.Target != ClassIII {
		t.Errorf("Now before any data = %+v", l)
	}
	add := func(at time.Time, q string, v float64) {
		t.Helper()
		a.Add(rd(at, "probe-1", q, v))
	}
	at := day.Add(16 * time.Hour)
	add(at, "do", 4)
	add(at.Add(time.Minute), "do", 3)
	add(at.Add(time.Minute), "nh3n", 1.2)

	l := a.Now(at.Add(time.Hour))
	if !l.Open || !l.Start.Equal(at) || l.Class != ClassIV || l.Worst != ParamNH3N || len(l.Missed) != 2 || l.Missing != 3 {
		t.Errorf("running window: %+v, want open, IV (DO 3.5, NH3-N 1.2), worst nh3n, 2 missed, 3 missing", l)
	}
	// 20:30: the window 20–24 is empty, 16–20 still open within lateness: shown.
	a.Tick(day.Add(20*time.Hour + 30*time.Minute))
	if l := a.Now(day.Add(20*time.Hour + 30*time.Minute)); !l.Open || !l.Start.Equal(at) || l.Class != ClassIV {
		t.Errorf("20:30: %+v, want the open 16–20 window", l)
	}
	// 21:30: 16–20 has closed: the emitted result.
	out := a.Tick(day.Add(21*time.Hour + 30*time.Minute))
	if len(out) == 0 {
		t.Fatalf("Tick(21:30) closed nothing")
	}
	l = a.Now(day.Add(21*time.Hour + 30*time.Minute))
	if l.Open || !l.Start.Equal(at) || l.Class != ClassIV || l.Missing != 3 {
		t.Errorf("21:30: %+v, want the closed 16–20 window", l)
	}
	// Next day 00:30: 20–24 is empty and 16–20 is two windows back: stale, nothing.
	a.Tick(day.Add(24*time.Hour + 30*time.Minute))
	if l := a.Now(day.Add(24*time.Hour + 30*time.Minute)); l.Class != 0 || !l.Start.IsZero() || l.Missing != 5 {
		t.Errorf("00:30: %+v, want nothing", l)
	}
	// Now does not change anything.
	if out := a.Tick(day.Add(24*time.Hour + 30*time.Minute)); len(out) != 0 {
		t.Errorf("Tick at the same clock: %v", out)
	}
}

func TestAggregatorMinSamplesAndHourly(t *testing.T) {
	a := newAgg(t, func(c *Config) {
		c.Window = time.Hour
		c.MinSamples = 3
		c.Lateness = time.Minute
		c.Waterbody = Lake
		c.Required = []Param{ParamDO, ParamTN}
		c.Target = ClassII
	})
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, cst)
	var out []reading.Reading
	for i := range 3 {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		out = append(out, a.Add(rd(at, "probe-1", "do", 6.2))...)
		out = append(out, a.Add(rd(at, "probe-2", "do", 5.8))...) // two probes, averaged
	}
	out = append(out, a.Add(rd(t0, "lab-1", "tn", 0.6))...) // one TN sample: too few
	out = append(out, a.Add(rd(t0, "lab-1", "tp", 0.03))...)
	out = append(out, a.Add(rd(t0.Add(time.Minute), "lab-1", "tp", 0.03))...)
	out = append(out, a.Add(rd(t0.Add(2*time.Minute), "lab-1", "tp", 0.03))...)
	set := collect(t, nil, append(out, a.Tick(t0.Add(time.Hour+time.Minute))...))
	set.want(t, QuantityDOMean, t0, 6, reading.Good)
	set.want(t, QuantityClassDO, t0, 2, reading.Good)
	set.want(t, QuantityTNMean, t0, 0.6, reading.Suspect) // a mean, but no class
	set.absent(t, QuantityClassTN, t0)
	set.want(t, QuantityClassTP, t0, 3, reading.Good) // lake limits: 0.03 > 0.025
	set.want(t, QuantityClass, t0, 3, reading.Suspect)
	set.want(t, QuantityTargetClass, t0, 2, reading.Good)
	set.want(t, QuantityTargetMissed, t0, 1, reading.Suspect)
	set.want(t, QuantityWorstParam, t0, 21011, reading.Suspect)
	set.want(t, QuantityParamsMissing, t0, 1, reading.Good) // TN
	if len(set) != 10 {
		t.Errorf("%d derived readings, want 10: %v", len(set), set)
	}
}

func TestAggregatorDefaults(t *testing.T) {
	a := newAgg(t, nil)
	c := a.Config()
	if c.Device != DefaultDevice || c.Window != DefaultWindow || c.MinSamples != DefaultMinSamples ||
		c.Lateness != DefaultLateness || c.Target != ClassIII || c.Location.String() != "CST" {
		t.Errorf("defaults = %+v", c)
	}
	if want := []Param{ParamPH, ParamDO, ParamCODMn, ParamNH3N, ParamTP}; !slices.Equal(c.Required, want) {
		t.Errorf("river Required = %v, want %v", c.Required, want)
	}
	c = newAgg(t, func(c *Config) { c.Waterbody = Lake }).Config()
	if want := []Param{ParamPH, ParamDO, ParamCODMn, ParamNH3N, ParamTP}; !slices.Equal(c.Required, want) {
		t.Errorf("lake Required = %v, want %v (TN evaluated separately)", c.Required, want)
	}
	c = newAgg(t, func(c *Config) { c.Waterbody = Lake; c.TNInClass = true }).Config()
	if want := []Param{ParamPH, ParamDO, ParamCODMn, ParamNH3N, ParamTP, ParamTN}; !slices.Equal(c.Required, want) {
		t.Errorf("lake TNInClass Required = %v, want %v", c.Required, want)
	}
	c = newAgg(t, func(c *Config) { c.Required = []Param{} }).Config()
	if len(c.Required) != 0 {
		t.Errorf("empty Required = %v, want none", c.Required)
	}
	// A UTC location aligns to UTC midnight.
	a = newAgg(t, func(c *Config) { c.Location = time.UTC; c.Window = 24 * time.Hour })
	at := time.Date(2026, 6, 1, 23, 0, 0, 0, time.UTC)
	a.Add(rd(at, "p", "do", 8))
	if l := a.Now(at); !l.Start.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("UTC daily window starts %v", l.Start)
	}
}

func TestNewAggregatorErrors(t *testing.T) {
	_, err := NewAggregator(Config{
		Site:       "a b",
		Device:     strings.Repeat("x", 65),
		Waterbody:  "sea",
		Target:     ClassWorseThanV,
		Window:     7 * time.Hour,
		MinSamples: -1,
		Lateness:   -time.Second,
		Required:   []Param{"turbidity", ParamTN, ParamDO, ParamDO},
	})
	if err == nil {
		t.Fatal("NewAggregator(bad config) = nil error")
	}
	for _, want := range []string{
		"site: character ' '", "device: longer than 64", "waterbody:", "target:", "window: 7h0m0s does not divide 24h",
		"min_samples: -1", "lateness: -1s", `required[0]: "turbidity"`, "required[1]: tn has no class", "required[3]: do listed twice",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewAggregator error %q: want %q", err, want)
		}
	}
	for _, d := range []time.Duration{time.Second, -time.Hour, 25 * time.Hour} {
		if _, err := NewAggregator(Config{Site: site, Waterbody: River, Window: d}); err == nil {
			t.Errorf("NewAggregator(window %v) = nil error", d)
		}
	}
	for _, d := range []time.Duration{time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if _, err := NewAggregator(Config{Site: site, Waterbody: River, Window: d}); err != nil {
			t.Errorf("NewAggregator(window %v) = %v", d, err)
		}
	}
}

// TestAggregatorClockJump: a clock leaping a year ahead closes at most maxEmptyWindows
// empty windows and counts the rest as skipped.
func TestAggregatorClockJump(t *testing.T) {
	a := newAgg(t, nil)
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	a.Add(rd(t0, "probe-1", "do", 8))
	out := a.Tick(t0.Add(365 * 24 * time.Hour))
	set := collect(t, nil, out)
	set.want(t, QuantityClass, t0, 1, reading.Suspect)
	n := 0
	for _, r := range out {
		if r.Quantity == QuantityParamsMissing {
			n++
		}
	}
	l := a.Now(t0)
	windows := 365*6 - 1 // the jump lands in the last window of the year, still open
	if n != 1+maxEmptyWindows || l.Skipped+n != windows {
		t.Errorf("%d windows closed, %d skipped; want %d closed of %d", n, l.Skipped, 1+maxEmptyWindows, windows)
	}
}

func TestQuantities(t *testing.T) {
	qs := Quantities()
	if len(qs) != 2*len(aggregated)+5 {
		t.Errorf("%d quantities", len(qs))
	}
	seen := map[string]bool{}
	for _, q := range qs {
		if seen[q.Name] {
			t.Errorf("quantity %q listed twice", q.Name)
		}
		seen[q.Name] = true
		if _, clash := reading.Lookup(q.Name); clash {
			t.Errorf("quantity %q already in the catalog", q.Name)
		}
		if q.Name != strings.ToLower(q.Name) || strings.ContainsAny(q.Name, " .-") || strings.HasSuffix(q.Name, "_quality") {
			t.Errorf("quantity %q: names are lowercase snake_case field keys", q.Name)
		}
		if q.Min >= q.Max || q.Unit == "" || q.Doc == "" || q.Domain != reading.Water {
			t.Errorf("quantity %+v: incomplete entry", q)
		}
	}
	for _, p := range aggregated {
		if !seen[MeanQuantity(p)] || !seen[ClassQuantity(p)] {
			t.Errorf("%s: mean or class missing", p)
		}
	}
	for _, name := range []string{QuantityPHMean, QuantityDOMean, QuantityCODMnMean, QuantityCODMean, QuantityBOD5Mean,
		QuantityNH3NMean, QuantityTPMean, QuantityTNMean,
		QuantityClassPH, QuantityClassDO, QuantityClassCODMn, QuantityClassCOD, QuantityClassBOD5,
		QuantityClassNH3N, QuantityClassTP, QuantityClassTN,
		QuantityClass, QuantityTargetClass, QuantityTargetMissed, QuantityWorstParam, QuantityParamsMissing} {
		if !seen[name] {
			t.Errorf("constant %q not in Quantities()", name)
		}
	}
	if MeanQuantity(ParamFecalColiform) != "" || ClassQuantity(ParamWaterTemperature) != "" {
		t.Errorf("derived names for parameters the Aggregator does not average")
	}
	do := derivedByName[QuantityDOMean]
	if do.Unit != "mg/L" || do.Max != 25 {
		t.Errorf("do_mean = %+v, want the unit and range of do", do)
	}
	// Every code worst_param can carry is within its range.
	wp := derivedByName[QuantityWorstParam]
	for _, p := range Params() {
		if !wp.Plausible(float64(p.Code())) {
			t.Errorf("worst_param %d of %s outside range", p.Code(), p)
		}
	}
}
