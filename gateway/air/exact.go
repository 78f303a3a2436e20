package air

import (
	"math"
	"math/big"
	"strconv"
)

// Exact decimal arithmetic for the index (standards §2.3: float noise can turn an exact
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

func pow10(d int) *big.Rat {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(d))), nil)
	r := new(big.Rat).SetInt(p)
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

// halfEven rounds x to d decimals by GB/T 8170 (standards §2.3): below half down, above
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
// by GB/T 8170 (standards §2.3), v taken as its shortest decimal: RoundHalfEven(34.5, 0)
// is 34, RoundHalfEven(0.15, 1) is 0.2. It is for output, e.g. the good-day share with
// one decimal (standards §2.9); IAQI applies the same rule itself where HJ 633-2026
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
