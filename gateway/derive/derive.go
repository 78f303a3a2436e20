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
type Set struct {
	mu    sync.Mutex
	noise []*noiseMonitor
}

type noiseMonitor struct {
	spec Noise
	agg  *noise.Aggregator
}

// New builds a Set. The error names the failing monitor and lists its problems.
func New(monitors []Noise) (*Set, error) {
	s := &Set{}
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
	for _, r := range rs {
		for _, m := range s.noise {
			if m.wants(r) {
				dst = append(dst, m.agg.Add(r)...)
			}
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
		dst = append(dst, m.agg.Tick(now)...)
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
			Accepted: uint64(l.Accepted), Late: uint64(l.Late), Rejected: uint64(l.Rejected),
		})
	}
	return out
}

