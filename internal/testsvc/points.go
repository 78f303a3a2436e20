package testsvc

import (
	"strings"
	"testing"
)

// Point identifies one stored value: measurement, device and site tags, field, and time
// in milliseconds.
type Point struct {
	Measurement, Device, Site, Field string
	Time                             int64
}

// Points returns every float value stored in the database, keyed by Point; the
// `<quantity>_quality` fields are left out. A point returned twice fails the test.
func (i *Influx) Points(t testing.TB) map[Point]float64 {
	t.Helper()
	out := map[Point]float64{}
	for _, row := range i.Query(t, "SELECT * FROM /.*/ GROUP BY *") {
		for field, v := range row.Values {
			f, ok := v.(float64)
			if !ok || strings.HasSuffix(field, "_quality") {
				continue
			}
			p := Point{row.Measurement, row.Tags["device"], row.Tags["site"], field, row.Time}
			if _, dup := out[p]; dup {
				t.Errorf("point %+v returned twice", p)
			}
			out[p] = f
		}
	}
	return out
}
