package air

import (
	"math"
	"math/big"
	"strconv"
)

// Exact decimal arithmetic for the index (docs/standards.md §2.3: float noise can turn an exact
// 50 into 50.0000001 and its ceiling into 51). A float64 concentration is taken as the
// shortest decimal that reads back as it (what the sensor or the mean printed), so 35.9
// is 359/10 and not 35.8999999999999985789…, and every step after that is rational.

// decimal returns the exact value of the shortest decimal representation of a finite v.
func decimal(v float64) *big.Rat {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'g', -1, 64))
	if !ok { // cannot happen for a finite float64
		r.SetFloat64(v)
	}
	return r
}

// rat parses a decimal constant of a table.
func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("air: bad table constant " + s)
	}
	return r
}

// pow10 returns 10^d as a new Rat.
func pow10(d int) *big.Rat {
	r := new(big.Rat).SetInt(pow10Int(abs(d)))
	if d < 0 {
		r.Inv(r)
	}
	return r
}

func abs(d int) int {
	if d < 0 {
		return -d
	}
	return d
}

// floorInt returns ⌊x⌋.
func floorInt(x *big.Rat) *big.Int {
	// Euclidean division by the positive denominator is the floor.
	return new(big.Int).Div(x.Num(), x.Denom())
}

// ceilInt returns ⌈x⌉.
func ceilInt(x *big.Rat) *big.Int {
	q := floorInt(x)
	if !x.IsInt() {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// halfEven rounds x to d decimals by GB/T 8170 (docs/standards.md §2.3): below half down, above
// half up, exactly half to an even last digit; a negative x rounds its absolute value.
func halfEven(x *big.Rat, d int) *big.Rat {
	if x.Sign() < 0 {
		r := halfEven(new(big.Rat).Neg(x), d)
		return r.Neg(r)
	}
	scale := pow10(d)
	y := new(big.Rat).Mul(x, scale)
	q := floorInt(y)
	frac := new(big.Rat).Sub(y, new(big.Rat).SetInt(q))
	switch frac.Cmp(big.NewRat(1, 2)) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	return new(big.Rat).Quo(new(big.Rat).SetInt(q), scale)
}

// truncate drops the digits of x ≥ 0 after d decimals (EPA-454/B-24-002 step 1).
func truncate(x *big.Rat, d int) *big.Rat {
	scale := pow10(d)
	q := floorInt(new(big.Rat).Mul(x, scale))
	return new(big.Rat).Quo(new(big.Rat).SetInt(q), scale)
}

// halfUp rounds x ≥ 0 to the nearest integer, x.5 up (EPA-454/B-24-002 step 4).
func halfUp(x *big.Rat) *big.Int {
	return floorInt(new(big.Rat).Add(x, big.NewRat(1, 2)))
}

// clampInt converts to int, saturating at ±MaxInt32 (an index that large is an absurd
// concentration; int is 32 bits on the ARM boxes).
func clampInt(i *big.Int) int {
	switch {
	case i.Cmp(big.NewInt(math.MaxInt32)) > 0:
		return math.MaxInt32
	case i.Cmp(big.NewInt(-math.MaxInt32)) < 0:
		return -math.MaxInt32
	}
	return int(i.Int64())
}

func toFloat(x *big.Rat) float64 {
	f, _ := x.Float64()
	return f
}

// RoundHalfEven rounds v to the given number of decimals (negative: tens, hundreds, …)
// by GB/T 8170 (docs/standards.md §2.3), v taken as its shortest decimal: RoundHalfEven(34.5, 0)
// is 34, RoundHalfEven(0.15, 1) is 0.2. It is for output, e.g. the good-day share with
// one decimal (docs/standards.md §2.9); IAQI applies the same rule itself where HJ 633-2026
// requires it. NaN, ±Inf and zero are returned unchanged; a result of zero is +0.
func RoundHalfEven(v float64, decimals int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	if decimals > 400 || decimals < -400 { // beyond float64's range either way
		if decimals > 0 {
			return v
		}
		return 0
	}
	r := toFloat(halfEven(decimal(v), decimals))
	if r == 0 {
		return 0
	}
	return r
}

// MeanDigits is the number of significant digits a mean (or NowCast) keeps: the exact
// mean of its inputs, rounded by GB/T 8170 to the most digits a float64 holds exactly
// (any decimal of 15 significant digits reads back from its float64 unchanged). So a
// mean that is a short decimal, such as 4.45 or 9.1, is stored as that decimal.
const MeanDigits = 15

// ConcentrationDigits is the number of significant digits of a concentration that IAQI
// and Reference.Express use: a float64 handed to them is read as its shortest decimal
// rounded to 12 significant digits. No analyser resolves 12 digits; the digits after
// them are the binary noise of a unit conversion (a relative error of a few 1e-16,
// more than a thousand times smaller than the half step of the 12th digit), which must
// not decide a GB/T 8170 tie or a US truncation: 199.99999999999997 ppb is 200.
const ConcentrationDigits = 12

// roundSig rounds x to digits significant digits by GB/T 8170 (halfEven).
func roundSig(x *big.Rat, digits int) *big.Rat {
	if x.Sign() == 0 {
		return new(big.Rat)
	}
	// k: 10^(k−1) ≤ |x| < 10^k. Estimate from the bit lengths of numerator and
	// denominator, then correct (the estimate is off by at most one or two).
	ax := new(big.Rat).Abs(x)
	k := int(float64(ax.Num().BitLen()-ax.Denom().BitLen()) * math.Log10(2))
	for ax.Cmp(pow10(k)) >= 0 {
		k++
	}
	for ax.Cmp(pow10(k-1)) < 0 {
		k--
	}
	return halfEven(x, digits-k)
}

// snap returns the float64 c read as a concentration: its shortest decimal rounded to
// ConcentrationDigits significant digits.
func snap(c float64) *big.Rat {
	var buf [32]byte
	if m, _ := decParts(strconv.AppendFloat(buf[:0], c, 'e', -1, 64)); m > -1e12 && m < 1e12 {
		return decimal(c) // at most 12 digits already
	}
	return roundSig(decimal(c), ConcentrationDigits)
}

// exactSum is the exact sum of float64 values read as their shortest decimals: the
// integer num times 10^exp. The mean of decimal readings is then exact, not a float
// sum whose noise grows with the count (a day of 4.45 summed in float64 averaged to
// 4.450000000000002).
type exactSum struct {
	num big.Int
	exp int
	n   int
	t   big.Int // scratch
	// inf is the float sum of the values that are not finite: ±Inf or NaN then is the
	// mean, as with a float sum.
	inf float64
}

// add adds v.
func (s *exactSum) add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		s.inf += v
		s.n++
		return
	}
	var buf [32]byte
	m, e := decParts(strconv.AppendFloat(buf[:0], v, 'e', -1, 64))
	switch {
	case s.num.Sign() == 0:
		s.exp = e
	case e < s.exp:
		s.num.Mul(&s.num, pow10Int(s.exp-e))
		s.exp = e
	}
	s.t.SetInt64(m)
	if e > s.exp {
		s.t.Mul(&s.t, pow10Int(e-s.exp))
	}
	s.num.Add(&s.num, &s.t)
	s.n++
}

