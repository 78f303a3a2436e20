package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/envgate/envgate/config"
)

// cmdDemo runs the gateway on the embedded demo config: simulated noise, air, water and
// weather devices, the buffer in a state directory, /metrics on localhost, and an
// InfluxDB sink only if one is given by flag or environment.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9273", "HTTP address for /metrics and /healthz")
	state := fs.String("state", defaultDemoState(), "state directory for the buffer")
	influxURL := fs.String("influx-url", os.Getenv("ENVGATE_INFLUX_URL"), "InfluxDB URL to forward to (env ENVGATE_INFLUX_URL); empty: keep readings in the buffer")
	bucket := fs.String("influx-bucket", cmp.Or(os.Getenv("ENVGATE_INFLUX_BUCKET"), "envgate/autogen"), "bucket, or db/rp for InfluxDB 1.8 (env ENVGATE_INFLUX_BUCKET)")
	org := fs.String("influx-org", os.Getenv("ENVGATE_INFLUX_ORG"), "organisation for InfluxDB 2.x (env ENVGATE_INFLUX_ORG)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Parse(config.Demo(), "embedded demo config")
	if err != nil {
		fmt.Fprintf(stderr, "envgate demo: %v\n", err)
		return 1
	}
	cfg.Gateway.StateDir = *state
	cfg.Gateway.Listen = *listen
	cfg.Gateway.LogLevel = *logLevel
	for i := range cfg.Sinks {
		if x := cfg.Sinks[i].InfluxDB; x != nil {
			x.DeadLetter = "" // re-derived from the state dir below
		}
	}
	if *influxURL != "" {
		// The token comes only from the environment, so it never shows in `ps`.
		cfg.Sinks = append(cfg.Sinks, config.Sink{Name: "influx", InfluxDB: &config.InfluxDB{
			URL: *influxURL, Bucket: *bucket, Org: *org, Token: config.Secret(os.Getenv("ENVGATE_INFLUX_TOKEN")),
		}})
	}
	cfg.Defaults()

	fmt.Fprintf(stdout, "envgate demo %s: %d simulated devices at site %s (", version, len(cfg.Devices), cfg.Gateway.Site)
	for i, d := range cfg.Devices {
		fmt.Fprintf(stdout, "%s%s every %s", map[bool]string{true: ", "}[i > 0], d.Name, d.Interval)
	}
	fmt.Fprintf(stdout, ")\n  buffer:  %s\n  metrics: http://%s/metrics   health: http://%s/healthz\n",
		filepath.Join(cfg.Gateway.StateDir, "buffer"), cfg.Gateway.Listen, cfg.Gateway.Listen)
	if *influxURL != "" {
		fmt.Fprintf(stdout, "  forwarding to InfluxDB %s, bucket %s\n", *influxURL, *bucket)
	} else {
		fmt.Fprintf(stdout, "  no InfluxDB configured: readings stay in the buffer (set ENVGATE_INFLUX_URL or --influx-url to forward)\n")
	}
	fmt.Fprintf(stdout, "  stop with Ctrl-C; unsent readings stay on disk and are sent on the next start\n")
	return serve(cfg, "", "", *duration, func(ctx context.Context, g *running) { progress(ctx, g, stdout) })
}

// defaultDemoState is $XDG_STATE_HOME/envgate-demo, or ~/.local/state/envgate-demo.
func defaultDemoState() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "envgate-demo")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "envgate-demo")
	}
	return filepath.Join(os.TempDir(), "envgate-demo")
}

// progress prints one status line every 10 s: what was buffered and delivered, and the
// latest value of a few headline quantities, read back from the metrics registry.
func progress(ctx context.Context, g *running, w io.Writer) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		latest := map[string]string{}
		var delivered float64
		mfs, _ := g.current().metrics.Registry().Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				switch mf.GetName() {
				case "envgate_reading_value":
					latest[labels["quantity"]] = fmt.Sprintf("%s %g %s", labels["quantity"], m.GetGauge().GetValue(), labels["unit"])
				case "envgate_sink_written_total":
					delivered += m.GetCounter().GetValue()
				}
			}
		}
		st := g.queue.Stats()
		var parts []string
		for _, q := range []string{"la", "pm25", "o3", "do", "ph", "temperature"} {
			if s, ok := latest[q]; ok {
				parts = append(parts, s)
			}
		}
		line := fmt.Sprintf("[%s] %d readings buffered (%d KiB on disk)", time.Since(start).Truncate(time.Second), st.Appended, st.Bytes>>10)
		if len(g.current().sinks) > 0 {
			line += fmt.Sprintf(", %.0f delivered", delivered)
		}
		fmt.Fprintf(w, "%s | %s\n", line, strings.Join(parts, " | "))
	}
}
