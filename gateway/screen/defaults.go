package screen

import "time"

// defaults are the rules each quantity gets unless configured: a flatline on
// quantities that never hold still in the field, a spike on those a bus glitch can
// hit, both generous, to flag a dead sensor and not a calm night. They are starting
// points [U]: no standard gives them (docs/data-model.md, "Data-quality screening").
// Quantities not listed (derived series, wind, rain, the nutrients of a water
// station, which sit at the detection limit for days) get none. Range checks the
// quantity's plausible range for every quantity with a rule.
var defaults = map[string]struct {
	flatFor   time.Duration
	spikeJump float64
}{
	"la":                {15 * time.Minute, 0}, // dB(A): a meter floats by tenths even at night; noise is spiky by nature
	"laeq":              {30 * time.Minute, 0},
	"pm1":               {4 * time.Hour, 500}, // ug/m3
	"pm25":              {4 * time.Hour, 500},
	"pm10":              {4 * time.Hour, 800},
	"so2":               {12 * time.Hour, 500}, // low and integer in most cities: it holds still for hours
	"no2":               {4 * time.Hour, 500},
	"o3":                {4 * time.Hour, 500},
	"co":                {4 * time.Hour, 10}, // mg/m3
	"temperature":       {12 * time.Hour, 10},
	"humidity":          {12 * time.Hour, 30},
	"pressure":          {24 * time.Hour, 20}, // hPa
	"water_temperature": {24 * time.Hour, 5},
	"ph":                {24 * time.Hour, 2},
	"do":                {24 * time.Hour, 5},
	"conductivity":      {24 * time.Hour, 0},
}

// DefaultHold is how long a held jump waits for the samples that decide it once its
// channel has fallen silent (FlushBefore); then it stands as a step.
const DefaultHold = 10 * time.Minute

// DefaultFlatSamples is the fewest samples a flatline needs by default, so that two
// samples hours apart are never one.
const DefaultFlatSamples = 3

// Defaults returns the default rules of quantity (Off if it has none).
func Defaults(quantity string) Rules {
	r := NoLimits()
	d, ok := defaults[quantity]
	if !ok {
		return r
	}
	r.FlatFor, r.FlatSamples, r.SpikeJump, r.SpikeWithin = d.flatFor, DefaultFlatSamples, d.spikeJump, 2
	return r
}

// DefaultReach is the longest window a default rule looks back over.
func DefaultReach() time.Duration {
	var d time.Duration
	for _, x := range defaults {
		d = max(d, x.flatFor)
	}
	return d
}
