package modbus

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// pt is a valid point for plan tests: a holding-register value read every second.
func planPoint(fn Function, addr uint16, typ DataType) Point {
	return Point{Function: fn, Address: addr, Type: typ, Quantity: "temperature", Interval: time.Second}
}

func TestPlan(t *testing.T) {
	const H, I, C, D = ReadHoldingRegisters, ReadInputRegisters, ReadCoils, ReadDiscreteInputs
	s := time.Second
	every := func(p Point, d time.Duration) Point { p.Interval = d; return p }
	req := func(fn Function, addr, count uint16, slots ...Slot) Request {
		return Request{Function: fn, Address: addr, Count: count, Interval: s, Slots: slots}
	}
	for _, c := range []struct {
		name    string
		dev     Device
		maxRegs uint16
		want    []Request
	}{
		{
			name: "adjacent points merge with MaxGap 0",
			dev:  Device{Points: []Point{planPoint(H, 0, Int16), planPoint(H, 1, Uint16), planPoint(H, 2, Float32)}},
			want: []Request{req(H, 0, 4, Slot{0, 0}, Slot{1, 1}, Slot{2, 2})},
		},
		{
			name: "gap of exactly MaxGap merges",
			dev:  Device{MaxGap: 2, Points: []Point{planPoint(H, 10, Uint16), planPoint(H, 13, Uint16)}},
			want: []Request{req(H, 10, 4, Slot{0, 0}, Slot{1, 3})},
		},
		{
			name: "gap of MaxGap+1 splits",
			dev:  Device{MaxGap: 1, Points: []Point{planPoint(H, 10, Uint16), planPoint(H, 13, Uint16)}},
			want: []Request{req(H, 10, 1, Slot{0, 0}), req(H, 13, 1, Slot{1, 0})},
		},
		{
			name: "gap measured from the end of a wide value",
			dev:  Device{MaxGap: 1, Points: []Point{planPoint(H, 0, Float64), planPoint(H, 5, Uint16)}},
			want: []Request{req(H, 0, 6, Slot{0, 0}, Slot{1, 5})},
		},
		{
			name: "overlapping and duplicate points share registers",
			dev:  Device{Points: []Point{planPoint(H, 1, Uint16), planPoint(H, 0, Float32), planPoint(H, 0, Float32)}},
			want: []Request{req(H, 0, 2, Slot{1, 0}, Slot{2, 0}, Slot{0, 1})},
		},
		{
			name: "a point nested in a wider one does not shrink the request",
			dev:  Device{Points: []Point{planPoint(H, 0, Uint64), planPoint(H, 1, Uint16), planPoint(H, 4, Uint16)}},
			want: []Request{req(H, 0, 5, Slot{0, 0}, Slot{1, 1}, Slot{2, 4})},
		},
		{
			name: "span of exactly 125 registers merges",
			dev:  Device{MaxGap: 1000, Points: []Point{planPoint(H, 0, Uint16), planPoint(H, 123, Float32)}},
			want: []Request{req(H, 0, 125, Slot{0, 0}, Slot{1, 123})},
		},
		{
			name: "span of 126 registers splits",
			dev:  Device{MaxGap: 1000, Points: []Point{planPoint(H, 0, Uint16), planPoint(H, 124, Float32)}},
			want: []Request{req(H, 0, 1, Slot{0, 0}), req(H, 124, 2, Slot{1, 0})},
		},
		{
			name:    "MaxRegisters below 125",
			dev:     Device{MaxGap: 1000, Points: []Point{planPoint(H, 0, Uint16), planPoint(H, 8, Float32), planPoint(H, 10, Uint16)}},
			maxRegs: 10,
			want:    []Request{req(H, 0, 10, Slot{0, 0}, Slot{1, 8}), req(H, 10, 1, Slot{2, 0})},
		},
		{
			name: "bits: span of exactly 2000 merges",
			dev:  Device{MaxGap: 5000, Points: []Point{planPoint(C, 0, Bool), planPoint(C, 1999, Bool)}},
			want: []Request{req(C, 0, 2000, Slot{0, 0}, Slot{1, 1999})},
		},
		{
			name:    "bits: span of 2001 splits; MaxRegisters does not apply",
			dev:     Device{MaxGap: 5000, Points: []Point{planPoint(D, 0, Bool), planPoint(D, 200, Bool), planPoint(D, 2000, Bool)}},
			maxRegs: 10,
			want:    []Request{req(D, 0, 201, Slot{0, 0}, Slot{1, 200}), req(D, 2000, 1, Slot{2, 0})},
		},
		{
			name: "bits: MaxGap counts bits",
			dev:  Device{MaxGap: 3, Points: []Point{planPoint(D, 0, Bool), planPoint(D, 4, Bool), planPoint(D, 9, Bool)}},
			want: []Request{req(D, 0, 5, Slot{0, 0}, Slot{1, 4}), req(D, 9, 1, Slot{2, 0})},
		},
		{
			name: "functions and intervals are never mixed; output sorted",
			dev: Device{MaxGap: 10, Points: []Point{
				every(planPoint(H, 2, Uint16), time.Minute), planPoint(I, 1, Uint16), planPoint(H, 0, Uint16), planPoint(C, 0, Bool), planPoint(H, 1, Uint16),
			}},
			want: []Request{
				req(C, 0, 1, Slot{3, 0}),
				req(H, 0, 2, Slot{2, 0}, Slot{4, 1}),
				{Function: H, Address: 2, Count: 1, Interval: time.Minute, Slots: []Slot{{0, 0}}},
				req(I, 1, 1, Slot{1, 0}),
			},
		},
		{
			name: "OneRegisterPerRequest: every point alone, wide values whole",
			dev: Device{OneRegisterPerRequest: true, MaxGap: 10,
				Points: []Point{planPoint(H, 0, Uint16), planPoint(H, 1, Float32), planPoint(H, 1, Float32)}},
			want: []Request{req(H, 0, 1, Slot{0, 0}), req(H, 1, 2, Slot{1, 0}), req(H, 1, 2, Slot{2, 0})},
		},
		{
			name: "last register of the address space",
			dev:  Device{Points: []Point{planPoint(H, 65534, Float32), planPoint(H, 65533, Uint16)}},
			want: []Request{req(H, 65533, 3, Slot{1, 0}, Slot{0, 1})},
		},
	} {
		got, err := Plan(c.dev, c.maxRegs)
		if err != nil {
			t.Errorf("%s: Plan() error %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Plan() =\n%+v\nwant\n%+v", c.name, got, c.want)
		}
		// Every point is decoded by exactly one request, inside its bounds.
		seen := make([]int, len(c.dev.Points))
		for _, r := range got {
			for _, sl := range r.Slots {
				seen[sl.Point]++
				if int(sl.Offset)+width(c.dev.Points[sl.Point]) > int(r.Count) {
					t.Errorf("%s: point %d at offset %d overruns request %+v", c.name, sl.Point, sl.Offset, r)
				}
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Errorf("%s: point %d is in %d requests, want 1", c.name, i, n)
			}
		}
	}
}

