package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/reading"
)

// Air configures the air-quality derivations: which devices' so2, no2, co, o3, pm10
// and pm25 readings are averaged into validity-checked hourly and daily means and
// rated as an AQI (docs/config.md, gateway/air).
type Air struct {
	Edition        string `yaml:"edition"`          // AQI method: cn-2026 (HJ 633-2026) | cn-2012 | us-2024; default cn-2026
	Timezone       string `yaml:"timezone"`         // IANA zone of the clock hours and calendar days; default Asia/Shanghai
	AboveTop       string `yaml:"above_top"`        // a Chinese IAQI above the 500 breakpoint: cap | extrapolate; default cap [U]
	MinMinutesHour int    `yaml:"min_minutes_hour"` // minutes of sampling a valid 1-h mean needs; default 45 (GB 3095-2026 Table 4)
	MinHoursDay    int    `yaml:"min_hours_day"`    // valid 1-h means a daily mean needs; default 20 (Table 4)
	MinHours8h     int    `yaml:"min_hours_8h"`     // valid 1-h means an 8-h mean needs of its 8; default 6 (Table 4)
	MinWindowsDay  int    `yaml:"min_windows_day"`  // valid 8-h means a day's largest 8-h mean needs of 17; default 14 [U]
	// Monthly and yearly statistics (docs/standards.md §2.8, §2.9a): valid daily values a
	// month's mean or percentile needs, default 27 [U]; in February, default 25 [U]; a
	// year's, besides each month's minimum, default 324 (GB 3095-2026 Table 4).
	MinDaysMonth    int           `yaml:"min_days_month"`
	MinDaysFebruary int           `yaml:"min_days_february"`
	MinDaysYear     int           `yaml:"min_days_year"`
	Lateness        time.Duration `yaml:"lateness"` // how long an hour waits for late samples; default 1m
	Sites           []AirSite     `yaml:"sites"`
}

// AirSite is one air monitor: a device whose pollutant readings are averaged and rated
// at a site.
type AirSite struct {
	Device     string        `yaml:"device"`     // required, unique among air.sites: the device sending the pollutants
	Site       string        `yaml:"site"`       // default: the configured device's site, else gateway.site
	Sample     time.Duration `yaml:"sample"`     // sampling time each reading stands for; default: the configured device's interval, else 1m
	Pollutants []string      `yaml:"pollutants"` // the monitoring plan; default all six: so2, no2, co, o3, pm10, pm25
}

// Air defaults, documented in docs/config.md. The validity thresholds default to
// air.DefaultValidity (GB 3095-2026 Table 4, and HJ 663 for min_windows_day [U]).
const (
	DefaultAirEdition  = "cn-2026"       // air.HJ633_2026, in force since 2026-03-01
	DefaultAirTimezone = "Asia/Shanghai" // China Standard Time; LoadLocation needs no tzdata for it
	DefaultAboveTop    = "cap"           // air.CapAt500: 500 with the beyond-scale flag, never a silent extrapolation
	DefaultAirLateness = air.DefaultLateness
	DefaultAirSample   = air.DefaultSample // for a device the file does not configure (MQTT)
)

// aboveTops lists the choices of Air.AboveTop.
var aboveTops = []air.AboveTop{air.CapAt500, air.Extrapolate}

// airPollutants returns the catalog names of the six pollutants, in report order.
func airPollutants() []string {
	var names []string
	for _, p := range air.Pollutants() {
		names = append(names, p.Quantity())
	}
	return names
}

// defaults fills a's unset fields; isSet reports whether the file set a path, so that
// a written 0 stays 0 and is reported (the package would read 0 as its default).
func (a *Air) defaults(c *Config, isSet func(string) bool) {
	if len(a.Sites) == 0 {
		return
	}
	v := air.DefaultValidity()
	setDefault(&a.Edition, DefaultAirEdition, false)
	setDefault(&a.Timezone, DefaultAirTimezone, false)
	setDefault(&a.AboveTop, DefaultAboveTop, false)
	setDefault(&a.MinMinutesHour, int(v.MinCoverage/time.Minute), isSet("air.min_minutes_hour"))
	setDefault(&a.MinHoursDay, v.MinHours, isSet("air.min_hours_day"))
	setDefault(&a.MinHours8h, v.Min8h, isSet("air.min_hours_8h"))
	setDefault(&a.MinWindowsDay, v.MinWindows, isSet("air.min_windows_day"))
	setDefault(&a.MinDaysMonth, v.MinDaysMonth, isSet("air.min_days_month"))
	setDefault(&a.MinDaysFebruary, v.MinDaysFebruary, isSet("air.min_days_february"))
	setDefault(&a.MinDaysYear, v.MinDaysYear, isSet("air.min_days_year"))
	setDefault(&a.Lateness, DefaultAirLateness, isSet("air.lateness"))
	sites, intervals := c.deviceSites(), c.deviceIntervals()
	for i := range a.Sites {
		s := &a.Sites[i]
		p := indexPath("air.sites", i) + "."
		setDefault(&s.Site, sites[s.Device], false)
		setDefault(&s.Site, c.Gateway.Site, false)
		setDefault(&s.Sample, intervals[s.Device], isSet(p+"sample"))
		setDefault(&s.Sample, DefaultAirSample, isSet(p+"sample"))
		if s.Pollutants == nil && !isSet(p+"pollutants") {
			s.Pollutants = airPollutants()
		}
	}
}

