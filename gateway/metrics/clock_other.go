//go:build !linux

package metrics

// clockState is not available off Linux: the clock metrics are absent.
func clockState() (synced bool, maxError float64, ok bool) { return false, 0, false }
