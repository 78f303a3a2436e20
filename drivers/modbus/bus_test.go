package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// busSlave is one device on a busLine.
type busSlave struct {
	regs    map[uint16]uint16 // missing registers read as 0
	bits    map[uint16]bool
	latency time.Duration // reply time
	err     error         // returned after latency instead of data
}

// busCall is one transaction seen by a busLine.
type busCall struct {
	at          time.Time
	slave       uint8
	fn          Function
	addr, count uint16
	err         error
}

// busLine is the wire behind every Client a test's Opener hands out. A missing or
// dead slave (err ErrTimeout) costs timeout, like a real master waiting for a reply.
type busLine struct {
	timeout time.Duration
	slaves  map[uint8]*busSlave
	ioErrAt int // the transaction with this 1-based number fails with an I/O error

	mu      sync.Mutex
	calls   []busCall
	clients []*busClient
}

var errBusUnplugged = errors.New("read /dev/ttyUSB0: input/output error")

type busClient struct {
	line   *busLine
	closed int
}

func (l *busLine) open(ctx context.Context) (Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := &busClient{line: l}
	l.clients = append(l.clients, c)
	return c, nil
}

// exchange waits like the slave would and reports its answer.
func (c *busClient) exchange(ctx context.Context, slave uint8, fn Function, addr, count uint16) (*busSlave, error) {
	l := c.line
	l.mu.Lock()
	if c.closed > 0 {
		l.mu.Unlock()
		return nil, errors.New("use of closed client")
	}
	s, ok := l.slaves[slave]
	var err error
	wait := l.timeout
	switch {
	case len(l.calls)+1 == l.ioErrAt:
		wait, err = 0, errBusUnplugged
	case !ok:
		err = ErrTimeout
	case errors.Is(s.err, ErrTimeout):
		err = s.err
	default:
		wait, err = s.latency, s.err
	}
	l.mu.Unlock()
	start := time.Now()
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	l.calls = append(l.calls, busCall{at: start, slave: slave, fn: fn, addr: addr, count: count, err: err})
	l.mu.Unlock()
	return s, err
}

func (c *busClient) ReadRegisters(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]uint16, error) {
	s, err := c.exchange(ctx, slave, fn, addr, count)
	if err != nil {
		return nil, err
	}
	regs := make([]uint16, count)
	for i := range regs {
		regs[i] = s.regs[addr+uint16(i)]
	}
	return regs, nil
}

func (c *busClient) ReadBits(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]bool, error) {
	s, err := c.exchange(ctx, slave, fn, addr, count)
	if err != nil {
		return nil, err
	}
	bits := make([]bool, count)
	for i := range bits {
		bits[i] = s.bits[addr+uint16(i)]
	}
	return bits, nil
}

func (c *busClient) Close() error {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	c.closed++
	return nil
}

// setErr changes what slave answers from now on.
func (l *busLine) setErr(slave uint8, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slaves[slave].err = err
}

// callsTo returns the transactions addressed to slave.
func (l *busLine) callsTo(slave uint8) []busCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []busCall
	for _, c := range l.calls {
		if c.slave == slave {
			out = append(out, c)
		}
	}
	return out
}

// busPollEvent is one Observer.Poll.
type busPollEvent struct {
	at  time.Time
	d   time.Duration
	err error
}

type busObserver struct {
	mu    sync.Mutex
	polls map[string][]busPollEvent
	txs   map[string]int
	busy  time.Duration
}

func newBusObserver() *busObserver {
	return &busObserver{polls: map[string][]busPollEvent{}, txs: map[string]int{}}
}

func (o *busObserver) Transaction(bus, device string, rtt time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.txs[device]++
}

func (o *busObserver) Poll(device string, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.polls[device] = append(o.polls[device], busPollEvent{time.Now(), d, err})
}

func (o *busObserver) Busy(bus string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.busy += d
}

// busLogRecorder keeps the messages logged, for "log state changes once" checks.
type busLogRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *busLogRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *busLogRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *busLogRecorder) WithGroup(string) slog.Handler            { return h }
func (h *busLogRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *busLogRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// runBus runs b inside the current synctest bubble for d of fake time, then cancels
// it and returns every slice it sent, grouped by device.
func runBus(t *testing.T, b *Bus, d time.Duration) map[string][][]reading.Reading {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan reading.Batch)
	got := map[string][][]reading.Reading{}
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for b := range out {
			got[b.Readings[0].Device] = append(got[b.Readings[0].Device], b.Readings)
		}
	}()
	ran := make(chan error)
	go func() { ran <- b.Run(ctx, out) }()
	time.Sleep(d)
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	close(out)
	<-consumed
	return got
}

// busPoint is a valid holding-register point of a catalog quantity.
func busPoint(addr uint16, typ DataType, quantity string, every time.Duration) Point {
	return Point{Function: ReadHoldingRegisters, Address: addr, Type: typ, Quantity: quantity, Interval: every}
}

func TestBusDeadSlaveDoesNotStallOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		line := &busLine{timeout: timeout, slaves: map[uint8]*busSlave{
			1: {latency: 20 * time.Millisecond, regs: map[uint16]uint16{0: 215}},
			2: {err: ErrTimeout},
			3: {latency: 40 * time.Millisecond, regs: map[uint16]uint16{0: 550}},
		}}
		dev := func(name string, slave uint8) Device {
			return Device{Name: name, Site: "canal-east", Slave: slave, Points: []Point{
				{Function: ReadHoldingRegisters, Type: Uint16, Scale: 0.1, Quantity: "humidity", Interval: time.Second},
			}}
		}
		obs, logs := newBusObserver(), &busLogRecorder{}
		b, err := NewBus(BusConfig{Name: "rs485-1", Devices: []Device{dev("hum-1", 1), dev("dead", 2), dev("hum-3", 3)}},
			line.open, obs, slog.New(logs))
		if err != nil {
			t.Fatal(err)
		}
		const run = 10 * time.Minute
		got := runBus(t, b, run-time.Millisecond)
		const wantPolls = int(run / time.Second)

		for _, name := range []string{"hum-1", "hum-3"} {
			if n := len(got[name]); n != wantPolls {
				t.Errorf("%s: %d polls with readings in %s, want %d", name, n, run, wantPolls)
			}
			for _, p := range obs.polls[name] {
				if p.err != nil {
					t.Errorf("%s: poll at %s failed: %v", name, p.at.Format(time.TimeOnly), p.err)
					break
				}
			}
		}
		if n := len(got["dead"]); n != 0 {
			t.Errorf("dead: %d slices of readings, want none", n)
		}
		polls := obs.polls["dead"]
		if len(polls) != wantPolls {
			t.Errorf("dead: %d Poll observations, want one per due time (%d)", len(polls), wantPolls)
		}
		for _, p := range polls {
			if p.err == nil {
				t.Errorf("dead: poll at %s has no error", p.at.Format(time.TimeOnly))
				break
			}
		}
		if len(polls) > 1 && (!errors.Is(polls[0].err, ErrTimeout) || !errors.Is(polls[1].err, ErrCircuitOpen)) {
			t.Errorf("dead: first polls failed with %v, then %v; want a timeout, then the open breaker", polls[0].err, polls[1].err)
		}

		// The dead slave costs at most one timeout per back-off period: after its k-th
		// timeout (k from 0) the next probe waits at least the jittered back-off,
		// 0.8 × min(2^k s, 5 min).
		probes := line.callsTo(2)
		bound, next := 0, time.Duration(0)
		for k := 0; next < run; k++ {
			bound++
			next += timeout + busBackoffAt(k)*8/10
		}
		if len(probes) > bound || len(probes) < 8 {
			t.Errorf("dead: %d transactions in %s, want 8..%d (one per back-off)", len(probes), run, bound)
		}
		for k := 1; k < len(probes); k++ {
			gap := probes[k].at.Sub(probes[k-1].at)
			if least := timeout + busBackoffAt(k-1)*8/10; gap < least {
				t.Errorf("dead: probe %d came %s after the previous one, want ≥ %s", k, gap, least)
			}
		}
		if n := logs.count("device down"); n != 1 {
			t.Errorf(`logged "device down" %d times, want once (state changes only)`, n)
		}
		t.Logf("dead slave: %d timeouts in %s (bound %d); busy %s", len(probes), run, bound, obs.busy)
	})
}

// busBackoffAt is the nominal breaker back-off after the k-th consecutive failure (0-based).
func busBackoffAt(k int) time.Duration {
	if k >= 9 {
		return breakerMaxBackoff
	}
	return min(breakerMinBackoff<<k, breakerMaxBackoff)
}

func TestBusBreakerProbeRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		line := &busLine{timeout: 300 * time.Millisecond, slaves: map[uint8]*busSlave{
			1: {latency: 10 * time.Millisecond, err: ErrTimeout, regs: map[uint16]uint16{0: 200, 10: 300}},
		}}
		// Two requests (holding and input registers), due together every second.
		dev := Device{Name: "d", Site: "s", Slave: 1, Points: []Point{
			busPoint(0, Int16, "temperature", time.Second),
			{Function: ReadInputRegisters, Address: 10, Type: Uint16, Scale: 0.1, Quantity: "humidity", Interval: time.Second},
		}}
		obs, logs := newBusObserver(), &busLogRecorder{}
		b, err := NewBus(BusConfig{Name: "b", Devices: []Device{dev}}, line.open, obs, slog.New(logs))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() {
			time.Sleep(20 * time.Second)
			line.setErr(1, nil) // power restored
		}()
		got := runBus(t, b, 60*time.Second-time.Millisecond)["d"]

		// Probes wait for the back-off, then for the request's next tick: five
		// timeouts, at 0, 2, 5, 10 and 19 s without jitter (0, 2, 4, 8, 15 s with the
		// most: each ends 0.3 s later, back-off 1, 2, 4, 8 s minus up to 20 %); the
		// probe after the 16 s back-off, at 29-36 s, finds it alive.
		if len(got) == 0 {
			t.Fatal("no readings after the slave came back")
		}
		first := got[0][0].Time.Sub(start)
		if first < 29*time.Second || first > 36*time.Second {
			t.Errorf("first readings at %s, want at the probe after the 16 s back-off (29-36 s)", first)
		}
		if want := int((60*time.Second - first) / time.Second); len(got) < want {
			t.Errorf("%d polls with readings after %s, want %d: the full rate once closed", len(got), first, want)
		}
		for i, rs := range got {
			if len(rs) != 2 {
				t.Errorf("poll %d: %d readings, want 2 (the probe's success lets the rest of the poll run)", i, len(rs))
			}
		}
		var timeouts int
		for _, c := range line.callsTo(1) {
			if c.err != nil {
				timeouts++
			}
		}
		if timeouts != 5 {
			t.Errorf("%d timeouts while dead for 20 s, want 5 (one per back-off)", timeouts)
		}
		if d, u := logs.count("device down"), logs.count("device up"); d != 1 || u != 1 {
			t.Errorf(`logged "device down" %d times and "device up" %d times, want once each; log: %q`, d, u, logs.msgs)
		}
	})
}

func TestBusMergesAndDecodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p1013 := busEncode(t, 1013.25, Float32, CDAB)
		line := &busLine{timeout: time.Second, slaves: map[uint8]*busSlave{
			// The noise meter is polled first and takes 1.5 ms, so the weather poll
			// starts 1.5 ms after the tick: its timestamp is truncated to 1 ms.
			1: {latency: 1500 * time.Microsecond, regs: map[uint16]uint16{0: 625}},
			2: {latency: 10 * time.Millisecond,
				regs: map[uint16]uint16{
					0: uint16(130),           // temperature: 130 × 0.5 - 40 = 25
					1: 250,                   // humidity: 250 × 0.25 = 62.5
					2: p1013[0], 3: p1013[1], // pressure, float32 CDAB
					// 4 unused (gap of 1)
					5: 0xFFFF, 6: 0xFFFE, // wind direction int32 -2 × -1 = 2 (scale -1)
					100: 37, // FC4 reads the same map in this fake
				},
				bits: map[uint16]bool{7: true, 8: false},
			},
		}}
		noise := Device{Name: "noise-1", Site: "canal-east", Slave: 1, Points: []Point{
			{Function: ReadInputRegisters, Type: Uint16, Scale: 0.5, Quantity: "la", Interval: time.Second},
		}}
		weather := Device{Name: "weather-1", Site: "canal-east", Slave: 2, MaxGap: 1, Points: []Point{
			{Function: ReadHoldingRegisters, Address: 0, Type: Int16, Scale: 0.5, Offset: -40, Quantity: "temperature", Interval: time.Second},
			{Function: ReadHoldingRegisters, Address: 1, Type: Uint16, Scale: 0.25, Quantity: "humidity", Interval: time.Second},
			{Function: ReadHoldingRegisters, Address: 2, Type: Float32, Order: CDAB, Quantity: "pressure", Interval: time.Second},
			{Function: ReadHoldingRegisters, Address: 5, Type: Int32, Scale: -1, Quantity: "wind_direction", Interval: time.Second},
			{Function: ReadInputRegisters, Address: 100, Type: Uint16, Scale: 0.25, Offset: 1, Quantity: "rain_rate", Interval: time.Second},
			{Function: ReadDiscreteInputs, Address: 7, Type: Bool, Quantity: "rain_rate", Interval: time.Second},
			{Function: ReadDiscreteInputs, Address: 8, Type: Bool, Quantity: "rain_rate", Interval: time.Second},
		}}
		b, err := NewBus(BusConfig{Name: "rs485-1", Devices: []Device{noise, weather}}, line.open, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got := runBus(t, b, 500*time.Millisecond)

		if polls := got["weather-1"]; len(polls) != 1 {
			t.Fatalf("weather-1: %d polls in 0.5 s, want 1", len(polls))
		}
		ts := start.Add(time.Millisecond)
		want := []reading.Reading{
			{Quantity: "rain_rate", Value: 1},
			{Quantity: "rain_rate", Value: 0},
			{Quantity: "temperature", Value: 25},
			{Quantity: "humidity", Value: 62.5},
			{Quantity: "pressure", Value: 1013.25},
			{Quantity: "wind_direction", Value: 2},
			{Quantity: "rain_rate", Value: 37*0.25 + 1},
		}
		rs := got["weather-1"][0]
		if len(rs) != len(want) {
			t.Fatalf("weather-1 poll = %+v, want %d readings", rs, len(want))
		}
		for i, w := range want {
			q, _ := reading.Lookup(w.Quantity)
			w.Time, w.Site, w.Device, w.Unit, w.Quality = ts, "canal-east", "weather-1", q.Unit, reading.Good
			if rs[i] != w {
				t.Errorf("reading %d = %+v, want %+v", i, rs[i], w)
			}
			if err := rs[i].Validate(); err != nil {
				t.Errorf("reading %d: Validate() = %v", i, err)
			}
		}
		// 625 × 0.5 = 312.5 dB(A) is above the catalog's 160: sent, but Bad.
		want0 := reading.Reading{Time: start, Site: "canal-east", Device: "noise-1", Quantity: "la",
			Value: 312.5, Unit: "dB(A)", Quality: reading.Bad}
		if la := got["noise-1"][0]; len(la) != 1 || la[0] != want0 {
			t.Errorf("noise-1 poll = %+v, want [%+v]", la, want0)
		}

		// One request each for the two adjacent bits, the merged holding registers
		// 0-6 (register 4 is the gap) and the input register.
		type rq struct {
			fn          Function
			addr, count uint16
		}
		var reqs []rq
		for _, c := range line.callsTo(2) {
			reqs = append(reqs, rq{c.fn, c.addr, c.count})
		}
		wantReqs := []rq{{ReadDiscreteInputs, 7, 2}, {ReadHoldingRegisters, 0, 7}, {ReadInputRegisters, 100, 1}}
		if fmt.Sprint(reqs) != fmt.Sprint(wantReqs) {
			t.Errorf("requests to weather-1 = %v, want %v", reqs, wantReqs)
		}
	})
}

