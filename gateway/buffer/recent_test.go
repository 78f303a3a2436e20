package buffer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// recentValues returns the values Recent hands over, in order.
func recentValues(t *testing.T, q *Queue) []float64 {
	t.Helper()
	var got []float64
	if err := q.Recent(time.Time{}, func(r reading.Reading) { got = append(got, r.Value) }); err != nil {
		t.Fatalf("Recent: %v", err)
	}
	return got
}

// Delivered segments stay for Keep after their last write: Recent reads them after a
// restart, in append order, with what is not yet delivered; after Keep they are deleted
// like before, and nothing counts as dropped.
func TestKeepRetainsDeliveredSegmentsForRecent(t *testing.T) {
	opt := testOptions(t)
	now := time.Now() // a reopened segment's age comes from its file's mtime
	opt.now = func() time.Time { return now }
	opt.Keep = time.Hour
	q := mustOpen(t, opt)
	r, _ := q.Reader("influx")
	for i := 0; i < 400; i += 50 {
		appendSync(t, q, readings(i, 50))
	}
	if got := drain(t, r, 64); len(got) != 400 {
		t.Fatalf("drained %d, want 400", len(got))
	}
	appendSync(t, q, readings(400, 20)) // not delivered
	s := q.Stats()
	if s.Segments < 3 || s.KeptBytes == 0 || s.KeptBytes >= s.Bytes {
		t.Fatalf("Stats() = %+v, want delivered segments kept and counted in KeptBytes", s)
	}
	if got := recentValues(t, q); !slices.Equal(got, seqValues(0, 420)) {
		t.Fatalf("Recent gave %d values, want 0..419 in order: %v", len(got), got)
	}
	// After a restart (the cursor is saved on Close) the same.
	q.Close()
	q = mustOpen(t, opt)
	r, _ = q.Reader("influx")
	if got := recentValues(t, q); !slices.Equal(got, seqValues(0, 420)) {
		t.Fatalf("after reopen Recent gave %d values, want 0..419", len(got))
	}
	if got := drain(t, r, 64); !slices.Equal(got, seqValues(400, 20)) {
		t.Fatalf("after reopen the sink gets %v, want 400..419 only", got)
	}
	// Past Keep the delivered segments go at the next Ack: Keep after their last write
	// and after their newest reading, which t0 may put minutes after the test's start.
	now = now.Add(2 * time.Hour)
	appendSync(t, q, readings(420, 1))
	drain(t, r, 64)
	s = q.Stats()
	if s.Segments != 1 || s.KeptBytes != 0 || s.Dropped != 0 {
		t.Errorf("after Keep: Stats() = %+v, want only the active segment, nothing dropped", s)
	}
	if got := recentValues(t, q); len(got) == 0 || got[0] < 400 {
		t.Errorf("after Keep Recent still starts at %v", got)
	}
}

// The byte bound removes kept segments first and does not count them as dropped.
func TestMaxBytesRemovesKeptSegmentsWithoutCountingThem(t *testing.T) {
	opt := testOptions(t)
	opt.MaxBytes = 16 << 10
	opt.Keep = 24 * time.Hour
	q := mustOpen(t, opt)
	r, _ := q.Reader("influx")
	for i := 0; i < 2000; i += 100 {
		appendSync(t, q, readings(i, 100))
		drain(t, r, 500)
	}
	s := q.Stats()
	if s.Dropped != 0 || s.Bytes > opt.MaxBytes+opt.SegmentBytes || s.KeptBytes == 0 {
		t.Errorf("Stats() = %+v, want the byte bound kept with no reading counted as dropped", s)
	}
	got := recentValues(t, q)
	if len(got) == 0 || got[len(got)-1] != 1999 || !slices.IsSorted(got) {
		t.Errorf("Recent gave %d values ending %v, want the newest in order", len(got), got[len(got)-1])
	}
}

