package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/hj212/uplink"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
)

// buildHJ212Sink builds the HJ 212 uplink sink of s (docs/hj212.md, "Uplink"): one
// platform, one connection, one write at a time in buffer order (SinkSpec.Ordered), so
// that the platform gets each station's records in time order. The data-flag hook
// (maintenance, calibration) is left nil until a maintenance log exists; the history
// reader is set once the buffer is open (assemble).
func buildHJ212Sink(s config.Sink, m *metrics.Metrics, log *slog.Logger) (gateway.SinkSpec, *uplink.Sink, error) {
	c := s.HJ212
	loc, err := config.LoadLocation(c.Timezone)
	if err != nil {
		return gateway.SinkSpec{}, nil, err
	}
	cfg := uplink.Config{
		Address: c.Address, Location: loc, AnswerTimeout: c.AnswerTimeout, Retries: c.Retries,
		Ack: c.Answers, Heartbeat: c.Heartbeat, RtdInterval: c.RtdInterval, SuspectFlag: c.SuspectFlag,
	}
	for _, st := range c.Stations {
		us := uplink.Station{ST: st.ST, MN: st.MN, PW: st.PW.Reveal(), Site: st.Site, Devices: st.Devices,
			Realtime: st.Realtime, Records: st.Records, Factors: map[string]uplink.FactorOverride{}}
		for _, f := range st.Factors {
			o := uplink.FactorOverride{Code: f.Code, Decimals: -1, Scale: f.Scale}
			if f.Decimals != nil {
				o.Decimals = *f.Decimals
			}
			us.Factors[f.Quantity] = o
		}
		cfg.Stations = append(cfg.Stations, us)
	}
	sink, err := uplink.New(cfg, log.With("sink", s.Name))
	if err != nil {
		return gateway.SinkSpec{}, nil, err
	}
	m.AddHJ212Uplink(s.Name, func() metrics.HJ212UplinkStats {
		st := sink.Stats()
		return metrics.HJ212UplinkStats{Sent: st.Sent, Answered: st.Answered, Resent: st.Resent, Timeouts: st.Timeouts,
			Commands: st.Commands, Refused: st.Refused, Skipped: st.Skipped, Connects: st.Connects, Connected: st.Connected}
	})
	spec := gateway.SinkSpec{
		Name: s.Name, Sink: sink, BatchSize: c.BatchSize, FlushInterval: c.FlushInterval,
		RetryInitial: c.RetryInitial, RetryMax: c.RetryMax, Ordered: true,
		RetryJitter: c.RetryJitter, MaxRate: c.MaxRate,
		// A write waits for each packet's answer, with re-sends: a batch of many records
		// to a slow platform takes minutes without being wedged.
		StallAfter: max(gateway.DefaultSinkStallAfter, time.Duration(c.Retries+1)*c.AnswerTimeout*20),
	}
	return spec, sink, nil
}

// bufferHistory reads the readings q still holds from from to to, for a platform's
// history requests: the segments Recent reads (undelivered readings, and delivered
// ones while the buffer keeps them), in batches.
func bufferHistory(q *buffer.Queue) func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error {
	return func(ctx context.Context, from, to time.Time, each func([]reading.Reading) error) error {
		var batch []reading.Reading
		var ferr error
		err := q.Recent(from, func(r reading.Reading) {
			if ferr != nil || r.Time.Before(from) || r.Time.After(to) {
				return
			}
			if ferr = ctx.Err(); ferr != nil {
				return
			}
			batch = append(batch, r)
			if len(batch) == 1024 {
				ferr, batch = each(batch), nil
			}
		})
		if err != nil {
			return err
		}
		if ferr == nil && len(batch) > 0 {
			ferr = each(batch)
		}
		return ferr
	}
}
