package noise

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/envgate/envgate/gateway/reading"
)

// worked is the 20-sample example of docs/standards.md §1.8.
var worked = []float64{50, 50, 50, 50, 50, 52, 52, 52, 55, 55, 55, 55, 60, 60, 60, 65, 65, 70, 72, 80}

// round1 rounds for comparisons with the one-decimal results of docs/standards.md §1.8.
func round1(x float64) float64 { return reading.RoundHalfEven(x, 1) }

func TestWorkedExamples(t *testing.T) {
	check := func(name string, got, want float64) {
		t.Helper()
		if round1(got) != want {
			t.Errorf("%s = %v (%.1f), want %.1f", name, got, got, want)
		}
	}
	check("Leq(50, 60)", Leq([]float64{50, 60}), 57.4)
	check("LeqWeighted(62 for 45 min, 70 for 15 min)", LeqWeighted([]float64{62, 70}, []float64{45, 15}), 65.7)
	check("Percentile(worked, 10)", Percentile(worked, 10), 72)
	check("Percentile(worked, 50)", Percentile(worked, 50), 55)
	check("Percentile(worked, 90)", Percentile(worked, 90), 50)
	check("Leq(worked)", Leq(worked), 68.4)
	check("Ldn(59.64, 48.56, 16, 8)", Ldn(59.64, 48.56, 16, 8), 59.3)
	check("Ldn(59.64, 48.56, 0, 0)", Ldn(59.64, 48.56, 0, 0), 59.3)

	s := Summarize(worked)
	if s.N != 20 || s.L10 != 72 || s.L50 != 55 || s.L90 != 50 || s.Lmax != 80 || s.Lmin != 50 || round1(s.Leq) != 68.4 {
		t.Errorf("Summarize(worked) = %+v, want N 20, L10 72, L50 55, L90 50, Lmax 80, Lmin 50, Leq 68.4", s)
	}
	// k = ceil(5·20/100) = 1 and ceil(95·20/100) = 19.
	if s.L5 != 80 || s.L95 != 50 {
		t.Errorf("Summarize(worked) L5, L95 = %v, %v, want 80, 50", s.L5, s.L95)
	}
	// The arithmetic mean would wrongly give 64.0 for the unequal intervals.
	if got := LeqWeighted([]float64{62, 70}, []float64{45, 15}); math.Abs(got-65.67) > 0.005 {
		t.Errorf("LeqWeighted = %v, want 65.67", got)
	}
}

func TestPercentileConvention(t *testing.T) {
	// The classical manual rule (docs/standards.md §1.4): with 100 samples L10 is the 10th
	// largest, L50 the 50th, L90 the 90th; with 200 samples the 20th/100th/180th.
	for _, size := range []int{100, 200} {
		levels := make([]float64, size)
		for i := range levels {
			levels[(i*37)%size] = float64(i + 1) // a permutation of 1..size
		}
		for _, n := range []float64{10, 50, 90} {
			k := int(n) * size / 100
			want := float64(size - k + 1) // the k-th largest of 1..size
			if got := Percentile(levels, n); got != want {
				t.Errorf("Percentile(%d samples, %v) = %v, want %v (rank %d)", size, n, got, want, k)
			}
		}
	}
	five := []float64{3, 1, 4, 1, 5}
	for _, c := range []struct{ n, want float64 }{
		{0, 5}, {0.1, 5}, {20, 5}, {20.1, 4}, {40, 4}, {60, 3}, {100, 1}, {150, 1}, {-5, 5},
	} {
		if got := Percentile(five, c.n); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", five, c.n, got, c.want)
		}
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("Percentile(nil, 50) = %v, want NaN", got)
	}
	if got := Percentile(five, math.NaN()); !math.IsNaN(got) {
		t.Errorf("Percentile(five, NaN) = %v, want NaN", got)
	}
	if five[0] != 3 || five[4] != 5 {
		t.Errorf("Percentile sorted its input: %v", five)
	}
}

