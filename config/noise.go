package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
)

// Noise configures the noise monitors: which devices' A-weighted levels are averaged
// into LAeq, statistical levels and day/night levels, and judged against the GB 3096
// limits of their functional zone (docs/config.md, gateway/noise).
type Noise struct {
	Timezone   string `yaml:"timezone"`    // IANA zone of every window and of day/night; default Asia/Shanghai
	DayStart   string `yaml:"day_start"`   // "HH:MM" local; default 06:00 (GB 3096-2008 §3.2)
	NightStart string `yaml:"night_start"` // "HH:MM" local; default 22:00
	// The EU day, evening and night of Lden and its parts, "HH:00" local; default
	// 07:00/19:00/23:00 (docs/standards.md §1.3: the evening may be shortened).
	LdenDayStart     string        `yaml:"lden_day_start"`
	LdenEveningStart string        `yaml:"lden_evening_start"`
	LdenNightStart   string        `yaml:"lden_night_start"`
	MinValidHour     float64       `yaml:"min_valid_hour"`   // valid-data fraction below which a minute or hour is suspect; default 0.75 [U]
	MinValidPeriod   float64       `yaml:"min_valid_period"` // the same for a day or night period; default 0.75 [U]
	Lateness         time.Duration `yaml:"lateness"`         // how long a window waits for late samples; default 5s
	CloseAfter       time.Duration `yaml:"close_after"`      // wall time of silence after which a device's windows close anyway; default 30m
	Sites            []NoiseSite   `yaml:"sites"`
}

// NoiseSite is one noise monitor: a device whose levels are judged at a site.
type NoiseSite struct {
	Device        string        `yaml:"device"`         // required: the device sending la (or laeq) readings
	Site          string        `yaml:"site"`           // default: the configured device's site, else gateway.site
	Zone          string        `yaml:"zone"`           // GB 3096 class 0|1|2|3|4a|4b; required unless both limits are set
	DayLimit      *float64      `yaml:"day_limit"`      // dB(A), overrides the zone's day limit (a quiet-district target)
	NightLimit    *float64      `yaml:"night_limit"`    // dB(A), overrides the zone's night limit
	QuietDistrict bool          `yaml:"quiet_district"` // the site is in a quiet district: its alerts page
	BurstMargin   float64       `yaml:"burst_margin"`   // dB above the night limit that makes a burst; default 15
	Sample        time.Duration `yaml:"sample"`         // interval of la samples; default 1s
	LaeqPeriod    time.Duration `yaml:"laeq_period"`    // a smart meter's own Leq period, the weight of each laeq; default: learned from its cadence
	Weather       string        `yaml:"weather"`        // device whose rain_rate and wind_speed judge validity; optional
	RainMax       float64       `yaml:"rain_max"`       // mm/h above which windows are suspect; 0: ignore rain
	WindMax       float64       `yaml:"wind_max"`       // m/s above which windows are suspect; 0: ignore wind
}

// Noise defaults, documented in docs/config.md.
const (
	DefaultNoiseTimezone = "Asia/Shanghai"
	DefaultDayStart      = "06:00"
	DefaultNightStart    = "22:00"
	// Lden's day, evening and night starts (Directive 2002/49/EC Annex I).
	DefaultLdenDayStart     = "07:00"
	DefaultLdenEveningStart = "19:00"
	DefaultLdenNightStart   = "23:00"
	DefaultCloseAfter       = 30 * time.Minute // keep in step with derive.DefaultCloseAfter
)

// ZoneCustom is the zone reported for a monitor whose two limits are both set.
const ZoneCustom = "custom"

func (n *Noise) defaults(c *Config) {
	if len(n.Sites) == 0 {
		return
	}
	setDefault(&n.Timezone, DefaultNoiseTimezone, false)
	setDefault(&n.DayStart, DefaultDayStart, false)
	setDefault(&n.NightStart, DefaultNightStart, false)
	setDefault(&n.LdenDayStart, DefaultLdenDayStart, false)
	setDefault(&n.LdenEveningStart, DefaultLdenEveningStart, false)
	setDefault(&n.LdenNightStart, DefaultLdenNightStart, false)
	setDefault(&n.CloseAfter, DefaultCloseAfter, false)
	sites := c.deviceSites()
	for i := range n.Sites {
		s := &n.Sites[i]
		setDefault(&s.Site, sites[s.Device], false)
		setDefault(&s.Site, c.Gateway.Site, false)
	}
}

