package config

import (
	"strings"
	"testing"
)

// Issue 10: the device name of the gateway's own health readings is reserved in every
// section, in any letter case, as the health quantities already were for Modbus points.
func TestReservedDeviceName(t *testing.T) {
	for _, name := range []string{"gateway", "Gateway"} {
		_, err := Parse([]byte("gateway: {id: a, site: s}\ndevices:\n  - {name: "+name+", interval: 1s, sim: {kind: noise}}\n"), "x.yaml")
		want := `devices[0].name (line 3): "` + name + `" is reserved for the gateway's own health readings`
		if got := errLines(err); !strings.HasPrefix(got, want) {
			t.Errorf("device %q: problems\n%swant %s", name, got, want)
		}
	}
}

// gateway.series_expiry has a floor: below a minute the series of a device polled
// every minute would blink in and out of /metrics.
func TestSeriesExpiry(t *testing.T) {
	_, err := Parse([]byte("gateway: {id: a, series_expiry: 30s}\n"), "x.yaml")
	if got, want := errLines(err), "gateway.series_expiry (line 1): must be at least 1m0s\n"; got != want {
		t.Errorf("problems\n%swant\n%s", got, want)
	}
	c, err := Parse([]byte("gateway: {id: a}\n"), "x.yaml")
	if err != nil || c.Gateway.SeriesExpiry != DefaultSeriesExpiry {
		t.Errorf("default series_expiry: %v, %v; want %v", c, err, DefaultSeriesExpiry)
	}
}
