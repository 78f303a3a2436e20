package config

import (
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/noise"
)

// Issue 11: the Lden hours are configurable. Unset they are 07:00/19:00/23:00; set, the
// monitor's aggregator gets them; a value noise.NewAggregator would refuse is a config
// problem naming its key and line, so `envgate check` refuses what `envgate run` would
// (both load the file through Validate).
func TestNoiseLdenHours(t *testing.T) {
	box := func(extra string) string {
		return `gateway: {id: box-1, site: canal}
devices:
  - {name: noise-1, interval: 1s, sim: {kind: noise}}
noise:
` + extra + `  sites:
    - {device: noise-1, zone: "1"}
`
	}
	c, err := Parse([]byte(box("")), "box.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Noise; n.LdenDayStart != "07:00" || n.LdenEveningStart != "19:00" || n.LdenNightStart != "23:00" {
		t.Errorf("defaults: %q %q %q, want 07:00 19:00 23:00", n.LdenDayStart, n.LdenEveningStart, n.LdenNightStart)
	}
	a, err := c.Noise.Aggregator(0)
	if err != nil || a.Lden != noise.DefaultLdenPeriods() {
		t.Errorf("Aggregator(0).Lden = %+v, %v; want the defaults", a.Lden, err)
	}

	c, err = Parse([]byte(box("  lden_day_start: \"06:00\"\n  lden_evening_start: \"18:00\"\n  lden_night_start: \"22:00\"\n")), "box.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err = c.Noise.Aggregator(0)
	if want := (noise.LdenPeriods{DayStart: 6 * time.Hour, EveningStart: 18 * time.Hour, NightStart: 22 * time.Hour}); err != nil || a.Lden != want {
		t.Errorf("Aggregator(0).Lden = %+v, %v; want %+v", a.Lden, err, want)
	}
	if _, err := noise.NewAggregator(a); err != nil {
		t.Errorf("NewAggregator(a valid config) = %v", err)
	}

	for extra, want := range map[string]string{
		"  lden_day_start: \"07:30\"\n":     `noise.lden_day_start (line 5): 07:30 is not a whole hour`,
		"  lden_evening_start: \"19\"\n":    `noise.lden_evening_start (line 5): "19" is not a time of day HH:MM`,
		"  lden_night_start: \"24:00\"\n":   "", // a night 24:00-07:00 is fine
		"  lden_night_start: \"19:00\"\n":   `noise.lden_night_start (line 5): 19:00 must be after lden_evening_start 19:00`,
		"  lden_evening_start: \"06:00\"\n": `noise.lden_evening_start (line 5): 06:00 must be after lden_day_start 07:00`,
	} {
		_, err := Parse([]byte(box(extra)), "box.yaml")
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v, want no problem", strings.TrimSpace(extra), err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", strings.TrimSpace(extra), err, want)
		}
	}
}
