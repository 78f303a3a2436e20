package derive

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// Found in review: records in the middle of the kept log are unreadable (a bad sector; Recent
// quarantines them, or the segment is forgotten). Their samples and the derived readings
// stored with them are gone. Restore rebuilds the affected windows without those samples
// and returns their derived readings as "missing" — stored again with other values than
// the ones stored (and delivered) before: InfluxDB's correct points are overwritten.
func TestRestoreHoleStoresNothingAgain(t *testing.T) {
	end := time.Now().Truncate(time.Minute)
	batches := recording(rand.New(rand.NewPCG(1, 2)), end)
	var wall time.Time
	ref := live(newSet(t, &wall), &wall, batches)
	k := len(batches) - 7
	wall = batches[k-1][0].Time.Add(2 * time.Second)
	s := newSet(t, &wall)
	j := k
	for j > 0 && !batches[j-1][0].Time.Before(wall.Add(-s.Reach()-10*time.Minute)) {
		j--
	}
	// Lose 40 appends (20 min) in the middle of the kept log.
	mid := (j + k) / 2
	var log [][]reading.Reading
	log = append(log, ref[j:mid]...)
	log = append(log, ref[mid+40:k]...)
	stored := map[window.Key]reading.Reading{}
	for _, r := range derivedOf(ref[:k]) {
		stored[window.KeyOf(r)] = r
	}
	missing, st, err := s.Restore(scanOf(log))
	if err != nil {
		t.Fatal(err)
	}
	var differ []reading.Reading
	for _, r := range missing {
		if o, ok := stored[window.KeyOf(r)]; ok && (o.Value != r.Value || o.Quality != r.Quality) {
			differ = append(differ, r, o)
		}
	}
	if len(differ) > 0 {
		t.Errorf("Restore (%+v) returns %d derived readings to store again with values other than those stored before the crash, e.g. (new, old):\n%s",
			st, len(differ)/2, windowtest.Format(differ[:min(6, len(differ))]))
	}
}