// deviceSites maps the name of every device of DeviceGroups (simulated, Modbus, MQTT
// subscriptions, pm, HJ 212 stations) to its site; a name given twice keeps its first
// site that is not "". MQTT devices named by topics are not known here.
func (c *Config) deviceSites() map[string]string {
	m := map[string]string{}
	for _, g := range c.DeviceGroups() {
		for _, d := range g.Devices {
			if m[d.Name] == "" {
				m[d.Name] = d.Site
			}
		}
	}
	return m
}

// Periods returns the day/night boundaries and time zone, or an error naming the field.
func (n *Noise) Periods() (noise.Periods, error) {
	var p noise.Periods
	loc, err := LoadLocation(n.Timezone)
	if err != nil {
		return p, fmt.Errorf("timezone: %w", err)
	}
	p.Location = loc
	for _, f := range []struct {
		name, v string
		dst     *time.Duration
	}{{"day_start", n.DayStart, &p.DayStart}, {"night_start", n.NightStart, &p.NightStart}} {
		d, err := parseClock(f.v)
		if err != nil {
			return p, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = d
	}
	if err := p.Validate(); err != nil {
		return p, err
	}
	return p, nil
}

// ldenKeys are the keys of the Lden hours, in the order of noise.LdenPeriods.
var ldenKeys = [3]string{"lden_day_start", "lden_evening_start", "lden_night_start"}

// LdenPeriods returns the hours of Lden's day, evening and night. Its errors start with
// the key they are about: every key that is not a whole hour HH:00, or else what
// noise.LdenPeriods.Validate refuses (their order), so the rules live in gateway/noise.
func (n *Noise) LdenPeriods() (noise.LdenPeriods, error) {
	var p noise.LdenPeriods
	var errs []error
	for i, dst := range []*time.Duration{&p.DayStart, &p.EveningStart, &p.NightStart} {
		d, err := parseClock([]string{n.LdenDayStart, n.LdenEveningStart, n.LdenNightStart}[i])
		if err == nil {
			err = noise.CheckLdenStart(d)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ldenKeys[i], err))
		}
		*dst = d
	}
	if err := errors.Join(errs...); err != nil {
		return p, err
	}
	return p, p.Validate()
}

// LoadLocation loads an IANA time zone; Asia/Shanghai is China Standard Time, UTC+8
// without DST since 1991, and needs no tzdata on the box.
func LoadLocation(name string) (*time.Location, error) {
	if name == DefaultNoiseTimezone {
		return reading.ChinaStandardTime, nil
	}
	return time.LoadLocation(name)
}

