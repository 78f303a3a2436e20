package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hookFS is the real file system with faults injected by path: a cursor file's fsync
// that hangs until released, and open or read errors for chosen segment files.
type hookFS struct {
	osFS
	hangCursorSync atomic.Bool
	cursorSyncing  chan struct{} // closed when a cursor fsync starts hanging
	release        chan struct{}
	badOpen        atomic.Pointer[string] // open of this path fails with EIO
	badRead        atomic.Pointer[string] // reads of this path fail with EIO
}

func newHookFS() *hookFS {
	return &hookFS{cursorSyncing: make(chan struct{}), release: make(chan struct{})}
}

// hookFile hides *os.File's Fd, so that syncData calls its Sync.
type hookFile struct {
	f  *os.File
	fs *hookFS
}

func (h *hookFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	if p := h.badOpen.Load(); p != nil && *p == name {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EIO}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return hookFile{f, h}, nil
}

func (f hookFile) Write(b []byte) (int, error)              { return f.f.Write(b) }
func (f hookFile) WriteAt(b []byte, off int64) (int, error) { return f.f.WriteAt(b, off) }
func (f hookFile) ReadAt(b []byte, off int64) (int, error) {
	if p := f.fs.badRead.Load(); p != nil && *p == f.f.Name() {
		return 0, &os.PathError{Op: "read", Path: f.f.Name(), Err: syscall.EIO}
	}
	return f.f.ReadAt(b, off)
}
func (f hookFile) Truncate(size int64) error { return f.f.Truncate(size) }
func (f hookFile) Close() error              { return f.f.Close() }
func (f hookFile) Name() string              { return f.f.Name() }
func (f hookFile) Sync() error {
	if filepath.Base(filepath.Dir(f.f.Name())) == "cursors" && f.fs.hangCursorSync.CompareAndSwap(true, false) {
		close(f.fs.cursorSyncing)
		<-f.fs.release
	}
	return f.f.Sync()
}

// Review of issue 10: /metrics still waited for the disk. Ack and Flush saved the cursor
// (fdatasync, directory fsync) holding the reader's lock, which OldestUnsent takes;
// Stats and Unsent took the queue's lock, which Append holds across write(2). With a
// hung cursor fsync and a hung segment write, Stats, Unsent, Durable and OldestUnsent
// still answer.
func TestScrapeAnswersWhileCursorSaveAndWriteHang(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	hfs := newHookFS()
	opt.fs = hfs
	var hangWrite atomic.Bool
	writing := make(chan struct{})
	wrapFiles(&opt, func(f *os.File) file {
		return hangingWriteFile{File: f, hang: &hangWrite, entered: writing, release: hfs.release}
	})
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 20))
	rs, next, err := r.Peek(5)
	if err != nil || len(rs) != 5 {
		t.Fatalf("Peek = %d readings, %v", len(rs), err)
	}
	released := false
	defer func() {
		if !released {
			close(hfs.release)
		}
	}()

	hfs.hangCursorSync.Store(true)
	acked := make(chan error, 1)
	go func() { acked <- r.Ack(next) }() // saves the cursor: CursorInterval is 1 ns
	<-hfs.cursorSyncing
	hangWrite.Store(true)
	appended := make(chan error, 1)
	go func() { appended <- q.Append(readings(20, 5)...) }()
	<-writing

	for _, c := range []struct {
		name string
		call func()
	}{
		{"Stats", func() { q.Stats() }},
		{"Unsent", func() { r.Unsent() }},
		{"Durable", func() { r.Durable() }},
		{"OldestUnsent", func() { r.OldestUnsent() }},
		{"Unsaved", func() { r.Unsaved() }},
	} {
		done := make(chan struct{})
		go func() { c.call(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s waited for a hung cursor fsync or segment write", c.name)
		}
	}
	if t.Failed() {
		return // the hung calls hold locks; released by the deferred close
	}
	if s := q.Stats(); s.Bytes == 0 || s.Segments != 1 || s.Appended != 25 {
		t.Errorf("Stats() during the hang = %+v, want 1 segment, bytes, 25 appended", s)
	}
	if n := r.Unsent(); n != 15 {
		t.Errorf("Unsent() during the hang = %d, want 15", n)
	}
	released = true
	close(hfs.release)
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, r, 100); !slices.Equal(got, seqValues(5, 20)) {
		t.Errorf("drained %v, want 5..24", got)
	}
}

// OldestUnsent answers from what the forwarder's last Peek saw; it never reads the disk.
func TestOldestUnsentFromLastPeek(t *testing.T) {
	q := mustOpen(t, testOptions(t))
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 10))
	if _, _, err := r.Peek(3); err != nil {
		t.Fatal(err)
	}
	if got := r.OldestUnsent(); !got.Equal(t0) {
		t.Errorf("OldestUnsent() after Peek = %v, want %v", got, t0)
	}
	drain(t, r, 100)
	if got := r.OldestUnsent(); !got.IsZero() {
		t.Errorf("OldestUnsent() caught up = %v, want zero", got)
	}
}

