package metrics

import (
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// NoiseState is the live state of one noise monitor (a device judged against GB 3096
// limits) at scrape time. NaN levels are not exported: no data in that window.
type NoiseState struct {
	Site, Device  string
	Zone          string // GB 3096 class, or "custom" when both limits are overridden
	QuietDistrict bool

	Night      bool
	Limit      float64 // dB(A), the limit that applies now
	LeqMinute  float64 // running LAeq of the clock minute, dB(A)
	LeqHour    float64 // running LAeq of the clock hour
	LeqPeriod  float64 // running LAeq of the day or night period
	Exceedance float64 // LeqPeriod − Limit, dB

	Energy, Seconds          float64 // Σ 10^(L/10)·Δt and Σ Δt over accepted samples
	Bursts                   uint64  // night burst events started
	LastBurst                float64 // peak of the latest ended burst, dB(A); NaN before the first
	Accepted, Late, Rejected uint64  // samples
	Duplicate                uint64  // samples already counted (a redelivery): ignored
}

var (
	noiseLimit = desc("noise", "limit_dba",
		"The GB 3096 limit (or the site's override) that applies now, day or night, in dB(A).", "site", "device")
	noiseNight = desc("noise", "night",
		"Whether it is the night period at the monitor: 1 at night, 0 by day.", "site", "device")
	noiseRunning = desc("noise", "running_laeq_dba",
		"Running LAeq of the current clock minute, clock hour or day/night period (window 1m, 1h, period), in dB(A).", "site", "device", "window")
	noiseExceedance = desc("noise", "exceedance_db",
		"Running LAeq of the current day/night period minus the limit that applies now, in dB; negative when under.", "site", "device")
	noiseEnergy = desc("noise", "energy_seconds_total",
		"Sum of 10^(L/10) times the duration of each accepted sample; with envgate_noise_sample_seconds_total it gives the LAeq of any range, 10*log10(increase(energy)/increase(seconds)).", "site", "device")
	noiseSeconds = desc("noise", "sample_seconds_total",
		"Duration covered by the accepted samples, in seconds.", "site", "device")
	noiseBursts = desc("noise", "bursts_total",
		"Night burst events (Lmax above the night limit by more than the burst margin) started, as a count of events.", "site", "device")
	noiseLastBurst = desc("noise", "last_burst_dba",
		"Peak level of the most recent ended night burst, in dB(A).", "site", "device")
	noiseSamples = desc("noise", "samples_total",
		"Noise samples offered to the monitor by result (accepted, late, rejected), as a count of samples.", "site", "device", "result")
	noiseInfo = desc("noise", "site_info",
		"Always 1, labelled with the monitor's GB 3096 zone and whether its site is in a quiet district.", "site", "device", "zone", "quiet_district")
)

// noiseCollector reads the noise monitors' state at scrape time.
type noiseCollector struct {
	mu     sync.Mutex
	states func() []NoiseState
}

func (c *noiseCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{noiseLimit, noiseNight, noiseRunning, noiseExceedance, noiseEnergy,
		noiseSeconds, noiseBursts, noiseLastBurst, noiseSamples, noiseInfo} {
		ch <- d
	}
}

func (c *noiseCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.states
	c.mu.Unlock()
	if f == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		if !math.IsNaN(v) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, s := range f() {
		sd := []string{s.Site, s.Device}
		gauge(noiseLimit, s.Limit, sd...)
		gauge(noiseNight, boolValue(s.Night), sd...)
		gauge(noiseRunning, s.LeqMinute, s.Site, s.Device, "1m")
		gauge(noiseRunning, s.LeqHour, s.Site, s.Device, "1h")
		gauge(noiseRunning, s.LeqPeriod, s.Site, s.Device, "period")
		gauge(noiseExceedance, s.Exceedance, sd...)
		counter(noiseEnergy, s.Energy, sd...)
		counter(noiseSeconds, s.Seconds, sd...)
		counter(noiseBursts, float64(s.Bursts), sd...)
		gauge(noiseLastBurst, s.LastBurst, sd...)
		counter(noiseSamples, float64(s.Accepted), s.Site, s.Device, "accepted")
		counter(noiseSamples, float64(s.Late), s.Site, s.Device, "late")
		counter(noiseSamples, float64(s.Duplicate), s.Site, s.Device, "duplicate")
		counter(noiseSamples, float64(s.Rejected), s.Site, s.Device, "rejected")
		quiet := "false"
		if s.QuietDistrict {
			quiet = "true"
		}
		gauge(noiseInfo, 1, s.Site, s.Device, s.Zone, quiet)
	}
}

// SetNoise makes the noise metrics report states, called at every scrape. A later call
// replaces the function.
func (m *Metrics) SetNoise(states func() []NoiseState) {
	m.noise.mu.Lock()
	defer m.noise.mu.Unlock()
	m.noise.states = states
}
