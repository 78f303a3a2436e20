package config

import (
	"strings"
	"testing"
	"time"
)

// TestSinkPacing: a sink's retry_jitter defaults to 5s and takes 0 (written out: no
// jitter) to 1h; max_rate defaults to 0 (unlimited) and takes 0 or 1 to 1e6 readings
// per second, fractions included; anything else is an error naming the key and its
// line; the pacing keys are the sink block's own keys for "did you mean".
func TestSinkPacing(t *testing.T) {
	check := func(setting string, jitter time.Duration, rate float64, wantErr string) {
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
		if p := cfg.Sinks[0].InfluxDB.SinkPacing; p.RetryJitter != jitter || p.MaxRate != rate {
			t.Errorf("Parse(%q): retry_jitter %v, max_rate %v; want %v, %v", setting, p.RetryJitter, p.MaxRate, jitter, rate)
		}
	}
	check("", 5*time.Second, 0, "")
	check(", retry_jitter: 0s", 0, 0, "")
	check(", retry_jitter: 2m, max_rate: 500", 2*time.Minute, 500, "")
	check(", max_rate: 1.5", 5*time.Second, 1.5, "")
	check(", max_rate: 0", 5*time.Second, 0, "")
	check(", retry_jitter: -1s", 0, 0, "sinks[0].influxdb.retry_jitter (line 5): must be between 0s and 1h")
	check(", retry_jitter: 2h", 0, 0, "sinks[0].influxdb.retry_jitter (line 5): must be between 0s and 1h")
	check(", retry_jitter: 5", 0, 0, "sinks[0].influxdb.retry_jitter (line 5): must be a duration")
	check(", max_rate: 0.5", 0, 0, "sinks[0].influxdb.max_rate (line 5): must be 0 (unlimited) or between 1 and 1e+06 readings per second")
	check(", max_rate: -10", 0, 0, "sinks[0].influxdb.max_rate (line 5): must be 0 (unlimited)")
	check(", max_rate: fast", 0, 0, "sinks[0].influxdb.max_rate (line 5): must be a number")
	check(", max_rat: 5", 0, 0, `sinks[0].influxdb.max_rat (line 5): unknown key (did you mean "max_rate"?)`)
}
