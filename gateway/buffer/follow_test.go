package buffer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// TestFollower: a Follower starts after the last durable reading, reads what arrives
// from then on, moves only by Skip, and leaves no cursor file behind.
func TestFollower(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Options{Dir: dir, CursorInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	t0 := time.Now()
	add := func(from, n int) {
		t.Helper()
		for i := range n {
			if err := q.Append(reading.New(t0.Add(time.Duration(from+i)*time.Second), "s", "d", "la", float64(from+i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	add(0, 10)
	r, err := q.Reader("influx")
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Follow()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rs, _, err := f.Peek(100); err != nil || len(rs) != 0 {
		t.Fatalf("new follower Peek = %d readings, %v; want none (it starts at the end)", len(rs), err)
	}
	add(10, 5)
	rs, next, err := f.Peek(3)
	if err != nil || len(rs) != 3 || rs[0].Value != 10 {
		t.Fatalf("Peek(3) = %v, %v; want readings 10 to 12", rs, err)
	}
	if rs2, _, _ := f.Peek(3); rs2[0].Value != 10 {
		t.Errorf("Peek moved the follower")
	}
	f.Skip(next)
	if rs, _, _ = f.Peek(100); len(rs) != 2 || rs[0].Value != 13 {
		t.Errorf("after Skip, Peek = %v; want readings 13 and 14", rs)
	}
	if f.Next() != next {
		t.Errorf("Next() = %d, want %d", f.Next(), next)
	}
	// The reader is untouched: it still has all 15 to deliver.
	if n := r.Unsent(); n != 15 {
		t.Errorf("reader has %d unsent, want 15", n)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "cursors"))
	for _, e := range entries {
		if e.Name() != "influx" {
			t.Errorf("cursor file %s: a follower must not save one", e.Name())
		}
	}
}
