//go:build linux

package bench_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSyncCost measures what one append and its fdatasync cost the device, for the
// segment layouts the buffer could use (docs/design.md §1, *Wear*): a plain file grown
// by each append; blocks reserved ahead with the size kept (what gateway/buffer does);
// blocks reserved with the size set; and a file written with zeros ahead, so that a
// sync changes neither size nor extents. Each writes 20 appends of 6 000 bytes (5 s of
// MQTT readings at 20 msgs/s) synced -sync-cost-gap apart, on the store BenchmarkWear
// uses, and reports the device's bytes per sync, including what the file system wrote
// later (a syncfs at the end). The zeros written ahead are not counted: they cost as
// many bytes again as the log they make room for.
//
// The gap matters: ext4 commits its journal every 5 s (mount option commit), and a file
// written between commits has its times committed then. Mount the store with
// -wear-mount=commit=1 and keep the default gap of 1.1 s to see, in 25 s, what 5 s
// syncs cost under ext4's default 5 s commit.
func BenchmarkSyncCost(b *testing.B) {
	if testing.Short() {
		b.Skip("storage benchmark; skipped with -short")
	}
	st := newWearStore(b)
	const (
		appends = 20
		size    = 6000
		segment = 8 << 20
	)
	layouts := []struct {
		name string
		prep func(f *os.File) error
	}{
		{"grown", func(*os.File) error { return nil }},
		{"reserved-size-kept", func(f *os.File) error { return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, segment) }},
		{"reserved-size-set", func(f *os.File) error { return unix.Fallocate(int(f.Fd()), 0, 0, segment) }},
		{"zero-filled", func(f *os.File) error {
			_, err := f.WriteAt(make([]byte, segment), 0)
			return err
		}},
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	for _, l := range layouts {
		b.Run(l.name, func(b *testing.B) {
			var bytes int64
			for i := range b.N {
				path := filepath.Join(st.dir, l.name+"-"+string(rune('a'+i%26)))
				f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.prep(f); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				st.syncfs(b)
				s0, t0 := st.sectors(b), time.Now()
				for k := range appends {
					if _, err := f.WriteAt(data, int64(k*size)); err != nil {
						b.Fatal(err)
					}
					if err := unix.Fdatasync(int(f.Fd())); err != nil {
						b.Fatal(err)
					}
					time.Sleep(*syncCostGap)
				}
				st.syncfs(b)
				bytes += (st.sectors(b)-s0)*512 - st.idle(time.Since(t0))
				f.Close()
				os.Remove(path)
			}
			b.ReportMetric(float64(bytes)/float64(b.N*appends), "device-B/sync")
			b.ReportMetric(0, "ns/op")
		})
	}
}
