package config

import (
	"strings"
	"testing"
)

// TestMaxInFlight: a sink's max_in_flight defaults to 2, takes 1 to 16, and anything
// else (0 written out included) is an error naming the key.
func TestMaxInFlight(t *testing.T) {
	check := func(setting string, want int, wantErr string) {
		t.Helper()
		src := strings.Replace(minimal, "bucket: envgate}", "bucket: envgate"+setting+"}", 1)
		cfg, err := Parse([]byte(src), "x.yaml")
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", setting, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("Parse(%q): %v", setting, err)
		}
		if got := cfg.Sinks[0].InfluxDB.MaxInFlight; got != want {
			t.Errorf("Parse(%q): max_in_flight = %d, want %d", setting, got, want)
		}
	}
	check("", 2, "")
	check(", max_in_flight: 1", 1, "")
	check(", max_in_flight: 16", 16, "")
	check(", max_in_flight: 0", 0, "sinks[0].influxdb.max_in_flight")
	check(", max_in_flight: 17", 0, "must be between 1 and 16")
	check(", max_in_flight: -1", 0, "sinks[0].influxdb.max_in_flight")
}
