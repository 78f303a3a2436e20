package water

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// FuzzParamClass checks that ParamClass never panics, classifies every number of
// every parameter it knows, and is monotonic: v ≤ v+|d| never gets a better class
// (for DO: never a worse one). The seeds run in the normal test suite.
func FuzzParamClass(f *testing.F) {
	for _, s := range []struct {
		p, w uint8
		v, d float64
	}{
		{1, 0, 6, 3}, {1, 1, 5.99, 0.01}, {1, 2, 9, 0.01}, // pH edges
		{2, 0, 1.9, 0.1}, {2, 1, 7.5, 0}, {2, 0, 4.99, 0.01}, // DO
		{3, 0, 2, 1e-12}, {4, 1, 15, 5}, {5, 2, 3, 1}, {6, 0, 0.15, 0.35},
		{7, 0, 0.05, 0.05}, {7, 1, 0.05, 0.15}, {8, 1, 2, 1}, {8, 0, 1, 1}, {9, 0, 40000, 1},
		{0, 0, 20, 1}, {3, 0, -1, 1}, {6, 1, math.Inf(1), 0}, {2, 2, math.Inf(-1), math.Inf(1)},
		{6, 0, math.MaxFloat64, math.MaxFloat64}, {3, 0, math.NaN(), 1},
	} {
		f.Add(s.p, s.w, s.v, s.d)
	}
	bodies := []Waterbody{River, Lake, Reservoir}
	f.Fuzz(func(t *testing.T, pi, wi uint8, v, d float64) {
		p := params[int(pi)%len(params)]
		w := bodies[int(wi)%len(bodies)]
		a, b := v, v+math.Abs(d)
		ca, errA := ParamClass(p, a, w)
		cb, errB := ParamClass(p, b, w)
		if math.IsNaN(a) || math.IsNaN(b) {
			if errA == nil && errB == nil {
				t.Fatalf("ParamClass(%s, NaN) = nil error", p)
			}
			return
		}
		if (errA == nil) != (errB == nil) {
			t.Fatalf("ParamClass(%s, %v, %s) = %v but (%v) = %v", p, a, w, errA, b, errB)
		}
		if errA != nil {
			if p != ParamWaterTemperature && (p != ParamTN || w.Still()) {
				t.Fatalf("ParamClass(%s, %v, %s) = %v", p, a, w, errA)
			}
			return
		}
		if !ca.Valid() || !cb.Valid() {
			t.Fatalf("ParamClass(%s) = %v, %v: want valid classes", p, ca, cb)
		}
		checkMonotonic(t, p, w, a, b)
	})
}

// FuzzAggregator feeds arbitrary readings to an Aggregator: it must not panic, every
// derived reading must be a plausible entry of Quantities, no window may emit a
// quantity twice, and each section class must be the largest of its evaluated
// parameter classes.
func FuzzAggregator(f *testing.F) {
	// A record is 7 bytes: quantity, device, minutes from the base (int16, ±22 days),
	// value/100 (uint16), quality.
	rec := func(q, dev uint8, minutes int16, v uint16, quality uint8) []byte {
		b := []byte{q, dev, 0, 0, 0, 0, quality}
		binary.LittleEndian.PutUint16(b[2:], uint16(minutes))
		binary.LittleEndian.PutUint16(b[4:], v)
		return b
	}
	seed := []byte{0, 1, 0, 2}
	for i := range 40 {
		seed = append(seed, rec(uint8(i%7), uint8(i%2), int16(i*30), uint16(100+i*37), 0)...)
	}
	f.Add(seed)
	f.Add(append([]byte{3, 2, 1, 4}, rec(1, 0, 0, 50, 0)...))
	f.Add(append(append([]byte{1, 0, 2, 0x40}, rec(1, 0, 0, 50, 1)...), rec(2, 1, math.MaxInt16, 7, 0)...))
	f.Add(append(append([]byte{2, 3, 0x31, 1}, rec(5, 0, 20000, 9, 0)...), rec(5, 0, -20000, 9, 2)...))

	windows := []time.Duration{0, time.Hour, 30 * time.Minute, 24 * time.Hour}
	bodies := []Waterbody{River, Lake, Reservoir}
	quantities := []string{"ph", "do", "codmn", "nh3n", "tp", "tn", "water_temperature", "turbidity", "cod", "bod5"}
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		cfg := Config{
			Site:       site,
			Waterbody:  bodies[int(data[0])%len(bodies)],
			Window:     windows[int(data[1])%len(windows)],
			MinSamples: int(data[2] % 4),
			Target:     Class(data[3] % 6),
			TNInClass:  data[3]&0x80 != 0,
			Lateness:   time.Duration(data[2]>>4) * time.Minute,
		}
		a, err := NewAggregator(cfg)
		if err != nil {
			t.Fatalf("NewAggregator(%+v) = %v", cfg, err)
		}
		rules := a.rules
		seen := map[string]bool{}
		check := func(out []reading.Reading) {
			byWindow := map[time.Time]map[string]float64{}
			for _, r := range out {
				q, ok := derivedByName[r.Quantity]
				if !ok || r.Unit != q.Unit || !q.Plausible(r.Value) || r.Quality == reading.Bad {
					t.Fatalf("derived reading %+v: not a plausible entry of Quantities", r)
				}
				k := key(r.Quantity, r.Time)
				if seen[k] {
					t.Fatalf("derived reading %s emitted twice", k)
				}
				seen[k] = true
				if byWindow[r.Time] == nil {
					byWindow[r.Time] = map[string]float64{}
				}
				byWindow[r.Time][r.Quantity] = r.Value
			}
			for at, vs := range byWindow {
				c, ok := vs[QuantityClass]
				want := 0.0
				for _, p := range aggregated {
					if pc, ok := vs[ClassQuantity(p)]; ok && rules.evaluated(p) {
						want = max(want, pc)
					}
				}
				if ok && c != want || !ok && want != 0 {
					t.Fatalf("window %v: class %v (%v), want the largest evaluated class %v: %v", at, c, ok, want, vs)
				}
				if _, ok := vs[QuantityParamsMissing]; !ok {
					t.Fatalf("window %v: no params_missing: %v", at, vs)
				}
			}
		}
		for rest := data[4:]; len(rest) >= 7; rest = rest[7:] {
			r := reading.New(
				base.Add(time.Duration(int16(binary.LittleEndian.Uint16(rest[2:])))*time.Minute),
				site, []string{"probe-1", "station-1"}[rest[1]%2],
				quantities[int(rest[0])%len(quantities)],
				float64(binary.LittleEndian.Uint16(rest[4:]))/100,
			)
			r.Quality = reading.Quality(rest[6] % 4)
			check(a.Add(r))
			l := a.Now(r.Time)
			if l.Class != 0 && !l.Class.Valid() || l.Missing < 0 || l.Missing > len(aggregated) {
				t.Fatalf("Now(%v) = %+v", r.Time, l)
			}
		}
		end := base.Add(math.MaxInt16*time.Minute + 48*time.Hour)
		if data[3]&0x40 != 0 { // a clock leaping a century: the skip of empty windows
			end = end.AddDate(100, 0, 0)
		}
		check(a.Tick(end))
	})
}
