package buffer

import (
	"path/filepath"
	"syscall"
	"testing"
)

// Issue 14: a segment reserves its blocks when it is created (fallocate, size kept), so
// that appends allocate none; Close and the next Open give back what the last segment
// did not use.
func TestSegmentPreallocatedAndReleased(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 10))
	seg := filepath.Join(opt.Dir, "segments", "00000000000000000000.seg")
	blocks := func() (allocated, size int64) {
		var st syscall.Stat_t
		if err := syscall.Stat(seg, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512, st.Size
	}
	a, n := blocks()
	if a < opt.SegmentBytes {
		t.Skipf("%d bytes allocated for a segment of %d bytes: this file system does not preallocate", a, n)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if a, n := blocks(); a > n+64<<10 {
		t.Errorf("after Close: %d bytes allocated for a segment of %d bytes; want the reservation given back", a, n)
	}
	// A crash leaves the reservation: the next Open gives it back.
	q = mustOpen(t, opt)
	appendSync(t, q, readings(10, 10))
	q.kill()
	seg = filepath.Join(opt.Dir, "segments", "00000000000000000010.seg")
	if a, _ := blocks(); a < opt.SegmentBytes {
		t.Fatalf("the new segment has %d bytes allocated; want %d reserved", a, opt.SegmentBytes)
	}
	mustOpen(t, opt)
	if a, n := blocks(); a > n+64<<10 {
		t.Errorf("after a crash and Open: %d bytes allocated for a segment of %d bytes; want the reservation given back", a, n)
	}
}
