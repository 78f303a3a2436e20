package reading

import "testing"

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"interval", "interval", 0}, {"intervall", "interval", 1}, {"intreval", "interval", 2},
		{"sim", "timeout", 3}, {"", "ab", 2}, {"运河", "运", 1},
	} {
		if got := EditDistance(tc.a, tc.b, 3); got != tc.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
