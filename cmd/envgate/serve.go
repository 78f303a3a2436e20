package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/derive"
	"github.com/envgate/envgate/gateway/hj212/uplink"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/maint"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/schedule"
	"github.com/envgate/envgate/internal/clock"
)

// newLogger returns a text logger on stderr at the configured level.
func newLogger(level string, w *os.File) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	_ = lv.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), lv
}

// running is a started gateway: the buffer, the HTTP listener and the status page,
// which live as long as the process, and the generation — config, metrics, pipeline and
// sinks — that a reload replaces (reload.go).
type running struct {
	log      *slog.Logger
	level    *slog.LevelVar // the log level, which a reload may change
	path     string         // the config file, read again on reload; "" (demo) never reloads
	hup      chan os.Signal // SIGHUP: reload path; nil without one
	listen   string         // `run --listen`, which a reload keeps
	queue    *buffer.Queue
	listener net.Listener
	page     *statusPage // the status page at / and `envgate tail`'s stream (status.go)
	maint    *maint.Log  // the devices' maintenance windows (maint.go), kept across reloads

	gen      atomic.Pointer[generation]
	reloadOK atomic.Bool               // the last reload was applied (true before any)
	loaded   atomic.Pointer[time.Time] // when the running config was loaded
}

// generation is what one config makes: its metrics, pipeline and sinks, and the HTTP
// handler over them.
type generation struct {
	cfg      *config.Config
	metrics  *metrics.Metrics
	pipeline *gateway.Pipeline
	sinks    []io.Closer   // influx.Sink, mqttpub.Sink, remotewrite.Sink
	keep     time.Duration // how long the buffer keeps delivered readings for its derivations
	handler  http.Handler
}

// current returns the running generation.
func (g *running) current() *generation { return g.gen.Load() }

// start opens the buffer, builds sinks and sources, and binds the HTTP address. It is
// the only place that builds drivers. Errors here end the process: they are config or
// start-up errors.
func start(cfg *config.Config, log *slog.Logger) (_ *running, err error) {
	g := &running{log: log}
	g.page, log = newStatusPage(log) // the page lists the warnings and errors logged from here on
	g.log = log
	var gen *generation
	defer func() {
		if err != nil {
			if gen != nil && g.current() == nil {
				gen.closeSinks()
			}
			g.close()
		}
	}()
	gen, parts, err := g.prepare(cfg)
	if err != nil {
		return nil, err
	}
	if g.maint, err = openMaint(cfg.Gateway.StateDir, log); err != nil {
		return nil, err
	}
	b := cfg.Buffer
	g.queue, err = buffer.Open(buffer.Options{
		Dir:            filepath.Join(cfg.Gateway.StateDir, "buffer"),
		MaxBytes:       int64(b.MaxBytes),
		MaxAge:         b.MaxAge,
		SegmentBytes:   int64(b.SegmentBytes),
		CursorInterval: b.CursorInterval,
		MemoryReadings: b.MemoryReadings,
		// The derivations rebuild their open windows from the log after a restart
		// (gateway/derive Restore): delivered readings stay that long, and a little more.
		Keep: gen.keep,
		Log:  log.With("component", "buffer"),
	})
	if err != nil {
		return nil, err
	}
	if err := g.assemble(gen, parts); err != nil {
		return nil, err
	}
	g.listener, err = net.Listen("tcp", cfg.Gateway.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for /metrics: %w", err)
	}
	g.install(gen)
	return g, nil
}

// prepare builds a generation's metrics, sinks, sources and derivations from cfg
// (build: everything `envgate check` checks), without starting anything.
func (g *running) prepare(cfg *config.Config) (*generation, parts, error) {
	m := metrics.New()
	m.SetInfo(version, cfg.Gateway.ID)
	m.ExpireSeries(cfg.Gateway.SeriesExpiry, seriesKeep(cfg))
	m.SetReload(g.reloadState)
	p, err := build(cfg, m, g.log)
	if err != nil {
		return nil, parts{}, err
	}
	return &generation{cfg: cfg, metrics: m, sinks: p.sinks, keep: p.derived.Keep()}, p, nil
}

