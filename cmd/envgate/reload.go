package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/envgate/envgate/config"
)

// A reload (SIGHUP; `systemctl reload envgate`) reads the config file again and checks
// it exactly as `envgate check` does (config.Load, then build). If it is refused, the
// running generation goes on untouched, the log says why, and
// envgate_config_reload_success is 0. Otherwise the new generation — devices,
// subscriptions, monitors, sinks, metrics — replaces the running one over the same
// buffer, which stays open:
//
//   - the running pipeline hands over (gateway.Pipeline.Handover): its sources stop, the
//     writer stores and syncs what they sent, the forwarders stop after the write in
//     flight (the new ones go on from the same cursors); MQTT messages not yet durable
//     stay unacknowledged and come again on the new connection, and readings held for
//     the clock pass to the new pipeline (AdoptHeld), so nothing is lost;
//   - a sink that is in both configs keeps its cursor (the buffer's reader of that name
//     goes on where it was), so nothing is sent twice; a removed sink's cursor is
//     deleted, so it holds nothing back; a new sink starts at the oldest reading;
//   - the new pipeline rebuilds the derivations' open windows from the buffer, as after
//     a restart (design §9), and derives nothing twice;
//   - the metrics start anew, like after a restart, but for the reload gauges.
//
// What the running process cannot change — the HTTP listener and its web config, the
// state directory, the shutdown budget and the buffer's settings — refuses the reload
// with the key named: those need a restart. A `run --listen` address holds for the
// process, whatever the file says.

// runPipelines runs the running generation's pipeline until ctx is done, replacing the
// generation on each SIGHUP whose config is accepted. It returns the last pipeline's
// error.
func (g *running) runPipelines(ctx context.Context) error {
	for {
		gen := g.current()
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- gen.pipeline.Run(pctx) }()
		var next *generation
		for next == nil {
			select {
			case err := <-done:
				cancel()
				return err
			case <-g.hup: // nil without a config file to reload: never
				if ctx.Err() != nil {
					continue // shutting down: done follows
				}
				n, err := g.prepareReload(gen)
				if err != nil {
					g.reloadOK.Store(false)
					g.log.Error("config reload refused; the running config stays", "config", g.path, "err", err)
					continue
				}
				if ctx.Err() != nil { // a stop came while it was built
					g.abandon(gen, n)
					continue
				}
				next = n
			}
		}
		// The forwarders stop after their write in flight; the new ones go on from the
		// same cursors.
		gen.pipeline.Handover()
		cancel()
		if err := <-done; err != nil {
			g.log.Error("pipeline stopped for the reload", "err", err)
		}
		next.pipeline.AdoptHeld(gen.pipeline) // readings held for the clock (design §11)
		g.swap(gen, next)
	}
}

// prepareReload reads and checks the config file again and builds the generation it
// describes over the running buffer, starting nothing.
func (g *running) prepareReload(old *generation) (*generation, error) {
	cfg, err := config.Load(g.path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.path, err)
	}
	if g.listen != "" {
		cfg.Gateway.Listen = g.listen // `run --listen` holds for the process
	}
	if err := restartOnly(old.cfg, cfg); err != nil {
		return nil, err
	}
	gen, parts, err := g.prepare(cfg)
	if err != nil {
		return nil, err
	}
	if err := g.assemble(gen, parts); err != nil {
		g.abandon(old, gen)
		return nil, err
	}
	return gen, nil
}

// abandon drops a prepared generation that will not run: its sinks are closed and the
// buffer readers it opened for sinks old does not have are removed, so that they hold
// nothing back.
func (g *running) abandon(old, gen *generation) {
	gen.closeSinks()
	for _, s := range gen.cfg.Sinks {
		if !slices.ContainsFunc(old.cfg.Sinks, func(o config.Sink) bool { return o.Name == s.Name }) {
			if err := g.queue.RemoveReader(s.Name); err != nil {
				g.log.Warn("cannot drop the reader of an abandoned sink", "sink", s.Name, "err", err)
			}
		}
	}
}

// restartOnly refuses a new config that changes what only a restart can apply.
func restartOnly(old, cfg *config.Config) error {
	for _, c := range []struct {
		key      string
		was, now any
	}{
		{"gateway.listen", old.Gateway.Listen, cfg.Gateway.Listen},
		{"gateway.web_config_file", old.Gateway.WebConfigFile, cfg.Gateway.WebConfigFile},
		{"gateway.state_dir", old.Gateway.StateDir, cfg.Gateway.StateDir},
		{"gateway.shutdown_timeout", old.Gateway.ShutdownTimeout, cfg.Gateway.ShutdownTimeout},
		{"buffer", old.Buffer, cfg.Buffer},
	} {
		if c.was != c.now {
			return fmt.Errorf("%s changed (%v → %v): a reload cannot apply it; restart the service (systemctl restart envgate)", c.key, c.was, c.now)
		}
	}
	return nil
}

// swap makes next the running generation once old's pipeline has stopped: it deletes
// the cursors of the sinks next no longer has, closes old's sinks and tells the buffer
// how long next's derivations need delivered readings.
func (g *running) swap(old, next *generation) {
	var added, removed []string
	for _, s := range old.cfg.Sinks {
		if !slices.ContainsFunc(next.cfg.Sinks, func(n config.Sink) bool { return n.Name == s.Name }) {
			removed = append(removed, s.Name)
			if err := g.queue.RemoveReader(s.Name); err != nil {
				g.log.Error("cannot drop the cursor of a removed sink", "sink", s.Name, "err", err)
			}
		}
	}
	for _, s := range next.cfg.Sinks {
		if !slices.ContainsFunc(old.cfg.Sinks, func(o config.Sink) bool { return o.Name == s.Name }) {
			added = append(added, s.Name)
		}
	}
	if err := old.closeSinks(); err != nil {
		g.log.Warn("closing the previous sinks", "err", err)
	}
	g.queue.SetKeep(next.keep)
	g.reloadOK.Store(true)
	g.install(next)
	g.log.Info("config reloaded", "config", g.path, "devices", deviceCount(next.cfg), "sinks", len(next.cfg.Sinks),
		"sinks_added", added, "sinks_removed", removed)
}
