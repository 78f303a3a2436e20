package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/envgate/envgate/config"
)

// cmdRun runs the gateway with a config file until SIGINT or SIGTERM.
func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (required)")
	listen := fs.String("listen", "", "HTTP address for /metrics and /healthz (overrides gateway.listen)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "envgate run: -c FILE is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "envgate run: config %s:\n", *path)
		for _, line := range problemLines(err) {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return 1
	}
	if *listen != "" {
		cfg.Gateway.Listen = *listen
	}
	return serve(cfg, *path, *listen, 0, nil)
}

// serve starts the gateway for cfg, logs what it is doing, and runs it until SIGINT or
// SIGTERM, or for duration if that is > 0, reloading the config file path (if set) on
// SIGHUP; afterStart (if set) runs in its own goroutine once everything is up. Shutdown is bounded by
// gateway.shutdown_timeout: past it the process exits anyway, and whatever is unsent
// stays on disk.
func serve(cfg *config.Config, path, listen string, duration time.Duration, afterStart func(ctx context.Context, g *running)) int {
	log, level := newLogger(cfg.Gateway.LogLevel, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	// SIGHUP reloads path; caught from here on, so that one during the start (systemctl
	// reload) waits for the gateway to run instead of ending the process.
	var hup chan os.Signal
	if path != "" {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	g, err := start(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	g.path, g.level, g.hup, g.listen = path, level, hup, listen
	log.Info("envgate started", "version", version, "gateway", cfg.Gateway.ID, "devices", deviceCount(cfg), "buses", len(cfg.Buses),
		"sinks", len(cfg.Sinks), "state_dir", cfg.Gateway.StateDir, "metrics", httpScheme(cfg)+"://"+g.listener.Addr().String()+"/metrics")
	// systemd: READY=1 now, STATUS= with the backlog, WATCHDOG=1, STOPPING=1 (notify.go).
	sd := startNotify(ctx, g, log)
	defer sd.close()
	// Past shutdown_timeout the process exits anyway; whatever is unsent stays on disk.
	watchdog := make(chan struct{})
	defer close(watchdog)
	go func() {
		select {
		case <-watchdog:
			return
		case <-ctx.Done():
		}
		stop() // a second signal kills the process the default way
		log.Info("shutting down", "timeout", cfg.Gateway.ShutdownTimeout)
		t := time.NewTimer(cfg.Gateway.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-watchdog:
		case <-t.C:
			log.Error("shutdown timed out; unsent readings stay on disk")
			os.Exit(1)
		}
	}()
	if afterStart != nil {
		go afterStart(ctx, g)
	}
	if err := g.run(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped; unsent readings stay in the buffer", "state_dir", cfg.Gateway.StateDir)
	return 0
}

// problemLines splits a config error into one line per problem.
func problemLines(err error) []string {
	var lines []string
	for _, p := range config.Problems(err) {
		lines = append(lines, p.Error())
	}
	if len(lines) == 0 {
		lines = append(lines, err.Error())
	}
	return lines
}

// deviceCount counts simulated, Modbus and particulate devices and MQTT sources.
func deviceCount(cfg *config.Config) int {
	n := len(cfg.Devices) + len(cfg.MQTT) + len(cfg.PM)
	for _, b := range cfg.Buses {
		n += len(b.Devices)
	}
	return n
}
