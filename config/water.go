package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/water"
)

// Water configures the surface-water derivations: which sites are monitoring sections
// whose ph, do, codmn, cod, bod5, nh3n, tp and tn readings are averaged window by window and
// classified by GB 3838-2002 (docs/config.md, gateway/water).
type Water struct {
	Timezone string         `yaml:"timezone"` // IANA zone the windows are aligned to; default Asia/Shanghai
	Sections []WaterSection `yaml:"sections"`
}

// WaterSection is one monitoring section: a site, fed by any of its devices, judged
// against the class its water-function zone must meet.
type WaterSection struct {
	Site         string        `yaml:"site"`          // required, unique among water.sections: readings of any device at this site are used
	Waterbody    string        `yaml:"waterbody"`     // required: river | lake | reservoir (Table 1's TP and TN limits)
	Target       string        `yaml:"target"`        // class to meet, I to V (water.ParseClass); default III
	Window       time.Duration `yaml:"window"`        // evaluation window, aligned to local midnight; divides 24h; default 4h
	MinSamples   int           `yaml:"min_samples"`   // samples of a parameter a window needs for a class; default 1
	Lateness     time.Duration `yaml:"lateness"`      // how long a window waits for late results; default 1h
	TNInClass    bool          `yaml:"tn_in_class"`   // count TN in the section class of a lake or reservoir
	DOExceedance bool          `yaml:"do_exceedance"` // compute an exceedance multiple for dissolved oxygen [U]
	Required     []string      `yaml:"required"`      // parameters whose missing mean makes the class suspect; default: the package's
}

// Water defaults, documented in docs/config.md. Required has no default here: left
// out, gateway/water requires ph, do, codmn, nh3n and tp (and tn when it counts).
const (
	DefaultWaterTimezone = "Asia/Shanghai" // LoadLocation needs no tzdata for it
	DefaultTarget        = "III"           // water.ClassIII, the reference class of the exceedance multiple
	DefaultWindow        = water.DefaultWindow
	DefaultMinSamples    = water.DefaultMinSamples
	DefaultWaterLateness = water.DefaultLateness
)

// Averaged reports whether a water section at site averages quantity: a parameter
// the water Aggregator averages, at a section's site.
func (w *Water) Averaged(site, quantity string) bool {
	if !slices.Contains(waterParams, quantity) {
		return false
	}
	for _, s := range w.Sections {
		if s.Site == site {
			return true
		}
	}
	return false
}

var (
	waterbodies = []string{string(water.River), string(water.Lake), string(water.Reservoir)}
	// waterParams are the parameters the water Aggregator averages, the only ones
	// Required may name (water.Takes, in water.Params order; check delegates to the
	// package).
	waterParams = func() []string {
		var ps []string
		for _, p := range water.Params() {
			if water.Takes(string(p)) {
				ps = append(ps, string(p))
			}
		}
		return ps
	}()
)

// defaults fills w's unset fields; isSet reports whether the file set a path, so that
// a written 0 stays 0 and is reported (the package would read 0 as its default).
func (w *Water) defaults(isSet func(string) bool) {
	if len(w.Sections) == 0 {
		return
	}
	setDefault(&w.Timezone, DefaultWaterTimezone, false)
	for i := range w.Sections {
		s := &w.Sections[i]
		p := indexPath("water.sections", i) + "."
		setDefault(&s.Target, DefaultTarget, false)
		setDefault(&s.Window, DefaultWindow, isSet(p+"window"))
		setDefault(&s.MinSamples, DefaultMinSamples, isSet(p+"min_samples"))
		setDefault(&s.Lateness, DefaultWaterLateness, isSet(p+"lateness"))
	}
}