// deviceIntervals maps the name of every configured device (simulated, Modbus, pm) to
// its poll interval, 0 where the file does not give a valid one.
func (c *Config) deviceIntervals() map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, d := range c.Devices {
		m[d.Name] = max(d.Interval, 0)
	}
	for _, b := range c.Buses {
		for _, d := range b.Devices {
			m[d.Name] = max(d.Interval, 0)
		}
	}
	for _, s := range c.PM {
		m[s.Name] = max(s.Interval, 0)
	}
	return m
}

// Aggregator returns the gateway/air configuration of monitor i, or an error naming
// the first field that cannot be converted (Validate reports them all).
func (a *Air) Aggregator(i int) (air.Config, error) {
	loc, err := LoadLocation(a.Timezone)
	if err != nil {
		return air.Config{}, fmt.Errorf("timezone: %w", err)
	}
	ed, err := air.ParseEdition(a.Edition)
	if err != nil {
		return air.Config{}, fmt.Errorf("edition: %w", err)
	}
	above, err := parseAboveTop(a.AboveTop)
	if err != nil {
		return air.Config{}, fmt.Errorf("above_top: %w", err)
	}
	s := a.Sites[i]
	var plan []air.Pollutant
	if s.Pollutants != nil {
		plan = []air.Pollutant{}
	}
	for j, name := range s.Pollutants {
		p, ok := air.PollutantOf(name)
		if !ok {
			return air.Config{}, fmt.Errorf("%s: %w", indexPath(indexPath("sites", i)+".pollutants", j), errNotPollutant(name))
		}
		plan = append(plan, p)
	}
	return air.Config{
		Site: s.Site, Device: s.Device,
		Method: air.Method{Edition: ed, AboveTop: above, Plan: plan},
		Validity: air.Validity{
			MinCoverage: time.Duration(a.MinMinutesHour) * time.Minute,
			MinHours:    a.MinHoursDay,
			Min8h:       a.MinHours8h,
			MinWindows:  a.MinWindowsDay,

			MinDaysMonth:    a.MinDaysMonth,
			MinDaysFebruary: a.MinDaysFebruary,
			MinDaysYear:     a.MinDaysYear,
		},
		Location: loc,
		Sample:   s.Sample,
		Lateness: a.Lateness,
	}, nil
}

