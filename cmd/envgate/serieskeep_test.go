package main

import (
	"testing"

	"github.com/envgate/envgate/config"
)

// Issue 10 review: configuredDevices kept the series of a configured device name at
// any site, so env/s1..s300/mast-1/temperature made 300 series that never expired.
// seriesKeep keeps only the (site, device) pairs the config names, the newest series
// of a water section's parameters, and the invalid counts of configured names.
func TestSeriesKeepNamesPairs(t *testing.T) {
	cfg, err := config.Parse([]byte(`
gateway: {id: gw-1, site: canal-east}
devices:
  - {name: mast-1, interval: 10s, sim: {kind: weather}}
mqtt:
  - name: esp
    broker: tcp://127.0.0.1:1883
    client_id: gw1esp
    subscriptions:
      - {topic: env/+/+/+, template: "env/{site}/{device}/{quantity}", format: number}
      - {topic: fixed/+, template: "fixed/{quantity}", device: fixed-1, format: number}
      - {topic: river/+/+, template: "river/{device}/{quantity}", site: river-in, format: number}
water:
  sections:
    - {site: river-in, waterbody: river}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := seriesKeep(cfg)
	for _, c := range []struct {
		site, device string
		want         bool
	}{
		{"canal-east", "mast-1", true},
		{"s1", "mast-1", false}, // a configured name at a site a topic invents
		{"canal-east", "fixed-1", true},
		{"other", "fixed-1", false},
		{"river-in", "analyser-7", false}, // a template device: only as the newest of a water parameter
		{"anywhere", "gateway", true},
	} {
		if got := k.Device(c.site, c.device); got != c.want {
			t.Errorf("Device(%q, %q) = %v, want %v", c.site, c.device, got, c.want)
		}
	}
	for _, c := range []struct {
		site, quantity string
		want           bool
	}{{"river-in", "ph", true}, {"river-in", "tn", true}, {"river-in", "temperature", false}, {"canal-east", "ph", false}} {
		if got := k.Latest(c.site, c.quantity); got != c.want {
			t.Errorf("Latest(%q, %q) = %v, want %v", c.site, c.quantity, got, c.want)
		}
	}
	if !k.Name("mast-1") || !k.Name("fixed-1") || k.Name("esp-7") {
		t.Errorf("Name: mast-1 %v fixed-1 %v esp-7 %v, want true true false", k.Name("mast-1"), k.Name("fixed-1"), k.Name("esp-7"))
	}
}
