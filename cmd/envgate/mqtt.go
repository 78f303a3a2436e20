package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/envgate/envgate/config"
	hj212src "github.com/envgate/envgate/drivers/hj212"
	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/drivers/pm"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// buildMQTT turns a configured MQTT source into a pipeline source whose messages are
// acknowledged to the broker only after their readings are fsynced. The driver's
// configuration comes from config.MQTT.Subscriber, the conversion that envgate check
// validates too; expiry is gateway.series_expiry.
func buildMQTT(c config.MQTT, expiry time.Duration, log *slog.Logger) (gateway.Source, *mqttsub.Subscriber, error) {
	cfg, err := c.Subscriber(expiry)
	if err != nil {
		return nil, nil, err
	}
	cfg.Now = clock.Now // arrival times, shifted with the clock in fakeclock test builds
	if c.TLS != nil {
		t, err := clientTLS(c.TLS)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		cfg.TLS = t
	}
	s, err := mqttsub.New(cfg, log.With("source", c.Name))
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}

// seriesKeep says which series of /metrics outlive gateway.series_expiry: those whose
// silence the staleness alerts report, and only as the config names them, so that no
// name a publisher invents stays for good (issue 10).
//   - Latest-value series of the (site, device) pairs the config names: devices, bus
//     devices and pm sensors at their site (after defaults: theirs or gateway.site),
//     an mqtt subscription's fixed device at its fixed site (a device or site taken
//     from the topic names no pair), the noise and air sites' devices at their site,
//     and the gateway's own health device (reserved: no source can forge it).
//   - For each water section, the newest series of each parameter it averages at its
//     site, whatever the device: a water analyser may be named by a topic template.
//   - envgate_readings_invalid_total of every device name the config names.
func seriesKeep(cfg *config.Config) metrics.SeriesKeep {
	type pair struct{ site, device string }
	pairs := map[pair]bool{}
	names := map[string]bool{reading.HealthDevice: true}
	add := func(site, device string) {
		if site != "" && device != "" {
			pairs[pair{site, device}] = true
		}
		names[device] = true
	}
	for _, d := range cfg.Devices {
		add(d.Site, d.Name)
	}
	for _, b := range cfg.Buses {
		for _, d := range b.Devices {
			add(d.Site, d.Name)
		}
	}
	for _, p := range cfg.PM {
		add(p.Site, p.Name)
	}
	for _, m := range cfg.MQTT {
		for _, s := range m.Subscriptions {
			// Site and Device are set only when the template names no such level
			// (Site after defaults).
			if s.Device != "" {
				add(s.Site, s.Device)
			}
		}
	}
	for _, s := range cfg.Noise.Sites {
		add(s.Site, s.Device)
	}
	for _, s := range cfg.Air.Sites {
		add(s.Site, s.Device)
	}
	return metrics.SeriesKeep{
		Device: func(site, device string) bool { return device == reading.HealthDevice || pairs[pair{site, device}] },
		Latest: cfg.Water.Averaged,
		Name:   func(device string) bool { return names[device] },
	}
}

// clientTLS builds a TLS client configuration: trusted CAs, and a client certificate
// for mutual TLS.
func clientTLS(c *config.MQTTTLS) (*tls.Config, error) {
	t := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify, ServerName: c.ServerName} //nolint:gosec // opt-in, for testing
	if c.CAFile != "" {
		var err error
		if t.RootCAs, err = caPool(c.CAFile); err != nil {
			return nil, err
		}
	}
	if c.CertFile != "" {
		certPEM, err := config.ReadFile(c.CertFile, config.MaxPEMFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		keyPEM, err := config.ReadFile(c.KeyFile, config.MaxPEMFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// caPool reads the PEM bundle of a ca_file (a sink's or an mqtt source's) into a pool
// of the CAs to trust; errors name the key.
func caPool(path string) (*x509.CertPool, error) {
	pem, err := config.ReadFile(path, config.MaxPEMFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificates", path)
	}
	return pool, nil
}

// buildPM turns a configured UART particulate sensor into a pipeline source.
func buildPM(c config.PMSensor, m *metrics.Metrics, log *slog.Logger) (gateway.Source, error) {
	cfg := pm.Config{Name: c.Name, Site: c.Site, Port: c.Port, Model: pm.Model(c.Model), Mode: c.Mode,
		Interval: c.Interval, Values: c.Values, Stale: c.Stale, Warmup: c.Warmup, Observe: m.ObservePoll}
	cfg.DutyCycle.Work, cfg.DutyCycle.Sleep = c.DutyCycle.Work, c.DutyCycle.Sleep
	if c.Warmup == 0 {
		cfg.Warmup = -1 // config has applied its default: an explicit 0 means no warm-up
	}
	s, err := pm.New(cfg, pm.OpenSerial, log)
	if err != nil {
		return nil, err
	}
	m.AddPM(c.Name, func() metrics.PMStats {
		st := s.Stats()
		return metrics.PMStats{Frames: st.Frames, ChecksumErrors: st.ChecksumErrors, LengthErrors: st.LengthErrors,
			Resyncs: st.Resyncs, GarbageBytes: st.GarbageBytes, Timeouts: st.Timeouts, IOErrors: st.IOErrors, Reopens: st.Reopens}
	})
	return s, nil
}

// buildHJ212 turns a configured HJ 212 listener into a pipeline source. It opens
// nothing: Run binds the address or opens the port.
func buildHJ212(c config.HJ212Listener, m *metrics.Metrics, log *slog.Logger) (gateway.Source, error) {
	loc, err := config.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone: %w", err)
	}
	cfg := hj212src.Config{Name: c.Name, Listen: c.Listen, Location: loc, Password: c.PW.Reveal(),
		MaxConns: c.MaxConns, IdleTimeout: c.IdleTimeout}
	if c.Serial != nil {
		cfg.Serial, cfg.Baud = c.Serial.Port, c.Serial.Baud
	}
	for _, st := range c.Stations {
		s := hj212src.Station{MN: st.MN, Site: st.Site, Device: st.Device, Factors: map[string]hj212src.Factor{}}
		for _, f := range st.Factors {
			s.Factors[f.Code] = hj212src.Factor{Quantity: f.Quantity, Scale: f.Scale}
		}
		cfg.Stations = append(cfg.Stations, s)
	}
	now := func() time.Time {
		if t := clock.Now(); clock.Plausible(t) {
			return t
		}
		return time.Time{}
	}
	s, err := hj212src.New(cfg, hj212src.OpenSerial, now, log.With("source", c.Name))
	if err != nil {
		return nil, err
	}
	m.AddHJ212(c.Name, func() metrics.HJ212Stats {
		st := s.Stats()
		return metrics.HJ212Stats{Connections: st.Connections, Refused: st.Refused, Accepted: st.Accepted, Rejected: st.Rejected,
			Answered: st.Answered, Unanswered: st.Unanswered, Readings: st.Readings, Skipped: st.Skipped, Flags: st.Flags}
	})
	return s, nil
}