// A corrupt record in a kept segment is skipped by Recent; the rest is read.
func TestRecentSkipsCorruptRecord(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 10))
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(opt.Dir, "segments", "*.seg"))
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	q = mustOpen(t, opt)
	got := recentValues(t, q)
	if len(got) != 9 {
		t.Errorf("Recent gave %v, want the 9 intact readings", got)
	}
}

// Recent(since) starts at the oldest segment written since then: a long outage's
// undelivered backlog, older than what the derivations need, is not read.
func TestRecentSinceSkipsOlderSegments(t *testing.T) {
	opt := testOptions(t)
	now := time.Now()
	opt.now = func() time.Time { return now }
	q := mustOpen(t, opt)
	q.Reader("influx") // never delivers
	for i := 0; i < 400; i += 50 {
		appendSync(t, q, readings(i, 50))
	}
	now = now.Add(3 * time.Hour)
	appendSync(t, q, readings(400, 300))
	var got []float64
	if err := q.Recent(now.Add(-time.Hour), func(r reading.Reading) { got = append(got, r.Value) }); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0] > 400 || got[0] < 350 || got[len(got)-1] != 699 || !slices.IsSorted(got) {
		t.Errorf("Recent(an hour ago) gave %d values from %v; want those from the segment holding 400 on, through 699", len(got), got[:min(3, len(got))])
	}
	if all := recentValues(t, q); len(all) != 700 {
		t.Errorf("Recent(zero) gave %d values, want all 700", len(all))
	}
}

// A backlog days behind the box's clock (a device catching up after an outage) was
// written just now: Keep keeps it and Recent reads it, by its write time, although its
// readings are days old; the derivations' windows close on the device's clock. (The
// reading times alone dropped it: the restart e2e test rebuilt 660 of 1110 samples.)
func TestKeepAndRecentCoverAnOldBacklogWrittenNow(t *testing.T) {
	opt := testOptions(t)
	now := time.Now()
	opt.now = func() time.Time { return now }
	opt.Keep = time.Hour
	opt.MaxAge = 30 * 24 * time.Hour // max_age judges reading times: 5 days is within it
	q := mustOpen(t, opt)
	r, _ := q.Reader("influx")
	old := make([]reading.Reading, 400)
	for i := range old {
		old[i] = reading.New(now.Add(-5*24*time.Hour+time.Duration(i)*time.Second), "canal", "n-1", "la", float64(i))
	}
	for i := 0; i < 400; i += 50 {
		appendSync(t, q, old[i:i+50])
	}
	drain(t, r, 64)
	var got []float64
	if err := q.Recent(now.Add(-time.Hour), func(x reading.Reading) { got = append(got, x.Value) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, seqValues(0, 400)) {
		t.Fatalf("Recent(an hour ago) gave %d of the 400 backlog readings written now", len(got))
	}
	now = now.Add(2 * time.Hour)
	appendSync(t, q, readings(1000, 1))
	drain(t, r, 64)
	if s := q.Stats(); s.Segments != 1 || s.KeptBytes != 0 {
		t.Errorf("two hours later the backlog is still kept: %+v", s)
	}
}

// A removed reader (a sink a reload removed) no longer holds back deletion, and its
// cursor file is gone; the other reader keeps its cursor.
func TestRemoveReader(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	a, _ := q.Reader("influx")
	b, _ := q.Reader("backup")
	for i := 0; i < 400; i += 50 {
		appendSync(t, q, readings(i, 50))
	}
	drain(t, a, 64)
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Segments < 3 {
		t.Fatalf("the lagging reader should hold the segments: %+v", s)
	}
	if err := q.RemoveReader("backup"); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Segments != 1 {
		t.Errorf("after RemoveReader: %d segments, want only the active one", s.Segments)
	}
	if _, err := os.Stat(filepath.Join(opt.Dir, "cursors", "backup")); !os.IsNotExist(err) {
		t.Errorf("the removed reader's cursor file: %v, want it gone", err)
	}
	appendSync(t, q, readings(400, 3))
	if got := drain(t, a, 64); !slices.Equal(got, seqValues(400, 3)) {
		t.Errorf("the remaining reader got %v, want 400..402 (its cursor kept)", got)
	}
}
