//go:build linux

package bench_test

import (
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/remotewrite"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

var (
	storageBoxes = flag.Int("storage-boxes", 10, "BenchmarkStorage: boxes")
	storageDays  = flag.Int("storage-days", 1, "BenchmarkStorage: days of readings per box")
)

// BenchmarkStorage measures what a central store keeps on disk per reading, for
// docs/fleet.md's storage per year: -storage-boxes boxes' -storage-days days of the
// readings BenchmarkFleet's boxes produce (fleetDevices: noise at 1 Hz, air every 10 s,
// water every minute; raw readings, no derived ones), pushed by the remote-write sink
// to a single-node VictoriaMetrics (one of the stores docs/fleet.md names), then
// flushed and merged, and its storage directory measured: bytes per point of the
// samples (data), of the index (indexdb, per series and day), and of both.
func BenchmarkStorage(b *testing.B) {
	if testing.Short() {
		b.Skip("runs VictoriaMetrics; skipped with -short")
	}
	for range b.N {
		vm := testsvc.StartVictoriaMetrics(b)
		end := clock.Now().Truncate(time.Hour)
		points := 0
		for i := range *storageBoxes {
			bx := &box{id: fmt.Sprintf("box-%03d", i+1), site: fmt.Sprintf("site-%03d", i+1)}
			rs := outageReadings(b, bx, end.Add(-time.Duration(*storageDays)*24*time.Hour), end)
			sink, err := remotewrite.New(remotewrite.Config{Name: "store", URL: vm.URL + "/api/v1/write",
				Timeout: 30 * time.Second, GatewayID: bx.id, DeadLetter: filepath.Join(b.TempDir(), "dl.lp")}, nil)
			if err != nil {
				b.Fatal(err)
			}
			for j := 0; j < len(rs); j += directBatch {
				if err := sink.Write(b.Context(), rs[j:min(j+directBatch, len(rs))]); err != nil {
					b.Fatal(err)
				}
			}
			if st := sink.Stats(); st.Written != uint64(len(rs)) {
				b.Fatalf("%s: %+v, want %d written", bx.id, st, len(rs))
			}
			sink.Close()
			points += len(rs)
		}
		vm.Compact(b)
		data, index := vm.DiskBytes(b, "data"), vm.DiskBytes(b, "indexdb")
		b.ReportMetric(float64(points), "points")
		b.ReportMetric(float64(data)/float64(points), "data-B/point")
		b.ReportMetric(float64(index)/float64(points), "index-B/point")
		b.ReportMetric(float64(data+index)/float64(points), "B/point")
		b.ReportMetric(0, "ns/op")
	}
}
