package config

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/envgate/envgate/gateway/reading"
)

// Issue 10 review: buffer.memory_readings had no upper bound, and gateway.series_expiry
// could be shorter than the staleness alerts that need the series (a water analyser's
// series expired before WaterParamSensorStale fired, or after and resolved it).
func TestLimitsMemoryReadingsAndSeriesExpiry(t *testing.T) {
	if n := unsafe.Sizeof(reading.Reading{}); n > 104 {
		t.Errorf("a Reading is %d bytes; update maxMemoryReadings' comment and docs/config.md", n)
	}
	for _, c := range []struct{ yaml, want string }{
		{"buffer: {memory_readings: 1000001}", "must be between 0 and 1000000"},
		{"gateway: {series_expiry: 5h}\nwater: {sections: [{site: river-in, waterbody: river}]}", "must be at least 6h with water sections"},
	} {
		_, err := Parse([]byte("gateway: {id: gw-1}\n"+c.yaml+"\n"), "t.yaml")
		if c.yaml[0] == 'g' {
			_, err = Parse([]byte("gateway: {id: gw-1, series_expiry: 5h}\nwater: {sections: [{site: river-in, waterbody: river}]}\n"), "t.yaml")
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a problem containing %q", c.yaml, err, c.want)
		}
	}
	if _, err := Parse([]byte("gateway: {id: gw-1, series_expiry: 6h}\nbuffer: {memory_readings: 1000000}\nwater: {sections: [{site: river-in, waterbody: river}]}\n"), "t.yaml"); err != nil {
		t.Errorf("the limits themselves: %v", err)
	}
}