// parseClock parses "HH:MM" (00:00 to 24:00) as an offset from local midnight.
func parseClock(s string) (time.Duration, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || n != 2 || len(s) != 5 || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// Aggregator returns the gateway/noise configuration of monitor i.
func (n *Noise) Aggregator(i int) (noise.Config, error) {
	p, err := n.Periods()
	if err != nil {
		return noise.Config{}, err
	}
	lden, err := n.LdenPeriods()
	if err != nil {
		return noise.Config{}, err
	}
	s := n.Sites[i]
	return noise.Config{
		Site: s.Site, Device: s.Device, Zone: noise.Zone(s.Zone),
		DayLimit: s.DayLimit, NightLimit: s.NightLimit,
		BurstMargin: s.BurstMargin, Sample: s.Sample, LaeqPeriod: s.LaeqPeriod,
		MinValidHour: n.MinValidHour, MinValidPeriod: n.MinValidPeriod,
		Lateness: n.Lateness, Periods: p, Lden: lden,
		RainMax: s.RainMax, WindMax: s.WindMax,
	}, nil
}

// ZoneLabel is the zone a monitor reports in metrics: its class, or ZoneCustom.
func (s NoiseSite) ZoneLabel() string {
	if s.Zone == "" {
		return ZoneCustom
	}
	return s.Zone
}

// validateNoise checks c.Noise.
func (c *Config) validateNoise() problems {
	var ps problems
	n := &c.Noise
	if len(n.Sites) == 0 {
		return nil
	}
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	if _, err := LoadLocation(n.Timezone); err != nil {
		add("noise.timezone", "%v (an IANA name such as Asia/Shanghai)", err)
	}
	clocks := true
	for _, f := range []struct{ name, v string }{{"day_start", n.DayStart}, {"night_start", n.NightStart}} {
		if _, err := parseClock(f.v); err != nil {
			add("noise."+f.name, "%v", err)
			clocks = false
		}
	}
	if _, err := n.Periods(); err != nil && clocks {
		field, msg, ok := strings.Cut(err.Error(), ": ")
		if !ok || (field != "day_start" && field != "night_start") {
			field, msg = "night_start", err.Error()
		}
		if field != "timezone" {
			add("noise."+field, "%s", msg)
		}
	}
	_, err := n.LdenPeriods()
	for _, e := range flatten(err) {
		field, msg, _ := strings.Cut(e.Error(), ": ")
		add("noise."+field, "%s", msg)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"min_valid_hour", n.MinValidHour}, {"min_valid_period", n.MinValidPeriod}} {
		if !(f.v >= 0 && f.v <= 1) {
			add("noise."+f.name, "must be a fraction between 0 and 1 (0: the default 0.75), such as 0.75 for 75 %%")
		}
	}
	if n.Lateness < 0 {
		add("noise.lateness", "must be >= 0")
	}
	if n.CloseAfter <= 0 {
		add("noise.close_after", "must be > 0")
	}
	monitors := map[string]string{}
	for i, s := range n.Sites {
		p := indexPath("noise.sites", i)
		switch {
		case s.Device == "":
			add(p+".device", "required: the device whose la or laeq readings are judged")
		case reading.CheckName(s.Device) != nil:
			add(p+".device", "%v", reading.CheckName(s.Device))
		}
		ps.site(p+".site", s.Site, siteFromDevice)
		key := s.Site + "/" + s.Device
		if first, dup := monitors[key]; dup && s.Device != "" {
			add(p+".device", "device %q at site %q is already a monitor (%s)", s.Device, s.Site, first)
		} else {
			monitors[key] = p
		}
		_, _, known := noise.Limits(noise.Zone(s.Zone))
		switch {
		case s.Zone == "" && (s.DayLimit == nil || s.NightLimit == nil):
			add(p+".zone", "required unless both day_limit and night_limit are set: GB 3096 class 0, 1, 2, 3, 4a or 4b")
		case s.Zone != "" && !known:
			add(p+".zone", "%q is not a GB 3096-2008 class: 0, 1, 2, 3, 4a or 4b", s.Zone)
		}
		for _, l := range []struct {
			name string
			v    *float64
		}{{"day_limit", s.DayLimit}, {"night_limit", s.NightLimit}} {
			if l.v != nil && !(*l.v >= 0 && *l.v <= 160) {
				add(p+"."+l.name, "must be a level between 0 and 160 dB(A)")
			}
		}
		if s.BurstMargin < 0 {
			add(p+".burst_margin", "must be >= 0 (0: the default 15 dB)")
		}
		if s.Sample < 0 {
			add(p+".sample", "must be > 0")
		}
		if s.LaeqPeriod < 0 {
			add(p+".laeq_period", "must be > 0")
		}
		if s.Weather != "" {
			if err := reading.CheckName(s.Weather); err != nil {
				add(p+".weather", "%v", err)
			}
			if s.RainMax == 0 && s.WindMax == 0 {
				add(p+".weather", "set rain_max, wind_max or both: without a threshold the weather changes nothing")
			}
		}
		if s.RainMax < 0 {
			add(p+".rain_max", "must be >= 0")
		}
		if s.WindMax < 0 {
			add(p+".wind_max", "must be >= 0")
		}
	}
	return ps
}
