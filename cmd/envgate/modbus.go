package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/drivers/modbus"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/metrics"
)

// buildBus turns a configured Modbus bus into a streaming source: one goroutine owns
// the port and schedules every point of every device on it.
func buildBus(b config.Bus, m *metrics.Metrics, log *slog.Logger) (gateway.Source, error) {
	cfg := modbus.BusConfig{Name: b.Name}
	for _, d := range b.Devices {
		dev := modbus.Device{Name: d.Name, Site: d.Site, Slave: uint8(d.Slave), MaxGap: uint16(b.MaxGap),
			OneRegisterPerRequest: d.OneRegisterPerRequest}
		for _, p := range d.Points {
			dev.Points = append(dev.Points, modbus.Point{
				Function: modbus.Function(p.Function), Address: uint16(p.Address),
				Type: modbus.DataType(p.Type), Order: modbus.WordOrder(p.Order),
				Scale: p.Scale, Offset: p.Offset, Quantity: p.Quantity, Unit: p.Unit,
				Interval: p.Interval, Min: p.Min, Max: p.Max,
			})
		}
		cfg.Devices = append(cfg.Devices, dev)
	}
	var open modbus.Opener
	switch {
	case b.Serial != nil:
		s := b.Serial
		opt := modbus.RTUOptions{Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits,
			Timeout: b.Timeout, Turnaround: b.Turnaround}
		open = func(context.Context) (modbus.Client, error) { return modbus.OpenSerial(s.Port, opt) }
	case b.TCP != nil:
		open = func(context.Context) (modbus.Client, error) { return modbus.OpenTCP(b.TCP.Address, false, b.Timeout) }
	case b.RTUOverTCP != nil:
		open = func(context.Context) (modbus.Client, error) {
			return modbus.OpenTCP(b.RTUOverTCP.Address, true, b.Timeout)
		}
	default:
		return nil, errors.New("no transport configured")
	}
	bus, err := modbus.NewBus(cfg, open, modbusObserver{m}, log)
	if err != nil {
		return nil, err
	}
	return bus, nil
}

// modbusObserver feeds a bus's transactions and polls into the metrics.
type modbusObserver struct{ m *metrics.Metrics }

func (o modbusObserver) Transaction(bus, device string, rtt time.Duration, err error) {
	result, code := metrics.ResultOK, uint8(0)
	var exc *modbus.ExceptionError
	switch {
	case err == nil:
	case errors.As(err, &exc):
		result, code = metrics.ResultException, exc.Code
	case errors.Is(err, modbus.ErrTimeout):
		result = metrics.ResultTimeout
	case errors.Is(err, modbus.ErrCRC):
		result = metrics.ResultCRC
	case errors.Is(err, modbus.ErrFrame):
		result = metrics.ResultFrame
	default:
		result = metrics.ResultIO
	}
	o.m.ObserveModbus(bus, device, rtt, result, code)
}

func (o modbusObserver) Poll(device string, d time.Duration, err error) {
	o.m.ObservePoll(device, d, err)
}

func (o modbusObserver) Busy(bus string, d time.Duration) { o.m.AddBusy(bus, d) }
