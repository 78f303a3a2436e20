package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/air"
)

func TestAirDefaultsAndAggregator(t *testing.T) {
	c, err := Parse([]byte(`
gateway: {id: box-1, site: canal}
devices:
  - {name: air-1, site: lock-2, interval: 10s, sim: {kind: air}}
buses:
  - name: rs485
    serial: {port: /dev/ttyUSB0}
    devices:
      - {name: gas-1, slave: 1, interval: 30s, points: [{quantity: no2, type: uint16}]}
pm:
  - {name: pms-1, port: /dev/ttyAMA0, model: pms5003}
air:
  sites:
    - {device: air-1}
    - {device: gas-1, site: canal-lock-2}
    - {device: pms-1, pollutants: [pm25, pm10]}
    - {device: lora-9, sample: 5m}
    - {device: esp-3}
`), "box.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	a := c.Air
	if a.Edition != "cn-2026" || a.Timezone != "Asia/Shanghai" || a.AboveTop != "cap" || a.MinMinutesHour != 45 ||
		a.MinHoursDay != 20 || a.MinHours8h != 6 || a.MinWindowsDay != 14 || a.Lateness != time.Minute ||
		a.MinDaysMonth != 27 || a.MinDaysFebruary != 25 || a.MinDaysYear != 324 {
		t.Errorf("air defaults = %+v", a)
	}
	all := []string{"so2", "no2", "co", "o3", "pm10", "pm25"}
	want := []AirSite{
		{Device: "air-1", Site: "lock-2", Sample: 10 * time.Second, Pollutants: all},       // device's site and interval
		{Device: "gas-1", Site: "canal-lock-2", Sample: 30 * time.Second, Pollutants: all}, // a Modbus device's interval
		{Device: "pms-1", Site: "canal", Sample: 10 * time.Second, Pollutants: []string{"pm25", "pm10"}},
		{Device: "lora-9", Site: "canal", Sample: 5 * time.Minute, Pollutants: all}, // sample as written
		{Device: "esp-3", Site: "canal", Sample: time.Minute, Pollutants: all},      // unknown device: 1m
	}
	if !reflect.DeepEqual(a.Sites, want) {
		t.Errorf("air.sites =\n%+v\nwant\n%+v", a.Sites, want)
	}

	for i := range a.Sites {
		cfg, err := a.Aggregator(i)
		if err != nil {
			t.Fatalf("Aggregator(%d): %v", i, err)
		}
		if _, err := air.NewAggregator(cfg); err != nil {
			t.Errorf("air.NewAggregator(Aggregator(%d)) = %v", i, err)
		}
	}
	cfg, _ := a.Aggregator(0)
	v := air.DefaultValidity()
	if cfg.Site != "lock-2" || cfg.Device != "air-1" || cfg.Sample != 10*time.Second || cfg.Lateness != time.Minute ||
		cfg.Method.Edition != air.HJ633_2026 || cfg.Method.AboveTop != air.CapAt500 ||
		!reflect.DeepEqual(cfg.Method.Plan, air.Pollutants()) ||
		cfg.Validity.MinCoverage != v.MinCoverage || cfg.Validity.MinHours != v.MinHours ||
		cfg.Validity.Min8h != v.Min8h || cfg.Validity.MinWindows != v.MinWindows {
		t.Errorf("Aggregator(0) = %+v", cfg)
	}
	if _, off := time.Date(2026, 1, 1, 0, 0, 0, 0, cfg.Location).Zone(); off != 8*3600 {
		t.Errorf("Asia/Shanghai offset = %d s, want UTC+8", off)
	}
	cfg, _ = a.Aggregator(2)
	if !reflect.DeepEqual(cfg.Method.Plan, []air.Pollutant{air.PM25, air.PM10}) {
		t.Errorf("Aggregator(2).Method.Plan = %v, want [PM2.5 PM10]", cfg.Method.Plan)
	}
}

func TestAirExplicit(t *testing.T) {
	c, err := Parse([]byte(`
gateway: {id: box-1, site: canal}
air:
  edition: us-2024
  timezone: UTC
  above_top: extrapolate
  min_minutes_hour: 40
  min_hours_day: 18
  min_hours_8h: 5
  min_windows_day: 12
  min_days_month: 20
  min_days_february: 18
  min_days_year: 240
  lateness: 5m
  sites:
    - {device: air-1, sample: "1h", pollutants: [o3]}
`), "box.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%s", errLines(err))
	}
	cfg, err := c.Air.Aggregator(0)
	if err != nil {
		t.Fatal(err)
	}
	want := air.Validity{MinCoverage: 40 * time.Minute, MinHours: 18, Min8h: 5, MinWindows: 12,
		MinDaysMonth: 20, MinDaysFebruary: 18, MinDaysYear: 240}
	if cfg.Method.Edition != air.USEPA2024 || cfg.Method.AboveTop != air.Extrapolate || cfg.Validity != want ||
		cfg.Location != time.UTC || cfg.Sample != time.Hour || cfg.Lateness != 5*time.Minute ||
		!reflect.DeepEqual(cfg.Method.Plan, []air.Pollutant{air.O3}) {
		t.Errorf("Aggregator(0) = %+v", cfg)
	}
}

