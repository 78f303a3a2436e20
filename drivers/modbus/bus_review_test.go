package modbus

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// A device slower than its interval must not starve the devices after it (review of
// issue 3: the slow one was always first due, the fast one never ran).
func TestBusSlowDeviceDoesNotStarveOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		line := &busLine{timeout: 5 * time.Second, slaves: map[uint8]*busSlave{
			1: {latency: 1500 * time.Millisecond},
			2: {latency: 10 * time.Millisecond},
		}}
		devs := []Device{
			{Name: "slow", Site: "s", Slave: 1, Points: []Point{busPoint(0, Uint16, "temperature", time.Second)}},
			{Name: "fast", Site: "s", Slave: 2, Points: []Point{busPoint(0, Uint16, "temperature", time.Second)}},
		}
		b, err := NewBus(BusConfig{Name: "b", Devices: devs}, line.open, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		runBus(t, b, 60*time.Second)
		slow, fast := len(line.callsTo(1)), len(line.callsTo(2))
		if fast < 20 || slow < 20 {
			t.Errorf("in 60 s: slow device %d reads, fast device %d; want both served (>= 20 each)", slow, fast)
		}
	})
}

type flapClient struct{}

func (flapClient) ReadRegisters(context.Context, uint8, Function, uint16, uint16) ([]uint16, error) {
	return nil, errors.New("connection: EOF")
}
func (flapClient) ReadBits(context.Context, uint8, Function, uint16, uint16) ([]bool, error) {
	return nil, errors.New("connection: EOF")
}
func (flapClient) Close() error { return nil }

// A connection that opens but fails at once must back off, not reopen every poll.
func TestBusFlappingConnectionBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opens := 0
		open := func(context.Context) (Client, error) { opens++; return flapClient{}, nil }
		devs := []Device{{Name: "d", Site: "s", Slave: 1, Points: []Point{busPoint(0, Uint16, "temperature", time.Second)}}}
		b, err := NewBus(BusConfig{Name: "b", Devices: devs}, open, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		runBus(t, b, 10*time.Minute)
		// 0.5 s doubling to a 30 s cap: about 25 opens in 10 minutes, not 600.
		if opens > 40 {
			t.Errorf("%d opens in 10 minutes of a connection that fails at once, want the back-off to grow (<= 40)", opens)
		}
	})
}

// A gateway's exception 0B means the slave behind it is silent: the breaker must open.
func TestBusGatewayNoAnswerOpensBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exc := &ExceptionError{Function: ReadHoldingRegisters, Code: 0x0B}
		line := &busLine{timeout: time.Second, slaves: map[uint8]*busSlave{1: {latency: 500 * time.Millisecond, err: exc}}}
		dev := Device{Name: "d", Site: "s", Slave: 1, Points: []Point{busPoint(0, Int16, "temperature", time.Second)}}
		b, err := NewBus(BusConfig{Name: "b", Devices: []Device{dev}}, line.open, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		runBus(t, b, 60*time.Second)
		if n := len(line.callsTo(1)); n > 10 {
			t.Errorf("%d requests in 60 s to a slave the gateway reports silent, want the breaker to limit them (<= 10)", n)
		}
	})
}
