package buffer

import (
	"errors"
	"io"
	"os"
	"time"
)

// fileSystem is everything the queue asks of the operating system. The queue uses osFS;
// the crash tests substitute a model in which whatever was not fsynced is lost.
type fileSystem interface {
	OpenFile(name string, flag int, perm os.FileMode) (file, error)
	ReadDir(dir string) ([]dirEntry, error)
	Remove(name string) error
	Rename(from, to string) error
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes the creations, removals and renames in dir durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name, held until release is called (or
	// the process ends), and records holder in it. If another process holds it, the
	// error wraps ErrLocked and quotes what that process recorded.
	Lock(name string, holder []byte) (release func() error, err error)
}

// file is the part of *os.File the queue reads and writes through.
type file interface {
	io.Writer
	io.WriterAt // cursor saves in place (cursor.go)
	io.ReaderAt
	Truncate(size int64) error
	Close() error
	Name() string
	Sync() error
}

// dirEntry is one name in a directory listing.
type dirEntry struct {
	name  string
	dir   bool
	size  int64
	mtime time.Time
}

// osFS is the real file system.
type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return f, nil
}

func (osFS) ReadDir(dir string) ([]dirEntry, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]dirEntry, 0, len(es))
	for _, e := range es {
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dirEntry{name: e.Name(), dir: e.IsDir(), size: info.Size(), mtime: info.ModTime()})
	}
	return out, nil
}

func (osFS) Remove(name string) error                              { return os.Remove(name) }
func (osFS) Rename(from, to string) error                          { return os.Rename(from, to) }
func (osFS) Lock(name string, holder []byte) (func() error, error) { return lockFile(name, holder) }

// MkdirAll creates dir and its parents, and makes dir itself 0750 even if it existed
// with wider permissions: the buffer holds every reading of the site.
func (osFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	return os.Chmod(dir, perm)
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readFile reads a whole small file through fsys.
func readFile(fsys fileSystem, name string, limit int) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, limit+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}