func TestEmptyAndEdgeCases(t *testing.T) {
	for name, got := range map[string]float64{
		"Leq(nil)":                       Leq(nil),
		"Sum(nil)":                       Sum(nil),
		"LeqWeighted(nil, nil)":          LeqWeighted(nil, nil),
		"LeqWeighted(length mismatch)":   LeqWeighted([]float64{50}, []float64{1, 2}),
		"LeqWeighted(negative duration)": LeqWeighted([]float64{50, 60}, []float64{1, -1}),
		"LeqWeighted(NaN duration)":      LeqWeighted([]float64{50}, []float64{math.NaN()}),
		"LeqWeighted(zero durations)":    LeqWeighted([]float64{50, 60}, []float64{0, 0}),
		"Ldn(negative hours)":            Ldn(50, 40, -1, 8),
	} {
		if !math.IsNaN(got) {
			t.Errorf("%s = %v, want NaN", name, got)
		}
	}
	if got := LeqWeighted([]float64{50, 160}, []float64{1, 0}); got != 50 {
		t.Errorf("LeqWeighted skipping a zero duration = %v, want 50", got)
	}
	if got := Sum([]float64{60, 60}); math.Abs(got-63.0103) > 1e-4 {
		t.Errorf("Sum(60, 60) = %v, want 63.01", got)
	}
	if got := Sum([]float64{70}); got != 70 {
		t.Errorf("Sum(70) = %v, want 70", got)
	}
	s := Summarize(nil)
	if s.N != 0 || !math.IsNaN(s.Leq) || !math.IsNaN(s.L50) || !math.IsNaN(s.Lmax) || s.SD != 0 {
		t.Errorf("Summarize(nil) = %+v, want N 0, NaN levels, SD 0", s)
	}
	if s := Summarize([]float64{42}); s.SD != 0 || s.Leq != 42 || s.L5 != 42 || s.L95 != 42 {
		t.Errorf("Summarize(42) = %+v, want every level 42, SD 0", s)
	}
	// Sample SD (n−1): {50, 60} → sqrt(50).
	if s := Summarize([]float64{50, 60}); math.Abs(s.SD-math.Sqrt(50)) > 1e-12 {
		t.Errorf("Summarize(50, 60).SD = %v, want %v", s.SD, math.Sqrt(50))
	}
}

func TestLden(t *testing.T) {
	// Equal levels everywhere: the penalties alone, 10·lg((12 + 4·10^0.5 + 8·10)/24).
	want := 60 + 10*math.Log10((12+4*math.Pow(10, 0.5)+80)/24.0)
	for _, got := range []float64{Lden(60, 60, 60, 12, 4, 8), Lden(60, 60, 60, 0, 0, 0)} {
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("Lden(60, 60, 60) = %v, want %v", got, want)
		}
	}
	// A shorter evening moves its hours to the day.
	if got, want := Lden(60, 50, 40, 13, 3, 8), LeqWeighted([]float64{60, 55, 50}, []float64{13, 3, 8}); math.Abs(got-want) > 1e-12 {
		t.Errorf("Lden(60, 50, 40, 13, 3, 8) = %v, want %v", got, want)
	}
	if got, want := Ldn(60, 50, 15, 9), LeqWeighted([]float64{60, 60}, []float64{15, 9}); got != want {
		t.Errorf("Ldn(60, 50, 15, 9) = %v, want %v", got, want)
	}
}

// randomLevels returns 1 to 300 levels between 20 and 120 dB(A) in 0.1 dB steps.
func randomLevels(r *rand.Rand) []float64 {
	levels := make([]float64, 1+r.IntN(300))
	for i := range levels {
		levels[i] = 20 + float64(r.IntN(1001))/10
	}
	return levels
}

func TestLevelProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3096, 2008))
	for range 2000 {
		levels := randomLevels(r)

		// A constant series is its own Leq, exactly.
		c := levels[0]
		constant := make([]float64, len(levels))
		for i := range constant {
			constant[i] = c
		}
		if got := Leq(constant); got != c {
			t.Fatalf("Leq(%d × %v) = %v, want %v", len(constant), c, got, c)
		}

		checkInvariants(t, levels)

		// Shifting every level by c shifts Leq (and every percentile) by c.
		shift := float64(r.IntN(401)-200) / 10
		shifted := make([]float64, len(levels))
		for i, l := range levels {
			shifted[i] = l + shift
		}
		if got, want := Leq(shifted), Leq(levels)+shift; math.Abs(got-want) > 1e-9 {
			t.Fatalf("Leq(levels + %v) = %v, want Leq(levels) + %v = %v", shift, got, shift, want)
		}

		// Equal durations weigh like plain samples; Sum is Leq + 10·lg n.
		durations := make([]float64, len(levels))
		for i := range durations {
			durations[i] = 2.5
		}
		if got, want := LeqWeighted(levels, durations), Leq(levels); math.Abs(got-want) > 1e-9 {
			t.Fatalf("LeqWeighted(levels, equal durations) = %v, want Leq = %v", got, want)
		}
		if got, want := Sum(levels), Leq(levels)+10*math.Log10(float64(len(levels))); math.Abs(got-want) > 1e-9 {
			t.Fatalf("Sum = %v, want %v", got, want)
		}
	}
}

// checkInvariants checks what must hold for any finite samples: L5 ≥ L10 ≥ L50 ≥ L90 ≥
// L95 within [Lmin, Lmax], Lmax ≥ Leq ≥ Lmin, Leq ≥ arithmetic mean, SD ≥ 0.
func checkInvariants(t *testing.T, levels []float64) {
	t.Helper()
	s := Summarize(levels)
	if s.N != len(levels) {
		t.Fatalf("Summarize(%v).N = %d, want %d", levels, s.N, len(levels))
	}
	chain := []float64{s.Lmax, s.L5, s.L10, s.L50, s.L90, s.L95, s.Lmin}
	for i := 1; i < len(chain); i++ {
		if !(chain[i-1] >= chain[i]) {
			t.Fatalf("Summarize(%v) = %+v: want Lmax ≥ L5 ≥ L10 ≥ L50 ≥ L90 ≥ L95 ≥ Lmin", levels, s)
		}
	}
	if !(s.Lmax >= s.Leq && s.Leq >= s.Lmin) {
		t.Fatalf("Summarize(%v) = %+v: want Lmax ≥ Leq ≥ Lmin", levels, s)
	}
	// The mean is summed as x/n so that it cannot overflow for huge inputs.
	var mean, scale float64
	for _, l := range levels {
		mean += l / float64(len(levels))
		scale = max(scale, math.Abs(l))
	}
	if tol := 1e-9 * max(1, scale); s.Leq < mean-tol {
		t.Fatalf("Leq(%v) = %v, below the arithmetic mean %v", levels, s.Leq, mean)
	}
	if math.IsNaN(s.SD) || s.SD < 0 || (len(levels) < 2 && s.SD != 0) {
		t.Fatalf("Summarize(%v).SD = %v, want ≥ 0 (0 for fewer than 2 samples)", levels, s.SD)
	}
	if got := Percentile(levels, 10); got != s.L10 {
		t.Fatalf("Percentile(%v, 10) = %v, Summarize L10 = %v", levels, got, s.L10)
	}
}

// encode packs levels as little-endian float64 bits, the input format of FuzzSummarize.
func encode(levels []float64) []byte {
	b := make([]byte, 0, 8*len(levels))
	for _, l := range levels {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(l))
	}
	return b
}

func FuzzSummarize(f *testing.F) {
	f.Add(encode(worked))
	f.Add(encode([]float64{50, 60}))
	f.Add(encode([]float64{62, 62, 62, 70}))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxLevels = 4096
		levels := make([]float64, 0, min(len(data)/8, maxLevels))
		finite := true
		for i := 0; i+8 <= len(data) && len(levels) < maxLevels; i += 8 {
			l := math.Float64frombits(binary.LittleEndian.Uint64(data[i:]))
			finite = finite && !math.IsNaN(l) && !math.IsInf(l, 0)
			levels = append(levels, l)
		}
		s := Summarize(levels) // must not panic, whatever the bits
		_ = Percentile(levels, 50)
		_ = Sum(levels)
		if len(levels) == 0 || !finite {
			if len(levels) == 0 && (s.N != 0 || !math.IsNaN(s.Leq)) {
				t.Fatalf("Summarize(nil) = %+v", s)
			}
			return
		}
		checkInvariants(t, levels)
	})
}
