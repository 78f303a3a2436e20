package buffer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// t0 is the time of the test readings: recent, because MaxAge and Keep judge segments
// by their newest reading's age on the wall clock.
var t0 = time.Now().UTC().Truncate(time.Hour)

// readings returns n distinct readings; reading i has value i and time t0+i s.
func readings(from, n int) []reading.Reading {
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = reading.New(t0.Add(time.Duration(from+i)*time.Second), "canal-east", "noise-1", "la", float64(from+i))
	}
	return rs
}

func testOptions(t *testing.T) Options {
	return Options{Dir: t.TempDir(), MaxBytes: 1 << 30, MaxAge: 24 * time.Hour, SegmentBytes: 4 << 10,
		CursorInterval: time.Nanosecond, MemoryReadings: 1000}
}

func mustOpen(t *testing.T, opt Options) *Queue {
	t.Helper()
	q, err := Open(opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func appendSync(t *testing.T, q *Queue, rs []reading.Reading) {
	t.Helper()
	if err := q.Append(rs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// drain peeks and acks until the reader is empty and returns the values seen.
func drain(t *testing.T, r *Reader, batch int) []float64 {
	t.Helper()
	var got []float64
	for {
		rs, next, err := r.Peek(batch)
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		for _, x := range rs {
			got = append(got, x.Value)
		}
		if err := r.Ack(next); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if len(rs) == 0 {
			return got
		}
	}
}

func seqValues(from, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(from + i)
	}
	return v
}

func TestAppendPeekAckAcrossSegments(t *testing.T) {
	q := mustOpen(t, testOptions(t))
	r, err := q.Reader("influx")
	if err != nil {
		t.Fatal(err)
	}
	want := readings(0, 500)
	for i := 0; i < 500; i += 50 {
		appendSync(t, q, want[i:i+50])
	}
	if s := q.Stats(); s.Segments < 3 || s.Appended != 500 {
		t.Fatalf("Stats() = %+v, want >= 3 segments and 500 appended", s)
	}
	rs, next, err := r.Peek(7)
	if err != nil || len(rs) != 7 || next != 7 {
		t.Fatalf("Peek(7) = %d readings, next %d, %v; want 7, 7, nil", len(rs), next, err)
	}
	if rs[3] != want[3] {
		t.Errorf("Peek()[3] = %+v, want %+v", rs[3], want[3])
	}
	// Peek does not move the cursor.
	if again, _, _ := r.Peek(7); !slices.Equal(again, rs) {
		t.Errorf("second Peek differs from the first")
	}
	if got := drain(t, r, 64); !slices.Equal(got, seqValues(0, 500)) {
		t.Errorf("drained %d values, want 0..499 in order: %v", len(got), got)
	}
	if s := q.Stats(); s.Segments != 1 {
		t.Errorf("after acking everything Stats().Segments = %d, want 1 (only the active one)", s.Segments)
	}
}

func TestReadersSeeOnlyDurableReadings(t *testing.T) {
	q := mustOpen(t, testOptions(t))
	r, _ := q.Reader("s")
	if err := q.Append(readings(0, 10)...); err != nil {
		t.Fatal(err)
	}
	if rs, _, _ := r.Peek(100); len(rs) != 0 {
		t.Fatalf("Peek before Sync = %d readings, want 0", len(rs))
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if rs, _, _ := r.Peek(100); len(rs) != 10 {
		t.Fatalf("Peek after Sync = %d readings, want 10", len(rs))
	}
}

func TestRestartResumesAtCursor(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	r, _ := q.Reader("influx")
	appendSync(t, q, readings(0, 100))
	rs, next, _ := r.Peek(40)
	if len(rs) != 40 {
		t.Fatalf("Peek(40) = %d", len(rs))
	}
	if err := r.Ack(next); err != nil {
		t.Fatal(err)
	}
	// No Close: the process dies here. CursorInterval is 1ns, so the ack was persisted.
	q.kill()
	q2 := mustOpen(t, opt)
	r2, _ := q2.Reader("influx")
	appendSync(t, q2, readings(100, 5))
	if got := drain(t, r2, 33); !slices.Equal(got, seqValues(40, 65)) {
		t.Errorf("after restart drained %v, want 40..104", got)
	}
}

func TestReopenedLogIsReadableBeforeNewAppends(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	for i := 0; i < 200; i += 50 {
		appendSync(t, q, readings(i, 50))
	}
	q.Close()
	q2 := mustOpen(t, opt)
	r, _ := q2.Reader("new-sink")
	if got := drain(t, r, 64); !slices.Equal(got, seqValues(0, 200)) {
		t.Errorf("after reopen, before any append, drained %d values, want 0..199", len(got))
	}
}

func TestSlowReaderDoesNotBlockFastOne(t *testing.T) {
	q := mustOpen(t, testOptions(t))
	fast, _ := q.Reader("fast")
	slow, _ := q.Reader("slow")
	for i := 0; i < 300; i += 50 {
		appendSync(t, q, readings(i, 50))
	}
	if got := drain(t, fast, 100); len(got) != 300 {
		t.Fatalf("fast reader drained %d, want 300", len(got))
	}
	if q.Stats().Segments < 2 {
		t.Fatalf("segments deleted while the slow reader still needs them")
	}
	if u := slow.Unsent(); u != 300 {
		t.Errorf("slow.Unsent() = %d, want 300", u)
	}
	if _, _, err := slow.Peek(1); err != nil { // OldestUnsent is what the last Peek saw
		t.Fatal(err)
	}
	if got, want := slow.OldestUnsent(), t0; !got.Equal(want) {
		t.Errorf("slow.OldestUnsent() = %v, want %v", got, want)
	}
	if got := drain(t, slow, 7); !slices.Equal(got, seqValues(0, 300)) {
		t.Errorf("slow reader drained %d values, want 0..299", len(got))
	}
	if !fast.OldestUnsent().IsZero() {
		t.Errorf("caught-up reader has an oldest unsent time")
	}
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	slices.Sort(segs)
	if len(segs) == 0 {
		t.Fatal("no segments")
	}
	return segs[len(segs)-1]
}

func TestTornTailIsRepairedOnOpen(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 20))
	q.Close()
	// A power cut in the middle of the 21st record: half a record on disk.
	seg := lastSegment(t, opt.Dir)
	partial := appendRecord(nil, 20, readings(20, 1)[0])
	f, _ := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(partial[:len(partial)/2])
	f.Close()
	sizeBefore := fileSize(t, seg)

	q2 := mustOpen(t, opt)
	if s := q2.Stats(); s.QuarantinedRecords != 1 || s.QuarantinedBytes != uint64(len(partial)/2) {
		t.Errorf("Stats() = %+v, want 1 quarantined record of %d bytes", s, len(partial)/2)
	}
	if got := fileSize(t, seg); got != sizeBefore-int64(len(partial)/2) {
		t.Errorf("segment size after repair = %d, want %d", got, sizeBefore-int64(len(partial)/2))
	}
	if bad, _ := filepath.Glob(filepath.Join(opt.Dir, "quarantine", "*.bad")); len(bad) != 1 {
		t.Errorf("quarantine files = %v, want 1", bad)
	}
	r, _ := q2.Reader("s")
	appendSync(t, q2, readings(20, 5))
	if got := drain(t, r, 100); !slices.Equal(got, seqValues(0, 25)) {
		t.Errorf("after repair drained %v, want 0..24", got)
	}
}

func TestTornTailOnlyRecordIsRemoved(t *testing.T) {
	opt := testOptions(t)
	os.MkdirAll(filepath.Join(opt.Dir, "segments"), 0o750)
	// A segment that holds nothing but 5 junk bytes, as after a crash right at creation.
	os.WriteFile(filepath.Join(opt.Dir, "segments", fmt.Sprintf("%020d.seg", 0)), []byte{1, 2, 3, 4, 5}, 0o640)
	os.WriteFile(filepath.Join(opt.Dir, "segments", "notes.txt"), []byte("junk file"), 0o640)
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 3))
	if got := drain(t, r, 10); !slices.Equal(got, seqValues(0, 3)) {
		t.Errorf("drained %v, want 0..2", got)
	}
}

