//go:build !linux

package buffer

// syncData is fsync where fdatasync(2) is not available.
func syncData(f file) error { return f.Sync() }
