// Package pm reads UART particulate-matter sensors: Plantower PMS5003/PMS7003 and Nova
// Fitness SDS011 (docs/engineering-notes.md §3). Frame sync, checksums and decoding are pure functions
// (ParsePMS, ParseSDS, PMSCommand, SDSCommand); a Sensor runs them over a serial port,
// emits one reading per interval (or, duty-cycled, one per work period), duty-cycles the
// sensor to save its laser and fan, and reopens the port when a USB adapter comes back.
//
// It imports only gateway/reading from the gateway; metrics reach it through the
// Config.Observe function and Stats.
package pm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Model names a supported sensor.
type Model string

// The supported sensors. The PMS7003 speaks the PMS5003 protocol (docs/engineering-notes.md §3.1).
const (
	PMS5003 Model = "pms5003"
	PMS7003 Model = "pms7003"
	SDS011  Model = "sds011"
)

func (m Model) isPMS() bool { return m == PMS5003 || m == PMS7003 }

// Modes and value sets of Config.
const (
	ModeActive  = "active"  // the sensor streams frames by itself
	ModePassive = "passive" // PMS: we send the read command each interval
	ModeQuery   = "query"   // SDS011: we send the query command each interval

	ValuesAtmospheric = "atmospheric" // PMS "atmospheric environment" values, for ambient monitoring
	ValuesCF1         = "cf1"         // PMS CF=1 "standard particle" values
)

// Defaults of Config.
const (
	defaultInterval = 10 * time.Second
	minDefaultStale = 30 * time.Second
	// defaultWarmup is the PMS5003 datasheet's "at least 30 seconds" after wake-up before
	// data are trusted (fan spin-up, docs/engineering-notes.md §3.1; PyPMS uses 10 s). We apply it to
	// the SDS011 too, whose fan also has to spin up.
	defaultWarmup = 30 * time.Second
)

// Config describes one sensor on its own serial port.
type Config struct {
	Name, Site string // device name and site of its readings (reading.CheckName rules)
	Port       string // serial device path; the line runs at 9600 8N1
	Model      Model
	// Mode is, for a PMS, "active" (the default: the sensor streams) or "passive" (we
	// send the read command each Interval); for the SDS011, "query" (the default: we send
	// the query command each Interval) or "active".
	Mode string
	// Interval is how often a reading is emitted (active mode: the latest valid frame of
	// the interval) or queried, and how often Run reports the device's state; 0 means
	// 10s. A duty-cycled sensor emits one reading per work period instead, whatever the
	// Interval.
	Interval time.Duration
	// Values selects the PMS value set: "atmospheric" (the default, for ambient
	// monitoring) or "cf1". The SDS011 has one set; leave it empty.
	Values string
	// Stale is how long the sensor may be awake without a valid frame before it counts
	// as down (Observe gets an error, no readings, and the wake-up and mode commands are sent
	// again); planned sleep does not count. 0 means 3×Interval, at least 30s.
	Stale time.Duration
	// DutyCycle, if both are set, puts the sensor to sleep for Sleep after every Work
	// period to save its laser and fan (the SDS011 laser lasts about 8000 h when always
	// on, an unverified datasheet figure in docs/engineering-notes.md §3.2). Each work period yields one
	// reading, emitted as it ends: the mean of the valid samples taken after the warm-up
	// (in passive and query modes, the first query goes out as the warm-up ends, then one
	// per Interval). Work includes the warm-up, so it must be longer. Zero: always on.
	DutyCycle struct{ Work, Sleep time.Duration }
	// Warmup is how long after each wake-up (including the port being opened, and the
	// wake-up commands sent again to a stale sensor) frames are read but not emitted; 0
	// means 30s, a negative value means none.
	Warmup time.Duration
	// Observe, if set, receives the device's verdicts (see Sensor.Run);
	// metrics.Metrics.ObservePoll fits.
	Observe func(device string, d time.Duration, err error)
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeActive
		if c.Model == SDS011 {
			c.Mode = ModeQuery
		}
	}
	if c.Values == "" && c.Model.isPMS() {
		c.Values = ValuesAtmospheric
	}
	if c.Interval == 0 {
		c.Interval = defaultInterval
	}
	if c.Stale == 0 {
		c.Stale = max(3*c.Interval, minDefaultStale)
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = defaultWarmup
	case c.Warmup < 0:
		c.Warmup = 0
	}
	return c
}

// validate reports every bad setting at once. c must have its defaults applied.
func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if err := reading.CheckName(c.Name); err != nil {
		bad("name", "%v", err)
	}
	if err := reading.CheckName(c.Site); err != nil {
		bad("site", "%v", err)
	}
	if c.Port == "" {
		bad("port", "must name a serial device, e.g. /dev/ttyUSB0")
	}
	switch {
	case c.Model.isPMS():
		if c.Mode != ModeActive && c.Mode != ModePassive {
			bad("mode", "must be %s or %s for a %s, got %q", ModeActive, ModePassive, c.Model, c.Mode)
		}
		if c.Values != ValuesAtmospheric && c.Values != ValuesCF1 {
			bad("values", "must be %s or %s, got %q", ValuesAtmospheric, ValuesCF1, c.Values)
		}
	case c.Model == SDS011:
		if c.Mode != ModeQuery && c.Mode != ModeActive {
			bad("mode", "must be %s or %s for an %s, got %q", ModeQuery, ModeActive, c.Model, c.Mode)
		}
		if c.Values != "" && c.Values != ValuesAtmospheric {
			bad("values", "the %s reports one set of values; leave it empty, got %q", c.Model, c.Values)
		}
	default:
		bad("model", "must be one of %s, %s, %s, got %q", PMS5003, PMS7003, SDS011, c.Model)
	}
	if c.Interval < 0 {
		bad("interval", "must be positive, got %s", c.Interval)
	}
	if c.Stale < 0 {
		bad("stale", "must be positive, got %s", c.Stale)
	}
	work, sleep := c.DutyCycle.Work, c.DutyCycle.Sleep
	switch {
	case work < 0 || sleep < 0:
		bad("duty_cycle", "work and sleep must not be negative, got %s and %s", work, sleep)
	case (work == 0) != (sleep == 0):
		bad("duty_cycle", "set both work and sleep, or neither for an always-on sensor; got %s and %s", work, sleep)
	case work > 0 && work <= c.Warmup:
		bad("duty_cycle.work", "must be longer than warmup (%s): work counts from wake-up and frames during warmup are discarded, "+
			"so no reading would ever be emitted; got %s", c.Warmup, work)
	}
	return errors.Join(errs...)
}

