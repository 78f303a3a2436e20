package metrics

import (
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// AirState is the live state of one air monitor at scrape time: the AQI report of its
// most recently closed hour and day. NaN values are not exported.
type AirState struct {
	Site, Device, Edition string

	Hour     float64 // start of the hour the report describes, Unix seconds; NaN before the first
	AQI      float64 // aqi_1h
	Level    int     // 1..6; 0 without an AQI
	Primary  []string
	IAQI     map[string]float64 // by report item (SO2, NO2, CO, O3_1h, O3_8h, PM10, PM2.5)
	DailyAQI float64            // aqi_1d of the most recently closed day

	// Valid means of that hour by pollutant (so2, no2, co, o3, pm10, pm25) and window
	// (1h, 24h, 8h), with the pollutant's unit.
	Means []AirMean

	Accepted, Late, Rejected uint64
	Duplicate                uint64 // samples already counted (a redelivery): ignored
}

// AirMean is one mean concentration of an AirState.
type AirMean struct {
	Pollutant, Window, Unit string
	Value                   float64
}

// WaterState is the live state of one water section: the evaluation of its newest
// window with data.
type WaterState struct {
	Site                     string
	Waterbody                string
	WindowStart              float64 // Unix seconds; NaN without data
	Class                    int     // section class 1..6 (6 = worse than V); 0 without data
	Target                   int
	Missed                   int            // evaluated parameters worse than the target
	Missing                  int            // required parameters without a mean
	Params                   map[string]int // class by parameter
	Accepted, Late, Rejected uint64
	Duplicate                uint64 // samples already counted (a redelivery): ignored
}

var (
	airAQI = desc("air", "aqi",
		"AQI of the most recently closed clock hour (HJ 633 real-time AQI, or the US EPA index), by edition.", "site", "device", "edition")
	airLevel = desc("air", "aqi_level",
		"AQI level of that hour: 1 good (0-50), 2 moderate, 3 lightly polluted (101-150), 4 moderately, 5 heavily, 6 severely polluted (>300).", "site", "device")
	airIAQI = desc("air", "iaqi",
		"Individual AQI of each report item (SO2, NO2, CO, O3_1h, O3_8h, PM10, PM2.5) in that hour.", "site", "device", "item")
	airPrimary = desc("air", "primary_pollutant",
		"Always 1, one series per primary pollutant of that hour (IAQI > 50 and equal to the AQI).", "site", "device", "item")
	airDaily = desc("air", "daily_aqi",
		"AQI of the most recently closed local day.", "site", "device", "edition")
	airHour = desc("air", "hour_timestamp_seconds",
		"Start of the hour the air metrics describe, in seconds since the Unix epoch.", "site", "device")
	airMean = desc("air", "concentration",
		"Valid mean concentration of each pollutant over the window ending with that hour (1h, 8h moving, 24h moving), in the unit of the unit label.", "site", "device", "pollutant", "window", "unit")
	airSamples = desc("air", "samples_total",
		"Air readings offered to the monitor by result (accepted, late, rejected), as a count of readings.", "site", "device", "result")

	waterClass = desc("water", "class",
		"GB 3838-2002 class of the section by the single-factor rule: 1-5 for I-V, 6 for worse than V (劣V).", "site")
	waterTarget = desc("water", "target_class",
		"The class the section must meet (1-5).", "site")
	waterParamClass = desc("water", "param_class",
		"GB 3838-2002 class of each parameter's mean in the section's window (6 = worse than V).", "site", "param")
	waterMissed = desc("water", "target_missed_params",
		"Evaluated parameters worse than the target class, as a count of parameters.", "site")
	waterMissing = desc("water", "missing_params",
		"Required parameters without a valid mean in the window, as a count of parameters.", "site")
	waterWindow = desc("water", "window_start_timestamp_seconds",
		"Start of the window the water metrics describe, in seconds since the Unix epoch.", "site")
	waterSamples = desc("water", "samples_total",
		"Water readings offered to the section by result (accepted, late, rejected), as a count of readings.", "site", "result")
)

// airWaterCollector reads the air and water monitors' state at scrape time.
type airWaterCollector struct {
	mu    sync.Mutex
	air   func() []AirState
	water func() []WaterState
}

func (c *airWaterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{airAQI, airLevel, airIAQI, airPrimary, airDaily, airHour, airMean, airSamples,
		waterClass, waterTarget, waterParamClass, waterMissed, waterMissing, waterWindow, waterSamples} {
		ch <- d
	}
}

func (c *airWaterCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	af, wf := c.air, c.water
	c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		if !math.IsNaN(v) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if af != nil {
		for _, s := range af() {
			gauge(airAQI, s.AQI, s.Site, s.Device, s.Edition)
			if s.Level > 0 {
				gauge(airLevel, float64(s.Level), s.Site, s.Device)
			}
			for item, v := range s.IAQI {
				gauge(airIAQI, v, s.Site, s.Device, item)
			}
			for _, p := range s.Primary {
				gauge(airPrimary, 1, s.Site, s.Device, p)
			}
			gauge(airDaily, s.DailyAQI, s.Site, s.Device, s.Edition)
			gauge(airHour, s.Hour, s.Site, s.Device)
			for _, m := range s.Means {
				gauge(airMean, m.Value, s.Site, s.Device, m.Pollutant, m.Window, m.Unit)
			}
			counter(airSamples, s.Accepted, s.Site, s.Device, "accepted")
			counter(airSamples, s.Late, s.Site, s.Device, "late")
			counter(airSamples, s.Duplicate, s.Site, s.Device, "duplicate")
			counter(airSamples, s.Rejected, s.Site, s.Device, "rejected")
		}
	}
	if wf != nil {
		for _, s := range wf() {
			if s.Class > 0 {
				gauge(waterClass, float64(s.Class), s.Site)
				gauge(waterMissed, float64(s.Missed), s.Site)
			}
			gauge(waterTarget, float64(s.Target), s.Site)
			for p, k := range s.Params {
				gauge(waterParamClass, float64(k), s.Site, p)
			}
			gauge(waterMissing, float64(s.Missing), s.Site)
			gauge(waterWindow, s.WindowStart, s.Site)
			counter(waterSamples, s.Accepted, s.Site, "accepted")
			counter(waterSamples, s.Late, s.Site, "late")
			counter(waterSamples, s.Duplicate, s.Site, "duplicate")
			counter(waterSamples, s.Rejected, s.Site, "rejected")
		}
	}
}

// SetAir makes the air metrics report states, called at every scrape.
func (m *Metrics) SetAir(states func() []AirState) {
	m.airWater.mu.Lock()
	defer m.airWater.mu.Unlock()
	m.airWater.air = states
}

// SetWater makes the water metrics report states, called at every scrape.
func (m *Metrics) SetWater(states func() []WaterState) {
	m.airWater.mu.Lock()
	defer m.airWater.mu.Unlock()
	m.airWater.water = states
}
