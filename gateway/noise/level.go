package noise

import (
	"math"
	"slices"
)

// Leq returns the equivalent continuous level of equally spaced samples,
// 10·lg((1/n)·Σ 10^(0.1·Li)) (docs/standards.md §1.3), or NaN for an empty slice.
//
// The energies are summed relative to the loudest sample, so any finite input is
// computed without overflow, and the result is kept within [min, max] of the samples
// (where it lies mathematically) against rounding.
func Leq(levels []float64) float64 {
	if len(levels) == 0 {
		return math.NaN()
	}
	lo, hi := levels[0], levels[0]
	for _, l := range levels[1:] {
		lo, hi = min(lo, l), max(hi, l)
	}
	var e float64
	for _, l := range levels {
		e += math.Pow(10, 0.1*(l-hi))
	}
	return clamp(hi+10*math.Log10(e/float64(len(levels))), lo, hi)
}

// LeqWeighted returns the equivalent level of intervals of unequal length:
// 10·lg(Σ ti·10^(0.1·Li) / Σ ti) (docs/standards.md §1.3). durations[i] is the length of
// levels[i] in any unit. It returns NaN if the slices differ in length, a duration is
// negative or NaN, or the durations add up to zero. Zero-length intervals are skipped.
func LeqWeighted(levels, durations []float64) float64 {
	if len(levels) != len(durations) {
		return math.NaN()
	}
	var total float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, d := range durations {
		if !(d >= 0) {
			return math.NaN()
		}
		if d > 0 {
			total += d
			lo, hi = min(lo, levels[i]), max(hi, levels[i])
		}
	}
	if !(total > 0) {
		return math.NaN()
	}
	var e float64
	for i, d := range durations {
		if d > 0 {
			e += d * math.Pow(10, 0.1*(levels[i]-hi))
		}
	}
	return clamp(hi+10*math.Log10(e/total), lo, hi)
}

// Sum returns the level of several sources heard together, 10·lg Σ 10^(0.1·Li)
// (docs/standards.md §1.3: two equal sources give +3.01 dB), or NaN for an empty slice.
func Sum(levels []float64) float64 {
	if len(levels) == 0 {
		return math.NaN()
	}
	return Leq(levels) + 10*math.Log10(float64(len(levels)))
}

// Percentile returns the statistical level LN: the level exceeded by n % of the samples.
// It uses the project convention of docs/standards.md §1.4 exactly: sort descending
// x(1) ≥ … ≥ x(len), LN = x(k) with k = ceil(n·len/100) clamped to 1 ≤ k ≤ len.
// This is not an interpolating quantile. It returns NaN for no samples or a NaN n.
func Percentile(levels []float64, n float64) float64 {
	if len(levels) == 0 || math.IsNaN(n) {
		return math.NaN()
	}
	asc := slices.Clone(levels)
	slices.Sort(asc)
	return percentileSorted(asc, n)
}

// percentileSorted is Percentile over samples already sorted ascending: the k-th largest
// is asc[len-k].
func percentileSorted(asc []float64, n float64) float64 {
	return asc[len(asc)-rank(len(asc), n)]
}

// rank returns k = ceil(n·size/100) clamped to [1, size]. n·size is exact for integer n,
// so the 100- and 200-sample rules of docs/standards.md §1.4 come out exactly.
func rank(size int, n float64) int {
	k := math.Ceil(n * float64(size) / 100)
	switch {
	case !(k >= 1): // also NaN
		return 1
	case k >= float64(size):
		return size
	}
	return int(k)
}

// Stats are the statistics HJ 640-2012 reports for a measurement (docs/standards.md §1.5),
// plus L5 and L95 (HJ 212 codes). Levels are in dB(A), SD in dB.
type Stats struct {
	N                      int
	Leq                    float64
	L5, L10, L50, L90, L95 float64 // percentile levels, Percentile's convention
	Lmax, Lmin             float64
	SD                     float64 // sample standard deviation (n−1 form); 0 for N < 2
}

// Summarize computes Stats of equally spaced samples with one sort. With no samples
// every level is NaN and SD is 0.
//
// SD uses the sample form with n−1 [U: the common choice, the standard's formula was
// not read, docs/standards.md §1.4].
func Summarize(levels []float64) Stats {
	n := len(levels)
	if n == 0 {
		nan := math.NaN()
		return Stats{Leq: nan, L5: nan, L10: nan, L50: nan, L90: nan, L95: nan, Lmax: nan, Lmin: nan}
	}
	asc := slices.Clone(levels)
	slices.Sort(asc)
	s := Stats{
		N:    n,
		Leq:  Leq(levels),
		L5:   percentileSorted(asc, 5),
		L10:  percentileSorted(asc, 10),
		L50:  percentileSorted(asc, 50),
		L90:  percentileSorted(asc, 90),
		L95:  percentileSorted(asc, 95),
		Lmax: asc[n-1],
		Lmin: asc[0],
	}
	if n >= 2 {
		var mean float64
		for _, l := range levels {
			mean += l
		}
		mean /= float64(n)
		var ss float64
		for _, l := range levels {
			d := l - mean
			ss += d * d
		}
		s.SD = math.Sqrt(ss / float64(n-1))
	}
	return s
}

// Default hour splits of the day-evening-night levels (docs/standards.md §1.3).
const (
	DefaultDayHours   = 16 // GB 3096-2008 day 06:00–22:00
	DefaultNightHours = 8  // GB 3096-2008 night 22:00–06:00
	EUDayHours        = 12 // Directive 2002/49/EC Annex I: 07:00–19:00
	EUEveningHours    = 4  // 19:00–23:00
	EUNightHours      = 8  // 23:00–07:00
	nightPenalty      = 10 // dB added to night levels in Ldn and Lden
	eveningPenalty    = 5  // dB added to evening levels in Lden
)

// Ldn returns the day-night level with a 10 dB night penalty:
// 10·lg((dayHours·10^(0.1·ld) + nightHours·10^(0.1·(ln+10))) / (dayHours+nightHours)).
// Hours of 0 and 0 select the GB 3096 split 16/8 [U: the Ldn hour split is not fixed by
// a standard read, docs/standards.md §1.3; some texts use 15/9]. It returns NaN for negative
// hours or hours adding up to zero.
func Ldn(ld, ln, dayHours, nightHours float64) float64 {
	if dayHours == 0 && nightHours == 0 {
		dayHours, nightHours = DefaultDayHours, DefaultNightHours
	}
	return LeqWeighted([]float64{ld, ln + nightPenalty}, []float64{dayHours, nightHours})
}

// Lden returns the EU day-evening-night level (Directive 2002/49/EC Annex I, docs/standards.md
// §1.3): evening +5 dB, night +10 dB, weighted by the hours of each period. Hours of 0,
// 0 and 0 select the default split 12/4/8. It returns NaN for negative hours or hours
// adding up to zero.
func Lden(lday, levening, lnight float64, dayH, eveningH, nightH float64) float64 {
	if dayH == 0 && eveningH == 0 && nightH == 0 {
		dayH, eveningH, nightH = EUDayHours, EUEveningHours, EUNightHours
	}
	return LeqWeighted(
		[]float64{lday, levening + eveningPenalty, lnight + nightPenalty},
		[]float64{dayH, eveningH, nightH})
}

func clamp(x, lo, hi float64) float64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}
