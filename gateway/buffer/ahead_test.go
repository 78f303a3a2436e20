package buffer

import (
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// TestAheadReadsPastTheCursor: an Ahead reads batch after batch without moving the
// Reader's cursor, which only Ack moves; what a crash would re-send (Unsent) counts from
// the cursor, and OldestUnsent follows the cursor through batches read ahead.
func TestAheadReadsPastTheCursor(t *testing.T) {
	q, err := Open(Options{Dir: t.TempDir(), CursorInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := make([]reading.Reading, 30)
	for i := range rs {
		rs[i] = reading.New(t0.Add(time.Duration(i)*time.Second), "s", "d", "la", float64(i))
	}
	if err := q.Append(rs...); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := q.Reader("sink")
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Ahead()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var ends []uint64
	for i := 0; i < 3; i++ {
		got, next, err := a.Peek(10)
		if err != nil || len(got) != 10 || got[0].Value != float64(10*i) {
			t.Fatalf("Peek %d = %d readings from %v, %v; want 10 from %d", i, len(got), got[0].Value, err, 10*i)
		}
		again, _, _ := a.Peek(10)
		if again[0].Value != got[0].Value {
			t.Fatalf("a second Peek without Skip read from %v, want %v", again[0].Value, got[0].Value)
		}
		a.Skip(next)
		ends = append(ends, next)
		if n := r.Unsent(); n != 30 {
			t.Fatalf("after reading %d batches ahead, Unsent() = %d, want 30: only Ack moves the cursor", i+1, n)
		}
	}
	if got, _, _ := a.Peek(10); len(got) != 0 {
		t.Fatalf("Peek past the end = %d readings, want none", len(got))
	}
	if err := a.Ack(ends[0]); err != nil {
		t.Fatal(err)
	}
	if n := r.Unsent(); n != 20 {
		t.Fatalf("after Ack of the first batch, Unsent() = %d, want 20", n)
	}
	if got, want := r.OldestUnsent(), rs[10].Time; !got.Equal(want) {
		t.Fatalf("OldestUnsent() = %v, want %v (reading 10, read ahead)", got, want)
	}
	if err := a.Ack(ends[2]); err != nil {
		t.Fatal(err)
	}
	if n := r.Unsent(); n != 0 {
		t.Fatalf("after Ack of everything, Unsent() = %d, want 0", n)
	}
}
