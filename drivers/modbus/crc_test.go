package modbus

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex turns "01 03 00 00" into bytes; tests only.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestCRC(t *testing.T) {
	if got := CRC([]byte("123456789")); got != 0x4B37 {
		t.Errorf("CRC(123456789) = %04X, want 4B37", got)
	}
	if got := CRC(nil); got != 0xFFFF {
		t.Errorf("CRC(nil) = %04X, want FFFF (the initial value)", got)
	}
	// Whole frames from docs/engineering-notes.md §1.3 and the SONBEST manual: the CRC of the body,
	// low byte first, must equal the trailing two bytes.
	for _, frame := range []string{
		"01 03 00 00 00 01 84 0A", // read 1 holding register at 0
		"01 03 00 00 00 02 C4 0B", // read 2
		"01 03 02 02 71 79 00",    // reply 625 → 62.5 dB
		"01 83 02 C0 F1",          // exception: illegal data address
		"01 06 07 D0 00 02 08 86", // write single register
		"01 03 02 00 79 79 A6",    // SONBEST SM8765 reply
	} {
		adu := unhex(t, frame)
		body := adu[:len(adu)-2]
		if got := AppendCRC(bytes.Clone(body)); !bytes.Equal(got, adu) {
			t.Errorf("AppendCRC(% X) = % X, want % X", body, got, adu)
		}
		if !checkCRC(adu) {
			t.Errorf("checkCRC(% X) = false, want true", adu)
		}
		adu[len(adu)-1] ^= 0x01
		if checkCRC(adu) {
			t.Errorf("checkCRC(% X) with a flipped bit = true, want false", adu)
		}
	}
	for _, short := range [][]byte{nil, {0x01}, {0xFF, 0xFF}} {
		if checkCRC(short) {
			t.Errorf("checkCRC(% X) = true, want false for a frame too short to hold a CRC", short)
		}
	}
}

// TestCRCTable checks the table against the bitwise definition for every byte value.
func TestCRCTable(t *testing.T) {
	bitwise := func(b []byte) uint16 {
		crc := uint16(0xFFFF)
		for _, c := range b {
			crc ^= uint16(c)
			for range 8 {
				if crc&1 != 0 {
					crc = crc>>1 ^ 0xA001
				} else {
					crc >>= 1
				}
			}
		}
		return crc
	}
	for i := range 256 {
		in := []byte{byte(i), byte(255 - i), 0x5A}
		if got, want := CRC(in), bitwise(in); got != want {
			t.Errorf("CRC(% X) = %04X, want %04X", in, got, want)
		}
	}
}

func BenchmarkCRC(b *testing.B) {
	frame := make([]byte, 254)
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		CRC(frame)
	}
}
