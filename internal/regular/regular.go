// Package regular opens files that must be regular files: a config, a secret, a
// dead-letter file. Pointed at a named pipe, a device or a directory by mistake or by
// malice, such a path must give a clear error, never a hang (a FIFO without a writer
// blocks open and read forever) or an endless read (/dev/zero).
package regular

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Check returns nil for a regular file's mode, else an error naming the path and what
// it is instead: "/dev/zero is a device, not a regular file".
func Check(name string, m fs.FileMode) error {
	if m.IsRegular() {
		return nil
	}
	var what string
	switch {
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	default:
		return fmt.Errorf("%s is not a regular file", name)
	}
	return fmt.Errorf("%s is %s, not a regular file", name, what)
}

// Open opens name with flag and perm (as os.OpenFile) and returns it only if the
// opened file is a regular file; anything else is closed and refused with Check's
// error. The open never blocks (O_NONBLOCK, cleared again once fstat has shown a
// regular file) and a terminal it opens never becomes the process's controlling
// terminal (O_NOCTTY). Callers that want to avoid opening a device at all check the
// path with os.Stat and Check first; Open still refuses a path swapped in between.
func Open(name string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NONBLOCK|syscall.O_NOCTTY, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = Check(name, fi.Mode())
	}
	if err == nil {
		err = setBlocking(f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// setBlocking clears O_NONBLOCK on f.
func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
