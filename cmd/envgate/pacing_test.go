package main

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
)

// TestBuildSinkPacing: retry_jitter and max_rate reach the forwarder's SinkSpec from
// every sink kind's block (config.SinkPacing, inline in each).
func TestBuildSinkPacing(t *testing.T) {
	kinds := []struct {
		kind, block string
		build       func(*config.Config, config.Sink) (gateway.SinkSpec, io.Closer, error)
	}{
		{"influxdb", "      url: http://127.0.0.1:8086\n      bucket: envgate", func(c *config.Config, s config.Sink) (gateway.SinkSpec, io.Closer, error) {
			return buildInflux(c, s, slog.New(slog.DiscardHandler))
		}},
		{"mqtt", "      broker: tcp://127.0.0.1:1883", func(c *config.Config, s config.Sink) (gateway.SinkSpec, io.Closer, error) {
			return buildUplink(c, s, metrics.New(), slog.New(slog.DiscardHandler))
		}},
		{"prometheus_remote_write", "      url: http://127.0.0.1:9090/api/v1/write", func(c *config.Config, s config.Sink) (gateway.SinkSpec, io.Closer, error) {
			return buildRemoteWrite(c, s, metrics.New(), slog.New(slog.DiscardHandler))
		}},
	}
	for _, k := range kinds {
		for _, c := range []struct {
			keys   string
			jitter time.Duration
			rate   float64
		}{
			{"", config.DefaultRetryJitter, 0},
			{"\n      retry_jitter: 30s\n      max_rate: 250.5", 30 * time.Second, 250.5},
			{"\n      retry_jitter: 0s", 0, 0},
		} {
			src := "gateway: {id: box-1, site: canal, state_dir: " + t.TempDir() + "}\nsinks:\n  - name: out\n    " + k.kind + ":\n" +
				k.block + c.keys + "\n"
			cfg, err := config.Parse([]byte(src), "x.yaml")
			if err != nil {
				t.Fatalf("%s %q: %v", k.kind, c.keys, err)
			}
			spec, sink, err := k.build(cfg, cfg.Sinks[0])
			if err != nil {
				t.Fatalf("%s %q: %v", k.kind, c.keys, err)
			}
			sink.Close()
			if spec.RetryJitter != c.jitter || spec.MaxRate != c.rate {
				t.Errorf("%s %q: spec has retry_jitter %v, max_rate %v; want %v, %v", k.kind, c.keys, spec.RetryJitter, spec.MaxRate, c.jitter, c.rate)
			}
		}
	}
}
