package buffer

import (
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

// preallocate reserves n bytes of blocks for a new segment without changing its size,
// so that its appends allocate no blocks: an fdatasync then commits no block bitmap or
// group descriptor to the ext4 journal (measured on a loop-mounted ext4: 43 KB → 36 KB
// written per 5 s sync of 20 readings a second; bench/README.md, BenchmarkWear). Best effort: a file system without fallocate, or
// without the space, appends as before.
func preallocate(f file, n int64) {
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		_ = syscall.Fallocate(int(fd.Fd()), fallocKeepSize, 0, n)
	}
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
