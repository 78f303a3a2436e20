package sim

import (
	"math"
	"time"
)

var nan = math.NaN()

// Time constants in milliseconds.
const (
	second = int64(time.Second / time.Millisecond)
	minute = 60 * second
	hour   = 60 * minute
	day    = 24 * hour

	utcOffset = 8 * hour // Asia/Shanghai, UTC+8 without DST since 1991
)

// A channel is one simulated quantity: its model and the resolution and range of the
// sensor that reports it. lo and hi lie within the catalog's plausible range.
type channel struct {
	quantity string
	scale    float64 // 1 / resolution
	lo, hi   float64
	model    func(s *state) float64
}

// value evaluates the model, clamps it to the sensor's range and rounds it to the
// sensor's resolution. Dividing by an integer scale yields the float64 nearest to the
// decimal, which formats back to the same short decimal.
func (c channel) value(s *state) float64 {
	v := min(max(c.model(s), c.lo), c.hi)
	v = math.Round(v*c.scale) / c.scale
	if v == 0 {
		v = 0 // no negative zero
	}
	return v
}

// kinds lists the channels of each kind, in catalog order.
var kinds = map[string][]channel{
	"noise": {
		{"la", 10, 25, 130, (*state).la},
	},
	"air": {
		{"pm1", 1, 1, 1000, (*state).pm1},
		{"pm25", 1, 1, 1000, (*state).pm25},
		{"pm10", 1, 1, 2000, (*state).pm10},
		{"so2", 1, 1, 500, (*state).so2},
		{"no2", 1, 1, 500, (*state).no2},
		{"o3", 1, 1, 500, (*state).o3},
		{"co", 100, 0.05, 50, (*state).co},
	},
	"weather": {
		{"temperature", 10, -40, 50, (*state).temperature},
		{"humidity", 1, 5, 100, (*state).humidity},
		{"pressure", 10, 950, 1060, (*state).pressure},
		{"wind_speed", 10, 0, 12, (*state).windSpeed},
		// 359.49 rounds to 359: a vane reports 0-359, never 360.
		{"wind_direction", 1, 0, 359.49, (*state).windDirection},
		{"rain_rate", 10, 0, 200, (*state).rainRate},
	},
	"water": {
		{"water_temperature", 10, 0, 40, (*state).waterTemperature},
		{"ph", 100, 4, 11, (*state).ph},
		{"do", 100, 0, 20, (*state).do},
		{"codmn", 10, 0.5, 50, (*state).codmn},
		{"nh3n", 100, 0.02, 20, (*state).nh3n},
		{"tp", 1000, 0.005, 5, (*state).tp},
		{"conductivity", 1, 50, 5000, (*state).conductivity},
		{"turbidity", 10, 0.1, 1000, (*state).turbidity},
	},
}

// state is the time and identity one value is computed for.
type state struct {
	dev    uint64  // hash of seed and device name
	ms     int64   // Unix time in milliseconds
	local  int64   // ms + utcOffset: local wall-clock milliseconds since 1970-01-01 00:00
	hour   float64 // local hour of day, [0, 24)
	season float64 // -1 around 20 January (coldest), +1 around 21 July (warmest)
}

func newState(seed int64, device string, t time.Time) state {
	ms := t.UnixMilli()
	local := ms + utcOffset
	// Day 0 is 1970-01-01 and the mean Gregorian year 365.2425 days, so the phase stays
	// within about a day of the calendar; day 19 of the year is 20 January.
	days := float64(local) / float64(day)
	return state{
		dev:    hashString(splitmix64(uint64(seed)), device),
		ms:     ms,
		local:  local,
		hour:   float64(floorMod(local, day)) / float64(hour),
		season: -math.Cos(2 * math.Pi * (days - 19) / 365.2425),
	}
}

// key returns the hash key of one signal component of this device.
func (s *state) key(component string) uint64 { return hashString(s.dev, component) }

