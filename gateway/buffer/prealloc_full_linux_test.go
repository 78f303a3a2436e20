package buffer

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// lockedBuffer is a log destination the queue's goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Review of issue 14: on a nearly full file system fallocate(2) fails with ENOSPC, and
// ext4 and vfat keep the blocks it took before failing (measured on a loop-mounted
// 32 MiB ext4 with 3 MiB free: a failed 16 MiB reservation left a 0-byte file holding
// every free block, and the next write of any other file failed). The queue must give
// such a partial reservation back, carry on appending, and say so in the log.
func TestSegmentPreallocationFullDisk(t *testing.T) {
	old := fallocate
	t.Cleanup(func() { fallocate = old })
	// As ext4 does when the space runs out: a part reserved, then ENOSPC.
	var unsupported error
	fallocate = func(fd int, mode uint32, off, n int64) error {
		if err := syscall.Fallocate(fd, mode, off, n/4); err != nil {
			unsupported = err
			return err
		}
		return syscall.ENOSPC
	}
	var logs lockedBuffer
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	opt.Log = slog.New(slog.NewTextHandler(&logs, nil))
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 10))
	if unsupported != nil {
		t.Skipf("this file system does not preallocate: %v", unsupported)
	}
	seg := filepath.Join(opt.Dir, "segments", "00000000000000000000.seg")
	var st syscall.Stat_t
	if err := syscall.Stat(seg, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > st.Size+64<<10 {
		t.Errorf("after a failed reservation: %d bytes allocated for a segment of %d bytes; want the partial reservation given back", st.Blocks*512, st.Size)
	}
	if got := logs.String(); !strings.Contains(got, "no space left on device") || !strings.Contains(got, seg) {
		t.Errorf("log = %q; want a warning naming the segment and the error", got)
	}
	// A degraded disk starts a new segment at every Sync: one warning, not one each.
	for i := range 3 {
		q.mu.Lock()
		q.abandonActiveLocked()
		err := q.rotateLocked()
		q.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		appendSync(t, q, readings(10+i, 1))
	}
	if n := strings.Count(logs.String(), "cannot reserve"); n != 1 {
		t.Errorf("%d warnings for 4 failed reservations in a row; want 1", n)
	}
	r, err := q.Reader("s")
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, r, 100); len(got) != 13 {
		t.Errorf("%d readings stored; want 13", len(got))
	}
}

// Review of issue 14: a segment set aside while the disk failed (Sync starts a new one
// to probe the disk) took no more appends, but kept the blocks reserved for it until it
// was delivered and deleted: a card that fills and frees again while the uplink is down
// gathered up to segment_bytes of reservation per episode, beyond max_bytes. A segment
// set aside gives back what it did not use, as Close does.
func TestAbandonedSegmentReleasesReservation(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	ffs := &faultyFS{}
	wrapFiles(&opt, func(f *os.File) file { return faultyFile{f, ffs} })
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 10))
	seg := filepath.Join(opt.Dir, "segments", "00000000000000000000.seg")
	allocated := func() (int64, int64) {
		var st syscall.Stat_t
		if err := syscall.Stat(seg, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512, st.Size
	}
	if a, n := allocated(); a < opt.SegmentBytes {
		t.Skipf("%d bytes allocated for a segment of %d bytes: this file system does not preallocate", a, n)
	}
	ffs.set(syscall.ENOSPC, 0)
	if err := q.AppendRedeliverable(readings(10, 10)...); err == nil {
		t.Fatal("AppendRedeliverable on a full disk succeeded")
	}
	ffs.set(nil, 0)
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync after space freed = %v", err)
	}
	appendSync(t, q, readings(10, 10))
	if s := q.Stats(); s.Segments != 2 {
		t.Fatalf("Stats() = %+v; want the first segment set aside and a second one", s)
	}
	if a, n := allocated(); a > n+64<<10 {
		t.Errorf("segment set aside: %d bytes allocated for %d bytes of records; want the reservation given back", a, n)
	}
}
