package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/envgate/envgate/internal/regular"
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
// What it guarantees, even if the path is replaced while it runs: nothing is ever read
// from a file that is not regular (the file returned is one), the open never blocks (a
// named pipe would wait for a writer forever), and opening a terminal never makes it
// the process's controlling terminal. The caller closes the file.
//
// It stats the path first, so that in the ordinary case a device is not even opened
// (opening a serial port or a tape has side effects); a path swapped for a device
// between that check and the open is opened, without blocking and without becoming a
// controlling terminal, then refused by what the open file itself is.
func OpenFile(name string) (*os.File, error) {
	fi, err := os.Stat(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Op = "open" // what the caller asked for; "stat" would puzzle an installer
		}
		return nil, err
	}
	if err := regular.Check(name, fi.Mode()); err != nil {
		return nil, err
	}
	if afterStat != nil {
		afterStat(name)
	}
	return regular.Open(name, os.O_RDONLY, 0)
}

// afterStat, when a test sets it, runs between OpenFile's check of the path and its
// open, so that the test can replace the file there.
var afterStat func(name string)

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