// smooth is value noise in [-1, 1] with knots every period ms.
func (s *state) smooth(component string, period int64) float64 {
	return valueNoise(s.key(component), s.ms, period)
}

// drift is value noise of several octaves (period, period/2, ...), weights halving,
// normalised to [-1, 1].
func (s *state) drift(component string, period int64, octaves int) float64 {
	k := s.key(component)
	var sum, norm float64
	amp := 1.0
	for o := range octaves {
		sum += amp * valueNoise(k+uint64(o)*golden, s.ms, period>>o)
		norm += amp
		amp /= 2
	}
	return sum / norm
}

// jitter is a hash of the millisecond, in [-1, 1].
func (s *state) jitter(component string) float64 {
	return signed(splitmix64(s.key(component) ^ splitmix64(uint64(s.ms))))
}

// diurnal is a cosine of the local hour peaking at peak (hours), in [-1, 1].
func (s *state) diurnal(peak float64) float64 {
	return math.Cos(2 * math.Pi * (s.hour - peak) / 24)
}

// dayness is 1 by day and 0 by night (GB 3096-2008: day 06:00-22:00), with hour-long
// transitions centred on 06:00 and 22:00.
func (s *state) dayness() float64 {
	return smoothstep((s.hour-5.5)/1) - smoothstep((s.hour-21.5)/1)
}

// bump is a smooth bump of height 1 at centre (hours) falling to 0 at centre±width.
func (s *state) bump(centre, width float64) float64 {
	x := (s.hour - centre) / width
	if x <= -1 || x >= 1 {
		return 0
	}
	x = 1 - x*x
	return x * x
}

// Noise.

// laBackground is the smooth background level: day/night, traffic peaks, slow drift.
func (s *state) laBackground() float64 {
	l := 43 + 14*s.dayness() + 5*s.bump(8, 1.5) + 4.5*s.bump(18, 2)
	return l + 1.5*s.drift("la.drift", 20*minute, 2)
}

func (s *state) la() float64 {
	bg := s.laBackground()
	l := bg + 2*s.smooth("la.1s", second) + 1*s.smooth("la.5s", 5*second) + 0.3*s.jitter("la.ms")
	return max(l, s.laBurst(bg))
}

// laBurst returns the level of a night burst at s, or 0 outside bursts. Bursts are fixed
// per night by a hash of the night's index: 2-5 per night, each 2-10 s, 15-30 dB above the
// background (the first 22-30 dB), trapezoid-shaped with a plateau over 55 % of its
// length (so a 1 s sampler always sees the peak), and always inside 22:00-06:00.
func (s *state) laBurst(bg float64) float64 {
	const nightStart, nightLen = 22 * hour, 8 * hour
	night := floorDiv(s.local-nightStart, day)
	off := s.local - nightStart - night*day
	if off >= nightLen {
		return 0
	}
	h := splitmix64(s.key("la.burst") ^ splitmix64(uint64(night)))
	n := 2 + int(h%4)
	level := 0.0
	for i := range n {
		b := splitmix64(h + uint64(i+1)*golden) // burst i's own hash
		start := minute + int64(b%uint64(nightLen-2*minute))
		dur := 2*second + int64(splitmix64(b+golden)%uint64(8*second+1))
		if off < start || off >= start+dur {
			continue
		}
		u := unit(splitmix64(b + golden + golden))
		height := 15 + 15*u
		if i == 0 {
			height = 22 + 8*u
		}
		x := float64(off-start) / float64(dur)
		shape := min(1, x/0.15, (1-x)/0.3)
		level = max(level, bg+height*shape)
	}
	return level
}

// Air.

// pm25 is the PM2.5 level before rounding; PM1, PM10 and CO follow it.
func (s *state) pm25() float64 {
	episode := 42 + 22*s.drift("pm.episode", 2*day, 2) // 20-64: multi-day pollution episodes
	diurnal := 1 + 0.35*s.bump(8.5, 2) + 0.4*s.bump(20, 3) - 0.2*s.bump(14.5, 3)
	short := 1 + 0.08*s.smooth("pm25.5min", 5*minute) + 0.03*s.smooth("pm25.10s", 10*second) + 0.01*s.jitter("pm25.ms")
	return episode * diurnal * short
}

