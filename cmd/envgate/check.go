package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/metrics"
)

// cmdCheck loads a config file and prints every problem, one per line, prefixed with
// the file name, or a one-line summary when the file is good.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file to check (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "envgate check: -c FILE is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		if ps := config.Problems(err); len(ps) > 0 {
			n := 0
			for _, p := range ps {
				fmt.Fprintf(stdout, "%s: %s\n", *path, p)
				n += max(1, p.Omitted)
			}
			fmt.Fprintf(stdout, "%s: %d problem(s)\n", *path, n)
		} else {
			fmt.Fprintf(stdout, "%s: %v\n", *path, err)
		}
		return 1
	}
	// Build what run builds, short of opening the buffer, ports and connections: the
	// drivers' constructors and the certificate files refuse exactly what they would
	// refuse at start (issue 10).
	parts, err := build(cfg, metrics.New(), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stdout, "%s: %v\n", *path, err)
		return 1
	}
	for _, s := range parts.sinks {
		s.Close()
	}
	fmt.Fprintf(stdout, "%s: ok (gateway %s, %d device(s), %d sink(s))\n", *path, cfg.Gateway.ID, deviceCount(cfg), len(cfg.Sinks))
	return 0
}