func TestRandomCorruptionLosesOnlyTheCorruptRecord(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 100))
	q.Close()
	seg := lastSegment(t, opt.Dir)
	b, _ := os.ReadFile(seg)
	recLen := len(b) / 100 // all records have the same size here
	b[50*recLen+recLen/2] ^= 0x40
	os.WriteFile(seg, b, 0o640)

	q2 := mustOpen(t, opt)
	r, _ := q2.Reader("s")
	appendSync(t, q2, readings(100, 10))
	got := drain(t, r, 30)
	want := slices.Delete(seqValues(0, 110), 50, 51)
	if !slices.Equal(got, want) {
		t.Errorf("drained %d values %v, want all but 50", len(got), got)
	}
	if s := q2.Stats(); s.QuarantinedRecords != 1 || s.QuarantinedBytes != uint64(recLen) {
		t.Errorf("Stats() = %+v, want 1 quarantined record of %d bytes", s, recLen)
	}
}

func TestCorruptionInSealedSegmentIsCountedOnce(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	a, _ := q.Reader("a")
	b, _ := q.Reader("b")
	for i := 0; i < 200; i += 50 {
		appendSync(t, q, readings(i, 50))
	}
	segs, _ := filepath.Glob(filepath.Join(opt.Dir, "segments", "*.seg"))
	slices.Sort(segs)
	data, _ := os.ReadFile(segs[0])
	data[20] ^= 0xff // inside the first record's payload
	os.WriteFile(segs[0], data, 0o640)

	for _, r := range []*Reader{a, b} {
		// Peek the same corrupt spot several times, as a failing sink would.
		r.Peek(5)
		r.Peek(5)
		if got := drain(t, r, 50); len(got) != 199 || got[0] != 1 {
			t.Errorf("drained %d values starting %v, want 199 starting at 1", len(got), got[:1])
		}
	}
	if s := q.Stats(); s.QuarantinedRecords != 1 {
		t.Errorf("QuarantinedRecords = %d, want 1 (counted once for two readers and repeated peeks)", s.QuarantinedRecords)
	}
}

