package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Limits on the files a config names or is read from. Each is far above what a real
// file holds and far below what would hurt a box with 512 MiB of RAM: the largest
// shipped example config is a few KiB, a token a few hundred bytes, a PEM bundle of
// every public root CA about 200 KiB (docs/config.md, "Files").
const (
	MaxConfigFile  = 1 * MiB  // the config file itself
	MaxSecretFile  = 64 * KiB // token_file, password_file
	MaxProfileFile = 1 * MiB  // each of profile_files
	MaxPEMFile     = 1 * MiB  // ca_file, cert_file, key_file
)

// OpenFile opens the file name for reading, refusing anything but a regular file
// (or a symbolic link to one) with an error naming the path and what it is instead.
// It never blocks: a named pipe would wait for a writer forever, and a device such
// as /dev/zero never ends. The caller closes the file.
func OpenFile(name string) (*os.File, error) {
	// Stat first, so that a device is never opened (opening a serial port or a tape
	// has side effects); then open without blocking and check again what was opened,
	// in case the path was replaced in between.
	fi, err := os.Stat(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Op = "open" // what the caller asked for; "stat" would puzzle an installer
		}
		return nil, err
	}
	if err := regular(name, fi.Mode()); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	opened, err := f.Stat()
	if err == nil {
		err = regular(name, opened.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads the regular file name (see OpenFile) whole. A file longer than
// limit is an error that names the path and the limit, and no more than limit+1
// bytes are read from it.
func ReadFile(name string, limit ByteSize) ([]byte, error) {
	f, err := OpenFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > int64(limit) {
		return nil, fmt.Errorf("%s is larger than %v", name, limit)
	}
	return data, nil
}

// regular returns nil for a regular file's mode, else an error saying what name is.
func regular(name string, m fs.FileMode) error {
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
