package buffer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/testsvc"
)

// Issue 10: two processes on one buffer lost readings silently. A second Open fails and
// names the holder, in the same process (flock locks belong to the open file).
func TestSecondOpenFailsNamingHolder(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	_, err := Open(opt)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second Open = %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	q.Close()
	q2, err := Open(opt)
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	q2.Close()
}

// TestLockHolderProcess is the second process of TestSecondProcessCannotOpen: it opens
// the buffer, says so, and holds it until killed.
func TestLockHolderProcess(t *testing.T) {
	dir := os.Getenv("ENVGATE_TEST_LOCK_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	if _, err := Open(Options{Dir: dir}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {} // until killed
}

// Issue 10: the second process says who holds the buffer; the kernel releases the lock
// of a killed holder, so a stale lock file never blocks a restart.
func TestSecondProcessCannotOpen(t *testing.T) {
	dir := t.TempDir()
	cmd := testsvc.SelfCommand(t, "-test.run=^TestLockHolderProcess$")
	cmd.Env = append(os.Environ(), "ENVGATE_TEST_LOCK_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v; want locked", line, err)
	}
	_, err = Open(Options{Dir: dir})
	if want := "pid " + strconv.Itoa(cmd.Process.Pid); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open while another process holds the buffer = %v, want ErrLocked naming %q", err, want)
	}
	cmd.Process.Kill()
	cmd.Wait()
	q, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after the holder was killed = %v", err)
	}
	q.Close()
}

// Issue 10: every fsync ran under the queue lock, so /metrics, /healthz and the
// forwarders waited behind a hung SD card. Now Stats, Peek, Unsent and Append answer
// while an fsync hangs, and Stats says since when it hangs.
func TestStatsAnswersWhileFsyncHangs(t *testing.T) {
	opt := testOptions(t)
	hang, release := make(chan struct{}), make(chan struct{})
	var hanging atomic.Bool
	opt.syncFile = func(f file) error {
		if hanging.CompareAndSwap(true, false) {
			close(hang)
			<-release
		}
		return syncData(f)
	}
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	appendSync(t, q, readings(0, 10))
	if err := q.Append(readings(10, 10)...); err != nil {
		t.Fatal(err)
	}
	hanging.Store(true)
	synced := make(chan error, 1)
	go func() { synced <- q.Sync() }()
	<-hang
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	done := make(chan Stats, 1)
	go func() {
		s := q.Stats()
		r.Peek(100)
		r.Unsent()
		q.Append(readings(20, 1)...)
		done <- s
	}()
	select {
	case s := <-done:
		if s.SyncInProgressSince.IsZero() || time.Since(s.SyncInProgressSince) > time.Minute {
			t.Errorf("Stats().SyncInProgressSince = %v during a hung fsync, want the time it started", s.SyncInProgressSince)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stats, Peek, Unsent or Append waited for a hung fsync")
	}
	if rs, _, _ := r.Peek(100); len(rs) != 10 {
		t.Errorf("Peek during the hung fsync = %d readings, want the 10 durable ones", len(rs))
	}
	close(release)
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); !s.SyncInProgressSince.IsZero() {
		t.Errorf("after the fsync returned SyncInProgressSince = %v, want zero", s.SyncInProgressSince)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, r, 100); !slices.Equal(got, seqValues(0, 21)) {
		t.Errorf("drained %v, want 0..20", got)
	}
}

func segPath(dir string, first uint64) string {
	return filepath.Join(dir, "segments", fmt.Sprintf("%020d.seg", first))
}

// Issue 10: a last segment cut mid-way after a clean shutdown lost 272 readings and
// counted 1. Close records the end of the log; Open counts what is missing below it.
func TestCutLastSegmentCountsEveryLostReading(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 400))
	q.Close()
	seg := lastSegment(t, opt.Dir)
	rec := int64(len(appendRecord(nil, 0, readings(0, 1)[0])))
	if err := os.Truncate(seg, 128*rec+rec/2); err != nil { // 128 whole records and half of one
		t.Fatal(err)
	}
	q2 := mustOpen(t, opt)
	if s := q2.Stats(); s.QuarantinedRecords != 400-128 {
		t.Errorf("QuarantinedRecords = %d, want %d", s.QuarantinedRecords, 400-128)
	}
	r, _ := q2.Reader("s")
	if u := r.Unsent(); u != 128 {
		t.Errorf("Unsent = %d, want the 128 readings still in the log", u)
	}
	appendSync(t, q2, readings(400, 5))
	got := drain(t, r, 100)
	if want := append(seqValues(0, 128), seqValues(400, 5)...); !slices.Equal(got, want) {
		t.Errorf("drained %v, want 0..127 and 400..404", got)
	}
}

