package buffer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// validSegment returns the bytes of a segment holding n readings starting at seq 0.
func validSegment(n int) []byte {
	var b []byte
	for i, r := range readings(0, n) {
		b = appendRecord(b, uint64(i), r)
	}
	return b
}

// FuzzSegment feeds arbitrary bytes to the queue as its last segment: Open must always
// succeed, and every reading it then delivers must be one that was really written.
func FuzzSegment(f *testing.F) {
	good := validSegment(5)
	f.Add(good)
	f.Add(good[:len(good)-3])                       // torn tail
	f.Add(append(bytes.Clone(good[:40]), good...))  // junk then records
	f.Add(append(bytes.Clone(good), 0, 0, 0, 0, 0)) // zeros after the end
	f.Add([]byte{})
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "segments"), 0o750)
		os.WriteFile(filepath.Join(dir, "segments", fmt.Sprintf("%020d.seg", 0)), data, 0o640)
		q, err := Open(Options{Dir: dir, SegmentBytes: 1 << 20, CursorInterval: 1})
		if err != nil {
			t.Fatalf("Open on a corrupt segment: %v", err)
		}
		defer q.Close()
		r, _ := q.Reader("s")
		var last uint64
		for range 100 {
			rs, next, err := r.Peek(50)
			if err != nil {
				t.Fatalf("Peek: %v", err)
			}
			if next < last {
				t.Fatalf("cursor went back from %d to %d", last, next)
			}
			last = next
			for _, x := range rs {
				// The fuzzer can forge a checksum, but not past Validate and a known value.
				if x.Validate() == nil && x.Value >= 0 && x.Value < 5 && !x.Time.Equal(t0.Add(time_(x.Value))) {
					t.Errorf("delivered a reading never written: %+v", x)
				}
			}
			r.Ack(next)
			if len(rs) == 0 {
				break
			}
		}
	})
}

// FuzzDecodePayload checks the payload decoder never panics and round-trips what it accepts.
func FuzzDecodePayload(f *testing.F) {
	rec := appendRecord(nil, 0, readings(7, 1)[0])
	f.Add(rec[headerSize:])
	f.Add([]byte{payloadVersion})
	f.Add([]byte{payloadVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	// Issue 10: times UnixNano cannot hold are written in seconds, never wrapped.
	far := readings(0, 1)[0]
	far.Time = time.Date(2263, 4, 1, 0, 0, 0, 7, time.UTC)
	f.Add(appendRecord(nil, 0, far)[headerSize:])
	far.Time = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Add(appendRecord(nil, 0, far)[headerSize:])
	f.Add([]byte{payloadVersionSeconds, 2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	flagged := readings(3, 1)[0]
	flagged.Quality, flagged.Reason = reading.Suspect, reading.Spike
	f.Add(appendRecord(nil, 0, flagged)[headerSize:])
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodePayload(p)
		if err != nil {
			return
		}
		again, err := decodePayload(appendRecord(nil, 0, r)[headerSize:])
		if err != nil || !again.Time.Equal(r.Time) || again.Site != r.Site || again.Quantity != r.Quantity ||
			again.Unit != r.Unit || again.Device != r.Device || again.Quality != r.Quality || again.Reason != r.Reason {
			t.Errorf("round trip of %+v = %+v, %v", r, again, err)
		}
	})
}

func time_(v float64) time.Duration { return time.Duration(v) * time.Second }
