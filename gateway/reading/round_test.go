package reading

import (
	"math"
	"testing"
)

func TestRoundHalfEven(t *testing.T) {
	for _, c := range []struct {
		x    float64
		d    int
		want float64
	}{
		{57.45, 1, 57.4}, {57.35, 1, 57.4}, {12.25, 1, 12.2}, {12.35, 1, 12.4},
		{1.0501, 1, 1.1}, {1.0499, 1, 1.0}, {1.245, 2, 1.24}, {1.235, 2, 1.24},
		{2.5, 0, 2}, {3.5, 0, 4}, {-2.5, 0, -2}, {-57.45, 1, -57.4}, {-0.04, 1, 0},
		{0.05, 1, 0}, {0.051, 1, 0.1}, {0.15, 1, 0.2}, {0.006, 1, 0}, {999.96, 1, 1000},
		{1250, -2, 1200}, {1350, -2, 1400}, {65.67442, 1, 65.7}, {57.403626894942, 1, 57.4},
		{83.33333333333333, 1, 83.3}, {5, 1, 5}, {0, 1, 0}, {1e300, 1, 1e300},
	} {
		if got := RoundHalfEven(c.x, c.d); got != c.want || math.Signbit(got) != math.Signbit(c.want) {
			t.Errorf("RoundHalfEven(%v, %d) = %v, want %v", c.x, c.d, got, c.want)
		}
	}
	if got := RoundHalfEven(math.NaN(), 1); !math.IsNaN(got) {
		t.Errorf("RoundHalfEven(NaN, 1) = %v, want NaN", got)
	}
	if got := RoundHalfEven(math.Inf(-1), 1); !math.IsInf(got, -1) {
		t.Errorf("RoundHalfEven(-Inf, 1) = %v, want -Inf", got)
	}
}
