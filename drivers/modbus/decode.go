package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Registers returns how many 16-bit registers a value of type t occupies (1 for Bool,
// which is read as one bit).
func Registers(t DataType) int {
	switch t {
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	}
	return 1
}

// Valid reports whether t is a known data type.
func (t DataType) Valid() bool {
	switch t {
	case Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64, Bool:
		return true
	}
	return false
}

// Valid reports whether o is a known word order.
func (o WordOrder) Valid() bool {
	switch o {
	case ABCD, CDAB, BADC, DCBA:
		return true
	}
	return false
}

// Decode interprets the registers of one value (exactly Registers(t) of them, as read
// off the wire, high byte first in each) as type t in word order o. An empty order
// means ABCD. Bool is not decoded here (bits come from ReadBits).
func Decode(regs []uint16, t DataType, o WordOrder) (float64, error) {
	n := Registers(t)
	if t == Bool || !t.Valid() {
		return 0, fmt.Errorf("cannot decode registers as %q", t)
	}
	if len(regs) != n {
		return 0, fmt.Errorf("%s needs %d registers, got %d", t, n, len(regs))
	}
	if o == "" {
		o = ABCD
	}
	if !o.Valid() {
		return 0, fmt.Errorf("unknown word order %q", o)
	}
	// Wire bytes in order, then rearrange into big-endian ABCD….
	var wire [8]byte
	for i, r := range regs {
		binary.BigEndian.PutUint16(wire[2*i:], r)
	}
	b := canonical(wire[:2*n], o)
	switch t {
	case Int16:
		return float64(int16(binary.BigEndian.Uint16(b))), nil
	case Uint16:
		return float64(binary.BigEndian.Uint16(b)), nil
	case Int32:
		return float64(int32(binary.BigEndian.Uint32(b))), nil
	case Uint32:
		return float64(binary.BigEndian.Uint32(b)), nil
	case Float32:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case Int64:
		return float64(int64(binary.BigEndian.Uint64(b))), nil
	case Uint64:
		return float64(binary.BigEndian.Uint64(b)), nil
	case Float64:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("cannot decode registers as %q", t)
}

// canonical rearranges wire bytes in order o into big-endian order (ABCD…). For a
// 16-bit value only the byte swap of BADC and DCBA applies.
func canonical(wire []byte, o WordOrder) []byte {
	n := len(wire)
	out := make([]byte, n)
	copy(out, wire)
	if o == CDAB || o == DCBA {
		// Words arrive lowest first: reverse the order of the 16-bit words.
		for i := 0; i < n/2; i += 1 {
			j := n/2 - 1 - i
			out[2*i], out[2*i+1] = wire[2*j], wire[2*j+1]
		}
	}
	if o == BADC || o == DCBA {
		for i := 0; i+1 < n; i += 2 {
			out[i], out[i+1] = out[i+1], out[i]
		}
	}
	return out
}

// Encode is the inverse of Decode for integer and float types: it returns the wire
// registers of v. It serves tests, fakes and the probe command's examples.
func Encode(v float64, t DataType, o WordOrder) ([]uint16, error) {
	n := Registers(t)
	b := make([]byte, 8)
	switch t {
	case Int16:
		binary.BigEndian.PutUint16(b, uint16(int16(v)))
	case Uint16:
		binary.BigEndian.PutUint16(b, uint16(v))
	case Int32:
		binary.BigEndian.PutUint32(b, uint32(int32(v)))
	case Uint32:
		binary.BigEndian.PutUint32(b, uint32(v))
	case Float32:
		binary.BigEndian.PutUint32(b, math.Float32bits(float32(v)))
	case Int64:
		binary.BigEndian.PutUint64(b, uint64(int64(v)))
	case Uint64:
		binary.BigEndian.PutUint64(b, uint64(v))
	case Float64:
		binary.BigEndian.PutUint64(b, math.Float64bits(v))
	default:
		return nil, fmt.Errorf("cannot encode %q", t)
	}
	if o == "" {
		o = ABCD
	}
	// canonical is its own inverse for every order.
	w := canonical(b[:2*n], o)
	regs := make([]uint16, n)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(w[2*i:])
	}
	return regs, nil
}

// Scale returns raw × scale + offset. A decimal scale such as 0.1 or 0.01 (the reciprocal
// of an integer) divides instead of multiplying, so -237 × 0.1 gives the double nearest
// to -23.7, which is what the device meant, not -23.700000000000003.
func Scale(raw, scale, offset float64) float64 {
	if scale == 0 || scale == 1 {
		return raw + offset
	}
	if k := 1 / scale; k == math.Trunc(k) || math.Abs(k-math.Round(k)) < 1e-9*math.Abs(k) {
		return raw/math.Round(k) + offset
	}
	return raw*scale + offset
}
