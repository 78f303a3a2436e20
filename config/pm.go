package config

import (
	"slices"
	"strings"
	"time"
)

// PMSensor is one particulate-matter sensor on a UART (9600 8N1, docs/engineering-notes.md §3): a
// Plantower PMS5003 or PMS7003, or a Nova Fitness SDS011. cmd converts it into
// drivers/pm's Config.
type PMSensor struct {
	Name      string        `yaml:"name"`       // required, CheckName, unique among devices, Modbus devices, mqtt sources and pm sensors
	Site      string        `yaml:"site"`       // default gateway.site; required after defaults
	Port      string        `yaml:"port"`       // required: the serial device, unique among pm sensors and serial buses
	Model     string        `yaml:"model"`      // required: pms5003|pms7003|sds011
	Mode      string        `yaml:"mode"`       // PMS: active|passive, default active; SDS011: query|active, default query
	Interval  time.Duration `yaml:"interval"`   // time between readings; default 10s; >= 1s
	Values    string        `yaml:"values"`     // PMS only: atmospheric|cf1; default atmospheric
	Stale     time.Duration `yaml:"stale"`      // no valid frame for this long is a failure; default 3×interval, at least 30s
	DutyCycle DutyCycle     `yaml:"duty_cycle"` // zero: the sensor runs all the time
	Warmup    time.Duration `yaml:"warmup"`     // readings discarded after start and wake-up; default 30s; >= 0
}

// DutyCycle sleeps a sensor between measurements to spare its laser and fan (an
// SDS011's laser lasts about 8000 h running continuously, docs/engineering-notes.md §3.2). Work and
// Sleep are both zero (always on) or both > 0; Work counts from wake-up, so it
// includes Warmup and must be longer.
type DutyCycle struct {
	Work  time.Duration `yaml:"work"`  // how long the sensor runs in each cycle
	Sleep time.Duration `yaml:"sleep"` // how long it then sleeps
}

// PM sensor models, modes and values.
const (
	ModelPMS5003 = "pms5003" // Plantower PMS5003 (also PMS1003, PMSA003)
	ModelPMS7003 = "pms7003" // Plantower PMS7003
	ModelSDS011  = "sds011"  // Nova Fitness SDS011

	ModeActive  = "active"  // the sensor sends frames by itself (both makers)
	ModePassive = "passive" // Plantower: the gateway asks for each frame
	ModeQuery   = "query"   // SDS011: the gateway asks for each frame

	ValuesAtmospheric = "atmospheric" // Plantower's "atmospheric environment" values, for ambient air
	ValuesCF1         = "cf1"         // Plantower's CF=1 "standard particle" values, for factory settings
)

// PM defaults, documented in docs/config.md.
const (
	DefaultPMSMode        = ModeActive // the Plantower factory setting (docs/engineering-notes.md §3.1)
	DefaultSDS011Mode     = ModeQuery  // ask each time, so the interval is the gateway's, not the sensor's 1 s
	DefaultPMInterval     = 10 * time.Second
	DefaultPMValues       = ValuesAtmospheric // docs/engineering-notes.md §3.1: CF=1 is meant for factory environments
	DefaultWarmup         = 30 * time.Second  // the PMS5003 manual asks for at least 30 s after wake-up (docs/engineering-notes.md §3.1)
	DefaultStaleIntervals = 3                 // stale defaults to this many intervals...
	MinStale              = 30 * time.Second  // ...and at least this
)

// minPMInterval is the shortest interval: the sensors measure about once a second
// (SDS011: 1 report/s, docs/engineering-notes.md §3.2).
const minPMInterval = time.Second

// pmModes lists the modes of each model.
var pmModes = map[string][]string{
	ModelPMS5003: {ModeActive, ModePassive},
	ModelPMS7003: {ModeActive, ModePassive},
	ModelSDS011:  {ModeQuery, ModeActive},
}

var (
	pmModels  = []string{ModelPMS5003, ModelPMS7003, ModelSDS011}
	pmsValues = []string{ValuesAtmospheric, ValuesCF1}
)

// isPlantower reports whether model is a Plantower sensor.
func isPlantower(model string) bool { return model == ModelPMS5003 || model == ModelPMS7003 }

