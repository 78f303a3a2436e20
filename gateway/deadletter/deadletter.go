// Package deadletter keeps a bounded, rotated file of entries set aside for a person to
// look at: points a server rejected, messages that could not be decoded. It uses the
// standard library only.
//
// A File appends to <path>; when an append would make it larger than MaxBytes, <path>
// becomes <path>.1, <path>.1 becomes <path>.2 and so on, and <path>.<Keep> is deleted.
// So the files never take more than (Keep+1) × MaxBytes (plus one entry) of disk. The
// entries in a deleted file are counted (Dropped), so that what rotation threw away is
// visible on /metrics. Files are created 0640 and directories 0750: entries hold
// measurements and server messages, not for every local user.
package deadletter

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/envgate/envgate/internal/regular"
)

// Defaults for Options, documented in docs/config.md.
const (
	DefaultMaxBytes = 16 << 20 // a sensor sending one bad point a second fills this in about a day
	DefaultKeep     = 3
)

// Options configures a File.
type Options struct {
	Path     string // the file; its directory is created on first write
	MaxBytes int64  // rotate before an append would exceed this; 0: DefaultMaxBytes
	Keep     int    // rotated files kept (<path>.1 ... <path>.Keep); 0 keeps none
	Sync     bool   // fsync after each append (and the directory after creating the file)
}

// A File is a dead-letter file. Its methods may be called from any goroutine.
type File struct {
	opt Options

	mu      sync.Mutex
	f       *os.File // nil until the first append, and after an error or Close
	size    int64
	closed  bool
	dropped atomic.Uint64
	rotated atomic.Uint64
}

// New returns a File for opt. It touches no file until the first Append.
func New(opt Options) (*File, error) {
	if opt.Path == "" {
		return nil, errors.New("dead-letter file: no path")
	}
	if opt.MaxBytes == 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxBytes < 0 || opt.Keep < 0 {
		return nil, fmt.Errorf("dead-letter file %s: max bytes %d and keep %d must not be negative", opt.Path, opt.MaxBytes, opt.Keep)
	}
	return &File{opt: opt}, nil
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("dead-letter file closed")

// Append writes data, one or more whole entries ending in a newline, at the end of the
// file, rotating first if the file would grow beyond MaxBytes (an entry larger than
// MaxBytes gets a file of its own). A failed write is cut back, so that a retry does not
// leave a torn entry behind; the file is opened afresh on the next call.
func (d *File) Append(data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if d.f == nil {
		if err := d.open(); err != nil {
			return err
		}
	}
	if d.size > 0 && d.size+int64(len(data)) > d.opt.MaxBytes {
		if err := d.rotate(); err != nil {
			return err
		}
	}
	n, err := d.f.Write(data)
	if err == nil && d.opt.Sync {
		err = d.f.Sync()
	}
	if err != nil {
		if n > 0 {
			_ = d.f.Truncate(d.size) // best effort; the write error is what matters
		}
		_ = d.f.Close()
		d.f = nil
		return fmt.Errorf("dead-letter file %s: %w", d.opt.Path, err)
	}
	d.size += int64(n)
	return nil
}

// open opens (creating) the file for appending.
func (d *File) open() error {
	dir := filepath.Dir(d.opt.Path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	f, fi, created, err := openRegular(d.opt.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	if d.opt.Sync && created {
		if err := syncDir(dir); err != nil {
			f.Close()
			return fmt.Errorf("dead-letter file: %w", err)
		}
	}
	d.f, d.size = f, fi.Size()
	return nil
}

// rotate shifts the files by one, deleting (and counting) the oldest, and opens a new
// empty file.
func (d *File) rotate() error {
	if err := d.closeFile(); err != nil {
		return err
	}
	oldest := d.name(d.opt.Keep)
	if n, err := countEntries(oldest); err == nil {
		if err := os.Remove(oldest); err != nil {
			return fmt.Errorf("dead-letter file: rotate: %w", err)
		}
		d.dropped.Add(n)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dead-letter file: rotate: %w", err)
	}
	for i := d.opt.Keep - 1; i >= 0; i-- {
		if err := os.Rename(d.name(i), d.name(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("dead-letter file: rotate: %w", err)
		}
	}
	d.rotated.Add(1)
	return d.open()
}

// name returns the path of the i-th rotated file; 0 is the current one.
func (d *File) name(i int) string {
	if i == 0 {
		return d.opt.Path
	}
	return d.opt.Path + "." + strconv.Itoa(i)
}

// countEntries returns the number of entries in the file at path: its lines that do not
// start with '#' (comments explain the entry after them).
func countEntries(path string) (uint64, error) {
	f, _, _, err := openRegular(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n uint64
	lineStart, skip := true, false // skip: the current line is a comment or empty
	for {
		k, err := f.Read(buf)
		for _, b := range buf[:k] {
			if lineStart {
				skip, lineStart = b == '#' || b == '\n', false
			}
			if b == '\n' {
				if !skip {
					n++
				}
				lineStart = true
			}
		}
		if err == io.EOF {
			if !lineStart && !skip {
				n++ // a last line without its newline
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Dropped returns the number of entries deleted by rotation since New.
func (d *File) Dropped() uint64 { return d.dropped.Load() }

// Rotations returns the number of times the file was rotated since New.
func (d *File) Rotations() uint64 { return d.rotated.Load() }

// Release closes the open file, if any, without ending the File: the next Append opens
// it again. A writer that pauses (an MQTT source between two Runs) holds no descriptor.
func (d *File) Release() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closeFile()
}

// Close closes the file. It is safe to call more than once; later calls return nil.
// Append fails with ErrClosed afterwards.
func (d *File) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.closeFile()
}

// closeFile closes the open file, if any, and forgets it even when Close fails. The
// caller holds d.mu.
func (d *File) closeFile() error {
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	if err != nil {
		return fmt.Errorf("dead-letter file %s: %w", d.opt.Path, err)
	}
	return nil
}

// openRegular opens path with flag and perm, and returns it only if it is a regular
// file (internal/regular): a named pipe without a reader would otherwise hold the
// caller (an MQTT source, a sink's forwarder) for good (issue 10). An existing path is
// checked before the open, so that the error says what it is rather than ENXIO; created
// reports that the path did not exist before (the open created it, with O_CREATE).
func openRegular(path string, flag int, perm os.FileMode) (f *os.File, fi os.FileInfo, created bool, err error) {
	fi, err = os.Stat(path)
	switch {
	case err == nil:
		if err := regular.Check(path, fi.Mode()); err != nil {
			return nil, nil, false, err
		}
	case errors.Is(err, os.ErrNotExist):
		created = true
	}
	f, err = regular.Open(path, flag, perm)
	if err != nil {
		return nil, nil, false, err
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, false, err
	}
	return f, fi, created, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
