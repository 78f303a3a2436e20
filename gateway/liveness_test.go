package gateway_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/schedule"
)

// Issue 13: a hung fsync makes Wedged report the writer (the systemd watchdog then
// withholds its keep-alives), and it clears once the fsync returns.
func TestWedgedWhileFsyncHangs(t *testing.T) {
	q := openQueue(t)
	hq := &hangingQueue{Queue: q, hanging: make(chan struct{}), release: make(chan struct{})}
	poller := &permitPoller{}
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: q, Metrics: metrics.New(), SyncInterval: 20 * time.Millisecond,
		ShutdownGrace: time.Second, StallAfter: 300 * time.Millisecond,
		Sources: []gateway.Source{&schedule.Source{Device: "noise-1", Poller: poller, Options: schedule.Options{Interval: 10 * time.Millisecond}}}})
	if err != nil {
		t.Fatal(err)
	}
	gateway.SetQueue(p, hq)
	stop := start(t, p)
	defer stop()
	released := false
	defer func() {
		if !released {
			close(hq.release)
		}
	}()
	poller.permits.Add(5)
	waitFor(t, 10*time.Second, "readings stored", func() bool { return q.Stats().Appended >= 5 })
	if err := p.Wedged(); err != nil {
		t.Fatalf("Wedged() = %v before the hang, want nil", err)
	}
	hq.hang.Store(true)
	poller.permits.Add(1)
	<-hq.hanging
	waitFor(t, 10*time.Second, "Wedged to report the stalled writer", func() bool {
		err := p.Wedged()
		return err != nil && strings.Contains(err.Error(), "writer stalled")
	})
	close(hq.release)
	released = true
	waitFor(t, 10*time.Second, "Wedged to clear after the fsync returned", func() bool { return p.Wedged() == nil })
}

// hungSink blocks in Write until release is closed or ctx is done.
type hungSink struct {
	entered chan struct{}
	release chan struct{}
}

func (s *hungSink) Write(ctx context.Context, _ []reading.Reading) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Issue 13: a forwarder stuck in a Write beyond its StallAfter is wedged; Healthy,
// which judges the disk, does not change.
func TestWedgedForwarder(t *testing.T) {
	q := openQueue(t)
	sink := &hungSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	poller := &permitPoller{}
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: q, Metrics: metrics.New(), SyncInterval: 20 * time.Millisecond,
		ShutdownGrace: time.Second,
		Sinks:         []gateway.SinkSpec{{Name: "lab", Sink: sink, BatchSize: 1, StallAfter: 200 * time.Millisecond}},
		Sources:       []gateway.Source{&schedule.Source{Device: "noise-1", Poller: poller, Options: schedule.Options{Interval: 10 * time.Millisecond}}}})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, p)
	defer stop()
	defer close(sink.release)
	if err := p.Wedged(); err != nil {
		t.Fatalf("Wedged() = %v before any write, want nil", err)
	}
	poller.permits.Add(1)
	<-sink.entered
	waitFor(t, 10*time.Second, "Wedged to report the stuck forwarder", func() bool {
		err := p.Wedged()
		return err != nil && strings.Contains(err.Error(), "sink lab: forwarder stuck") && strings.Contains(err.Error(), "sink write")
	})
	if err := p.Healthy(); err != nil {
		t.Errorf("Healthy() = %v, want nil: the disk is fine", err)
	}
	if bs := p.Backlogs(); len(bs) != 1 || bs[0].Sink != "lab" || bs[0].Unsent < 1 {
		t.Errorf("Backlogs() = %+v, want lab with at least 1 unsent", bs)
	}
}

// stalledSource is a source that reports itself wedged.
type stalledSource struct{ err error }

func (s *stalledSource) Name() string { return "rs485-1" }
func (s *stalledSource) Run(ctx context.Context, _ chan<- reading.Batch) error {
	<-ctx.Done()
	return nil
}
func (s *stalledSource) Stalled() error { return s.err }

// Issue 13: a source that is a gateway.Staller (a Modbus bus) counts in Wedged.
func TestWedgedSource(t *testing.T) {
	src := &stalledSource{}
	p, err := gateway.New(gateway.Config{GatewayID: "g", Queue: openQueue(t), Metrics: metrics.New(),
		Sources: []gateway.Source{src}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wedged(); err != nil {
		t.Fatalf("Wedged() = %v, want nil", err)
	}
	src.err = errors.New("modbus bus rs485-1 stuck for 31s in open")
	if err := p.Wedged(); err == nil || !strings.Contains(err.Error(), "source rs485-1: modbus bus rs485-1 stuck") {
		t.Errorf("Wedged() = %v, want the bus named", err)
	}
}