// defaults fills a pm sensor's unset fields; p is its path with a final ".".
func (s *PMSensor) defaults(p, site string, isSet func(string) bool) {
	setDefault(&s.Site, site, false)
	switch {
	case isPlantower(s.Model):
		setDefault(&s.Mode, DefaultPMSMode, false)
	case s.Model == ModelSDS011:
		setDefault(&s.Mode, DefaultSDS011Mode, false)
	}
	setDefault(&s.Interval, DefaultPMInterval, isSet(p+"interval"))
	if isPlantower(s.Model) {
		setDefault(&s.Values, DefaultPMValues, false)
	}
	setDefault(&s.Stale, max(DefaultStaleIntervals*s.Interval, MinStale), isSet(p+"stale"))
	setDefault(&s.Warmup, DefaultWarmup, isSet(p+"warmup"))
}

// validatePM checks c.PM. names maps every device and source name seen so far to its
// path, as for validateMQTT.
func (c *Config) validatePM(names map[string]string) problems {
	var ps problems
	add := func(path, format string, args ...any) { ps.add(path, 0, format, args...) }
	ports := map[string]string{} // serial port → path of its first user
	for i, b := range c.Buses {
		if b.Serial != nil && b.Serial.Port != "" {
			if _, dup := ports[b.Serial.Port]; !dup {
				ports[b.Serial.Port] = indexPath("buses", i) + ".serial"
			}
		}
	}
	for i, s := range c.PM {
		p := indexPath("pm", i)
		ps.deviceName(p, s.Name, names)
		ps.site(p+".site", s.Site, siteFromGateway)
		switch first, dup := ports[s.Port]; {
		case s.Port == "":
			add(p+".port", "required")
		case dup:
			add(p+".port", "%s is also used by %s; one program owns a serial port", s.Port, first)
		default:
			ports[s.Port] = p
		}

		modes, known := pmModes[s.Model]
		switch {
		case s.Model == "":
			add(p+".model", "required: one of %s", strings.Join(pmModels, ", "))
		case !known:
			add(p+".model", "must be one of %s", strings.Join(pmModels, ", "))
		case s.Mode == ModePassive && !isPlantower(s.Model):
			add(p+".mode", "must be %s for %s (its passive mode is called %s)", strings.Join(modes, " or "), s.Model, ModeQuery)
		case s.Mode == ModeQuery && isPlantower(s.Model):
			add(p+".mode", "must be %s for %s (its query mode is called %s)", strings.Join(modes, " or "), s.Model, ModePassive)
		case !slices.Contains(modes, s.Mode):
			add(p+".mode", "must be %s for %s", strings.Join(modes, " or "), s.Model)
		}
		switch {
		case !known:
		case !isPlantower(s.Model) && s.Values != "":
			add(p+".values", "is for Plantower sensors (%s, %s); the %s reports one set of values", ModelPMS5003, ModelPMS7003, s.Model)
		case isPlantower(s.Model) && !slices.Contains(pmsValues, s.Values):
			add(p+".values", "must be %s (for ambient air) or %s", ValuesAtmospheric, ValuesCF1)
		}
		if s.Interval < minPMInterval {
			add(p+".interval", "must be at least %v: the sensors measure about once a second", minPMInterval)
		}
		switch {
		case s.Stale < MinStale:
			add(p+".stale", "must be at least %v", MinStale)
		case s.Interval > 0 && s.Stale <= s.Interval:
			add(p+".stale", "must be longer than interval (%v)", s.Interval)
		}
		if s.Warmup < 0 {
			add(p+".warmup", "must be >= 0")
		}
		dc, dp := s.DutyCycle, p+".duty_cycle"
		switch {
		case dc.Work < 0:
			add(dp+".work", "must be > 0")
		case dc.Sleep < 0:
			add(dp+".sleep", "must be > 0")
		case dc.Work == 0 && dc.Sleep > 0:
			add(dp+".work", "must be > 0 with sleep: set both work and sleep, or neither to run all the time")
		case dc.Work > 0 && dc.Sleep == 0:
			add(dp+".sleep", "must be > 0 with work: set both work and sleep, or neither to run all the time")
		case dc.Work > 0 && s.Warmup >= 0 && dc.Work <= s.Warmup:
			add(dp+".work", "must be longer than warmup (%v): work counts from wake-up, and readings during warmup are discarded", s.Warmup)
		}
	}
	return ps
}
