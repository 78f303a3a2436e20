package reading

import (
	"math"
	"strconv"
	"strings"
)

// RoundHalfEven rounds x to the given number of decimals (negative: to tens, hundreds, …)
// by GB/T 8170 (docs/standards.md §2.3): a dropped part below half rounds down, above half up,
// exactly half makes the last kept digit even; negative numbers round their absolute
// value. x is taken as the shortest decimal that reads back as x, so RoundHalfEven(57.45,
// 1) is 57.4 although the float64 nearest 57.45 is a little above it. Use it for output
// only (HJ 212 carries noise with one decimal: gateway/hj212.FormatValue); compute in full precision. NaN, ±Inf
// and zero are returned unchanged.
func RoundHalfEven(x float64, decimals int) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	// "d.ddde±XX": the first digit is worth 10^exp.
	mant, expText, _ := strings.Cut(strconv.FormatFloat(math.Abs(x), 'e', -1, 64), "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	keep := exp + 1 + decimals // digits at or above 10^-decimals
	if keep >= len(digits) {
		return x
	}
	if keep < 0 { // below a tenth of the rounding unit
		return 0
	}
	kept, drop := []byte(digits[:keep]), digits[keep:]
	up := drop[0] > '5'
	if drop[0] == '5' {
		if strings.TrimRight(drop[1:], "0") != "" {
			up = true
		} else { // exactly half: round to even
			last := byte('0')
			if keep > 0 {
				last = kept[keep-1]
			}
			up = (last-'0')%2 == 1
		}
	}
	if up {
		i := len(kept) - 1
		for ; i >= 0 && kept[i] == '9'; i-- {
			kept[i] = '0'
		}
		if i >= 0 {
			kept[i]++
		} else {
			kept = append([]byte{'1'}, kept...)
		}
	}
	if len(kept) == 0 {
		return 0
	}
	r, err := strconv.ParseFloat(string(kept)+"e"+strconv.Itoa(-decimals), 64)
	if err != nil || r == 0 {
		return r // ParseFloat saturates to ±Inf beyond float64, like x would
	}
	if x < 0 {
		r = -r
	}
	return r
}