// Review of issue 10: after a failed fsync the unsynced readings went back to memory to
// be written again with new sequence numbers, but their first copies stayed in the log
// and the next good sync made both durable: 0..9 then 5..9 again.
func TestFailedSyncDeliversNothingTwice(t *testing.T) {
	for _, c := range []struct {
		name      string
		truncFail bool
		restart   bool
	}{
		{"in process", false, false},
		{"after restart", false, true},
		{"truncate fails, after restart", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := testOptions(t)
			opt.SegmentBytes = 1 << 20
			if c.truncFail {
				ffs := &faultyFS{}
				wrapFiles(&opt, func(f *os.File) file { return truncFailFile{faultyFile{f, ffs}} })
			}
			fail := failSyncOnce(&opt)
			q := mustOpen(t, opt)
			r, _ := q.Reader("s")
			appendSync(t, q, readings(0, 5))
			if err := q.Append(readings(5, 5)...); err != nil {
				t.Fatal(err)
			}
			*fail = true
			if err := q.Sync(); !errors.Is(err, ErrDegraded) {
				t.Fatalf("Sync with EIO = %v, want ErrDegraded", err)
			}
			if err := q.Sync(); err != nil {
				t.Fatalf("Sync once the disk works = %v", err)
			}
			if n := r.Unsent(); n != 10 {
				t.Errorf("Unsent() = %d, want 10", n)
			}
			if c.restart {
				q.Close()
				q = mustOpen(t, opt)
				r, _ = q.Reader("s")
			}
			if got := drain(t, r, 100); !slices.Equal(got, seqValues(0, 10)) {
				t.Errorf("drained %v, want 0..9 once each", got)
			}
			appendSync(t, q, readings(10, 2))
			if got := drain(t, r, 100); !slices.Equal(got, seqValues(10, 2)) {
				t.Errorf("then drained %v, want 10..11", got)
			}
		})
	}
}

// With no memory to hold them (MemoryReadings 0) the readings of a failed fsync are
// counted as dropped, so they must not be delivered either; readings with another copy
// are discarded (their source sends them again), so their first copies must not be
// delivered either.
func TestFailedSyncDroppedOrDiscardedAreNotDelivered(t *testing.T) {
	for _, redeliver := range []bool{false, true} {
		t.Run(map[bool]string{false: "dropped", true: "discarded"}[redeliver], func(t *testing.T) {
			opt := testOptions(t)
			opt.SegmentBytes = 1 << 20
			opt.MemoryReadings = 0
			fail := failSyncOnce(&opt)
			q := mustOpen(t, opt)
			r, _ := q.Reader("s")
			u, _ := q.Reader("u") // drained now; r after a restart
			appendSync(t, q, readings(0, 5))
			var err error
			if redeliver {
				err = q.AppendRedeliverable(readings(5, 5)...)
			} else {
				err = q.Append(readings(5, 5)...)
			}
			if err != nil {
				t.Fatal(err)
			}
			*fail = true
			if err := q.Sync(); !errors.Is(err, ErrDegraded) {
				t.Fatalf("Sync with EIO = %v, want ErrDegraded", err)
			}
			q.Sync()
			wantDropped := uint64(5)
			if redeliver {
				wantDropped = 0
			}
			if s := q.Stats(); s.Dropped != wantDropped || s.Degraded {
				t.Errorf("Stats() = %+v, want %d dropped, not degraded", s, wantDropped)
			}
			if n := r.Unsent(); n != 5 {
				t.Errorf("Unsent() = %d, want 5", n)
			}
			if got := drain(t, u, 100); !slices.Equal(got, seqValues(0, 5)) {
				t.Errorf("drained %v, want 0..4: the others were %s", got, map[bool]string{false: "counted dropped", true: "refused"}[redeliver])
			}
			appendSync(t, q, readings(10, 2))
			q.Close()
			q = mustOpen(t, opt)
			r, _ = q.Reader("s")
			if got := drain(t, r, 100); !slices.Equal(got, append(seqValues(0, 5), 10, 11)) {
				t.Errorf("after restart drained %v, want 0..4 10 11", got)
			}
		})
	}
}

// Review of issue 10: one sealed segment that cannot be read (EIO) stopped Open, so the
// gateway did not start. Now it is kept, and readers skip it and count its readings.
func TestUnreadableSealedSegmentDoesNotStopOpen(t *testing.T) {
	for _, how := range []string{"open", "read"} {
		t.Run(how, func(t *testing.T) {
			opt := testOptions(t)
			opt.SegmentBytes = 512
			q := mustOpen(t, opt)
			for i := 0; i < 60; i += 10 {
				appendSync(t, q, readings(i, 10))
			}
			q.Close()
			segs, _ := filepath.Glob(filepath.Join(opt.Dir, "segments", "*.seg"))
			if len(segs) < 3 {
				t.Fatalf("%d segments, want at least 3", len(segs))
			}
			bad := segs[0]
			hfs := newHookFS()
			if how == "open" {
				hfs.badOpen.Store(&bad)
			} else {
				hfs.badRead.Store(&bad)
			}
			opt.fs = hfs
			q, err := Open(opt)
			if err != nil {
				t.Fatalf("Open with an unreadable sealed segment = %v, want it to open", err)
			}
			defer q.Close()
			r, _ := q.Reader("s")
			got := drain(t, r, 100)
			s := q.Stats()
			if len(got) == 0 || got[len(got)-1] != 59 || uint64(len(got))+s.Dropped+s.QuarantinedRecords != 60 {
				t.Errorf("delivered %v, stats %+v: want the readable readings and the rest counted", got, s)
			}
		})
	}
}

