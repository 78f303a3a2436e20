package modbus

import (
	"math"
	"testing"
)

func TestDecodeWordOrders(t *testing.T) {
	// 23.5 as float32 is 0x41BC0000: A=41 B=BC C=00 D=00 (docs/engineering-notes.md §1.2).
	check := func(regs []uint16, typ DataType, o WordOrder, want float64) {
		t.Helper()
		got, err := Decode(regs, typ, o)
		if err != nil || got != want {
			t.Errorf("Decode(%04X, %s, %s) = %v, %v; want %v", regs, typ, o, got, err, want)
		}
	}
	check([]uint16{0x41BC, 0x0000}, Float32, ABCD, 23.5)
	check([]uint16{0x0000, 0x41BC}, Float32, CDAB, 23.5)
	check([]uint16{0xBC41, 0x0000}, Float32, BADC, 23.5)
	check([]uint16{0x0000, 0xBC41}, Float32, DCBA, 23.5)
	check([]uint16{0x0271}, Uint16, "", 625)
	check([]uint16{0xFFFF}, Int16, ABCD, -1)
	check([]uint16{0xFFFF}, Uint16, ABCD, 65535)
	check([]uint16{0x7102}, Uint16, BADC, 625)
	check([]uint16{0xFFFF, 0xFFFE}, Int32, ABCD, -2)
	check([]uint16{0xFFFE, 0xFFFF}, Int32, CDAB, -2)
	check([]uint16{0x0001, 0x0000}, Uint32, ABCD, 65536)
	check([]uint16{0x0000, 0x0000, 0x0000, 0x0001}, Uint64, ABCD, 1)
	check([]uint16{0x0001, 0x0000, 0x0000, 0x0000}, Uint64, CDAB, 1)
	check([]uint16{0x4037, 0x8000, 0x0000, 0x0000}, Float64, ABCD, 23.5)
	check([]uint16{0x0000, 0x0000, 0x0080, 0x3740}, Float64, DCBA, 23.5)
	check([]uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, Int64, ABCD, -1)
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		regs []uint16
		typ  DataType
		o    WordOrder
	}{
		{[]uint16{1}, Float32, ABCD},
		{[]uint16{1, 2}, Int16, ABCD},
		{[]uint16{1}, "int8", ABCD},
		{[]uint16{1, 2}, Float32, "ADBC"},
		{[]uint16{1}, Bool, ABCD},
	} {
		if _, err := Decode(c.regs, c.typ, c.o); err == nil {
			t.Errorf("Decode(%v, %s, %s) = nil error, want one", c.regs, c.typ, c.o)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, typ := range []DataType{Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64} {
		for _, o := range []WordOrder{ABCD, CDAB, BADC, DCBA} {
			v := 1234.0
			if typ == Float32 || typ == Float64 {
				v = -12.375
			} else if typ[0] == 'i' {
				v = -1234
			}
			regs, err := Encode(v, typ, o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(regs, typ, o)
			if err != nil || got != v {
				t.Errorf("Decode(Encode(%v, %s, %s)) = %v, %v", v, typ, o, got, err)
			}
		}
	}
}

// FuzzDecode checks Decode never panics, and that any value it decodes re-encodes to the
// same registers (NaN payloads aside).
func FuzzDecode(f *testing.F) {
	f.Add(uint16(0x41BC), uint16(0), uint16(0), uint16(0), uint8(4), uint8(0))
	f.Add(uint16(0xFFFF), uint16(0xFFFF), uint16(0xFFFF), uint16(0xFFFF), uint8(5), uint8(3))
	types := []DataType{Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64, Bool, "x"}
	orders := []WordOrder{ABCD, CDAB, BADC, DCBA, "", "bad"}
	f.Fuzz(func(t *testing.T, a, b, c, d uint16, ti, oi uint8) {
		typ, o := types[int(ti)%len(types)], orders[int(oi)%len(orders)]
		regs := []uint16{a, b, c, d}[:min(Registers(typ), 4)]
		v, err := Decode(regs, typ, o)
		if err != nil || math.IsNaN(v) || typ == Int64 || typ == Uint64 {
			return // 64-bit integers do not fit a float64 exactly
		}
		back, err := Encode(v, typ, o)
		if err != nil {
			t.Fatalf("Encode(%v, %s, %s): %v", v, typ, o, err)
		}
		for i := range regs {
			if back[i] != regs[i] {
				t.Fatalf("Encode(Decode(%04X)) = %04X (%s %s)", regs, back, typ, o)
			}
		}
	})
}

func TestScaleIsDecimalExact(t *testing.T) {
	check := func(raw, scale, offset, want float64) {
		t.Helper()
		if got := Scale(raw, scale, offset); got != want {
			t.Errorf("Scale(%v, %v, %v) = %v, want %v", raw, scale, offset, got, want)
		}
	}
	check(-237, 0.1, 0, -23.7)
	check(625, 0.1, 0, 62.5)
	check(725, 0.01, 0, 7.25)
	check(3, 0.001, 0, 0.003)
	check(10, 2, 0, 20)
	check(10, 0, 0, 10)
	check(10, 1, -40, -30)
	check(7, 0.25, 0, 1.75)
}
