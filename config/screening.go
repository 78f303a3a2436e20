package config

import (
	"math"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/screen"
)

// Screening configures data-quality screening (gateway/screen; docs/data-model.md,
// "Data-quality screening"): every reading of a quantity with default rules is
// screened unless turned off; channels adjust or turn off the rules of a device, or of
// one of its quantities.
type Screening struct {
	Off bool `yaml:"off"` // no screening at all
	// UseSuspect lets flagged readings into the derivations, as Suspect (which makes
	// what they enter Suspect) instead of leaving them out.
	UseSuspect bool               `yaml:"use_suspect"`
	Hold       time.Duration      `yaml:"hold"` // how long a jump waits for the samples that decide it when its channel falls silent; default 10m
	Channels   []ScreeningChannel `yaml:"channels"`
}

// ScreeningChannel sets the rules of a device's quantity (or of all its quantities).
// An unset field keeps the quantity's default.
type ScreeningChannel struct {
	Device          string          `yaml:"device"`           // required
	Quantity        string          `yaml:"quantity"`         // a catalog quantity; empty: every quantity of the device
	Off             bool            `yaml:"off"`              // no screening for this channel
	Low             *float64        `yaml:"low"`              // flag values below (site limits or the sensor's range)
	High            *float64        `yaml:"high"`             // flag values above
	Resolution      *float64        `yaml:"resolution"`       // changes up to this are no change, for the flatline
	Flatline        *time.Duration  `yaml:"flatline"`         // flag after unchanged this long; 0 turns it off
	FlatlineSamples *int            `yaml:"flatline_samples"` // ... and at least this many samples; default 3
	Spike           *float64        `yaml:"spike"`            // a jump larger than this between samples is a candidate spike; 0 turns it off
	SpikeWithin     *int            `yaml:"spike_within"`     // samples that may come back to the level before it; default 2
	Drift           *ScreeningDrift `yaml:"drift"`
}

// ScreeningDrift judges a channel against a reference: a co-located device measuring
// the same quantity, or a check device whose readings check a known value.
type ScreeningDrift struct {
	Max       float64       `yaml:"max"`       // required, > 0: the largest mean difference (pair) or check error (check)
	Reference string        `yaml:"reference"` // the co-located device; or
	Check     string        `yaml:"check"`     // the check device (a daily zero or span check)
	Expected  *float64      `yaml:"expected"`  // the value the check device should read; required with check
	Window    time.Duration `yaml:"window"`    // pair: the mean's window; default 24h
	Match     time.Duration `yaml:"match"`     // pair: how old the reference reading may be; default 2m
}

// Screening defaults, documented in docs/config.md.
const (
	DefaultScreeningHold = screen.DefaultHold
	DefaultDriftWindow   = 24 * time.Hour
)

func (s *Screening) defaults() {
	setDefault(&s.Hold, DefaultScreeningHold, false)
	for i := range s.Channels {
		if d := s.Channels[i].Drift; d != nil {
			setDefault(&d.Window, DefaultDriftWindow, false)
		}
	}
}