func busEncode(t *testing.T, v float64, typ DataType, o WordOrder) []uint16 {
	t.Helper()
	regs, err := Encode(v, typ, o)
	if err != nil {
		t.Fatal(err)
	}
	return regs
}

func TestBusQuality(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nan := busEncode(t, math.NaN(), Float32, ABCD)
		lo, hi := 5.0, 50.0
		line := &busLine{slaves: map[uint8]*busSlave{1: {regs: map[uint16]uint16{
			0: uint16(0xFFFF - 99), // int16 -100: below the catalog's -60 degC
			1: 70,                  // 70 degC: the catalog's inclusive maximum
			2: 60,                  // humidity 60 % > explicit max 50
			3: 5,                   // humidity 5 % = explicit min
			4: nan[0], 5: nan[1],   // float32 NaN
		}}}}
		pts := []Point{
			busPoint(0, Int16, "temperature", time.Second),
			busPoint(1, Int16, "temperature", time.Second),
			busPoint(2, Uint16, "humidity", time.Second),
			busPoint(3, Uint16, "humidity", time.Second),
			busPoint(4, Float32, "pressure", time.Second),
		}
		pts[2].Min, pts[2].Max = &lo, &hi
		pts[3].Min, pts[3].Max = &lo, &hi
		b, err := NewBus(BusConfig{Name: "b", Devices: []Device{{Name: "d", Site: "s", Slave: 1, Points: pts}}},
			line.open, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := runBus(t, b, 500*time.Millisecond)["d"]
		if len(got) != 1 || len(got[0]) != len(pts) {
			t.Fatalf("polls = %+v, want one with %d readings", got, len(pts))
		}
		want := []reading.Quality{reading.Bad, reading.Good, reading.Bad, reading.Good, reading.Bad}
		for i, r := range got[0] {
			if r.Quality != want[i] {
				t.Errorf("point %d: %s = %v quality %s, want %s", i, r.Quantity, r.Value, r.Quality, want[i])
			}
		}
	})
}

func TestBusReconnectsAfterIOError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		line := &busLine{timeout: time.Second, ioErrAt: 5, slaves: map[uint8]*busSlave{
			1: {latency: 10 * time.Millisecond, regs: map[uint16]uint16{0: 20}},
		}}
		opens := 0
		open := func(ctx context.Context) (Client, error) {
			opens++
			if opens == 2 || opens == 3 { // the adapter is still re-enumerating
				return nil, errors.New("open /dev/ttyUSB0: no such file or directory")
			}
			return line.open(ctx)
		}
		obs, logs := newBusObserver(), &busLogRecorder{}
		dev := Device{Name: "t-1", Site: "s", Slave: 1, Points: []Point{busPoint(0, Int16, "temperature", time.Second)}}
		b, err := NewBus(BusConfig{Name: "rs485-1", Devices: []Device{dev}}, open, obs, slog.New(logs))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got := runBus(t, b, 20*time.Second-time.Millisecond)

		// Transaction 5 (t = 4 s) fails; reopen after ~0.5 s and ~1 s fail; the one
		// after ~2 s more succeeds, by t ≤ 7.5 s.
		if opens != 4 {
			t.Errorf("Opener called %d times, want 4 (start, 2 failures, success)", opens)
		}
		if n := len(line.clients); n != 2 {
			t.Fatalf("%d clients opened, want 2", n)
		}
		for i, c := range line.clients {
			if c.closed != 1 {
				t.Errorf("client %d closed %d times, want once", i, c.closed)
			}
		}
		var down, ok int
		var lastDown time.Duration
		for _, p := range obs.polls["t-1"] {
			switch {
			case p.err == nil:
				ok++
			case errors.Is(p.err, ErrBusDown):
				down++
				lastDown = p.at.Sub(start)
				if !errors.Is(p.err, errBusUnplugged) && !strings.Contains(p.err.Error(), "no such file") {
					t.Errorf("bus-down poll error %q does not name the cause", p.err)
				}
			default:
				if !errors.Is(p.err, errBusUnplugged) {
					t.Errorf("poll error %v, want the I/O error or ErrBusDown", p.err)
				}
			}
		}
		if down < 2 || lastDown > 7500*time.Millisecond {
			t.Errorf("%d bus-down polls, the last at %s; want ≥ 2, none after 7.5 s", down, lastDown)
		}
		if len(got["t-1"]) != ok || ok < 4+12 {
			t.Errorf("%d slices of readings, %d good polls; want equal and ≥ 16 (polls resume)", len(got["t-1"]), ok)
		}
		if d, u := logs.count("bus down"), logs.count("bus up"); d != 1 || u != 1 {
			t.Errorf(`logged "bus down" %d times and "bus up" %d times, want once each; log: %q`, d, u, logs.msgs)
		}
		if n := logs.count("device down"); n != 0 {
			t.Errorf(`logged "device down" %d times during a bus outage, want 0`, n)
		}
	})
}

func TestBusOpenFailsAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		line := &busLine{slaves: map[uint8]*busSlave{1: {}}}
		var opens []time.Time
		open := func(ctx context.Context) (Client, error) {
			opens = append(opens, time.Now())
			if len(opens) <= 3 {
				return nil, errors.New("dial tcp 10.0.0.7:502: connection refused")
			}
			return line.open(ctx)
		}
		obs := newBusObserver()
		dev := Device{Name: "t-1", Site: "s", Slave: 1, Points: []Point{busPoint(0, Int16, "temperature", time.Second)}}
		b, err := NewBus(BusConfig{Name: "tcp-1", Devices: []Device{dev}}, open, obs, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		runBus(t, b, 10*time.Second)
		if len(opens) != 4 {
			t.Fatalf("Opener called %d times, want 4", len(opens))
		}
		// Back-off 0.5, 1, 2 s, each shortened by at most 20 %.
		for i, nominal := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
			gap := opens[i+1].Sub(opens[i])
			if gap < nominal*8/10 || gap > nominal {
				t.Errorf("reopen %d after %s, want %s minus up to 20 %%", i+1, gap, nominal)
			}
		}
		polls := obs.polls["t-1"]
		if len(polls) < 9 || !errors.Is(polls[0].err, ErrBusDown) || polls[len(polls)-1].err != nil {
			t.Errorf("polls = %+v, want bus-down errors first, then success", polls)
		}
		if opens[0] != start {
			t.Errorf("first open at %s, want at start", opens[0].Sub(start))
		}
	})
}

func TestBusExceptionKeepsBreakerClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exc := &ExceptionError{Function: ReadHoldingRegisters, Code: 2}
		line := &busLine{timeout: time.Second, slaves: map[uint8]*busSlave{1: {latency: 5 * time.Millisecond, err: exc}}}
		obs := newBusObserver()
		dev := Device{Name: "d", Site: "s", Slave: 1, Points: []Point{busPoint(40, Int16, "temperature", time.Second)}}
		b, err := NewBus(BusConfig{Name: "b", Devices: []Device{dev}}, line.open, obs, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := runBus(t, b, 10*time.Second-time.Millisecond)
		if n := len(line.callsTo(1)); n != 10 {
			t.Errorf("%d transactions in 10 s, want 10: an exception must not open the breaker", n)
		}
		var e *ExceptionError
		if p := obs.polls["d"]; len(p) != 10 || !errors.As(p[9].err, &e) || e.Code != 2 ||
			!strings.Contains(p[9].err.Error(), "exception 02") {
			t.Errorf("polls = %v, want 10 failing with exception 02", p)
		}
		if len(got) != 0 {
			t.Errorf("failed reads produced readings: %v", got)
		}
	})
}

func TestBusLateRequestSkipsTicks(t *testing.T) {
	for _, c := range []struct {
		name string
		slow time.Duration // how long the slow device's read (every 10 s, polled first) takes
		want []time.Duration
	}{
		// Late by 0.5 s (< one interval): runs late, then back on its ticks.
		{"late within one interval", 500 * time.Millisecond,
			[]time.Duration{500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10500, 11000, 12000}},
		// Late by 2.5 s: ticks 0-2 and 10-12 are skipped, never run in a burst.
		{"more than one interval late", 2500 * time.Millisecond,
			[]time.Duration{3000, 4000, 5000, 6000, 7000, 8000, 9000, 13000}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				line := &busLine{timeout: 5 * time.Second, slaves: map[uint8]*busSlave{
					1: {latency: c.slow}, 2: {},
				}}
				obs := newBusObserver()
				slow := Device{Name: "slow", Site: "s", Slave: 1, Points: []Point{busPoint(0, Int16, "temperature", 10*time.Second)}}
				fast := Device{Name: "fast", Site: "s", Slave: 2, Points: []Point{busPoint(0, Int16, "temperature", time.Second)}}
				b, err := NewBus(BusConfig{Name: "b", Devices: []Device{slow, fast}}, line.open, obs, nil)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				got := runBus(t, b, c.want[len(c.want)-1]*time.Millisecond+time.Millisecond)
				var at []time.Duration
				for _, rs := range got["fast"] {
					at = append(at, rs[0].Time.Sub(start)/time.Millisecond)
				}
				if fmt.Sprint(at) != fmt.Sprint(c.want) {
					t.Errorf("fast polled at %v ms, want %v", at, c.want)
				}
				if n := len(obs.polls["fast"]); n != len(c.want) {
					t.Errorf("%d Poll observations, want %d: skipped ticks count nothing", n, len(c.want))
				}
			})
		})
	}
}