func (s *state) pm10() float64 {
	ratio := 1.65 + 0.35*s.drift("pm10.ratio", 6*hour, 2) // coarse dust, 1.3-2
	return s.pm25() * ratio * (1 + 0.03*s.smooth("pm10.10s", 10*second))
}

func (s *state) pm1() float64 {
	return s.pm25() * (0.7 + 0.04*s.smooth("pm1.ratio", 3*hour))
}

func (s *state) so2() float64 {
	return 11 + 7*s.drift("so2.drift", 3*day, 2) + 1.5*s.smooth("so2.1h", hour) + 0.2*s.jitter("so2.ms")
}

func (s *state) no2() float64 {
	traffic := 0.25*s.dayness() + 0.75*max(s.bump(8, 2), s.bump(18.5, 2.5))
	return 28 + 30*traffic + 6*s.drift("no2.drift", 36*hour, 2) + 3*s.smooth("no2.10min", 10*minute) + 0.3*s.jitter("no2.ms")
}

func (s *state) o3() float64 {
	amp := (95 + 55*s.drift("o3.amp", 2*day, 1)) * (0.8 + 0.2*s.season) // sunnier summers
	return 22 + amp*s.bump(15, 4.5) + 6*s.smooth("o3.30min", 30*minute) + 0.3*s.jitter("o3.ms")
}

func (s *state) co() float64 {
	return 0.25 + 0.011*s.pm25() + 0.05*s.smooth("co.10min", 10*minute) + 0.005*s.jitter("co.ms")
}

// Weather.

// wet is the rain intensity in [0, 1]: weather systems (six-hour knots) and showers
// (hourly knots); 0 most of the time.
func (s *state) wet() float64 {
	w := 0.65*s.smooth("rain.system", 6*hour) + 0.35*s.smooth("rain.shower", hour) - 0.4
	return max(0, w/0.6)
}

func (s *state) rainRate() float64 {
	w := s.wet()
	if w == 0 {
		return 0
	}
	return 25 * w * w * (1 + 0.2*s.smooth("rain.1min", minute))
}

// temperatureMean is the daily mean temperature: season and weather systems.
func (s *state) temperatureMean() float64 {
	return 17 + 11.5*s.season + 3*s.drift("temp.synoptic", 36*hour, 2)
}

func (s *state) temperature() float64 {
	amp := 4 - 2.5*s.wet() // clouds and rain damp the diurnal swing
	return s.temperatureMean() + amp*s.diurnal(14.5) + 0.3*s.smooth("temp.10min", 10*minute) + 0.05*s.jitter("temp.ms")
}

func (s *state) humidity() float64 {
	w := s.wet()
	return 72 + 10*s.drift("hum.drift", day, 2) - 15*(1-0.5*w)*s.diurnal(14.5) + 25*w + 1*s.smooth("hum.1min", minute)
}

func (s *state) pressure() float64 {
	return 1015 - 5.5*s.season + 3.5*s.drift("press.synoptic", 36*hour, 2) + 0.6*math.Cos(4*math.Pi*(s.hour-10)/24)
}

func (s *state) windSpeed() float64 {
	mean := 1.5 + 2.5*(1+s.drift("wind.mean", 6*hour, 2))/2 + 1*s.dayness() + 1.5*s.wet()
	gust := 0.45*s.smooth("wind.3s", 3*second) + 0.25*s.smooth("wind.20s", 20*second)
	return mean * (1 + gust)
}

func (s *state) windDirection() float64 {
	d := 180 + 360*s.drift("wdir.drift", 8*hour, 2) + 25*s.smooth("wdir.5s", 5*second)
	return floorModF(d, 360)
}

// Water.

// load is the organic pollution load in [-1, 1], drifting over half-days.
func (s *state) load() float64 { return s.drift("water.load", 12*hour, 3) }