// A sealed segment cut at a record boundary: the next segment's name tells how many
// readings are missing; the reader counts them.
func TestCutSealedSegmentIsCounted(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	for i := 0; i < 200; i += 20 {
		appendSync(t, q, readings(i, 20))
	}
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(opt.Dir, "segments", "*.seg"))
	slices.Sort(segs)
	rec := int64(len(appendRecord(nil, 0, readings(0, 1)[0])))
	first, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(segs[1]), ".seg"), 10, 64)
	next, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(segs[2]), ".seg"), 10, 64)
	os.Truncate(segs[1], 3*rec)
	q2 := mustOpen(t, opt)
	r, _ := q2.Reader("s")
	got := drain(t, r, 1000)
	lost := next - first - 3
	if s := q2.Stats(); s.QuarantinedRecords != lost || uint64(len(got)) != 200-lost {
		t.Errorf("delivered %d, QuarantinedRecords %d; want %d delivered and %d counted", len(got), s.QuarantinedRecords, 200-lost, lost)
	}
}

// Issue 10: an empty numerically named .seg inside a segment's range made readers skip
// 72 readings uncounted. Such a file is set aside and never used to skip readings.
func TestEmptySegmentInsideRangeIsSetAside(t *testing.T) {
	for _, last := range []bool{false, true} {
		t.Run(fmt.Sprintf("last=%v", last), func(t *testing.T) {
			opt := testOptions(t)
			opt.SegmentBytes = 1 << 20
			q := mustOpen(t, opt)
			r, _ := q.Reader("s")
			appendSync(t, q, readings(0, 200))
			rs, next, _ := r.Peek(100)
			r.Ack(next)
			if len(rs) != 100 {
				t.Fatal("setup")
			}
			if !last {
				q.Close()
			}
			os.WriteFile(segPath(opt.Dir, 128), nil, 0o640)
			if !last {
				q = mustOpen(t, opt)
				r, _ = q.Reader("s")
				appendSync(t, q, readings(200, 5)) // a new segment after the intruder
			} else {
				q.Close()
				q = mustOpen(t, opt)
				r, _ = q.Reader("s")
				appendSync(t, q, readings(200, 5))
			}
			if u := r.Unsent(); u != 105 {
				t.Errorf("Unsent = %d, want 105", u)
			}
			if got := drain(t, r, 7); !slices.Equal(got, seqValues(100, 105)) {
				t.Errorf("drained %v, want 100..204", got)
			}
			if s := q.Stats(); s.QuarantinedRecords != 0 {
				t.Errorf("QuarantinedRecords = %d, want 0: nothing was lost", s.QuarantinedRecords)
			}
		})
	}
}

func writeCursor(t *testing.T, dir, name string, seq uint64) {
	t.Helper()
	if err := storeCursor(osFS{}, filepath.Join(dir, "cursors", name), seq); err != nil {
		t.Fatal(err)
	}
}

// Issue 10: a cursor past the log hid readings and reported unsent 0. New appends are
// delivered, Unsent counts what is in the log, and what the lagging sink can no longer
// get is counted.
func TestCursorPastTheLog(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 100))
	q.kill()
	writeCursor(t, opt.Dir, "ahead", 10100) // a sink that had seen 10 000 more
	writeCursor(t, opt.Dir, "behind", 50)
	q2 := mustOpen(t, opt)
	ahead, _ := q2.Reader("ahead")
	behind, _ := q2.Reader("behind")
	if u := behind.Unsent(); u != 50 {
		t.Errorf("behind.Unsent() = %d, want the 50 readings in the log", u)
	}
	if s := q2.Stats(); s.QuarantinedRecords != 10000 {
		t.Errorf("QuarantinedRecords = %d, want the 10 000 readings behind never gets", s.QuarantinedRecords)
	}
	appendSync(t, q2, readings(200, 10))
	if u := ahead.Unsent(); u != 10 {
		t.Errorf("ahead.Unsent() = %d, want 10", u)
	}
	if got := drain(t, ahead, 100); !slices.Equal(got, seqValues(200, 10)) {
		t.Errorf("ahead drained %v, want 200..209", got)
	}
	if got := drain(t, behind, 100); !slices.Equal(got, append(seqValues(50, 50), seqValues(200, 10)...)) {
		t.Errorf("behind drained %v, want 50..99, 200..209", got)
	}
}

// Issue 10: a segment named 18446744073709551615.seg wrapped the sequence numbers and
// every later reading was acknowledged but never forwarded.
func TestAbsurdSegmentNameCannotWrapSequence(t *testing.T) {
	for _, content := range []string{"empty", "records"} {
		t.Run(content, func(t *testing.T) {
			opt := testOptions(t)
			q := mustOpen(t, opt)
			appendSync(t, q, readings(0, 10))
			q.Close()
			var b []byte
			if content == "records" {
				b = appendRecord(nil, 1<<64-1, readings(99, 1)[0])
			}
			os.WriteFile(filepath.Join(opt.Dir, "segments", "18446744073709551615.seg"), b, 0o640)
			q2 := mustOpen(t, opt)
			r, _ := q2.Reader("s")
			appendSync(t, q2, readings(10, 10))
			if got := drain(t, r, 100); !slices.Equal(got, seqValues(0, 20)) {
				t.Errorf("drained %v, want 0..19", got)
			}
			if bad, _ := filepath.Glob(filepath.Join(opt.Dir, "quarantine", "18446744073709551615.seg.bad")); len(bad) != 1 {
				t.Errorf("the absurd segment was not set aside")
			}
		})
	}
}