// assemble makes gen's pipeline over the buffer and its HTTP handler.
func (g *running) assemble(gen *generation, p parts) error {
	cfg, b := gen.cfg, gen.cfg.Buffer
	// Readings measured in a device's maintenance or calibration window derive nothing,
	// live and when Restore rebuilds the open windows alike.
	p.derived.Exclude(g.maint.Covers)
	gen.metrics.SetMaintenance(maintStates(g.maint, cfg, p.derived))
	// The shutdown budget (gateway.shutdown_timeout, T): sinks get 2/3 of it to deliver,
	// the HTTP server at most T/6, and the rest is left for closing the buffer.
	grace := cfg.Gateway.ShutdownTimeout * 2 / 3
	for _, u := range p.hj212 {
		u.SetHistory(bufferHistory(g.queue))
		// A reading in a device's maintenance or calibration window is flagged M or C
		// for the platform (docs/hj212.md, "Flags").
		u.SetFlag(func(device string, t time.Time) (string, bool) {
			w, ok := g.maint.At(device, t)
			if !ok {
				return "", false
			}
			return w.Kind.Flag(), true
		})
	}
	var err error
	gen.pipeline, err = gateway.New(gateway.Config{
		Derive:         p.derived,
		DeriveState:    filepath.Join(cfg.Gateway.StateDir, "derive"),
		GatewayID:      cfg.Gateway.ID,
		Site:           cfg.Gateway.Site,
		Sources:        p.sources,
		Sinks:          p.specs,
		Queue:          g.queue,
		Metrics:        gen.metrics,
		SyncEvery:      b.Sync == "batch",
		SyncInterval:   b.SyncInterval,
		AckDelay:       b.AckDelay,
		HealthInterval: cfg.Gateway.HealthInterval,
		ShutdownGrace:  grace,
		Tap:            g.page.feed.Publish,
		Log:            g.log,
	})
	if err != nil {
		return err
	}
	gen.handler = g.page.handler(cfg, gen.metrics, gen.pipeline.Healthy,
		maintHandler(g.maint, cfg, g.log, gen.metrics.Handler(gen.pipeline.Healthy)))
	return nil
}

// install makes gen the running generation, loaded now.
func (g *running) install(gen *generation) {
	g.gen.Store(gen)
	now := time.Now()
	g.loaded.Store(&now)
	if g.level != nil {
		_ = g.level.UnmarshalText([]byte(gen.cfg.Gateway.LogLevel))
	}
}

// reloadState is what /metrics says of the reloads.
func (g *running) reloadState() metrics.ReloadState {
	s := metrics.ReloadState{OK: true}
	if t := g.loaded.Load(); t != nil {
		s.OK, s.Loaded = g.reloadOK.Load(), *t
	}
	return s
}

// closeSinks closes gen's sinks.
func (gen *generation) closeSinks() error {
	var errs []error
	for _, s := range gen.sinks {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// parts are the sinks, sources and derivations start builds from a config.
type parts struct {
	specs   []gateway.SinkSpec
	sinks   []io.Closer
	sources []gateway.Source
	derived *derive.Set
	hj212   []*uplink.Sink // read the buffer for history requests (assemble)
}

// build constructs every sink, source and derivation of cfg through the drivers'
// constructors, which check their part of it, and reads the files they need (CA
// certificates and keys). It opens no port, connection or state file, so that
// "envgate check" runs it too and refuses exactly what run would (issue 10). On error
// it closes what it built.
func build(cfg *config.Config, m *metrics.Metrics, log *slog.Logger) (p parts, err error) {
	defer func() {
		if err != nil {
			for _, s := range p.sinks {
				s.Close()
			}
			p = parts{}
		}
	}()
	for i, s := range cfg.Sinks {
		var spec gateway.SinkSpec
		var sink io.Closer
		switch {
		case s.MQTT != nil:
			spec, sink, err = buildUplink(cfg, s, m, log)
		case s.PrometheusRemoteWrite != nil:
			spec, sink, err = buildRemoteWrite(cfg, s, m, log)
		case s.HJ212 != nil:
			var u *uplink.Sink
			spec, u, err = buildHJ212Sink(s, m, log)
			if err == nil {
				sink = u
				p.hj212 = append(p.hj212, u)
			}
		default:
			spec, sink, err = buildInflux(cfg, s, log)
		}
		if err != nil {
			return p, fmt.Errorf("sinks[%d] (%s): %w", i, s.Name, err)
		}
		p.sinks = append(p.sinks, sink)
		p.specs = append(p.specs, spec)
	}
	for i, d := range cfg.Devices {
		src, err := buildSource(d, m, log)
		if err != nil {
			return p, fmt.Errorf("devices[%d] (%s): %w", i, d.Name, err)
		}
		p.sources = append(p.sources, src)
	}
	for i, b := range cfg.Buses {
		src, err := buildBus(b, m, log)
		if err != nil {
			return p, fmt.Errorf("buses[%d] (%s): %w", i, b.Name, err)
		}
		p.sources = append(p.sources, src)
	}
	for i, c := range cfg.MQTT {
		src, sub, err := buildMQTT(c, cfg.Gateway.SeriesExpiry, log)
		if err != nil {
			return p, fmt.Errorf("mqtt[%d] (%s): %w", i, c.Name, err)
		}
		m.AddMQTT(c.Name, func() metrics.MQTTStats {
			s := sub.Stats()
			return metrics.MQTTStats{Messages: s.Messages, Bytes: s.Bytes, Readings: s.Readings,
				DeadLettered: s.DeadLettered, DeadLetterDropped: s.DeadLetterDropped, ErrorsByKind: s.ErrorsByKind, Dropped: s.Dropped,
				NotDurable: s.NotDurable, InFlight: s.InFlight, Connected: s.Connected, Reconnects: s.Reconnects,
				HeldBytes: s.HeldBytes, ForcedReconnects: s.ForcedReconnects, Lost: s.Lost,
				Devices: sub.Devices()}
		})
		p.sources = append(p.sources, src)
	}
	for i, c := range cfg.PM {
		src, err := buildPM(c, m, log)
		if err != nil {
			return p, fmt.Errorf("pm[%d] (%s): %w", i, c.Name, err)
		}
		p.sources = append(p.sources, src)
	}
	for i, c := range cfg.HJ212 {
		src, err := buildHJ212(c, m, log)
		if err != nil {
			return p, fmt.Errorf("hj212_listen[%d] (%s): %w", i, c.Name, err)
		}
		p.sources = append(p.sources, src)
	}
	p.derived, err = buildDerive(cfg)
	return p, err
}

// run serves HTTP and runs the pipeline until ctx is done, reloading the config on
// SIGHUP (reload.go), then shuts down in order.
func (g *running) run(ctx context.Context) error {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.current().handler.ServeHTTP(w, r) })
	first := g.current().cfg
	srv, l := newHTTPServer(h, g.listener, defaultHTTPLimits())
	httpErr := make(chan error, 1)
	go func() { httpErr <- serveHTTP(srv, l, first.Gateway.WebConfigFile, g.log) }()
	err := g.runPipelines(ctx)
	g.page.feed.Close() // ends the reading streams, which Shutdown would wait for
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(2*time.Second, first.Gateway.ShutdownTimeout/6))
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		err = errors.Join(err, serr)
	}
	if herr := <-httpErr; herr != nil && !errors.Is(herr, http.ErrServerClosed) {
		err = errors.Join(err, herr)
	}
	return errors.Join(err, g.close())
}