// polluted mixes the shared load with a parameter's own drift, in [-1, 1].
func (s *state) polluted(component string) float64 {
	return 0.6*s.load() + 0.4*s.drift(component, 9*hour, 2)
}

func (s *state) waterTemperature() float64 {
	return 18.8 + 9.8*s.season + 0.5*s.diurnal(16) + 0.5*s.drift("wtemp.drift", 2*day, 1)
}

func (s *state) do() float64 {
	// Photosynthesis raises DO in the afternoon; the organic load consumes it.
	return 5.5 - 3*s.polluted("do.own") + 0.4*s.diurnal(15) + 0.03*s.jitter("do.ms")
}

// ph is 6.6-8.6, with an algal excursion just above 9 on about one day in fourteen:
// starting between 11:00 and 15:00, lasting 1-3 h, peaking at 9.02-9.3.
func (s *state) ph() float64 {
	p := 7.55 + 0.7*s.drift("ph.drift", 6*hour, 2) + 0.25*s.diurnal(15) + 0.02*s.jitter("ph.ms")
	today := floorDiv(s.local, day)
	h := splitmix64(s.key("ph.excursion") ^ splitmix64(uint64(today)))
	if h%14 != 0 {
		return p
	}
	h = splitmix64(h + golden)
	start := 11*hour + int64(h%uint64(4*hour))
	h = splitmix64(h + golden)
	dur := hour + int64(h%uint64(2*hour))
	off := floorMod(s.local, day) - start
	if off < 0 || off >= dur {
		return p
	}
	h = splitmix64(h + golden)
	peak := 9.02 + 0.28*unit(h)
	shape := (1 - math.Cos(2*math.Pi*float64(off)/float64(dur))) / 2
	return p + (peak-p)*shape
}

func (s *state) codmn() float64 { return 6.5 + 4.3*s.polluted("codmn.own") }
func (s *state) nh3n() float64  { return 0.95 + 0.8*s.polluted("nh3n.own") }
func (s *state) tp() float64    { return 0.19 + 0.15*s.polluted("tp.own") }

func (s *state) conductivity() float64 {
	return 600 + 290*(0.7*s.drift("cond.drift", 18*hour, 2)+0.3*s.load()) + 2*s.jitter("cond.ms")
}

func (s *state) turbidity() float64 {
	x := (1 + s.drift("turb.drift", 6*hour, 2)) / 2
	return 5.3 + 54*x*x + 0.3*s.jitter("turb.ms")
}

// Hashing and noise.

const golden uint64 = 0x9e3779b97f4a7c15 // 2^64 / φ, splitmix64's increment

// splitmix64 is the output function of Steele, Lea and Flood's SplitMix64 generator
// ("Fast splittable pseudorandom number generators", OOPSLA 2014).
func splitmix64(x uint64) uint64 {
	x += golden
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hashString mixes s into h (FNV-1a over the bytes, then splitmix64).
func hashString(h uint64, s string) uint64 {
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 0x100000001b3 // FNV-1a 64-bit prime
	}
	return splitmix64(h)
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// signed maps a hash to [-1, 1).
func signed(h uint64) float64 { return 2*unit(h) - 1 }

// valueNoise returns the smoothstep interpolation, at ms, of hash values in [-1, 1]
// placed at every multiple of period.
func valueNoise(key uint64, ms, period int64) float64 {
	k := floorDiv(ms, period)
	f := float64(ms-k*period) / float64(period)
	a := signed(splitmix64(key ^ splitmix64(uint64(k))))
	b := signed(splitmix64(key ^ splitmix64(uint64(k+1))))
	return a + (b-a)*smoothstep(f)
}

// smoothstep is 0 below 0, 1 above 1 and 3x²-2x³ between.
func smoothstep(x float64) float64 {
	x = min(max(x, 0), 1)
	return x * x * (3 - 2*x)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func floorModF(a, b float64) float64 {
	m := math.Mod(a, b)
	if m < 0 {
		m += b
	}
	return m
}
