package modbus

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// FuzzRTUReply feeds arbitrary bytes to the RTU master as the slave's reply to a read of
// holding registers 0-1 from slave 1: it must never panic, never return other than the
// two registers asked for, and every error must be one of the Client classes.
func FuzzRTUReply(f *testing.F) {
	for _, seed := range []string{
		"01 03 04 00 01 00 02 2A 32",    // valid: [1, 2]
		"01 03 04 41 BC 00 00 2F EB",    // valid: 23.5 ABCD
		"01 83 02 C0 F1",                // exception, docs/engineering-notes.md §1.3
		"01 83 06 C1 32",                // exception: server busy
		"01 03 02 02 71 79 00",          // docs/engineering-notes.md §1.3 reply (1 register: wrong count here)
		"01 03 00 00 00 01 84 0A",       // docs/engineering-notes.md §1.3 request echoed back
		"01 03 00 00 00 02 C4 0B",       // the request itself, as from a bus echo
		"01 06 07 D0 00 02 08 86",       // a write reply
		"01 03 02 00 79 79 A6",          // SONBEST SM8765 reply
		"02 03 04 00 01 00 02 19 32",    // another slave, good CRC
		"01 03 04 00 01 00",             // truncated
		"01 03 FF 00 01 00 02 2A 32",    // byte count 255
		"00 FF 01 03 04 00 01 00 02 2A", // line noise first
		"",
	} {
		f.Add(unhex(f, seed))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		synctest.Test(t, func(t *testing.T) {
			p := &memPort{replies: [][]byte{reply}}
			r := NewRTU(p, RTUOptions{Baud: 9600, Timeout: 100 * time.Millisecond})
			regs, err := r.ReadRegisters(t.Context(), 1, ReadHoldingRegisters, 0, 2)
			switch class := errClass(err); class {
			case "ok":
				if len(regs) != 2 {
					t.Fatalf("ReadRegisters(reply % X) = %d registers, want 2", reply, len(regs))
				}
				want := []uint16{uint16(reply[3])<<8 | uint16(reply[4]), uint16(reply[5])<<8 | uint16(reply[6])}
				if !slices.Equal(regs, want) || !checkCRC(reply[:9]) || reply[0] != 1 || reply[1] != 3 || reply[2] != 4 {
					t.Fatalf("ReadRegisters(reply % X) = %04X, nil; accepted a bad frame", reply, regs)
				}
			case "timeout", "crc", "frame", "exception":
				if regs != nil {
					t.Fatalf("ReadRegisters(reply % X) = %v with error %v, want no registers", reply, regs, err)
				}
			default:
				t.Fatalf("ReadRegisters(reply % X) = %v, class %s: not a Client error class", reply, err, class)
			}
		})
	})
}