// An absurd seq in a cursor is damage: the reader starts at the oldest reading.
func TestAbsurdCursorIsIgnored(t *testing.T) {
	opt := testOptions(t)
	q := mustOpen(t, opt)
	appendSync(t, q, readings(0, 10))
	q.Close()
	writeCursor(t, opt.Dir, "s", 1<<64-2)
	q2 := mustOpen(t, opt)
	r, _ := q2.Reader("s")
	appendSync(t, q2, readings(10, 5))
	if got := drain(t, r, 100); !slices.Equal(got, seqValues(0, 15)) {
		t.Errorf("drained %v, want 0..14", got)
	}
}

// Issue 10: envgate_sink_unsent_readings counted readings the bounds had dropped
// (603 764 reported, ~270 000 on disk).
func TestUnsentCountsOnlyReadingsInTheLog(t *testing.T) {
	opt := testOptions(t)
	opt.MaxBytes = 16 << 10
	q := mustOpen(t, opt)
	r, _ := q.Reader("slow")
	for i := 0; i < 2000; i += 100 {
		appendSync(t, q, readings(i, 100))
	}
	s := q.Stats()
	if s.Dropped == 0 {
		t.Fatal("setup: nothing dropped")
	}
	if u := r.Unsent(); u != int64(2000-s.Dropped) {
		t.Errorf("Unsent = %d, want %d (2000 appended - %d dropped)", u, 2000-s.Dropped, s.Dropped)
	}
	if got := drain(t, r, 500); len(got) != int(2000-s.Dropped) {
		t.Errorf("delivered %d, want %d", len(got), 2000-s.Dropped)
	}
}

// Issue 10: quarantine/ had no bound. The oldest files are removed (and counted) to
// keep it within its bound; files are 0640 and the directories 0750.
func TestQuarantineIsBounded(t *testing.T) {
	opt := testOptions(t)
	opt.quarantineBytes = 4 << 10
	os.MkdirAll(filepath.Join(opt.Dir, "quarantine"), 0o755)
	for i := range 10 {
		name := filepath.Join(opt.Dir, "quarantine", fmt.Sprintf("old-%d.bad", i))
		os.WriteFile(name, make([]byte, 1<<10), 0o644)
		os.Chtimes(name, time.Now().Add(-time.Duration(10-i)*time.Hour), time.Now().Add(-time.Duration(10-i)*time.Hour))
	}
	os.MkdirAll(filepath.Join(opt.Dir, "segments"), 0o750)
	good := validSegment(20)
	junk := make([]byte, 2000)
	for i := range junk {
		junk[i] = 0xa5
	}
	os.WriteFile(segPath(opt.Dir, 0), append(good, junk...), 0o640) // a torn tail of 2000 bytes
	q := mustOpen(t, opt)
	var total int64
	es, _ := os.ReadDir(filepath.Join(opt.Dir, "quarantine"))
	for _, e := range es {
		info, _ := e.Info()
		total += info.Size()
		if strings.HasPrefix(e.Name(), "old-") {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(e.Name(), "old-"), ".bad"))
			if n < 8 {
				t.Errorf("kept %s, an older file than some removed", e.Name())
			}
		} else if info.Mode().Perm() != 0o640 {
			t.Errorf("%s has mode %v, want 0640", e.Name(), info.Mode().Perm())
		}
	}
	if total > opt.quarantineBytes {
		t.Errorf("quarantine holds %d bytes, want at most %d", total, opt.quarantineBytes)
	}
	if s := q.Stats(); s.QuarantineRemoved == 0 {
		t.Errorf("Stats().QuarantineRemoved = 0, want the removed files counted")
	}
	for _, d := range []string{"", "segments", "cursors", "quarantine"} {
		if info, _ := os.Stat(filepath.Join(opt.Dir, d)); info.Mode().Perm() != 0o750 {
			t.Errorf("%s/ has mode %v, want 0750", d, info.Mode().Perm())
		}
	}
}

// Issue 10: timestamps after 2262 overflowed the record encoder (UnixNano wraps).
func TestRecordTimesOutsideNanosecondRange(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2263, 1, 1, 0, 0, 0, 5, time.UTC),
		time.Date(1600, 6, 1, 12, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		maxNanoTime.UTC(),
	} {
		r := readings(0, 1)[0]
		r.Time = tm
		rec := appendRecord(nil, 3, r)
		got, err := decodePayload(rec[headerSize:])
		if err != nil || !got.Time.Equal(tm) {
			t.Errorf("round trip of time %v = %v, %v", tm, got.Time, err)
		}
	}
}
