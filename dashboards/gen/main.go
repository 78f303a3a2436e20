// Command gen writes envgate's Grafana dashboards (package dashboards) as JSON into
// dashboards/grafana/. Run it from the repository root after changing a dashboard:
//
//	go run ./dashboards/gen
//
// The tests of package dashboards fail while the committed JSON differs from what this
// writes.
package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/envgate/envgate/dashboards"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "dashboards/gen: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	files, err := dashboards.Generate()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dashboards.Dir, 0o755); err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(dashboards.Dir, name)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
		fmt.Println(p)
	}
	return nil
}