// TestAirInCode checks Defaults and Validate on a config built in code, and that
// Aggregator reports a field it cannot convert.
func TestAirInCode(t *testing.T) {
	c := Config{
		Gateway: Gateway{ID: "box-1", Site: "canal"},
		Devices: []Device{{Name: "air-1", Interval: 2 * time.Second, Sim: &Sim{Kind: "air"}}},
		Air:     Air{Sites: []AirSite{{Device: "air-1"}}},
	}
	c.Defaults()
	c.Defaults()
	if s := c.Air.Sites[0]; s.Site != "canal" || s.Sample != 2*time.Second || len(s.Pollutants) != 6 {
		t.Errorf("air.sites[0] after Defaults = %+v", s)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	c.Air.Sites[0].Pollutants = []string{"pm25", "pm1"}
	if _, err := c.Air.Aggregator(0); err == nil || err.Error() != `sites[0].pollutants[1]: "pm1" is not an AQI pollutant: so2, no2, co, o3, pm10 or pm25` {
		t.Errorf("Aggregator with pm1 = %v", err)
	}
	c.Air.Edition = "cn-1999"
	if _, err := c.Air.Aggregator(0); err == nil || !strings.HasPrefix(err.Error(), "edition: ") {
		t.Errorf("Aggregator with an unknown edition = %v", err)
	}
}

// TestAirCheck feeds values past validateAir's own checks straight to check, which
// reports what air.NewAggregator refuses against the config keys.
func TestAirCheck(t *testing.T) {
	a := Air{Edition: "cn-2026", Timezone: "UTC", AboveTop: "cap", MinMinutesHour: 61, MinHoursDay: 25,
		MinHours8h: 9, MinWindowsDay: 18, MinDaysMonth: 31, MinDaysFebruary: 29, MinDaysYear: 366, Lateness: -time.Second,
		Sites: []AirSite{{Device: "air 1", Site: "", Sample: 2 * time.Hour, Pollutants: []string{"pm25", "pm25"}}}}
	var got []string
	for _, p := range a.check(0) {
		got = append(got, p.Error())
	}
	want := []string{
		"air.sites[0].site: must not be empty",
		"air.sites[0].device: character ' ' not allowed (letters, digits, '-', '_', '.')",
		"air.sites[0].pollutants[1]: pm25 listed twice",
		"air.min_minutes_hour: 1h1m0s is not within 0 to 1h",
		"air.min_hours_day: 25 is not within 1 to 24",
		"air.min_hours_8h: 9 is not within 1 to 8",
		"air.min_windows_day: 18 is not within 1 to the 17 windows of a day",
		"air.min_days_month: 31 is not within 1 to 30",
		"air.min_days_february: 29 is not within 1 to 28",
		"air.min_days_year: 366 is not within 1 to 365",
		"air.sites[0].sample: 2h0m0s is not within 0 to 1h",
		"air.lateness: -1s must not be negative",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("check(0) =\n  %q\nwant\n  %q", got, want)
	}
}
