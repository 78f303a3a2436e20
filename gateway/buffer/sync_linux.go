package buffer

import "syscall"

// fdatasync flushes a file's data and the metadata needed to read it back (its size),
// skipping the timestamp update a full fsync also writes: one journal write less per
// group commit on ext4.
func fdatasync(f interface{ Fd() uintptr }) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// syncData is fdatasync for an *os.File and Sync for anything else (the crash model).
func syncData(f file) error {
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		return fdatasync(fd)
	}
	return f.Sync()
}
