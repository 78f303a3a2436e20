package buffer

import (
	"errors"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The marks of the readings with another copy follow unsynced when a sync makes only
// its first part durable: readings appended while an fsync runs keep their marks,
// shifted, so that a later failed fsync discards exactly them and holds exactly the
// readings without another copy.
func TestRedeliverMarksFollowPartialSync(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	hang, release := make(chan struct{}), make(chan struct{})
	var hanging, failing atomic.Bool
	opt.syncFile = func(f file) error {
		if hanging.CompareAndSwap(true, false) {
			close(hang)
			<-release
		}
		if failing.CompareAndSwap(true, false) {
			return syscall.EIO
		}
		return syncData(f)
	}
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	if err := q.AppendRedeliverable(redeliverable(0, 4)...); err != nil {
		t.Fatal(err)
	}
	if err := q.Append(readings(0, 3)...); err != nil {
		t.Fatal(err)
	}
	hanging.Store(true)
	synced := make(chan error, 1)
	go func() { synced <- q.Sync() }()
	select {
	case <-hang:
	case <-time.After(10 * time.Second):
		t.Fatal("the sync never reached its fsync")
	}
	// While the fsync runs: these stay unsynced after it.
	if err := q.Append(readings(3, 3)...); err != nil {
		t.Fatal(err)
	}
	if err := q.AppendRedeliverable(redeliverable(4, 2)...); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-synced; err != nil {
		t.Fatalf("Sync = %v", err)
	}
	failing.Store(true)
	if err := q.Sync(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Sync with EIO = %v, want ErrDegraded", err)
	}
	if s := q.Stats(); s.MemoryReadings != 3 {
		t.Fatalf("after the failed sync Stats() = %+v, want the 3 readings 3..5 in memory, not those with another copy", s)
	}
	// The failed Sync covered the discarded readings; the next one is clean.
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync once the disk works = %v", err)
	}
	got := drain(t, r, 100)
	if i := missing(got, 6); i >= 0 {
		t.Errorf("reading %d lost; got %v", i, got)
	}
	for _, v := range []float64{1000, 1001, 1002, 1003} {
		if !slices.Equal([]float64{v}, pick(got, v)) {
			t.Errorf("durable reading %v with another copy missing or duplicated; got %v", v, got)
		}
	}
}

// pick returns the values of got equal to v.
func pick(got []float64, v float64) []float64 {
	var out []float64
	for _, x := range got {
		if x == v {
			out = append(out, x)
		}
	}
	return out
}

// AppendRedeliverable group-commits by count like Append: syncEvery readings with
// another copy are durable without a Sync. If that fsync fails they are refused, not
// held in memory.
func TestAppendRedeliverableGroupCommits(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 64 << 20
	fail := failSyncOnce(&opt)
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	if err := q.AppendRedeliverable(redeliverable(0, syncEvery)...); err != nil {
		t.Fatal(err)
	}
	if rs, _, _ := r.Peek(syncEvery); len(rs) != syncEvery {
		t.Fatalf("Peek after %d redeliverable readings = %d readings, want all of them durable", syncEvery, len(rs))
	}
	*fail = true
	err := q.AppendRedeliverable(redeliverable(syncEvery, syncEvery)...)
	if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrDegraded) {
		t.Fatalf("AppendRedeliverable whose group commit fails = %v, want ErrRefused and ErrDegraded", err)
	}
	if s := q.Stats(); s.MemoryReadings != 0 {
		t.Errorf("Stats() = %+v, want nothing held in memory", s)
	}
}

// hangingWriteFile is a segment file whose Write blocks while hang is set, as a write
// does once the kernel throttles dirty pages of a hung disk.
type hangingWriteFile struct {
	*os.File
	hang    *atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (f hangingWriteFile) Write(b []byte) (int, error) {
	if f.hang.CompareAndSwap(true, false) {
		close(f.entered)
		<-f.release
	}
	return f.File.Write(b)
}

// SyncInProgressSince takes no lock: /healthz asks it while an append holds the queue's
// lock in a write that hangs, during an fsync that hangs too.
func TestSyncInProgressSinceAnswersWhileWriteHangs(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	var hangWrite, hangSync atomic.Bool
	writing, syncing := make(chan struct{}), make(chan struct{})
	release := make(chan struct{})
	wrapFiles(&opt, func(f *os.File) file {
		return hangingWriteFile{File: f, hang: &hangWrite, entered: writing, release: release}
	})
	opt.syncFile = func(f file) error {
		if hangSync.CompareAndSwap(true, false) {
			close(syncing)
			<-release
		}
		return f.Sync()
	}
	q := mustOpen(t, opt)
	if err := q.Append(readings(0, 3)...); err != nil {
		t.Fatal(err)
	}
	hangSync.Store(true)
	done := make(chan error, 2)
	go func() { done <- q.Sync() }()
	<-syncing
	hangWrite.Store(true)
	go func() { done <- q.Append(readings(3, 3)...) }()
	<-writing
	answered := make(chan time.Time, 1)
	go func() { answered <- q.SyncInProgressSince() }()
	select {
	case since := <-answered:
		if since.IsZero() || time.Since(since) > time.Minute {
			t.Errorf("SyncInProgressSince() = %v during a hung fsync, want when it started", since)
		}
	case <-time.After(10 * time.Second):
		t.Error("SyncInProgressSince waited for the queue's lock")
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if !q.SyncInProgressSince().IsZero() {
		t.Error("SyncInProgressSince() is set after the fsync returned")
	}
}