// parseAboveTop parses "cap" or "extrapolate" (air.AboveTop.String).
func parseAboveTop(s string) (air.AboveTop, error) {
	for _, t := range aboveTops {
		if s == t.String() {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%q is not a choice: cap (500, flagged beyond scale) or extrapolate", s)
}

func errNotPollutant(name string) error {
	return fmt.Errorf("%q is not an AQI pollutant: %s", name, orList(airPollutants()))
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Limits of the validity thresholds: an hour has 60 minutes, a day 24 hourly means, an
// 8-h mean 8, and a day 17 windows of 8 hours starting 00:00 to 16:00 (air.Validity).
const (
	maxMinutesHour = 60
	maxHoursDay    = 24
	maxHours8h     = 8
	maxWindowsDay  = 17
)

// validateAir checks c.Air, then hands every monitor without a problem to
// air.NewAggregator, so that nothing the package refuses passes envgate check.
func (c *Config) validateAir(inFile func(string) bool) problems {
	var ps problems
	a := &c.Air
	if len(a.Sites) == 0 {
		return nil
	}
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	if _, err := LoadLocation(a.Timezone); err != nil {
		add("air.timezone", "%v (an IANA name such as Asia/Shanghai)", err)
	}
	if _, err := air.ParseEdition(a.Edition); err != nil {
		var keys []string
		for _, e := range air.Editions() {
			keys = append(keys, e.String())
		}
		add("air.edition", "%q is not an AQI edition: %s", a.Edition, orList(keys))
	}
	if _, err := parseAboveTop(a.AboveTop); err != nil {
		add("air.above_top", "%v", err)
	}
	for _, f := range []struct {
		key, what string
		v, max    int
	}{
		{"min_minutes_hour", "minutes of sampling in an hour", a.MinMinutesHour, maxMinutesHour},
		{"min_hours_day", "valid 1-h means of a day", a.MinHoursDay, maxHoursDay},
		{"min_hours_8h", "valid 1-h means of an 8-h window", a.MinHours8h, maxHours8h},
		{"min_windows_day", "valid 8-h means of a day's 17 windows", a.MinWindowsDay, maxWindowsDay},
		{"min_days_month", "valid daily values of a month; every month but February has 30 days or more", a.MinDaysMonth, air.MaxMinDaysMonth},
		{"min_days_february", "valid daily values of February, 28 days in a common year", a.MinDaysFebruary, air.MaxMinDaysFebruary},
		{"min_days_year", "valid daily values of a year", a.MinDaysYear, air.MaxMinDaysYear},
	} {
		if f.v < 1 || f.v > f.max {
			add("air."+f.key, "must be between 1 and %d (%s)", f.max, f.what)
		}
	}
	if a.Lateness <= 0 {
		add("air.lateness", "must be > 0")
	}
	global := len(ps) == 0

	devices := map[string]string{}
	for i, s := range a.Sites {
		p := indexPath("air.sites", i)
		before := len(ps)
		switch {
		case s.Device == "":
			add(p+".device", "required: the device whose so2, no2, co, o3, pm10 or pm25 readings are averaged")
		case reading.CheckName(s.Device) != nil:
			add(p+".device", "%v", reading.CheckName(s.Device))
		default:
			if first, dup := devices[s.Device]; dup {
				add(p+".device", "device %q is already an air monitor (%s)", s.Device, first)
			} else {
				devices[s.Device] = p
			}
		}
		ps.site(p+".site", s.Site, siteFromDevice)
		switch {
		case s.Sample <= 0:
			add(p+".sample", "must be > 0")
		case s.Sample > time.Hour && !inFile(p+".sample"):
			add(p+".sample", "must be at most 1h: the device's interval (%v) leaves its hours without a valid 1-h mean; set sample to say what each reading stands for", s.Sample)
		case s.Sample > time.Hour:
			add(p+".sample", "must be at most 1h: a reading stands for at most its own hour")
		}
		if s.Pollutants != nil && len(s.Pollutants) == 0 {
			add(p+".pollutants", "must not be empty: leave it out for all six (%s)", strings.Join(airPollutants(), ", "))
		}
		seen := map[air.Pollutant]int{}
		for j, name := range s.Pollutants {
			pp := indexPath(p+".pollutants", j)
			q, ok := air.PollutantOf(name)
			if !ok {
				add(pp, "%v", errNotPollutant(name))
				continue
			}
			if first, dup := seen[q]; dup {
				add(pp, "%s is listed twice (first at pollutants[%d])", name, first)
				continue
			}
			seen[q] = j
		}
		if global && len(ps) == before {
			ps = appendNew(ps, a.check(i))
		}
	}
	return ps
}

// check builds monitor i's air.Config and reports what air.NewAggregator refuses,
// each against the config key it comes from.
func (a *Air) check(i int) problems {
	var ps problems
	p := indexPath("air.sites", i)
	cfg, err := a.Aggregator(i)
	if err == nil {
		_, err = air.NewAggregator(cfg)
	}
	for _, e := range flatten(err) {
		field, msg, _ := strings.Cut(e.Error(), ": ")
		path := p
		switch {
		case field == "site", field == "device", field == "sample":
			path = p + "." + field
		case strings.HasPrefix(field, "method.plan"):
			path = p + ".pollutants" + strings.TrimPrefix(field, "method.plan")
		case strings.HasPrefix(field, "sites["):
			path = "air." + field
		default:
			if key, ok := airKeys[field]; ok {
				path = "air." + key
			} else {
				msg = e.Error()
			}
		}
		ps.add(path, 0, "%s", msg)
	}
	return ps
}

// airKeys maps the fields of air.NewAggregator's errors to the keys of the air block.
var airKeys = map[string]string{
	"timezone":                   "timezone",
	"edition":                    "edition",
	"method.edition":             "edition",
	"above_top":                  "above_top",
	"method.above_top":           "above_top",
	"validity.min_coverage":      "min_minutes_hour",
	"validity.min_hours":         "min_hours_day",
	"validity.min_8h":            "min_hours_8h",
	"validity.min_windows":       "min_windows_day",
	"validity.min_days_month":    "min_days_month",
	"validity.min_days_february": "min_days_february",
	"validity.min_days_year":     "min_days_year",
	"lateness":                   "lateness",
}

// appendNew appends the problems of more that ps does not hold yet: a package refusing
// a block-wide value would otherwise report it once per monitor.
func appendNew(ps, more problems) problems {
	for _, m := range more {
		if !slices.ContainsFunc(ps, func(p *Problem) bool { return p.Path == m.Path && p.Msg == m.Msg }) {
			ps = append(ps, m)
		}
	}
	return ps
}

// flatten returns the errors joined in err, recursively; nil for nil.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
