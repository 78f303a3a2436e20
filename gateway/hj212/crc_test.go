package hj212

import (
	"testing"

	"github.com/envgate/envgate/drivers/modbus"
)

// The two worked packets of docs/hj212.md: the standard's own example (Appendix A)
// and the project's acoustic real-time packet.
var crcVectors = []struct {
	segment string
	crc     uint16
}{
	{"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&", 0x1C80},
	{"QN=20260315221500123;ST=23;CN=2011;PW=123456;MN=33010500A0010001F0000002;Flag=5;CP=&&DataTime=20260315221500;LA-Rtd=47.3,LA-Flag=N&&", 0xB101},
	{"", 0xFFFF},
}

func TestCRCWorkedExamples(t *testing.T) {
	for _, v := range crcVectors {
		if got := CRC([]byte(v.segment)); got != v.crc {
			t.Errorf("CRC(%q) = %04X, want %04X", v.segment, got, v.crc)
		}
	}
	// A Modbus CRC (the project's own, drivers/modbus) fails the standard's example:
	// it gives 0759, not 1C80.
	if got := modbus.CRC([]byte(crcVectors[0].segment)); got != 0x0759 || got == crcVectors[0].crc {
		t.Errorf("CRC-16/MODBUS of the example = %04X, want 0759 (and not 1C80)", got)
	}
	if got := len(crcVectors[0].segment); got != 101 {
		t.Errorf("example segment has %d characters, the standard says 101", got)
	}
	if got := len(crcVectors[1].segment); got != 132 {
		t.Errorf("acoustic example has %d characters, want 132", got)
	}
}

func TestParseCRCEitherCase(t *testing.T) {
	for in, want := range map[string]uint16{"1C80": 0x1C80, "1c80": 0x1C80, "cc01": 0xCC01, "FFFF": 0xFFFF} {
		if got, ok := parseCRC([]byte(in)); !ok || got != want {
			t.Errorf("parseCRC(%q) = %04X, %v", in, got, ok)
		}
	}
	for _, in := range []string{"1C8", "1C8G", " 1C8", "+1C8"} {
		if _, ok := parseCRC([]byte(in)); ok {
			t.Errorf("parseCRC(%q) accepted", in)
		}
	}
}

func BenchmarkCRC(b *testing.B) {
	seg := []byte(crcVectors[1].segment)
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		CRC(seg)
	}
}
