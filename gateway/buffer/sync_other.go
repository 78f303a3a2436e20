//go:build !linux

package buffer

import "os"

// syncData is fsync where fdatasync(2) is not available.
func syncData(f file) error { return f.Sync() }

// preallocate does nothing where fallocate(2) is not available.
func preallocate(file, int64) error { return nil }

// releasePrealloc does nothing: nothing was preallocated.
func releasePrealloc(file, int64) error { return nil }

// readFlags opens a segment for a reader.
const readFlags = os.O_RDONLY
