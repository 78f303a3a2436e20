package main

import (
	"crypto/tls"
	"io"
	"log/slog"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/remotewrite"
)

// buildRemoteWrite builds the Prometheus remote-write sink of s (docs/remote-write.md).
// Its forwarder is Ordered and sends one request at a time (the sink is no Preparer):
// a receiver rejects a sample older than the newest of its series. Unless
// metrics_interval is 0, the sink's metrics push, which sends m's allowed families on
// its own schedule, runs beside the forwarder as the spec's Companion.
func buildRemoteWrite(cfg *config.Config, s config.Sink, m *metrics.Metrics, log *slog.Logger) (gateway.SinkSpec, io.Closer, error) {
	c := s.PrometheusRemoteWrite
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
	headers := map[string]string{}
	for _, h := range c.Headers {
		headers[h.Name] = h.Value
	}
	sink, err := remotewrite.New(remotewrite.Config{
		Name: s.Name, URL: c.URL, Timeout: c.Timeout,
		BearerToken: c.BearerToken.Reveal(), Username: c.Username, Password: c.Password.Reveal(), Headers: headers,
		DeadLetter: c.DeadLetter, DeadLetterMaxBytes: int64(c.DeadLetterMaxBytes), DeadLetterKeep: c.DeadLetterKeep,
		GatewayID: cfg.Gateway.ID, TLS: tlsCfg,
	}, log.With("sink", s.Name))
	if err != nil {
		return gateway.SinkSpec{}, nil, err
	}
	spec := gateway.SinkSpec{
		Name: s.Name, Sink: sink, BatchSize: c.BatchSize, FlushInterval: c.FlushInterval,
		DrainBatchSize: gateway.DrainBatchSize(c.BatchSize), Ordered: true,
		RetryInitial: c.RetryInitial, RetryMax: c.RetryMax, AuthRetry: c.AuthRetry,
		RetryJitter: c.RetryJitter, MaxRate: c.MaxRate,
		Counters: func() (uint64, uint64) {
			st := sink.Stats()
			return st.Rejected, st.DeadLettered
		},
		DeadLetterDropped: func() uint64 { return sink.Stats().DeadLetterDropped },
		// A Write is one request, more when the receiver rejects samples and the batch
		// is split: ten request timeouts before the watchdog calls it wedged.
		StallAfter: max(gateway.DefaultSinkStallAfter, 10*c.Timeout),
	}
	if c.MetricsInterval > 0 {
		push, err := sink.NewMetricsPush(remotewrite.MetricsConfig{Interval: c.MetricsInterval, Job: c.MetricsJob,
			Site: cfg.Gateway.Site, Names: c.Metrics}, m.Registry())
		if err != nil {
			sink.Close()
			return gateway.SinkSpec{}, nil, err
		}
		spec.Companion = push.Run
		m.AddMetricsPush(s.Name, func() metrics.PushStats {
			st := push.Stats()
			return metrics.PushStats{Pushed: st.Pushed, Failed: st.Failed}
		})
	}
	return spec, sink, nil
}