// Aggregator returns the gateway/water configuration of section i, or an error naming
// the first field that cannot be converted (Validate reports them all). Required stays
// nil when the file leaves it out, which selects the package's default.
func (w *Water) Aggregator(i int) (water.Config, error) {
	loc, err := LoadLocation(w.Timezone)
	if err != nil {
		return water.Config{}, fmt.Errorf("timezone: %w", err)
	}
	s := w.Sections[i]
	p := indexPath("sections", i)
	target, err := water.ParseClass(s.Target)
	if err != nil {
		return water.Config{}, fmt.Errorf("%s.target: %w", p, err)
	}
	var required []water.Param
	if s.Required != nil {
		required = []water.Param{}
	}
	for _, r := range s.Required {
		required = append(required, water.Param(r))
	}
	return water.Config{
		Site:         s.Site,
		Waterbody:    water.Waterbody(s.Waterbody),
		Target:       target,
		TNInClass:    s.TNInClass,
		DOExceedance: s.DOExceedance,
		Window:       s.Window,
		MinSamples:   s.MinSamples,
		Required:     required,
		Location:     loc,
		Lateness:     s.Lateness,
	}, nil
}

// validateWater checks c.Water, then hands every section without a problem to
// water.NewAggregator, so that nothing the package refuses passes envgate check.
func (c *Config) validateWater() problems {
	var ps problems
	w := &c.Water
	if len(w.Sections) == 0 {
		return nil
	}
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	if _, err := LoadLocation(w.Timezone); err != nil {
		add("water.timezone", "%v (an IANA name such as Asia/Shanghai)", err)
	}
	global := len(ps) == 0

	sites := map[string]string{}
	for i, s := range w.Sections {
		p := indexPath("water.sections", i)
		before := len(ps)
		switch {
		case s.Site == "":
			add(p+".site", "required: the site whose devices' %s readings are classified", andList(waterParams))
		case reading.CheckName(s.Site) != nil:
			add(p+".site", "%v", reading.CheckName(s.Site))
		default:
			if first, dup := sites[s.Site]; dup {
				add(p+".site", "site %q is already a water section (%s)", s.Site, first)
			} else {
				sites[s.Site] = p
			}
		}
		switch {
		case s.Waterbody == "":
			add(p+".waterbody", "required: %s (GB 3838-2002 Table 1 has other TP limits for lakes and reservoirs)", orList(waterbodies))
		case !slices.Contains(waterbodies, s.Waterbody):
			add(p+".waterbody", "%q is not a water body: %s", s.Waterbody, orList(waterbodies))
		}
		if t, err := water.ParseClass(s.Target); err != nil || t < water.ClassI || t > water.ClassV {
			add(p+".target", "%q is not a GB 3838-2002 class a section can be given: I, II, III, IV or V", s.Target)
		}
		switch {
		case s.Window < time.Minute:
			add(p+".window", "must be at least 1m")
		case (24*time.Hour)%s.Window != 0:
			add(p+".window", "must divide 24h (such as 1h, 2h, 4h, 6h or 24h): windows tile the local day")
		}
		if s.MinSamples < 1 {
			add(p+".min_samples", "must be at least 1")
		}
		if s.Lateness <= 0 {
			add(p+".lateness", "must be > 0")
		}
		seen := map[string]int{}
		for j, r := range s.Required {
			pp := indexPath(p+".required", j)
			switch first, dup := seen[r]; {
			case !slices.Contains(waterParams, r):
				add(pp, "%q is not a parameter the section averages: %s", r, orList(waterParams))
			case dup:
				add(pp, "%s is listed twice (first at required[%d])", r, first)
			case r == string(water.ParamTN) && water.Waterbody(s.Waterbody) == water.River:
				add(pp, "tn has no class in a river (GB 3838-2002 gives TN limits for lakes and reservoirs only)")
			default:
				seen[r] = j
			}
		}
		if global && len(ps) == before {
			ps = appendNew(ps, w.check(i))
		}
	}
	return ps
}

// check builds section i's water.Config and reports what water.NewAggregator refuses,
// each against the config key it comes from.
func (w *Water) check(i int) problems {
	var ps problems
	p := indexPath("water.sections", i)
	cfg, err := w.Aggregator(i)
	if err == nil {
		_, err = water.NewAggregator(cfg)
	}
	for _, e := range flatten(err) {
		field, msg, _ := strings.Cut(e.Error(), ": ")
		path := p
		switch key, _, _ := strings.Cut(field, "["); key {
		case "site", "waterbody", "target", "window", "min_samples", "lateness", "required":
			path = p + "." + field
		case "timezone":
			path = "water.timezone"
		case "sections":
			path = "water." + field
		default:
			msg = e.Error()
		}
		ps.add(path, 0, "%s", msg)
	}
	return ps
}
