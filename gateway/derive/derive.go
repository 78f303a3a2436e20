// Package derive runs the domain derivations of a gateway — noise levels against
// GB 3096 (gateway/noise), and later air quality and water class — over the stream of
// readings, for the live pipeline and for `envgate replay` alike, so both give the same
// numbers for the same input.
//
// A Set holds the derivers of one gateway. The pipeline's writer hands it every stored
// reading (Add) and ticks it once a second (Tick); the derived readings it returns are
// stored like any other. Metrics read the live state concurrently (NoiseStates).
package derive

import (
	"sync"
	"time"

	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
)

func init() {
	reading.Register(noise.Quantities()...)
}

// Noise is one noise monitor: the aggregator of a device's levels, and the weather
// device whose rain and wind readings judge its validity.
type Noise struct {
	Zone          string // GB 3096 class, or "custom"
	QuietDistrict bool
	Weather       string // device whose rain_rate and wind_speed apply; "" for none
	Config        noise.Config
}

// Set is the derivers of one gateway. Its methods are safe for concurrent use.
//
// Windows close on the device's own clock: a sample past a window's end (plus the
// lateness) closes it, so a backlog (an MQTT session catching up after an outage, a
// replayed file) is aggregated exactly as if it had arrived live. Only when a device
// has sent nothing for CloseAfter of wall time does Tick close its windows by the wall
// clock, so a dead sensor's windows still end, with their valid-data rate showing the
// gap. Samples of a window closed that way count as late.
type Set struct {
	mu         sync.Mutex
	noise      []*noiseMonitor
	closeAfter time.Duration
	now        func() time.Time // wall clock of arrivals; time.Now
	replay     bool             // no wall-clock bound on reading times
}

type noiseMonitor struct {
	spec        Noise
	agg         *noise.Aggregator
	lastArrival time.Time // wall time of the latest own level reading
	outOfRange  int       // readings refused for a time too far from the wall clock
}

// Live sets refuse readings stamped too far from the wall clock (a sensor whose clock
// was reset or runs in another year): one of them would make an aggregator open or
// close every window in between. Replay has no such bound.
const (
	MaxFuture = 5 * time.Minute
	MaxPast   = 7 * 24 * time.Hour
)

// DefaultCloseAfter is how long a silent device's windows wait before the wall clock
// closes them: a backlog up to this old still counts in full.
const DefaultCloseAfter = 30 * time.Minute

// New builds a Set; closeAfter ≤ 0 selects DefaultCloseAfter. The error names the
// failing monitor and lists its problems.
func New(monitors []Noise, closeAfter time.Duration) (*Set, error) {
	if closeAfter <= 0 {
		closeAfter = DefaultCloseAfter
	}
	s := &Set{closeAfter: closeAfter, now: time.Now}
	for _, m := range monitors {
		a, err := noise.NewAggregator(m.Config)
		if err != nil {
			return nil, &MonitorError{Site: m.Config.Site, Device: m.Config.Device, Err: err}
		}
		s.noise = append(s.noise, &noiseMonitor{spec: m, agg: a})
	}
	return s, nil
}

// MonitorError is a monitor whose configuration the aggregator refused.
type MonitorError struct {
	Site, Device string
	Err          error
}

func (e *MonitorError) Error() string {
	return "noise monitor " + e.Site + "/" + e.Device + ": " + e.Err.Error()
}

func (e *MonitorError) Unwrap() error { return e.Err }

// ForReplay makes the Set accept readings of any time: recorded data is old.
func (s *Set) ForReplay() { s.replay = true }

// Empty reports whether the Set derives nothing.
func (s *Set) Empty() bool { return s == nil || len(s.noise) == 0 }

// wants reports whether r feeds m: the monitor's own levels, or its weather device's
// rain and wind.
func (m *noiseMonitor) wants(r reading.Reading) bool {
	switch r.Quantity {
	case "la", "laeq":
		return r.Device == m.spec.Config.Device && r.Site == m.spec.Config.Site
	case "rain_rate", "wind_speed":
		return m.spec.Weather != "" && r.Device == m.spec.Weather
	}
	return false
}

// Add feeds readings to the derivers that want them and appends what they derive to dst.
func (s *Set) Add(dst []reading.Reading, rs ...reading.Reading) []reading.Reading {
	if s.Empty() {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var now time.Time
	if len(rs) > 0 {
		now = s.now()
	}
	for _, r := range rs {
		for _, m := range s.noise {
			if !m.wants(r) {
				continue
			}
			if !s.replay && (r.Time.After(now.Add(MaxFuture)) || r.Time.Before(now.Add(-MaxPast))) {
				m.outOfRange++
				continue
			}
			if r.Device == m.spec.Config.Device {
				m.lastArrival = now
			}
			dst = append(dst, m.agg.Add(r)...)
		}
	}
	return dst
}

// Tick moves every deriver's clock to now, closing the windows that ended, and
// appends what they derive to dst.
func (s *Set) Tick(dst []reading.Reading, now time.Time) []reading.Reading {
	if s.Empty() {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.noise {
		if now.Sub(m.lastArrival) >= s.closeAfter {
			dst = append(dst, m.agg.Tick(now)...)
		}
	}
	return dst
}

// Flush closes every window that ends before the end of the day or night period
// containing t, plus the lateness: what replay does at the end of its input.
func (s *Set) Flush(dst []reading.Reading, t time.Time) []reading.Reading {
	if s.Empty() {
		return dst
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.noise {
		dst = append(dst, m.agg.Tick(m.agg.FlushTime(t))...)
	}
	return dst
}

// NoiseStates reports every noise monitor's live state at now, for metrics.
func (s *Set) NoiseStates(now time.Time) []metrics.NoiseState {
	if s.Empty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metrics.NoiseState, 0, len(s.noise))
	for _, m := range s.noise {
		l := m.agg.Now(now)
		out = append(out, metrics.NoiseState{
			Site: m.spec.Config.Site, Device: m.spec.Config.Device,
			Zone: m.spec.Zone, QuietDistrict: m.spec.QuietDistrict,
			Night: l.Night, Limit: l.Limit,
			LeqMinute: l.LeqMinute, LeqHour: l.LeqHour, LeqPeriod: l.LeqPeriod,
			Exceedance: l.Exceedance,
			Energy:     l.Energy, Seconds: l.Seconds,
			Bursts: uint64(l.Bursts), LastBurst: l.LastBurst,
			Accepted: uint64(l.Accepted), Late: uint64(l.Late), Rejected: uint64(l.Rejected + m.outOfRange),
		})
	}
	return out
}

