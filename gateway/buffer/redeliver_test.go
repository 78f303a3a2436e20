package buffer

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/envgate/envgate/gateway/reading"
)

// redeliverable returns n readings of another device whose values start at 1000+from, so
// that they are told apart from readings().
func redeliverable(from, n int) []reading.Reading {
	rs := readings(1000+from, n)
	for i := range rs {
		rs[i].Device = "mqtt-1"
	}
	return rs
}

// Issue 10: while the disk fails, readings with another copy are refused at once and
// never take a place in memory, so the readings that exist nowhere else are all kept
// up to the MemoryReadings bound, and none is dropped for them.
func TestRedeliverableReadingsAreRefusedNotHeld(t *testing.T) {
	opt := testOptions(t)
	opt.MemoryReadings = 20
	ffs := failOpens(&opt)
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	ffs.set(syscall.EROFS, 0)
	if err := q.Append(readings(0, 10)...); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Append on a failing disk = %v, want ErrDegraded", err)
	}
	for i := range 10 {
		err := q.AppendRedeliverable(redeliverable(10*i, 10)...)
		if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrDegraded) {
			t.Fatalf("AppendRedeliverable while degraded = %v, want ErrRefused and ErrDegraded", err)
		}
	}
	if err := q.Append(readings(10, 10)...); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Append on a failing disk = %v, want ErrDegraded", err)
	}
	if s := q.Stats(); s.MemoryReadings != 20 || s.Dropped != 0 || s.Appended != 20 {
		t.Fatalf("Stats() = %+v, want the 20 readings without another copy in memory, none dropped, 20 appended", s)
	}
	ffs.set(nil, 0)
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync once the disk works = %v", err)
	}
	if err := q.AppendRedeliverable(redeliverable(0, 5)...); err != nil {
		t.Fatalf("AppendRedeliverable once the disk works = %v", err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	got := drain(t, r, 100)
	want := append(seqValues(0, 20), 1000, 1001, 1002, 1003, 1004)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

// A write that fails keeps nothing of a redeliverable append, and the next one tries
// the disk again: a box whose only source is MQTT finds out that the disk works again.
func TestRedeliverableWriteFailureKeepsNothing(t *testing.T) {
	opt := testOptions(t)
	ffs := failOpens(&opt)
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	ffs.set(syscall.EIO, 0)
	if err := q.AppendRedeliverable(redeliverable(0, 3)...); !errors.Is(err, ErrRefused) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("AppendRedeliverable with a failing write = %v, want ErrRefused wrapping EIO", err)
	}
	if s := q.Stats(); !s.Degraded || s.MemoryReadings != 0 {
		t.Fatalf("Stats() = %+v, want degraded with nothing in memory", s)
	}
	ffs.set(nil, 0)
	if err := q.AppendRedeliverable(redeliverable(3, 3)...); err != nil {
		t.Fatalf("AppendRedeliverable once the disk works = %v", err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Degraded {
		t.Errorf("Stats() = %+v, want not degraded after a good sync", s)
	}
	if got, want := drain(t, r, 100), []float64{1003, 1004, 1005}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

// A failed fsync moves the unsynced readings without another copy to memory and
// discards those with one; the failed Sync reports it (its caller fails every reading
// it waited for), and a later Sync does not report it again.
func TestFailedSyncDiscardsRedeliverableReadings(t *testing.T) {
	opt := testOptions(t)
	opt.SegmentBytes = 1 << 20
	fail := failSyncOnce(&opt)
	q := mustOpen(t, opt)
	r, _ := q.Reader("s")
	for _, err := range []error{
		q.Append(readings(0, 3)...),
		q.AppendRedeliverable(redeliverable(0, 4)...),
		q.Append(readings(3, 3)...),
		q.AppendRedeliverable(redeliverable(4, 4)...),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	*fail = true
	if err := q.Sync(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Sync with EIO = %v, want ErrDegraded", err)
	}
	if s := q.Stats(); s.MemoryReadings != 6 {
		t.Fatalf("Stats() = %+v, want only the 6 readings without another copy in memory", s)
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("Sync once the disk works = %v", err)
	}
	if err := q.AppendRedeliverable(redeliverable(8, 2)...); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatalf("next Sync = %v, want nil", err)
	}
	// The first copies of 0..5 and 1000..1007 are superseded, never delivered.
	if got, want := drain(t, r, 100), append(seqValues(0, 6), 1008, 1009); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

// failOpens makes opening a file fail with the returned faultyFS's error while one is
// set; files already open are not touched.
func failOpens(opt *Options) *faultyFS {
	ffs := &faultyFS{}
	opt.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
		if ffs.err != nil {
			return nil, ffs.err
		}
		return os.OpenFile(name, flag, perm)
	}
	return ffs
}