func TestMaxBytesDropsOldestAndCounts(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 4 << 10
	opt.MaxBytes = 16 << 10
	q := mustOpen(t, opt)
	r, _ := q.Reader("slow")
	for i := 0; i < 2000; i += 100 {
		appendSync(t, q, readings(i, 100))
	}
	s := q.Stats()
	if s.Bytes > opt.MaxBytes+opt.SegmentBytes {
		t.Errorf("Stats().Bytes = %d, want <= %d", s.Bytes, opt.MaxBytes+opt.SegmentBytes)
	}
	got := drain(t, r, 500)
	if uint64(len(got))+s.Dropped != 2000 {
		t.Errorf("delivered %d + dropped %d = %d, want 2000", len(got), s.Dropped, uint64(len(got))+s.Dropped)
	}
	if s.Dropped == 0 || got[0] != float64(s.Dropped) || got[len(got)-1] != 1999 {
		t.Errorf("delivered %v..%v after dropping %d; want the newest readings, in order", got[0], got[len(got)-1], s.Dropped)
	}
	if !slices.IsSorted(got) {
		t.Errorf("delivered out of order")
	}
	// Reopen: the bounds hold, the drop count was not lost data, and appends go on.
	q.Close()
	q2 := mustOpen(t, opt)
	r2, _ := q2.Reader("slow")
	appendSync(t, q2, readings(2000, 10))
	if got := drain(t, r2, 100); !slices.Equal(got, seqValues(2000, 10)) {
		t.Errorf("after reopen drained %v, want 2000..2009", got)
	}
}

func TestMaxAgeDropsOldSegments(t *testing.T) {
	opt := testOptions(t)
	now := t0
	opt.now = func() time.Time { return now }
	opt.MaxAge = time.Hour
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 100)) // several segments, written "now"
	now = now.Add(2 * time.Hour)
	appendSync(t, q, readings(100, 100))
	got := drain(t, r, 1000)
	s := q.Stats()
	if s.Dropped == 0 || uint64(len(got))+s.Dropped != 200 || got[len(got)-1] != 199 {
		t.Errorf("delivered %d, dropped %d; want the old readings dropped and counted, all new ones delivered", len(got), s.Dropped)
	}
}

// faultyFS makes writes fail with err once armed, after letting through `allow` bytes.
type faultyFS struct {
	mu    sync.Mutex
	err   error
	allow int
}

type faultyFile struct {
	*os.File
	fs *faultyFS
}

