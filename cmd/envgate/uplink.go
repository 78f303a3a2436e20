package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/mqttpub"
)

// buildUplink turns a configured mqtt sink into the MQTT uplink sink and its forwarding
// policy: one write at a time and no live lane (SinkSpec.Ordered), so that consumers
// see every device's readings in order (docs/design.md, "MQTT uplink").
func buildUplink(cfg *config.Config, s config.Sink, m *metrics.Metrics, log *slog.Logger) (gateway.SinkSpec, *mqttpub.Sink, error) {
	c := s.MQTT
	if c == nil {
		return gateway.SinkSpec{}, nil, errors.New("no mqtt block")
	}
	topic, err := mqttpub.ParseTopic(c.Topic)
	if err != nil {
		return gateway.SinkSpec{}, nil, fmt.Errorf("topic: %w", err)
	}
	pc := mqttpub.Config{
		Name: s.Name, Broker: c.Broker, ClientID: c.ClientID, Username: c.Username, Password: c.Password.Reveal(),
		Topic: topic, Format: c.Format, GatewayID: cfg.Gateway.ID, Timeout: c.Timeout, KeepAlive: c.KeepAlive,
		MaxBytesPerSecond: int64(c.MaxBytesPerSecond),
	}
	if c.TLS != nil {
		if pc.TLS, err = clientTLS(c.TLS); err != nil {
			return gateway.SinkSpec{}, nil, fmt.Errorf("tls: %w", err)
		}
	}
	sink, err := mqttpub.New(pc, log.With("sink", s.Name))
	if err != nil {
		return gateway.SinkSpec{}, nil, err
	}
	m.AddUplink(s.Name, func() metrics.UplinkStats {
		st := sink.Stats()
		return metrics.UplinkStats{Bytes: st.Bytes, Connects: st.Connects, Connected: st.Connected,
			Throttled: st.Throttled, Skipped: st.Invalid}
	})
	spec := gateway.SinkSpec{
		Name: s.Name, Sink: sink, BatchSize: c.BatchSize, FlushInterval: c.FlushInterval,
		RetryInitial: c.RetryInitial, RetryMax: c.RetryMax, AuthRetry: c.AuthRetry, Ordered: true,
		RetryJitter: c.RetryJitter, MaxRate: c.MaxRate,
		// A write waits for a connect and each PUBACK, each within timeout, and for the
		// rate cap: ten timeouts before the watchdog calls it wedged, and a throttled
		// batch's send time on top.
		StallAfter: max(gateway.DefaultSinkStallAfter, 10*c.Timeout) + throttleTime(c),
	}
	return spec, sink, nil
}

// throttleTime bounds how long the rate cap can hold one batch: batch_size messages
// of at most 2 KiB each (a topic and a payload of names of at most 64 bytes) at
// max_bytes_per_second.
func throttleTime(c *config.MQTTSink) (d time.Duration) {
	if c.MaxBytesPerSecond <= 0 {
		return 0
	}
	return time.Duration(float64(c.BatchSize) * 2048 / float64(c.MaxBytesPerSecond) * float64(time.Second))
}