// Review of issue 10: a group commit inside AppendRedeliverable failed and discarded
// readings; a later batch was written and synced, but that Sync reported ErrRefused
// for the earlier discard, so its source did not acknowledge it and sent it again. The
// discard is reported by the call whose group commit failed, and only by it.
func TestDiscardIsReportedOnlyByTheFailingCall(t *testing.T) {
	for _, redeliverFirst := range []bool{true, false} {
		t.Run(map[bool]string{true: "AppendRedeliverable", false: "Append"}[redeliverFirst], func(t *testing.T) {
			opt := testOptions(t)
			opt.SegmentBytes = 64 << 20
			opt.MemoryReadings = 2 * syncEvery
			fail := failSyncOnce(&opt)
			q := mustOpen(t, opt)
			r, _ := q.Reader("s")
			if err := q.AppendRedeliverable(redeliverable(0, 10)...); err != nil {
				t.Fatal(err)
			}
			*fail = true
			var err error
			if redeliverFirst {
				err = q.AppendRedeliverable(redeliverable(10, syncEvery)...)
				if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrUnsynced) {
					t.Fatalf("AppendRedeliverable whose group commit fails = %v, want ErrRefused and ErrUnsynced", err)
				}
			} else {
				err = q.Append(readings(30000, syncEvery)...)
				if !errors.Is(err, ErrDegraded) || !errors.Is(err, ErrUnsynced) {
					t.Fatalf("Append whose group commit fails = %v, want ErrDegraded and ErrUnsynced", err)
				}
			}
			if err := q.AppendRedeliverable(redeliverable(20000, 3)...); err != nil && redeliverFirst {
				t.Fatalf("AppendRedeliverable once the disk works = %v", err)
			} else if err != nil {
				// Readings wait in memory: refused at once until a Sync writes them.
				if err := q.Sync(); err != nil {
					t.Fatalf("Sync = %v", err)
				}
				if err := q.AppendRedeliverable(redeliverable(20000, 3)...); err != nil {
					t.Fatalf("AppendRedeliverable once the disk works = %v", err)
				}
			}
			if err := q.Sync(); err != nil {
				t.Fatalf("Sync covering only a batch stored safely = %v, want nil", err)
			}
			got := drain(t, r, 3*syncEvery)
			if n := len(pick(got, 21000)); n != 1 {
				t.Errorf("the later batch delivered %d times, want once", n)
			}
			if n := len(pick(got, 1000)); n != 0 {
				t.Errorf("a discarded reading was delivered %d times, want 0 (its source sends it again)", n)
			}
		})
	}
}

// Review of issue 10: Close dropped the readings of its failed final fsync without
// counting them.
func TestCloseCountsReadingsOfFailedFinalSync(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	fail := failSyncOnce(&opt)
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 5))
	if err := q.Append(readings(5, 10)...); err != nil {
		t.Fatal(err)
	}
	*fail = true
	err := q.Close()
	if err == nil || !strings.Contains(err.Error(), "10 readings") {
		t.Errorf("Close with a failing fsync = %v, want an error naming the 10 lost readings", err)
	}
	if s := q.Stats(); s.Dropped != 10 {
		t.Errorf("Stats() after Close = %+v, want 10 dropped", s)
	}
	q = mustOpen(t, opt)
	r, _ := q.Reader("s")
	if got := drain(t, r, 100); !slices.Equal(got, seqValues(0, 5)) {
		t.Errorf("after reopen drained %v, want 0..4 (the rest was counted dropped)", got)
	}
}

// Review of issue 10: a failed AppendRedeliverable write set Degraded with nothing held
// in memory; once the disk worked, Sync returned early and never cleared it, so
// envgate_buffer_degraded stayed 1 while /healthz said ok.
func TestDegradedClearsAfterRefusedWriteOnceDiskWorks(t *testing.T) {
	opt := testOptions(t)
	var failing atomic.Bool
	opt.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
		if failing.Load() {
			return nil, syscall.EIO
		}
		return os.OpenFile(name, flag, perm)
	}
	q := mustOpen(t, opt)
	failing.Store(true)
	if err := q.AppendRedeliverable(redeliverable(0, 3)...); !errors.Is(err, ErrRefused) {
		t.Fatalf("AppendRedeliverable on a failing disk = %v, want ErrRefused", err)
	}
	if !q.Stats().Degraded {
		t.Fatal("not degraded after a failed write")
	}
	failing.Store(false)
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync once the disk works = %v", err)
	}
	if s := q.Stats(); s.Degraded {
		t.Errorf("Stats() = %+v after a good Sync with the disk working, want not degraded", s)
	}
}