func (c Config) dutyCycled() bool { return c.DutyCycle.Work > 0 && c.DutyCycle.Sleep > 0 }

// queried reports whether we ask for each frame rather than the sensor streaming them.
func (c Config) queried() bool { return c.Mode == ModePassive || c.Mode == ModeQuery }

// Port is what a Sensor needs from a serial port; go.bug.st/serial's serial.Port
// satisfies it. Read returns (0, nil) when the read timeout passes without data, as
// go.bug.st/serial does (os.ErrDeadlineExceeded is taken the same way); any other read
// or write error means the port is gone. Close is called once.
type Port interface {
	io.ReadWriter
	SetReadTimeout(t time.Duration) error
	Close() error
}

// Stats are a Sensor's counters since New. They only grow.
type Stats struct {
	Frames         uint64 // valid measurement frames
	ChecksumErrors uint64 // complete frames with a bad checksum
	LengthErrors   uint64 // frame starts with an impossible length (PMS) or tail (SDS)
	Resyncs        uint64 // times the reader lost frame alignment and hunted for a start
	GarbageBytes   uint64 // bytes skipped while hunting
	Reopens        uint64 // times the port was opened again after it was lost
	Timeouts       uint64 // read (PMS passive) or query (SDS011) commands with no valid reply in time
	IOErrors       uint64 // read, write or port-setting errors; each one loses the port
}

// Sensor reads one particulate sensor. Create it with New; Run drives it, and Stats may
// be called from any goroutine.
type Sensor struct {
	cfg     Config
	open    func(path string) (Port, error)
	log     *slog.Logger
	running atomic.Bool

	frames, checksumErrors, lengthErrors, resyncs, garbageBytes, reopens, timeouts, ioErrors atomic.Uint64
}

// New checks cfg and returns a Sensor for it. open opens the port each time Run needs it
// (at start and after the port was lost); nil means OpenSerial. Tests pass a function that
// hands out a fresh pty, the way a re-plugged USB adapter is a fresh device. log may be nil.
func New(cfg Config, open func(path string) (Port, error), log *slog.Logger) (*Sensor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pm sensor %q: %w", cfg.Name, err)
	}
	if open == nil {
		open = OpenSerial
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("driver", "pm", "device", cfg.Name, "port", cfg.Port)
	return &Sensor{cfg: cfg, open: open, log: log}, nil
}

// Stats returns the counters. It is safe to call while Run runs.
func (s *Sensor) Stats() Stats {
	return Stats{
		Frames:         s.frames.Load(),
		ChecksumErrors: s.checksumErrors.Load(),
		LengthErrors:   s.lengthErrors.Load(),
		Resyncs:        s.resyncs.Load(),
		GarbageBytes:   s.garbageBytes.Load(),
		Reopens:        s.reopens.Load(),
		Timeouts:       s.timeouts.Load(),
		IOErrors:       s.ioErrors.Load(),
	}
}

// sample turns a measurement at the start of buf into readings at t. It returns what
// the parser of s's model returns, with the readings in place of the frame.
func (s *Sensor) sample(buf []byte, t time.Time) ([]reading.Reading, int, error) {
	if s.cfg.Model == SDS011 {
		f, n, err := ParseSDS(buf)
		if err != nil {
			return nil, n, err
		}
		return s.readings(t, sdsQuantities, f.PM25, f.PM10), n, nil
	}
	f, n, err := ParsePMS(buf)
	if err != nil {
		return nil, n, err
	}
	if s.cfg.Values == ValuesCF1 {
		return s.readings(t, pmsQuantities, f.PM1CF1, f.PM25CF1, f.PM10CF1), n, nil
	}
	return s.readings(t, pmsQuantities, f.PM1, f.PM25, f.PM10), n, nil
}

// The catalog quantities each model measures.
var (
	pmsQuantities = []string{"pm1", "pm25", "pm10"}
	sdsQuantities = []string{"pm25", "pm10"}
)

// readings builds Good readings of the named quantities, or Bad ones for values the
// catalog calls impossible.
func (s *Sensor) readings(t time.Time, names []string, values ...float64) []reading.Reading {
	rs := make([]reading.Reading, 0, len(names))
	for i, name := range names {
		v := values[i]
		r := reading.New(t, s.cfg.Site, s.cfg.Name, name, v)
		if q, _ := reading.Lookup(name); !q.Plausible(v) {
			r.Quality = reading.Bad
		}
		rs = append(rs, r)
	}
	return rs
}
