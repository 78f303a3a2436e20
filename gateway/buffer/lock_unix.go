//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package buffer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFile takes flock(2) LOCK_EX on name without waiting. flock locks belong to the
// open file description, so they conflict between two Opens in one process as well as
// between processes, and the kernel drops them when the holder dies (SIGKILL, power
// cut): a stale lock file never blocks a restart.
func lockFile(name string, holder []byte) (func() error, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		b := make([]byte, 512)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		who := strings.TrimSpace(string(b[:n]))
		if who == "" {
			who = "a process that has not yet written its name"
		}
		return nil, fmt.Errorf("%w: %s is held by %s", ErrLocked, name, who)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	// Only the holder writes the file, so a reader sees either the previous or this
	// holder's line (or, for a moment, nothing).
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(holder, 0)
	}
	return f.Close, nil // closing the descriptor releases the lock
}
