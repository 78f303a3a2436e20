package modbus

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// countingObserver counts transactions.
type countingObserver struct{ tx atomic.Int64 }

func (o *countingObserver) Transaction(string, string, time.Duration, error) { o.tx.Add(1) }
func (o *countingObserver) Poll(string, time.Duration, error)                {}
func (o *countingObserver) Busy(string, time.Duration)                       {}

// BenchmarkBusOverPTY runs the real Bus (scheduler, breaker, decoding) with N devices ×
// M groups over a pty against the fake slave, every group due every millisecond so the
// bus never idles, and compares its transactions per second with a bare loop of the same
// RTU transactions on the same pty in the same run. The difference is what the bus's
// scheduling costs per transaction; docs/engineering-notes.md §2 gives the wire time it is measured
// against (the closing note of the Modbus issue quotes both).
func BenchmarkBusOverPTY(b *testing.B) {
	for _, shape := range []struct{ devices, groups int }{{1, 1}, {3, 4}} {
		b.Run(fmt.Sprintf("devices=%d/groups=%d", shape.devices, shape.groups), func(b *testing.B) {
			opt := RTUOptions{Baud: 115200, Timeout: time.Second}
			pb := newPTYBus(b, opt)
			ids := []uint8{1, 2, 7}
			var devs []Device
			for d := range shape.devices {
				dev := Device{Name: fmt.Sprintf("d%d", d), Site: "s", Slave: ids[d%len(ids)]}
				for g := range shape.groups {
					// 20 registers apart with MaxGap 0: one request per group.
					dev.Points = append(dev.Points, Point{Function: ReadHoldingRegisters, Address: uint16(20 * g),
						Type: Uint16, Quantity: "la", Unit: "dB(A)", Interval: time.Millisecond, Max: new(1e9)})
				}
				devs = append(devs, dev)
			}
			const want = 400
			// Baseline: the same transactions in a bare loop.
			start := time.Now()
			for i := range want {
				d := devs[i%len(devs)]
				p := d.Points[(i/len(devs))%len(d.Points)]
				if _, err := pb.rtu.ReadRegisters(b.Context(), d.Slave, p.Function, p.Address, 1); err != nil {
					b.Fatal(err)
				}
			}
			direct := float64(want) / time.Since(start).Seconds()

			obs := &countingObserver{}
			bus, err := NewBus(BusConfig{Name: "bench", Devices: devs},
				func(context.Context) (Client, error) { return pb.rtu, nil }, obs, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			out := make(chan reading.Batch, 1024)
			go func() {
				for range out {
				}
			}()
			done := make(chan struct{})
			b.ResetTimer()
			go func() { bus.Run(ctx, out); close(done) }()
			target := int64(b.N) * want
			for obs.tx.Load() < target {
				time.Sleep(time.Millisecond)
			}
			elapsed := b.Elapsed()
			cancel()
			<-done
			close(out)
			got := float64(obs.tx.Load()) / elapsed.Seconds()
			b.ReportMetric(got, "bus-tx/s")
			b.ReportMetric(direct, "direct-tx/s")
			b.ReportMetric(got/direct, "bus/direct")
			wire := time.Duration(15)*opt.CharTime() + 2*opt.T35() // one register, 8N1
			b.ReportMetric(1/wire.Seconds(), "wire-limit-tx/s")
		})
	}
}