func (f faultyFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.err == nil {
		return f.File.Write(b)
	}
	n := min(f.fs.allow, len(b))
	f.fs.allow -= n
	f.File.Write(b[:n])
	return n, f.fs.err
}

func (fs *faultyFS) set(err error, allow int) {
	fs.mu.Lock()
	fs.err, fs.allow = err, allow
	fs.mu.Unlock()
}

// wrapFiles makes the queue open its files as usual and use them through wrap.
func wrapFiles(opt *Options, wrap func(*os.File) file) {
	opt.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return wrap(f), nil
	}
}

func TestDiskFullDegradesThenRecovers(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	ffs := &faultyFS{}
	wrapFiles(&opt, func(f *os.File) file { return faultyFile{f, ffs} })
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 10))

	ffs.set(syscall.ENOSPC, 30) // the disk fills in the middle of a record
	err := q.Append(readings(10, 10)...)
	if !errors.Is(err, ErrDegraded) || !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrUnsynced) {
		t.Fatalf("Append on a full disk = %v, want ErrDegraded wrapping ENOSPC, not ErrUnsynced (earlier appends stay unsynced on disk)", err)
	}
	if err := q.Append(readings(20, 10)...); !errors.Is(err, ErrDegraded) {
		t.Fatalf("second Append = %v, want ErrDegraded", err)
	}
	if s := q.Stats(); !s.Degraded || s.MemoryReadings != 20 {
		t.Fatalf("Stats() = %+v, want degraded with 20 readings in memory", s)
	}
	if err := q.Sync(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Sync on a full disk = %v, want ErrDegraded", err)
	}
	// Readings already durable are still delivered while degraded.
	if got := drain(t, r, 100); !slices.Equal(got, seqValues(0, 10)) {
		t.Fatalf("drained while degraded %v, want 0..9", got)
	}

	ffs.set(nil, 0) // space freed
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync after space freed = %v", err)
	}
	if s := q.Stats(); s.Degraded || s.MemoryReadings != 0 {
		t.Fatalf("Stats() = %+v, want recovered", s)
	}
	appendSync(t, q, readings(30, 5))
	if got := drain(t, r, 100); !slices.Equal(got, seqValues(10, 25)) {
		t.Errorf("drained after recovery %v, want 10..34", got)
	}
	q.Close()
	q2 := mustOpen(t, opt)
	if s := q2.Stats(); s.QuarantinedRecords != 0 {
		t.Errorf("reopen after disk full: Stats() = %+v, want no corruption (partial write was cut off)", s)
	}
}