func (s *Screening) validate(ps *problems) {
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	if s.Hold <= 0 {
		add("screening.hold", "must be > 0")
	}
	seen := map[[2]string]int{}
	for i, c := range s.Channels {
		p := indexPath("screening.channels", i)
		if c.Device == "" {
			add(p+".device", "required")
		}
		if c.Quantity != "" {
			if _, ok := reading.Lookup(c.Quantity); !ok {
				add(p+".quantity", "unknown quantity %q (docs/data-model.md lists them)", c.Quantity)
			}
		}
		if first, dup := seen[[2]string{c.Device, c.Quantity}]; dup {
			add(p, "device %q quantity %q is already set at screening.channels[%d]", c.Device, c.Quantity, first)
		} else {
			seen[[2]string{c.Device, c.Quantity}] = i
		}
		if c.Low != nil && c.High != nil && *c.Low >= *c.High {
			add(p+".high", "must be above low")
		}
		for _, f := range []struct {
			key string
			v   *float64
		}{{"low", c.Low}, {"high", c.High}, {"resolution", c.Resolution}, {"spike", c.Spike}} {
			if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
				add(p+"."+f.key, "must be a finite number")
			}
		}
		if c.Resolution != nil && *c.Resolution < 0 {
			add(p+".resolution", "must be >= 0")
		}
		if c.Spike != nil && *c.Spike < 0 {
			add(p+".spike", "must be >= 0 (0 turns the rule off)")
		}
		if c.Flatline != nil && *c.Flatline < 0 {
			add(p+".flatline", "must be >= 0 (0 turns the rule off)")
		}
		if c.FlatlineSamples != nil && *c.FlatlineSamples < 2 {
			add(p+".flatline_samples", "must be at least 2")
		}
		if c.SpikeWithin != nil && (*c.SpikeWithin < 1 || *c.SpikeWithin > 10) {
			add(p+".spike_within", "must be between 1 and 10 (readings held back)")
		}
		if d := c.Drift; d != nil {
			dp := p + ".drift"
			if !(d.Max > 0) || math.IsInf(d.Max, 0) {
				add(dp+".max", "required, > 0")
			}
			switch {
			case (d.Reference == "") == (d.Check == ""):
				add(dp, "needs exactly one of reference (a co-located device) or check (a check device)")
			case d.Reference == c.Device || d.Check == c.Device:
				add(dp, "the reference must be another device")
			case d.Check != "" && d.Expected == nil:
				add(dp+".expected", "required with check: the value the check device should read")
			}
			if d.Reference != "" && d.Window <= 0 {
				add(dp+".window", "must be > 0")
			}
			if d.Match < 0 {
				add(dp+".match", "must be >= 0")
			}
		}
	}
}

// Rules returns the screening rules of a channel (ok false: not screened): the
// quantity's defaults (screen.Defaults), overridden by the device's channel entry and
// then by the entry for the device and quantity.
func (s *Screening) Rules(k screen.Key) (screen.Rules, bool) {
	if s.Off {
		return screen.Rules{}, false
	}
	r := screen.Defaults(k.Quantity)
	for _, q := range []string{"", k.Quantity} {
		for _, c := range s.Channels {
			if c.Device != k.Device || c.Quantity != q {
				continue
			}
			if c.Off {
				return screen.Rules{}, false
			}
			set := func(dst *float64, v *float64) {
				if v != nil {
					*dst = *v
				}
			}
			set(&r.Low, c.Low)
			set(&r.High, c.High)
			set(&r.Resolution, c.Resolution)
			set(&r.SpikeJump, c.Spike)
			if c.Flatline != nil {
				r.FlatFor = *c.Flatline
			}
			if c.FlatlineSamples != nil {
				r.FlatSamples = *c.FlatlineSamples
			}
			if c.SpikeWithin != nil {
				r.SpikeWithin = *c.SpikeWithin
			}
			if d := c.Drift; d != nil {
				r.DriftMax, r.DriftWindow = d.Max, d.Window
				r.Reference = screen.Reference{Device: d.Reference, Match: d.Match}
				if d.Check != "" {
					r.Reference = screen.Reference{Device: d.Check, Check: true}
					if d.Expected != nil {
						r.Reference.Expected = *d.Expected
					}
				}
			}
		}
	}
	return r, !r.Off()
}

// References returns the devices some channel's drift is judged against (a reference
// or a check device), at the site of the channel each serves.
func (s *Screening) References() []string {
	var out []string
	for _, c := range s.Channels {
		if d := c.Drift; d != nil {
			out = append(out, d.Reference+d.Check)
		}
	}
	return out
}

// Reach is how far back a channel's verdict can depend on its samples: the longest
// flatline or drift window of the defaults and of the channels.
func (s *Screening) Reach() time.Duration {
	d := screen.DefaultReach()
	for _, c := range s.Channels {
		if c.Flatline != nil {
			d = max(d, *c.Flatline)
		}
		if c.Drift != nil {
			d = max(d, c.Drift.Window)
		}
	}
	return d
}
