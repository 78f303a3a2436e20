package buffer

import (
	"bytes"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// A screening flag (reading.Reason) survives the buffer; a reading without one is
// encoded exactly as before the flag existed, so older segments read unchanged.
func TestReasonRoundTripAndOldPayloads(t *testing.T) {
	r := reading.New(time.Date(2026, 3, 15, 14, 0, 0, 0, time.UTC), "canal-1", "pm-1", "pm25", 35)
	plain := appendRecord(nil, 7, r)
	if got := plain[len(plain)-9:]; !bytes.Equal(got[8:], []byte{byte(reading.Good)}) {
		t.Fatalf("a reading without a reason ends with its quality byte: %x", got)
	}
	flagged := r
	flagged.Quality, flagged.Reason = reading.Suspect, reading.Flatline
	rec := appendRecord(nil, 8, flagged)
	if len(rec) != len(plain)+1 {
		t.Fatalf("flagged record %d bytes, plain %d: want one more", len(rec), len(plain))
	}
	for _, c := range []struct {
		rec  []byte
		want reading.Reading
	}{{plain, r}, {rec, flagged}} {
		if err := checkRecord(c.rec); err != nil {
			t.Fatal(err)
		}
		got, err := decodePayload(c.rec[headerSize:])
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("decoded %+v, want %+v", got, c.want)
		}
	}
	// A zero reason byte is never written, so it is corruption.
	bad := append(bytes.Clone(plain[headerSize:]), 0)
	if _, err := decodePayload(bad); err == nil {
		t.Error("a payload with a zero reason byte decoded")
	}
}
