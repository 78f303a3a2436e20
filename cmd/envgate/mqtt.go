package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/drivers/pm"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// buildMQTT turns a configured MQTT source into a pipeline source whose messages are
// acknowledged to the broker only after their readings are fsynced.
func buildMQTT(c config.MQTT, log *slog.Logger) (gateway.Source, *mqttsub.Subscriber, error) {
	cfg := mqttsub.Config{
		Name: c.Name, Broker: c.Broker, ClientID: c.ClientID,
		Username: c.Username, Password: c.Password.Reveal(),
		KeepAlive: c.KeepAlive, MaxReconnect: c.MaxReconnect, MaxPayload: int(c.MaxPayload),
		DeadLetter: c.DeadLetter, Now: clock.Now,
	}
	if c.TLS != nil {
		t, err := clientTLS(c.TLS)
		if err != nil {
			return gateway.Source{}, nil, fmt.Errorf("tls: %w", err)
		}
		cfg.TLS = t
	}
	for _, s := range c.Subscriptions {
		sub := mqttsub.Subscription{Topic: s.Topic, Template: s.Template, Site: s.Site, Device: s.Device,
			Format: s.Format, Quantity: s.Quantity, Unit: s.Unit, QoS: byte(s.QoS),
			Time: mqttsub.TimeSpec{Path: s.Time.Path, Format: s.Time.Format}}
		if s.Time.Location != "" {
			loc, err := time.LoadLocation(s.Time.Location)
			if err != nil {
				return gateway.Source{}, nil, err
			}
			sub.Time.Location = loc
		}
		for _, f := range s.Fields {
			sub.Fields = append(sub.Fields, mqttsub.Field{Path: f.Path, Quantity: f.Quantity, Scale: f.Scale, Unit: f.Unit,
				Offset: f.Offset, Optional: f.Optional})
		}
		cfg.Subscriptions = append(cfg.Subscriptions, sub)
	}
	s, err := mqttsub.New(cfg, log.With("source", c.Name))
	if err != nil {
		return gateway.Source{}, nil, err
	}
	return gateway.Source{Name: c.Name, Batches: s.Run}, s, nil
}

// clientTLS builds a TLS client configuration: trusted CAs, and a client certificate
// for mutual TLS.
func clientTLS(c *config.MQTTTLS) (*tls.Config, error) {
	t := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in, for testing
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificates", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// buildPM turns a configured UART particulate sensor into a pipeline source.
func buildPM(c config.PMSensor, m *metrics.Metrics, log *slog.Logger) (gateway.Source, error) {
	cfg := pm.Config{Name: c.Name, Site: c.Site, Port: c.Port, Model: pm.Model(c.Model), Mode: c.Mode,
		Interval: c.Interval, Values: c.Values, Stale: c.Stale, Warmup: c.Warmup}
	cfg.DutyCycle.Work, cfg.DutyCycle.Sleep = c.DutyCycle.Work, c.DutyCycle.Sleep
	if c.Warmup == 0 {
		cfg.Warmup = -1 // config has applied its default: an explicit 0 means no warm-up
	}
	s, err := pm.New(cfg, pm.OpenSerial, log)
	if err != nil {
		return gateway.Source{}, err
	}
	m.AddPM(c.Name, func() metrics.PMStats {
		st := s.Stats()
		return metrics.PMStats{Frames: st.Frames, ChecksumErrors: st.ChecksumErrors, LengthErrors: st.LengthErrors,
			Resyncs: st.Resyncs, GarbageBytes: st.GarbageBytes, Timeouts: st.Timeouts, IOErrors: st.IOErrors, Reopens: st.Reopens}
	})
	run := func(ctx context.Context, out chan<- reading.Batch) error { return s.Run(ctx, out, m.ObservePoll) }
	return gateway.Source{Name: c.Name, Batches: run}, nil
}
