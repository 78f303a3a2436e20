package config

import (
	"slices"
	"testing"
)

// TestDeviceNames: every kind of configured device is named once, HJ 212 stations and
// the fixed devices of MQTT subscriptions included, and a noise monitor on an HJ 212
// station takes the station's site.
func TestDeviceNames(t *testing.T) {
	cfg, err := Parse([]byte(`
gateway: {id: gw-1, site: canal-east}
devices:
  - {name: sim-1, interval: 10s, sim: {kind: noise}}
mqtt:
  - name: esp
    broker: tcp://127.0.0.1:1883
    client_id: gw1esp
    subscriptions:
      - {topic: env/+/+/+, template: "env/{site}/{device}/{quantity}", format: number}
      - {topic: fixed/+, template: "fixed/{quantity}", device: fixed-1, format: number}
      - {topic: fixed2/+, template: "fixed2/{quantity}", device: fixed-1, format: number}
hj212_listen:
  - name: analyzers
    listen: "127.0.0.1:9212"
    stations:
      - {mn: 33010500A0010001F0000002, device: nm1, site: square}
noise:
  sites:
    - {device: nm1, zone: "1"}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.DeviceNames(), []string{"fixed-1", "nm1", "sim-1"}; !slices.Equal(got, want) {
		t.Errorf("DeviceNames() = %q, want %q", got, want)
	}
	var kinds []string
	for _, g := range cfg.DeviceGroups() {
		kinds = append(kinds, g.Kind+":"+g.Name)
	}
	if want := []string{"sim:simulated devices", "mqtt:esp", "hj212:HJ 212 analyzers"}; !slices.Equal(kinds, want) {
		t.Errorf("DeviceGroups() = %q, want %q", kinds, want)
	}
	if got := cfg.Noise.Sites[0].Site; got != "square" {
		t.Errorf("noise.sites[0].site = %q, want the station's site square", got)
	}
}