func TestBusCancelReturnsPromptly(t *testing.T) {
	for _, c := range []struct {
		name    string
		latency time.Duration
		consume bool
	}{
		{"during a transaction", time.Hour, true},
		{"while blocked on out", 0, false},
		{"while waiting for the next tick", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				line := &busLine{timeout: 2 * time.Hour, slaves: map[uint8]*busSlave{1: {latency: c.latency}}}
				dev := Device{Name: "d", Site: "s", Slave: 1, Points: []Point{busPoint(0, Int16, "temperature", time.Minute)}}
				b, err := NewBus(BusConfig{Name: "b", Devices: []Device{dev}}, line.open, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				out := make(chan reading.Batch)
				if c.consume {
					go func() {
						for range out {
						}
					}()
					defer close(out)
				}
				done := make(chan error, 1)
				go func() { done <- b.Run(ctx, out) }()
				time.Sleep(10 * time.Second)
				synctest.Wait()
				cancel()
				at := time.Now()
				synctest.Wait()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("Run() = %v, want nil", err)
					}
				default:
					t.Fatal("Run did not return after cancel")
				}
				if d := time.Since(at); d != 0 {
					t.Errorf("Run returned %s after cancel, want at once", d)
				}
				if len(line.clients) != 1 || line.clients[0].closed != 1 {
					t.Errorf("client closed %d times, want once", line.clients[0].closed)
				}
			})
		})
	}
}

func TestBusRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		line := &busLine{slaves: map[uint8]*busSlave{1: {}}}
		dev := Device{Name: "d", Site: "s", Slave: 1, Points: []Point{busPoint(0, Int16, "temperature", time.Second)}}
		b, err := NewBus(BusConfig{Name: "b", Devices: []Device{dev}}, line.open, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		out := make(chan reading.Batch, 100)
		done := make(chan error)
		go func() { done <- b.Run(ctx, out) }()
		synctest.Wait()
		if err := b.Run(ctx, out); err == nil {
			t.Error("second concurrent Run() = nil, want an error")
		}
		cancel()
		<-done
	})
}

func TestNewBusValidation(t *testing.T) {
	ok := func(name string, slave uint8) Device {
		return Device{Name: name, Site: "s", Slave: slave, Points: []Point{busPoint(0, Int16, "temperature", time.Second)}}
	}
	open := (&busLine{}).open
	if _, err := NewBus(BusConfig{Name: "b", Devices: []Device{ok("a", 1), ok("b", 2)}}, open, nil, nil); err != nil {
		t.Fatalf("NewBus(valid) = %v", err)
	}
	badPoint := ok("e", 5)
	badPoint.Points[0].Function = ReadCoils
	noInterval := ok("f", 6)
	noInterval.Points[0].Interval = 0
	_, err := NewBus(BusConfig{Name: "rs485-1", Devices: []Device{
		ok("a", 1), ok("a", 2), ok("c", 1), ok("d", 0), badPoint, noInterval, ok("g h", 7), {Name: "i", Site: "s", Slave: 8},
	}}, open, nil, nil)
	if err == nil {
		t.Fatal("NewBus(invalid) = nil error")
	}
	for _, want := range []string{
		`devices[1].name: "a" is also devices[0]`,
		`devices[2].slave: unit 1 is also devices[0]`,
		`devices[3].slave: 0 is the broadcast address`,
		`devices[4].points[0].type: function 1 reads bits`,
		`devices[5].points[0].interval: must be positive`,
		`devices[6].name: character ' ' not allowed`,
		`devices[7].points: must not be empty`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewBus(invalid) error lacks %q; got:\n%v", want, err)
		}
	}
	for _, c := range []struct {
		cfg  BusConfig
		open Opener
		want string
	}{
		{BusConfig{Name: "b"}, open, "devices: must not be empty"},
		{BusConfig{Name: "b", Devices: []Device{ok("a", 1)}}, nil, "opener: must not be nil"},
		{BusConfig{Name: "", Devices: []Device{ok("a", 1)}}, open, "name: must not be empty"},
		{BusConfig{Name: "b", MaxRegisters: 200, Devices: []Device{ok("a", 1)}}, open, "max_registers: 200 is above"},
	} {
		if _, err := NewBus(c.cfg, c.open, nil, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewBus(%+v) = %v, want error containing %q", c.cfg, err, c.want)
		}
	}
}

