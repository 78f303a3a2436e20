package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/envgate/envgate/config"
)

// TestBuildInfluxPacing: a sink's retry_jitter and max_rate reach its forwarder, and an
// unset retry_jitter gives the 5 s default there (the gateway's own zero means none).
func TestBuildInfluxPacing(t *testing.T) {
	for _, c := range []struct {
		keys   string
		jitter time.Duration
		rate   float64
	}{
		{"", config.DefaultRetryJitter, 0},
		{"\n      retry_jitter: 30s\n      max_rate: 250.5", 30 * time.Second, 250.5},
		{"\n      retry_jitter: 0s", 0, 0},
	} {
		src := "gateway: {id: box-1, site: canal, state_dir: " + t.TempDir() + "}\nsinks:\n  - name: influx\n    influxdb:\n" +
			"      url: http://127.0.0.1:8086\n      bucket: envgate" + c.keys + "\n"
		cfg, err := config.Parse([]byte(src), "x.yaml")
		if err != nil {
			t.Fatalf("%q: %v", c.keys, err)
		}
		spec, sink, err := buildInflux(cfg, cfg.Sinks[0], slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%q: %v", c.keys, err)
		}
		sink.Close()
		if spec.RetryJitter != c.jitter || spec.MaxRate != c.rate {
			t.Errorf("%q: spec has retry_jitter %v, max_rate %v; want %v, %v", c.keys, spec.RetryJitter, spec.MaxRate, c.jitter, c.rate)
		}
	}
}
