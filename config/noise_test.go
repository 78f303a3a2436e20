package config

import (
	"testing"
	"time"
)

func TestNoiseDefaultsAndAggregator(t *testing.T) {
	c, err := Parse([]byte(`
gateway: {id: box-1, site: canal}
devices:
  - {name: noise-1, site: lock-2, interval: 1s, sim: {kind: noise}}
noise:
  day_start: "07:00"
  sites:
    - {device: noise-1, zone: 1, night_limit: 40, quiet_district: true}
    - {device: meter-9, zone: 4a}
`), "box.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := c.Noise
	if n.Timezone != DefaultNoiseTimezone || n.DayStart != "07:00" || n.NightStart != DefaultNightStart {
		t.Errorf("defaults: %+v", n)
	}
	if s := n.Sites[0]; s.Site != "lock-2" || s.Zone != "1" || s.ZoneLabel() != "1" || !s.QuietDistrict {
		t.Errorf("sites[0] = %+v, want the device's site and zone \"1\" from a bare 1", s)
	}
	if s := n.Sites[1]; s.Site != "canal" {
		t.Errorf("sites[1].site = %q, want gateway.site for a device the file does not configure", s.Site)
	}
	a, err := n.Aggregator(0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Periods.DayStart != 7*time.Hour || a.Periods.NightStart != 22*time.Hour || a.NightLimit == nil || *a.NightLimit != 40 {
		t.Errorf("Aggregator(0) = %+v", a)
	}
	if _, off := time.Date(2026, 1, 1, 0, 0, 0, 0, a.Periods.Location).Zone(); off != 8*3600 {
		t.Errorf("Asia/Shanghai offset = %d s, want UTC+8", off)
	}
	if got := (NoiseSite{DayLimit: new(50.0), NightLimit: new(40.0)}).ZoneLabel(); got != ZoneCustom {
		t.Errorf("ZoneLabel without zone = %q", got)
	}
}

func TestParseClock(t *testing.T) {
	for s, want := range map[string]time.Duration{"00:00": 0, "06:00": 6 * time.Hour, "22:30": 22*time.Hour + 30*time.Minute, "24:00": 24 * time.Hour} {
		if got, err := parseClock(s); err != nil || got != want {
			t.Errorf("parseClock(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "6:00", "06:0", "25:00", "24:01", "06:60", "-1:00", "06:00x", "ab:cd"} {
		if _, err := parseClock(s); err == nil {
			t.Errorf("parseClock(%q) accepted", s)
		}
	}
}
