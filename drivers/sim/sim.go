// Package sim is a seeded, deterministic simulator of the gateway's sensors, for demos
// and integration tests.
//
// Every value is a pure function of (kind, seed, device, quantity, time): see Value. A
// restarted gateway continues the same series, two gateways with the same seed and device
// name report the same values, and a test can recompute the exact value of any point it
// finds in InfluxDB from the point's tags and timestamp. Values are rounded to the
// resolution a real sensor reports, so they survive line protocol unchanged.
//
// # How values are made
//
// Each signal is a sum of hash-based value noise: splitmix64 of the seed, the device name,
// a component name and a knot index gives a value in [-1, 1] at every multiple of the
// component's period (seconds for fluctuation, hours or days for drift), and a smoothstep
// joins neighbouring knots. A per-millisecond hash adds a little jitter. Diurnal and
// seasonal shapes are fixed curves of local time. Local time is Asia/Shanghai, taken as
// the fixed offset UTC+8: China has had no daylight saving time since 1991, and a fixed
// offset keeps Value independent of the host's tzdata.
//
// Value is bit-for-bit reproducible for one build (GOARCH, GOAMD64/GOARM64 level).
// Architectures that fuse multiply-add (arm64) may differ from amd64 in the last bit
// before rounding, which changes a rounded value only in the rare case that the exact
// value lies within that bit of a rounding boundary.
//
// # Kinds, quantities, resolution and realism
//
// noise: la (dB(A), 0.1 dB, the one-decimal resolution of sound level meters and of
// HJ 212's N3.1). Background about 57 dB by day with morning (08:00) and evening (18:00)
// traffic peaks, about 43 dB at night (22:00-06:00, GB 3096-2008), transitions of an hour
// around 06:00 and 22:00, slow drift of ±1.5 dB and second-to-second fluctuation of about
// ±3 dB. Every night has 2 to 5 sudden events ("night bursts") of 2-10 s, 15-30 dB above
// the background; the first of each night is at least 22 dB above it, so every night has
// an Lmax more than 15 dB above the class 1 night limit of 45 dB(A). Burst times are a
// hash of the night's date.
//
// air: pm1, pm25, pm10, so2, no2, o3 (ug/m3, 1 ug/m3, the integer resolution of
// low-cost particle counters and of HJ 633 reporting) and co (mg/m3, 0.01 mg/m3, an
// electrochemical cell's resolution; reports round it to 0.1). PM2.5 mostly 15-90 with a
// multi-day pollution-episode drift, a morning and an evening peak and an afternoon dip;
// PM10 1.3-2 times and PM1 about 0.7 times PM2.5; NO2 20-80 following traffic; SO2 3-20;
// O3 20-180 peaking mid-afternoon, stronger in summer; CO 0.3-1.5 following PM2.5.
//
// water: water_temperature (degC, 0.1), ph (0.01), do (mg/L, 0.01), codmn (mg/L, 0.1),
// nh3n (mg/L, 0.01), tp (mg/L, 0.001), conductivity (uS/cm, 1), turbidity (NTU, 0.1),
// the resolutions of automatic surface-water station analyzers. An organic-load signal
// drifting over half-days raises CODMn, NH3-N and TP and lowers DO together, so DO
// (2-9 mg/L) crosses the GB 3838 class limits 7.5, 6, 5, 3 and 2 over days; CODMn 2-11,
// NH3-N 0.1-1.8, TP 0.03-0.35 (river limits). pH 6.6-8.6, with an afternoon algal
// excursion just above 9 on about one day in fourteen; DO and pH peak in the afternoon
// (photosynthesis). Water temperature 8-30 degC over the year; conductivity 300-900;
// turbidity 5-60, mostly low.
//
// weather: temperature (degC, 0.1; Hangzhou-like season from about 5 degC in January to
// 29 degC in July, diurnal peak at 14:30, multi-day weather systems), humidity (%, 1;
// anti-correlated with the diurnal temperature, higher in rain), pressure (hPa, 0.1;
// 1005-1025, higher in winter), wind_speed (m/s, 0.1; 0-12 with gusts), wind_direction
// (deg, 1; 0-359) and rain_rate (mm/h, 0.1; mostly 0, rain episodes from hourly and
// six-hourly hash knots, up to about 30 mm/h).
//
// Every value lies within its catalog quantity's plausible range and carries the
// catalog unit.
package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Config configures a simulated device.
type Config struct {
	Kind   string // "noise", "air", "water" or "weather"
	Seed   int64
	Site   string
	Device string
	Now    func() time.Time // clock; nil means time.Now
}

// Driver is a simulated device. It holds no resources; it has no Close.
type Driver struct {
	kind         string
	seed         int64
	site, device string
	now          func() time.Time
	quantities   []string
}

// New returns a simulated device of cfg.Kind. It fails on an unknown kind or an invalid
// site or device name.
func New(cfg Config) (*Driver, error) {
	var errs []error
	chans, ok := kinds[cfg.Kind]
	if !ok {
		errs = append(errs, fmt.Errorf("kind %q: must be one of %s", cfg.Kind, strings.Join(Kinds(), ", ")))
	}
	if err := reading.CheckName(cfg.Site); err != nil {
		errs = append(errs, fmt.Errorf("site %q: %w", cfg.Site, err))
	}
	if err := reading.CheckName(cfg.Device); err != nil {
		errs = append(errs, fmt.Errorf("device %q: %w", cfg.Device, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	d := &Driver{kind: cfg.Kind, seed: cfg.Seed, site: cfg.Site, device: cfg.Device, now: cfg.Now}
	if d.now == nil {
		d.now = time.Now
	}
	for _, c := range chans {
		d.quantities = append(d.quantities, c.quantity)
	}
	return d, nil
}

// Kinds returns the kinds New accepts.
func Kinds() []string { return []string{"noise", "air", "water", "weather"} }

// Quantities returns the catalog names of the quantities Poll reports, in order.
func (d *Driver) Quantities() []string { return slices.Clone(d.quantities) }

// Poll returns one Good reading per quantity, all stamped with the clock's time truncated
// to the millisecond; each value is Value at that time. It fails only when ctx is done.
func (d *Driver) Poll(ctx context.Context) ([]reading.Reading, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := d.now().Truncate(time.Millisecond)
	s := newState(d.seed, d.device, t)
	rs := make([]reading.Reading, 0, len(d.quantities))
	for _, c := range kinds[d.kind] {
		rs = append(rs, reading.New(t, d.site, d.device, c.quantity, c.value(&s)))
	}
	return rs, nil
}

// Value returns the value a simulated device of the given kind, seed and name reports
// for quantity at t (truncated to the millisecond). It is a pure function of its
// arguments. It returns NaN for a kind or quantity the simulator does not produce.
func Value(kind string, seed int64, device, quantity string, t time.Time) float64 {
	for _, c := range kinds[kind] {
		if c.quantity == quantity {
			s := newState(seed, device, t)
			return c.value(&s)
		}
	}
	return nan
}
