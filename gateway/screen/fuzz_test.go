package screen

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// FuzzScreenOnlyFlags is the property of issue 17: screening never changes a reading
// but for its quality and reason. Every reading given is released once (copies
// included: a copy passes as a copy), in time order per channel, with its value,
// time and names intact, Suspect exactly when it has a reason.
func FuzzScreenOnlyFlags(f *testing.F) {
	f.Add([]byte{0, 35, 0, 36, 0, 0xff, 0, 35, 1, 35, 2, 35, 0, 35, 0, 35})
	f.Add([]byte{0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 200, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Defaults("pm25")
		r.FlatFor, r.SpikeJump, r.Low, r.High = 10*time.Minute, 100, 0, 500
		r.DriftMax, r.DriftWindow, r.Reference.Device = 20, time.Hour, "ref"
		s := New(func(k Key) (Rules, bool) { return r, k.Device != "ref" }, []string{"ref"})
		var in, out []reading.Reading
		at := t0
		for len(data) >= 2 {
			step, v := data[0], data[1]
			data = data[2:]
			// step: bits 0-1 device, bits 2-7 minutes forward (0: the same instant again)
			at = at.Add(time.Duration(step>>2) * time.Minute)
			dev := [...]string{"a", "b", "ref", "a"}[step&3]
			x := reading.New(at, "s", dev, "pm25", float64(v)*2.5)
			if step&3 == 3 {
				x.Value = math.Float64frombits(binary.LittleEndian.Uint64([]byte{v, v, v, v, v, v, 0x3f, 0x40}))
			}
			in = append(in, x)
			out = s.Add(out, x, t0)
		}
		out = s.Flush(out)
		if len(out) != len(in) {
			t.Fatalf("%d readings in, %d out", len(in), len(out))
		}
		left := map[reading.Reading]int{}
		for _, x := range in {
			left[x]++
		}
		for _, x := range out {
			if (x.Reason != reading.NoReason) != (x.Quality == reading.Suspect) {
				t.Fatalf("quality %v with reason %v", x.Quality, x.Reason)
			}
			x.Quality, x.Reason = reading.Good, reading.NoReason
			if left[x] == 0 {
				t.Fatalf("released %+v, which was not given (or given fewer times)", x)
			}
			left[x]--
		}
	})
}