// mean returns the exact mean rounded to MeanDigits significant digits; NaN for none.
func (s *exactSum) mean() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	if s.inf != 0 || math.IsNaN(s.inf) {
		return s.inf
	}
	x := new(big.Rat).SetFrac(&s.num, big.NewInt(int64(s.n)))
	return toFloat(roundSig(x.Mul(x, pow10(s.exp)), MeanDigits))
}

// decParts parses the 'e' format of strconv ("-4.45e+00") into an integer mantissa of
// at most 17 digits and a power of ten: −445, −2.
func decParts(b []byte) (mant int64, exp int) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	digits := 0
	i := 0
	for ; i < len(b) && b[i] != 'e'; i++ {
		if b[i] == '.' {
			continue
		}
		mant = mant*10 + int64(b[i]-'0')
		digits++
	}
	e, _ := strconv.Atoi(string(b[i+1:]))
	if neg {
		mant = -mant
	}
	return mant, e - (digits - 1)
}

// pow10Int returns 10^d, d ≥ 0; the small powers are shared and must not be modified.
func pow10Int(d int) *big.Int {
	if d < len(smallPow10) {
		return smallPow10[d]
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil)
}

var smallPow10 = func() []*big.Int {
	p := make([]*big.Int, 40)
	for i := range p {
		p[i] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(i)), nil)
	}
	return p
}()
