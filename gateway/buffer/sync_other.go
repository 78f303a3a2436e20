//go:build !linux

package buffer

// fdatasync falls back to fsync where fdatasync(2) is not available.
func fdatasync(f interface{ Sync() error }) error { return f.Sync() }

// syncData is fsync where fdatasync(2) is not available.
func syncData(f file) error { return f.Sync() }