func TestMemoryBoundWhileDegraded(t *testing.T) {
	opt := testOptions(t)
	opt.MemoryReadings = 50
	opt.openFile = func(string, int, os.FileMode) (file, error) { return nil, syscall.EROFS }
	q := mustOpen(t, opt)
	for i := 0; i < 200; i += 10 {
		if err := q.Append(readings(i, 10)...); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("Append on a read-only disk = %v, want EROFS", err)
		}
	}
	if s := q.Stats(); s.MemoryReadings != 50 || s.Dropped != 150 || s.Appended != 200 {
		t.Errorf("Stats() = %+v, want 50 in memory, 150 dropped of 200", s)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	q := mustOpen(t, testOptions(t))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := q.Append(readings(0, 1)...); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestWaitWakesOnSync(t *testing.T) {
	q := mustOpen(t, testOptions(t))
	r, _ := q.Reader("s")
	done := make(chan error)
	go func() { done <- r.Wait(t.Context()) }()
	appendSync(t, q, readings(0, 1))
	if err := <-done; err != nil {
		t.Errorf("Wait = %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Review findings (issue 2): a cursor beyond the log must not make the forwarder spin.
func TestCursorBeyondLogDoesNotSpin(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	a, _ := q.Reader("a")
	b, _ := q.Reader("b")
	appendSync(t, q, readings(0, 100))
	drain(t, a, 1000)
	rs, _, _ := b.Peek(50)
	b.Ack(50)
	if len(rs) != 50 {
		t.Fatal("setup")
	}
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(opt.Dir, "segments", "*.seg"))
	for _, s := range segs {
		os.Remove(s) // removed by hand
	}
	q2 := mustOpen(t, opt)
	b2, _ := q2.Reader("b")
	rs, next, err := b2.Peek(10)
	if err != nil || len(rs) != 0 {
		t.Fatalf("Peek = %d, %v", len(rs), err)
	}
	b2.Ack(next)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := b2.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with nothing to deliver = %v, want it to block until the deadline", err)
	}
	appendSync(t, q2, readings(100, 3))
	if got := drain(t, b2, 10); !slices.Equal(got, seqValues(100, 3)) {
		t.Errorf("after new appends drained %v, want 100..102", got)
	}
}

func TestMissingSegmentIsSkippedAndCounted(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	for i := 0; i < 300; i += 50 {
		appendSync(t, q, readings(i, 50))
	}
	segs, _ := filepath.Glob(filepath.Join(opt.Dir, "segments", "*.seg"))
	slices.Sort(segs)
	os.Remove(segs[1])
	got := drain(t, r, 1000)
	s := q.Stats()
	if uint64(len(got))+s.Dropped != 300 || s.Dropped == 0 || !slices.IsSorted(got) || got[len(got)-1] != 299 {
		t.Errorf("delivered %d + dropped %d, want 300 with the lost segment counted", len(got), s.Dropped)
	}
}

func TestDiskFullDropsOldestSegmentFirst(t *testing.T) {
	opt := testOptions(t)
	ffs := &faultyFS{}
	wrapFiles(&opt, func(f *os.File) file { return onceFaulty{faultyFile{f, ffs}} })
	q := mustOpen(t, opt)
	r, _ := q.Reader("slow")
	for i := 0; i < 300; i += 50 {
		appendSync(t, q, readings(i, 50))
	}
	ffs.set(syscall.ENOSPC, 0)
	if err := q.Append(readings(300, 10)...); err != nil {
		t.Fatalf("Append on a full disk with old segments to drop = %v, want nil", err)
	}
	q.Sync()
	s := q.Stats()
	if s.Degraded || s.Dropped == 0 {
		t.Errorf("Stats() = %+v, want the oldest segment dropped (counted) and not degraded", s)
	}
	got := drain(t, r, 1000)
	if uint64(len(got))+s.Dropped != 310 || got[len(got)-1] != 309 {
		t.Errorf("delivered %d + dropped %d, want 310, newest kept", len(got), s.Dropped)
	}
}

// onceFaulty fails one write with the armed error, then disarms.
type onceFaulty struct{ faultyFile }

func (f onceFaulty) Write(b []byte) (int, error) {
	n, err := f.faultyFile.Write(b)
	if err != nil {
		f.fs.set(nil, 0)
	}
	return n, err
}

// failSyncOnce makes the next fsync after *fail is set fail with EIO, once.
func failSyncOnce(opt *Options) (fail *bool) {
	fail = new(bool)
	opt.syncFile = func(f file) error {
		if *fail {
			*fail = false
			return syscall.EIO
		}
		return syncData(f)
	}
	return fail
}

// missing returns the first of the values 0..n-1 that got lacks, or -1. Duplicates are
// allowed (InfluxDB overwrites them), loss is not.
func missing(got []float64, n int) int {
	seen := map[float64]bool{}
	for _, v := range got {
		seen[v] = true
	}
	for i := range n {
		if !seen[float64(i)] {
			return i
		}
	}
	return -1
}

func TestSyncFailureKeepsUnsyncedReadings(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	fail := failSyncOnce(&opt)
	*fail = true
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	if err := q.Append(readings(0, 20)...); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); !errors.Is(err, ErrDegraded) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync with EIO = %v, want ErrDegraded wrapping EIO", err)
	}
	if s := q.Stats(); !s.Degraded || s.MemoryReadings != 20 {
		t.Fatalf("Stats() = %+v, want the 20 unsynced readings back in memory", s)
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("second Sync = %v", err)
	}
	// The first copies may have survived too.
	if i := missing(drain(t, r, 100), 20); i >= 0 {
		t.Errorf("reading %d lost after a failed sync", i)
	}
}

// truncFailFile fails Truncate, so a partial write cannot be cut off.
type truncFailFile struct{ faultyFile }

func (truncFailFile) Truncate(int64) error { return syscall.EIO }

