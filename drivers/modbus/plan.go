package modbus

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Quantity limits of one read request (MODBUS Application Protocol V1.1b3 §6.1-6.4):
// functions 1 and 2 read 1-2000 bits, functions 3 and 4 read 1-125 registers.
const (
	MaxReadRegisters = 125
	MaxReadBits      = 2000
)

// Request is one read transaction of a plan: a contiguous run of registers (or bits)
// of one device, read with one function at one interval.
type Request struct {
	Function Function
	Address  uint16 // first register or bit
	Count    uint16 // registers (functions 3, 4) or bits (functions 1, 2)
	Interval time.Duration
	Slots    []Slot // the points decoded from the reply, by address
}

// Slot places one point in the reply of a Request.
type Slot struct {
	Point  int    // index into Device.Points
	Offset uint16 // first register (or bit) of the point, relative to Request.Address
}

// Plan turns a device's points into read requests. Points with the same function and
// interval are merged into one request while the registers between them that nobody
// asked for number at most MaxGap and the request spans at most maxRegisters registers
// (0 means MaxReadRegisters) or MaxReadBits bits; overlapping points share registers.
// For bit functions MaxGap counts bits. With OneRegisterPerRequest every point is its
// own request. Requests come sorted by function, interval and address.
//
// Plan is pure. It returns every problem of the points at once, each with a path such
// as "points[2].type".
func Plan(d Device, maxRegisters uint16) ([]Request, error) {
	reqs, errs := plan(d, maxRegisters, "")
	return reqs, errors.Join(errs...)
}

// width is how many registers (or bits) point p occupies.
func width(p Point) int {
	if p.Function.IsBits() {
		return 1
	}
	return Registers(p.Type)
}

// checkPoint returns what is wrong with p; path prefixes each message.
func checkPoint(p Point, maxRegisters int, path string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, field, fmt.Sprintf(format, args...)))
	}
	switch p.Function {
	case ReadCoils, ReadDiscreteInputs:
		if p.Type != Bool {
			bad("type", "function %d reads bits: type must be %q, not %q", p.Function, Bool, p.Type)
		}
	case ReadHoldingRegisters, ReadInputRegisters:
		if p.Type == Bool {
			bad("type", "%q needs function 1 or 2, not %d", Bool, p.Function)
		} else if !p.Type.Valid() {
			bad("type", "unknown type %q", p.Type)
		}
	default:
		bad("function", "must be 1, 2, 3 or 4, not %d", p.Function)
	}
	if p.Order != "" && !p.Order.Valid() {
		bad("order", "must be one of ABCD, CDAB, BADC, DCBA, not %q", p.Order)
	}
	if w := width(p); int(p.Address)+w > 1<<16 {
		bad("address", "%d + %d registers passes the last address 65535", p.Address, w)
	} else if !p.Function.IsBits() && w > maxRegisters {
		bad("type", "%s needs %d registers, more than the %d per request", p.Type, w, maxRegisters)
	}
	if p.Interval <= 0 {
		bad("interval", "must be positive, not %s", p.Interval)
	}
	if _, ok := reading.Lookup(p.Quantity); !ok {
		bad("quantity", "unknown quantity %q", p.Quantity)
	} else if err := reading.CheckUnit(p.Quantity, p.Unit); err != nil {
		bad("unit", "%v", err)
	}
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		bad("min", "%v is above max %v", *p.Min, *p.Max)
	}
	return errs
}

// plan is Plan with a path prefix for its errors ("devices[1]." from NewBus). It
// returns no requests when any point is invalid.
func plan(d Device, maxRegisters uint16, path string) ([]Request, []error) {
	limitRegs := int(maxRegisters)
	if limitRegs == 0 {
		limitRegs = MaxReadRegisters
	}
	var errs []error
	if limitRegs > MaxReadRegisters {
		errs = append(errs, fmt.Errorf("%smax_registers: %d is above the protocol limit of %d", path, limitRegs, MaxReadRegisters))
	}
	if len(d.Points) == 0 {
		errs = append(errs, fmt.Errorf("%spoints: must not be empty", path))
	}
	for i, p := range d.Points {
		errs = append(errs, checkPoint(p, limitRegs, fmt.Sprintf("%spoints[%d]", path, i))...)
	}
	if len(errs) > 0 {
		return nil, errs
	}

	order := make([]int, len(d.Points))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := d.Points[a], d.Points[b]
		return cmp.Or(
			cmp.Compare(pa.Function, pb.Function),
			cmp.Compare(pa.Interval, pb.Interval),
			cmp.Compare(pa.Address, pb.Address),
			cmp.Compare(width(pb), width(pa)), // wider first: later ones nest inside
		)
	})

	var reqs []Request
	end := 0 // one past the last register of reqs[len(reqs)-1]
	for _, i := range order {
		p := d.Points[i]
		a, w := int(p.Address), width(p)
		limit := limitRegs
		if p.Function.IsBits() {
			limit = MaxReadBits
		}
		if n := len(reqs); n > 0 && !d.OneRegisterPerRequest {
			r := &reqs[n-1]
			start := int(r.Address)
			gap := a - end // unrequested registers in between; negative when overlapping
			if r.Function == p.Function && r.Interval == p.Interval &&
				gap <= int(d.MaxGap) && max(end, a+w)-start <= limit {
				end = max(end, a+w)
				r.Count = uint16(end - start)
				r.Slots = append(r.Slots, Slot{Point: i, Offset: uint16(a - start)})
				continue
			}
		}
		reqs = append(reqs, Request{
			Function: p.Function,
			Address:  p.Address,
			Count:    uint16(w),
			Interval: p.Interval,
			Slots:    []Slot{{Point: i}},
		})
		end = a + w
	}
	return reqs, nil
}
