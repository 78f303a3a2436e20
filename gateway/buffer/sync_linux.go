package buffer

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

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

// fallocKeepSize is FALLOC_FL_KEEP_SIZE (linux/falloc.h): allocate without
// changing the file's size.
const fallocKeepSize = 0x01

// fallocate is fallocate(2); a test makes it fail as on a full file system.
var fallocate = syscall.Fallocate

// preallocate reserves n bytes of blocks for a new, empty segment without changing its
// size, so that its appends allocate no blocks: an fdatasync then commits no block bitmap or
// group descriptor to the ext4 journal (measured on a loop-mounted ext4: 43 KB → 36 KB
// written per 5 s sync of 20 readings a second; bench/README.md, BenchmarkWear). Best
// effort: a file system without fallocate (EOPNOTSUPP) appends as before, silently. Any
// other failure — ENOSPC on a nearly full card — is returned for the log, after giving
// back what the call reserved before failing: ext4 and vfat keep those blocks, and they
// could be the last free ones of the file system.
func preallocate(f file, n int64) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return nil
	}
	err := fallocate(int(fd.Fd()), fallocKeepSize, 0, n)
	if err == nil || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if terr := f.Truncate(0); terr != nil {
		return fmt.Errorf("reserve %d bytes: %w; give back the part reserved: %w", n, err, terr)
	}
	return fmt.Errorf("reserve %d bytes: %w", n, err)
}

// releasePrealloc gives back the blocks reserved beyond size (preallocate) of a segment
// that takes no more appends: truncating to its own size frees them.
func releasePrealloc(f file, size int64) error {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(fd.Fd()), &st); err != nil {
		return err
	}
	// Blocks and Blksize differ in type between architectures (int32 on arm, arm64).
	blk := max(int64(st.Blksize), 512)
	if int64(st.Blocks)*512 <= (size+blk-1)/blk*blk {
		return nil
	}
	return f.Truncate(size)
}

// readFlags opens a segment for a reader without updating its access time (O_NOATIME:
// the owner of the file may, and envgate owns its buffer). With the default relatime,
// every first read after an append otherwise dirties the inode, and ext4 commits its
// journal for it five seconds later: a second journal commit per group commit
// (BenchmarkWear, 20 msgs/s: 8 % of the bytes written).
const readFlags = os.O_RDONLY | syscall.O_NOATIME