func TestBreaker(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	exc := &ExceptionError{Function: 3, Code: 2}
	var b breaker
	if !b.allow(t0) {
		t.Fatal("a new breaker refuses")
	}

	// Exceptions and sporadic garbled replies do not open it.
	for _, err := range []error{exc, ErrCRC, ErrFrame, nil, ErrCRC, exc, ErrFrame, errBusUnplugged, ErrCRC} {
		if changed, _ := b.record(t0, err); changed || b.open {
			t.Fatalf("record(%v) opened the breaker (garbled run %d)", err, b.garbled)
		}
	}
	// …but a run of three does (the exception reset the count; two garbled so far).
	if changed, retry := b.record(t0, fmt.Errorf("wrapped: %w", ErrCRC)); !changed || !b.open || retry <= 0 {
		t.Fatalf("third garbled reply in a row: open=%v retry=%s, want open", b.open, retry)
	}
	if !errors.Is(b.err, ErrCircuitOpen) || !errors.Is(b.err, ErrCRC) {
		t.Errorf("open breaker error %v, want ErrCircuitOpen wrapping ErrCRC", b.err)
	}
	if changed, _ := b.record(t0, nil); !changed || b.open || b.backoff != 0 {
		t.Fatalf("success: open=%v backoff=%s, want closed and reset", b.open, b.backoff)
	}

	// A timeout opens it at once; failed probes double the back-off up to 5 min,
	// each wait shortened by at most 20 % of jitter.
	now := t0
	for k := 0; k < 14; k++ {
		changed, retry := b.record(now, ErrTimeout)
		if changed != (k == 0) {
			t.Errorf("failure %d: changed = %v", k, changed)
		}
		nominal := busBackoffAt(k)
		if b.backoff != nominal || retry > nominal || retry < nominal*8/10 {
			t.Errorf("failure %d: back-off %s, retry in %s; want %s minus ≤ 20 %%", k, b.backoff, retry, nominal)
		}
		if b.allow(now.Add(retry - time.Nanosecond)) {
			t.Errorf("failure %d: allowed before the back-off elapsed", k)
		}
		now = now.Add(retry)
		if !b.allow(now) || !b.allow(now) {
			t.Errorf("failure %d: probe refused once the back-off elapsed", k)
		}
	}
	// An I/O error during a probe is the bus's fault: the breaker stays as it was.
	if changed, _ := b.record(now, errBusUnplugged); changed || !b.open || b.backoff != breakerMaxBackoff {
		t.Errorf("I/O error changed the breaker: open=%v backoff=%s", b.open, b.backoff)
	}
	// A garbled reply to a probe reopens it at once; an exception closes it.
	if _, retry := b.record(now, ErrFrame); !b.open || retry < breakerMaxBackoff*8/10 {
		t.Errorf("garbled probe: open=%v retry=%s, want reopened", b.open, retry)
	}
	if changed, _ := b.record(now, exc); !changed || b.open {
		t.Errorf("exception to a probe: open=%v, want closed (the slave answered)", b.open)
	}
}

// busVirtualClock jumps to each deadline at once, so a benchmark measures only the
// scheduler's own work.
type busVirtualClock struct{ now time.Time }

func (c *busVirtualClock) Now() time.Time                      { return c.now }
func (c *busVirtualClock) Wait(_ context.Context, t time.Time) { c.now = t }

// busInstantClient answers every read at once from a shared buffer and cancels the run
// after limit transactions.
type busInstantClient struct {
	n, limit int
	cancel   context.CancelFunc
	regs     []uint16
	bits     []bool
}

func (c *busInstantClient) tick() {
	if c.n++; c.n == c.limit {
		c.cancel()
	}
}

func (c *busInstantClient) ReadRegisters(_ context.Context, _ uint8, _ Function, _, count uint16) ([]uint16, error) {
	c.tick()
	return c.regs[:count], nil
}

func (c *busInstantClient) ReadBits(_ context.Context, _ uint8, _ Function, _, count uint16) ([]bool, error) {
	c.tick()
	return c.bits[:count], nil
}

func (c *busInstantClient) Close() error { return nil }

