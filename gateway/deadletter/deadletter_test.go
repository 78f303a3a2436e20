package deadletter

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// entry is one dead-letter entry as the InfluxDB sink writes it: a comment, then a line.
func entry(i int) string {
	return fmt.Sprintf("# 2026-12-06T08:00:00Z sink=cloud status=400 bad\nair,device=d%03d pm25=1 1\n", i)
}

func newFile(t *testing.T, opt Options) *File {
	t.Helper()
	d, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// TestRotationBoundsDiskAndCountsDrops: a dead-letter file fed without end keeps at
// most Keep rotated files of at most MaxBytes each, and counts every entry it deleted
// (issue 10: the InfluxDB sink's file grew without bound).
func TestRotationBoundsDiskAndCountsDrops(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dead", "letters", "cloud.lp")
	const maxBytes, keep, entries = 1000, 2, 200
	d := newFile(t, Options{Path: path, MaxBytes: maxBytes, Keep: keep, Sync: true})
	size := len(entry(0))
	for i := range entries {
		if err := d.Append([]byte(entry(i))); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	files, _ := filepath.Glob(path + "*")
	slices.Sort(files)
	if want := []string{path, path + ".1", path + ".2"}; !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	kept := 0
	var last string
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxBytes {
			t.Errorf("%s is %d bytes, want at most %d", f, fi.Size(), maxBytes)
		}
		if fi.Mode().Perm() != 0o640 {
			t.Errorf("%s has mode %v, want 0640", f, fi.Mode().Perm())
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		kept += strings.Count(string(b), "\nair,")
		if f == path {
			last = string(b)
		}
	}
	for _, dd := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		if fi, err := os.Stat(dd); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o750 {
			t.Errorf("directory %s: %v, want mode 0750", dd, fi.Mode().Perm())
		}
	}
	if got := d.Dropped(); got+uint64(kept) != entries {
		t.Errorf("Dropped() = %d and %d entries kept; want them to add up to the %d appended", got, kept, entries)
	}
	if perFile := maxBytes / size; d.Dropped() == 0 || kept < keep*perFile {
		t.Errorf("Dropped() = %d, kept %d; want drops and at least %d kept", d.Dropped(), kept, keep*perFile)
	}
	if !strings.HasSuffix(last, entry(entries-1)) {
		t.Errorf("the current file does not end with the last entry")
	}
}

// TestRotationCountsFilesOfEarlierRuns: the files a previous run left are counted
// when rotation deletes them, and appending continues the current file.
func TestRotationCountsFilesOfEarlierRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	old := "# comment\na 1\n\nb 2\n# c\nc 3" // three entries, the last without a newline
	if err := os.WriteFile(path+".1", []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("d 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newFile(t, Options{Path: path, MaxBytes: 10, Keep: 1})
	if err := d.Append([]byte("e 5\n")); err != nil { // 4+4 bytes: fits
		t.Fatal(err)
	}
	if d.Dropped() != 0 {
		t.Fatalf("Dropped() = %d before any rotation", d.Dropped())
	}
	if err := d.Append([]byte("f 6\n")); err != nil { // 12 > 10: rotates, deletes .1
		t.Fatal(err)
	}
	if d.Dropped() != 3 || d.Rotations() != 1 {
		t.Errorf("Dropped() = %d, Rotations() = %d; want 3, 1", d.Dropped(), d.Rotations())
	}
	check := func(p, want string) {
		t.Helper()
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	check(path+".1", "d 4\ne 5\n")
	check(path, "f 6\n")
}

// TestKeepZeroAndHugeEntries: with Keep 0 a full file is deleted (and counted) when
// it rotates; an entry larger than MaxBytes gets a file of its own.
func TestKeepZeroAndHugeEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	d := newFile(t, Options{Path: path, MaxBytes: 8, Keep: 0})
	for _, e := range []string{"a 1\n", "this entry is longer than 8\n", "b 2\n"} {
		if err := d.Append([]byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	if d.Dropped() != 2 {
		t.Errorf("Dropped() = %d, want 2", d.Dropped())
	}
	if files, _ := filepath.Glob(path + "*"); len(files) != 1 {
		t.Errorf("files %v, want only %s", files, path)
	}
}

func TestNewChecksOptions(t *testing.T) {
	for _, opt := range []Options{{}, {Path: "x", MaxBytes: -1}, {Path: "x", Keep: -1}} {
		if _, err := New(opt); err == nil {
			t.Errorf("New(%+v) = nil error", opt)
		}
	}
	d := newFile(t, Options{Path: filepath.Join(t.TempDir(), "x")})
	if d.opt.MaxBytes != DefaultMaxBytes {
		t.Errorf("MaxBytes defaults to %d, want %d", d.opt.MaxBytes, DefaultMaxBytes)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Append([]byte("a\n")); err != ErrClosed {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

// FuzzCountEntries: the streaming count agrees with counting the lines in memory.
func FuzzCountEntries(f *testing.F) {
	for _, s := range []string{"", "\n", "a", "#a\nb\n", "# c\na 1\n\nb 2\n# c\nc 3", "\n\n#\n#\nx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := countEntries(path)
		if err != nil {
			t.Fatal(err)
		}
		var want uint64
		for l := range strings.SplitSeq(s, "\n") {
			if l != "" && l[0] != '#' {
				want++
			}
		}
		if got != want {
			t.Errorf("countEntries(%q) = %d, want %d", s, got, want)
		}
	})
}

// Release gives the descriptor back; the next Append reopens the same file and goes on
// counting its size, so rotation still happens at MaxBytes.
func TestReleaseReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lp")
	size := len(entry(0))
	d := newFile(t, Options{Path: path, MaxBytes: int64(3 * size), Keep: 1})
	for i := range 3 {
		if err := d.Append([]byte(entry(i))); err != nil {
			t.Fatal(err)
		}
		if err := d.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Append([]byte(entry(3))); err != nil {
		t.Fatal(err)
	}
	old, err1 := os.ReadFile(path + ".1")
	cur, err2 := os.ReadFile(path)
	if err1 != nil || err2 != nil || len(old) != 3*size || string(cur) != entry(3) {
		t.Errorf("after release and rotation: .1 %d bytes (%v), current %q (%v)", len(old), err1, cur, err2)
	}
}

// appendWithin calls d.Append(data) and fails the test if it has not returned within a
// generous liveness bound (it must never wait for a pipe's other end).
func appendWithin(t *testing.T, d *File, data []byte) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- d.Append(data) }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Append blocked for 10s")
		return nil
	}
}

// Issue 10 review: a named pipe as the dead-letter path, or as the oldest rotated file,
// made Append block for good (open waited for a reader, countEntries for a writer),
// and with it the MQTT source or the sink's forwarder. Append refuses a file that is
// not regular at once, with an error saying so; a regular file works again after.
func TestAppendRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cloud.lp")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Path: path}) // no Close in Cleanup: it would wait behind a blocked Append
	if err != nil {
		t.Fatal(err)
	}
	if err := appendWithin(t, d, []byte(entry(0))); err == nil {
		t.Fatal("Append to a FIFO succeeded")
	} else {
		t.Logf("FIFO as the file: %v", err)
	}

	// A FIFO with a reader opens, and is refused by fstat.
	r, rerr := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if rerr != nil {
		t.Fatal(rerr)
	}
	defer r.Close()
	if err := appendWithin(t, d, []byte(entry(1))); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Append to a FIFO with a reader: %v, want an error saying it is not a regular file", err)
	}

	// A FIFO as the oldest rotated file.
	path2 := filepath.Join(dir, "mqtt.log")
	if err := syscall.Mkfifo(path2+".1", 0o600); err != nil {
		t.Fatal(err)
	}
	d2, err := New(Options{Path: path2, MaxBytes: 100, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := appendWithin(t, d2, []byte(entry(0))); err != nil {
		t.Fatal(err)
	}
	if err := appendWithin(t, d2, []byte(entry(1))); err == nil {
		t.Error("rotation onto a FIFO succeeded")
	} else {
		t.Logf("FIFO as the rotated file: %v", err)
	}
	d.Close()
	d2.Close()
}