func TestPlanErrors(t *testing.T) {
	lo, hi := 10.0, 5.0
	bad := []Point{
		planPoint(ReadCoils, 0, Uint16),                                                                        // 0: bits need Bool
		planPoint(ReadHoldingRegisters, 0, Bool),                                                               // 1: Bool needs 1/2
		planPoint(5, 0, Uint16),                                                                                // 2: function
		planPoint(ReadInputRegisters, 0, "int8"),                                                               // 3: type
		planPoint(ReadHoldingRegisters, 65535, Float32),                                                        // 4: past the end
		{Function: 3, Type: Uint16, Quantity: "temperature"},                                                   // 5: interval
		{Function: 3, Type: Uint16, Quantity: "pm2.5", Interval: time.Second},                                  // 6: quantity
		{Function: 3, Type: Uint16, Quantity: "la", Unit: "dB", Interval: time.Second},                         // 7: unit
		{Function: 3, Type: Float32, Order: "ADBC", Quantity: "la", Interval: time.Second, Min: &lo, Max: &hi}, // 8: order, min>max
	}
	_, err := Plan(Device{Points: bad}, 0)
	if err == nil {
		t.Fatal("Plan(bad points) = nil error")
	}
	for _, want := range []string{
		`points[0].type: function 1 reads bits`,
		`points[1].type: "bool" needs function 1 or 2`,
		`points[2].function: must be 1, 2, 3 or 4`,
		`points[3].type: unknown type "int8"`,
		`points[4].address: 65535 + 2 registers`,
		`points[5].interval: must be positive`,
		`points[6].quantity: unknown quantity "pm2.5"`,
		`points[7].unit: unknown unit "dB" for la: want dB(A)`,
		`points[8].order: must be one of`,
		`points[8].min: 10 is above max 5`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Plan(bad points) error lacks %q; got:\n%v", want, err)
		}
	}

	if _, err := Plan(Device{Points: []Point{planPoint(3, 0, Float64)}}, 3); err == nil ||
		!strings.Contains(err.Error(), "float64 needs 4 registers, more than the 3 per request") {
		t.Errorf("Plan(float64, max 3) = %v, want a too-wide error", err)
	}
	if _, err := Plan(Device{Points: []Point{planPoint(3, 0, Uint16)}}, 126); err == nil ||
		!strings.Contains(err.Error(), "max_registers: 126 is above the protocol limit of 125") {
		t.Errorf("Plan(max 126) = %v, want a limit error", err)
	}
	if _, err := Plan(Device{}, 0); err == nil || !strings.Contains(err.Error(), "points: must not be empty") {
		t.Errorf("Plan(no points) = %v, want an empty error", err)
	}
}