func TestAbandonedSegmentNeverReusesSequenceNumbers(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	opt.MemoryReadings = 15
	ffs := &faultyFS{}
	wrapFiles(&opt, func(f *os.File) file { return truncFailFile{faultyFile{f, ffs}} })
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 10))
	rec := len(appendRecord(nil, 0, readings(0, 1)[0]))
	ffs.set(syscall.EIO, 2*rec+rec/2) // two whole records and half of a third reach the file
	q.Append(readings(10, 10)...)
	q.Append(readings(20, 10)...) // memory bound 15: 10..14 are dropped
	ffs.set(nil, 0)
	if err := q.Sync(); !errors.Is(err, ErrLost) {
		t.Fatalf("Sync after recovery = %v, want ErrLost: readings were dropped from memory", err)
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("second Sync after recovery: %v", err)
	}
	q.Close()
	q2 := mustOpen(t, opt) // reopen: the abandoned segment's bytes are visible again
	r, _ = q2.Reader("s")
	got := drain(t, r, 100)
	seen := map[float64]bool{}
	for _, v := range got {
		seen[v] = true
	}
	for _, v := range append(seqValues(0, 10), seqValues(15, 15)...) {
		if !seen[v] {
			t.Errorf("reading %v lost", v)
		}
	}
	if t.Failed() {
		t.Logf("delivered %v; stats %+v", got, q2.Stats())
	}
}

// A failed fsync inside Append (the group commit every syncEvery readings) with no memory
// to hold the readings: the readings of the appends before it are gone, and Sync must
// say so rather than return nil (the MQTT source would acknowledge messages whose
// readings are lost).
func TestSyncReportsReadingsDroppedAfterFailedFsync(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 64 << 20
	opt.MemoryReadings = 0
	failing := false
	opt.syncFile = func(f file) error {
		if failing {
			return syscall.EIO
		}
		return syncData(f)
	}
	q := mustOpen(t, opt)
	if err := q.Append(readings(0, 5)...); err != nil {
		t.Fatal(err)
	}
	failing = true
	// The group commit fsyncs the segment holding 0..syncEvery+4, fails, requeues them
	// in memory, and the bound of 0 drops them; this Append itself fails too.
	if err := q.Append(readings(5, syncEvery)...); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Append with failing fsync = %v, want ErrDegraded", err)
	}
	failing = false
	err := q.Sync()
	if !errors.Is(err, ErrLost) {
		t.Fatalf("Sync after the drop = %v, want ErrLost", err)
	}
	if strings.Count(err.Error(), ErrDegraded.Error()) > 1 {
		t.Errorf("error wraps ErrDegraded twice: %v", err)
	}
	if err := q.Append(readings(10, 5)...); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync once the disk works = %v", err)
	}
}

func TestAppendErrorWrapsDegradedOnce(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 64 << 20
	opt.syncFile = func(f file) error { return syscall.EIO }
	q := mustOpen(t, opt)
	q.Append(readings(0, 1)...)
	err := q.Append(readings(1, syncEvery)...)
	if !errors.Is(err, ErrDegraded) || strings.Count(err.Error(), ErrDegraded.Error()) != 1 {
		t.Fatalf("Append = %v, want ErrDegraded exactly once", err)
	}
}

// The group commit every syncEvery readings fails: the readings just written are put
// back in memory once (not twice), nothing is dropped, and the next Sync succeeds and
// clears Degraded.
func TestFailedSyncEveryDoesNotDuplicateInMemory(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 64 << 20
	opt.MemoryReadings = syncEvery
	fail := failSyncOnce(&opt)
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	if err := q.Append(readings(0, 6000)...); err != nil {
		t.Fatal(err)
	}
	*fail = true
	if err := q.Append(readings(6000, 4000)...); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Append reaching syncEvery with a failing fsync = %v, want ErrDegraded", err)
	}
	if s := q.Stats(); s.MemoryReadings != syncEvery || s.Dropped != 0 {
		t.Fatalf("Stats() = %+v, want the %d unsynced readings in memory once, none dropped", s, syncEvery)
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync once the disk works = %v", err)
	}
	if s := q.Stats(); s.Degraded || s.MemoryReadings != 0 {
		t.Errorf("after a good Sync: %+v, want not degraded, nothing in memory", s)
	}
	if i := missing(drain(t, r, 3*syncEvery), syncEvery); i >= 0 {
		t.Fatalf("reading %d lost", i)
	}
}