// close releases the running generation's sinks and the buffer (syncing it and
// persisting cursors). Safe to call twice.
func (g *running) close() error {
	var errs []error
	if gen := g.current(); gen != nil {
		errs = append(errs, gen.closeSinks())
	}
	if g.queue != nil {
		errs = append(errs, g.queue.Close())
	}
	if g.listener != nil {
		g.listener.Close()
	}
	return errors.Join(errs...)
}

func buildInflux(cfg *config.Config, s config.Sink, log *slog.Logger) (gateway.SinkSpec, io.Closer, error) {
	c := s.InfluxDB
	if c == nil {
		return gateway.SinkSpec{}, nil, errors.New("no sink kind configured")
	}
	var tlsCfg *tls.Config
	if c.CAFile != "" || c.InsecureSkipVerify {
		tlsCfg = &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in by the operator
		if c.CAFile != "" {
			var err error
			if tlsCfg.RootCAs, err = caPool(c.CAFile); err != nil {
				return gateway.SinkSpec{}, nil, err
			}
		}
	}
	precision := map[string]time.Duration{"s": time.Second, "ms": time.Millisecond, "us": time.Microsecond, "ns": time.Nanosecond}[c.Precision]
	sink, err := influx.New(influx.Config{
		Name: s.Name, URL: c.URL, Bucket: c.Bucket, Org: c.Org, Token: c.Token.Reveal(),
		Precision: precision, Gzip: c.Gzip == nil || *c.Gzip, Timeout: c.Timeout,
		DeadLetter: c.DeadLetter, DeadLetterMaxBytes: int64(c.DeadLetterMaxBytes), DeadLetterKeep: c.DeadLetterKeep,
		GatewayID: cfg.Gateway.ID, TLS: tlsCfg,
	}, log.With("sink", s.Name))
	if err != nil {
		return gateway.SinkSpec{}, nil, err
	}
	spec := gateway.SinkSpec{
		Name: s.Name, Sink: sink, BatchSize: c.BatchSize, FlushInterval: c.FlushInterval,
		MaxInFlight: c.MaxInFlight, DrainBatchSize: gateway.DrainBatchSize(c.BatchSize),
		RetryInitial: c.RetryInitial, RetryMax: c.RetryMax, AuthRetry: c.AuthRetry,
		RetryJitter: c.RetryJitter, MaxRate: c.MaxRate,
		Counters: func() (uint64, uint64) {
			st := sink.Stats()
			return st.Rejected, st.DeadLettered
		},
		DeadLetterDropped: func() uint64 { return sink.Stats().DeadLetterDropped },
		// A Write is one request per batch, more when the server makes it split the
		// batch (413, 400): ten request timeouts before the watchdog calls it wedged.
		StallAfter: max(gateway.DefaultSinkStallAfter, 10*c.Timeout),
	}
	return spec, sink, nil
}

// buildSource turns a configured polled device into a source: its driver on the
// device's schedule, each poll observed by the metrics.
func buildSource(d config.Device, m *metrics.Metrics, log *slog.Logger) (gateway.Source, error) {
	opt := schedule.Options{Interval: d.Interval, Timeout: d.Timeout}
	switch {
	case d.Sim != nil:
		drv, err := sim.New(sim.Config{Kind: d.Sim.Kind, Seed: d.Sim.Seed, Site: d.Site, Device: d.Name, Now: clock.Now})
		if err != nil {
			return nil, err
		}
		return &schedule.Source{Device: d.Name, Poller: drv, Options: opt, Observe: m.ObservePoll, Log: log}, nil
	}
	return nil, errors.New("no driver configured")
}
