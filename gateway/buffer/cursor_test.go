package buffer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Issue 14: a cursor save replaced the file (tmp, fdatasync, rename, directory fsync),
// 64 KiB of writes on ext4 per save. After its first save a reader overwrites the same
// file in place.
func TestCursorSavedInPlace(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 10))
	path := filepath.Join(opt.Dir, "cursors", "s")
	var first os.FileInfo
	for i := 1; i <= 5; i++ {
		if err := r.Ack(uint64(i)); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = fi
		} else if !os.SameFile(first, fi) {
			t.Fatalf("save %d replaced the cursor file; want it overwritten in place", i)
		}
		if fi.Size() != cursorFileSize {
			t.Fatalf("cursor file is %d bytes, want %d", fi.Size(), cursorFileSize)
		}
		if seq, _, err := loadSinkCursor(osFS{}, path); err != nil || seq != uint64(i) {
			t.Fatalf("loadSinkCursor = %d, %v; want %d", seq, err, i)
		}
	}
}

// A cursor file of the first format (12 bytes) is read, and replaced by the first save.
func TestCursorOldFormatRead(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 10))
	q.Close()
	writeCursor(t, opt.Dir, "s", 4)
	q = mustOpen(t, opt)
	r, _ := q.Reader("s")
	if got := drain(t, r, 100); len(got) != 6 || got[0] != 4 {
		t.Fatalf("after an old-format cursor at 4: delivered %v, want 4..9", got)
	}
	q.Close()
	if seq, gen, err := loadSinkCursor(osFS{}, filepath.Join(opt.Dir, "cursors", "s")); err != nil || seq != 10 || gen == 0 {
		t.Fatalf("after Close: loadSinkCursor = %d, gen %d, %v; want 10 in the new format", seq, gen, err)
	}
}

// Issue 14: the cursor was saved every CursorInterval however little moved. A save is
// due after CursorInterval only once 16 saves' worth of records are acknowledged since
// the last one, and otherwise after cursorIdleSaves intervals.
func TestCursorSaveDueByData(t *testing.T) {
	opt := testOptions(t)
	now := t0
	opt.now = func() time.Time { return now }
	opt.CursorInterval = 5 * time.Second
	opt.SegmentBytes = 1 << 20
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 3000))
	per := q.recordBytes()
	few := uint64(10)
	many := few + 2 + cursorCover*cursorSaveBytes/per + 1

	if err := r.Ack(few); err != nil {
		t.Fatal(err)
	}
	now = now.Add(opt.CursorInterval + time.Second)
	r.Ack(few + 1)
	if n, due := r.Unsaved(); n == 0 || due <= 0 {
		t.Fatalf("after %d readings and one interval: Unsaved = %d, due in %v; want unsaved, not due", few+1, n, due)
	}
	now = now.Add(time.Duration(cursorIdleSaves-1) * opt.CursorInterval)
	r.Ack(few + 2)
	if n, _ := r.Unsaved(); n != 0 {
		t.Fatalf("after %d intervals: Unsaved = %d, want the cursor saved", cursorIdleSaves, n)
	}

	// Much acknowledged: due after one interval, not before.
	r.Ack(many)
	if n, _ := r.Unsaved(); n == 0 {
		t.Fatalf("saved at once; want at most one save per interval")
	}
	now = now.Add(opt.CursorInterval)
	r.Ack(many + 1)
	if n, _ := r.Unsaved(); n != 0 {
		t.Fatalf("%d readings (%d bytes each) acknowledged over one interval: Unsaved = %d, want saved", many-few, per, n)
	}
}

// A power cut during any operation of a run of cursor saves, in place or by replacing
// the file, leaves a readable cursor: the last one saved, or the one being saved.
func TestCursorTornSaveKeepsPrevious(t *testing.T) {
	for crashAt := 1; crashAt < 120; crashAt++ {
		rng := rand.New(rand.NewPCG(uint64(crashAt), 14))
		m := newMemFS(rng)
		opt := Options{Dir: "/buf", SegmentBytes: 1 << 20, CursorInterval: time.Nanosecond, MemoryReadings: 100, fs: m}
		q, err := Open(opt)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := q.Reader("s")
		if err := q.Append(readings(0, 60)...); err != nil {
			t.Fatal(err)
		}
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
		m.crashAt = m.ops + crashAt
		var saved, trying uint64
		for i := uint64(1); i <= 60; i++ {
			trying = i
			r.Ack(i)
			if err := r.Flush(); err != nil {
				break
			}
			saved = i
			if i%17 == 0 {
				// A failed save: the next one replaces the file whole.
				r.persistMu.Lock()
				r.dropCursorFile()
				r.persistMu.Unlock()
			}
		}
		after := m.crash(rng)
		seq, _, err := loadSinkCursor(after, "/buf/cursors/s")
		if saved == 0 && err != nil {
			continue // the power went before the first save finished: no cursor yet
		}
		if err != nil || (seq != saved && seq != trying) {
			t.Fatalf("crash at op %d: cursor %d, %v; want %d (saved) or %d (being saved)", crashAt, seq, err, saved, trying)
		}
	}
}