// BenchmarkSchedulerOverhead measures the bus goroutine's own CPU and allocations per
// transaction (ns/op and allocs/op are per transaction): picking the due request,
// grouping polls, decoding, building readings, Observer calls and the send to out.
// The Client answers instantly and the clock jumps, so no time is spent waiting.
// Each device has M groups of two uint16 points, each group its own request.
func BenchmarkSchedulerOverhead(b *testing.B) {
	for _, c := range []struct{ devices, groups int }{{1, 1}, {8, 4}, {32, 8}} {
		b.Run(fmt.Sprintf("%dx%d", c.devices, c.groups), func(b *testing.B) {
			var devs []Device
			for d := range c.devices {
				dev := Device{Name: fmt.Sprintf("dev-%d", d), Site: "bench", Slave: uint8(d + 1)}
				for g := range c.groups {
					addr := uint16(g * 100)
					dev.Points = append(dev.Points,
						busPoint(addr, Int16, "temperature", time.Second),
						busPoint(addr+1, Uint16, "humidity", time.Second))
				}
				devs = append(devs, dev)
			}
			ctx, cancel := context.WithCancel(b.Context())
			defer cancel()
			cl := &busInstantClient{limit: b.N, cancel: cancel, regs: make([]uint16, MaxReadRegisters), bits: make([]bool, MaxReadBits)}
			cl.regs[0], cl.regs[1] = 215, 455
			bus, err := NewBus(BusConfig{Name: "bench", Devices: devs},
				func(context.Context) (Client, error) { return cl, nil }, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			bus.newClock = func() clock { return &busVirtualClock{now: time.Unix(1_780_000_000, 0)} }
			out := make(chan reading.Batch, 256)
			drained := make(chan int)
			go func() {
				n := 0
				for b := range out {
					n += len(b.Readings)
				}
				drained <- n
			}()
			b.ReportAllocs()
			b.ResetTimer()
			if err := bus.Run(ctx, out); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			close(out)
			if n := <-drained; b.N > 1 && n < b.N {
				b.Fatalf("%d readings for %d transactions, want ≥ 2 per transaction", n, b.N)
			}
		})
	}
}

// A point in another unit is converted to the catalog unit before its range check.
func TestBusConvertsUnits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		line := &busLine{slaves: map[uint8]*busSlave{1: {regs: map[uint16]uint16{
			0: 10,   // so2 10 ppb = 26.19 ug/m3
			1: 9500, // temperature 95.00 degF (scale 0.01) = 35 degC, plausible only once converted
		}}}}
		pts := []Point{busPoint(0, Uint16, "so2", time.Second), busPoint(1, Uint16, "temperature", time.Second)}
		pts[0].Unit = "ppb"
		pts[1].Unit, pts[1].Scale = "degF", 0.01
		b, err := NewBus(BusConfig{Name: "b", Devices: []Device{{Name: "d", Site: "s", Slave: 1, Points: pts}}},
			line.open, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := runBus(t, b, 500*time.Millisecond)["d"]
		if len(got) != 1 || len(got[0]) != 2 {
			t.Fatalf("polls = %+v", got)
		}
		so2, temp := got[0][0], got[0][1]
		if math.Abs(so2.Value-26.188) > 1e-3 || so2.Unit != "ug/m3" || so2.Quality != reading.Good {
			t.Errorf("so2 = %+v, want 26.188 ug/m3", so2)
		}
		if math.Abs(temp.Value-35) > 1e-9 || temp.Unit != "degC" || temp.Quality != reading.Good {
			t.Errorf("temperature = %+v, want 35 degC, good", temp)
		}
	})
}

// hangClient hangs in every request until ctx is done, as a wedged USB serial driver
// can.
type hangClient struct{ entered chan struct{} }

func (c *hangClient) ReadRegisters(ctx context.Context, _ uint8, _ Function, _, _ uint16) ([]uint16, error) {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *hangClient) ReadBits(ctx context.Context, _ uint8, _ Function, _, _ uint16) ([]bool, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *hangClient) Close() error { return nil }

// Issue 13: a bus stuck in one request beyond StallAfter reports itself wedged
// (gateway.Staller), naming the device; a bus waiting for its next poll does not.
func TestBusStalled(t *testing.T) {
	hc := &hangClient{entered: make(chan struct{}, 1)}
	b, err := NewBus(BusConfig{Name: "rs485-1", StallAfter: 100 * time.Millisecond, Devices: []Device{{
		Name: "hum-1", Site: "canal-east", Slave: 1,
		Points: []Point{busPoint(0, Uint16, "humidity", time.Hour)},
	}}}, func(context.Context) (Client, error) { return hc, nil }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Stalled(); err != nil {
		t.Fatalf("Stalled() before Run = %v, want nil", err)
	}
	// An hourly point waits up to an hour for its first poll: no stall meanwhile.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx, make(chan reading.Batch, 1)) }()
	defer func() { cancel(); <-done }()
	b2, err := NewBus(BusConfig{Name: "rs485-2", StallAfter: 100 * time.Millisecond, Devices: []Device{{
		Name: "hum-2", Site: "canal-east", Slave: 1,
		Points: []Point{busPoint(0, Uint16, "humidity", 10*time.Millisecond)},
	}}}, func(context.Context) (Client, error) { return hc, nil }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done2 := make(chan struct{})
	go func() { defer close(done2); _ = b2.Run(ctx, make(chan reading.Batch, 1)) }()
	defer func() { cancel(); <-done2 }()
	<-hc.entered
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := b2.Stalled()
		if err != nil && strings.Contains(err.Error(), "modbus bus rs485-2 stuck") && strings.Contains(err.Error(), "a request to hum-2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stalled() = %v, want the bus stuck in a request to hum-2", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Stalled(); err != nil {
		t.Errorf("Stalled() of a bus waiting an hour for its next poll = %v, want nil", err)
	}
}
