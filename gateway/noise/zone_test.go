package noise

import "testing"

func TestLimits(t *testing.T) {
	// GB 3096-2008 (docs/standards.md §1.1).
	for _, c := range []struct {
		zone       Zone
		day, night float64
	}{
		{"0", 50, 40}, {"1", 55, 45}, {"2", 60, 50}, {"3", 65, 55}, {"4a", 70, 55}, {"4b", 70, 60},
	} {
		day, night, ok := Limits(c.zone)
		if !ok || day != c.day || night != c.night {
			t.Errorf("Limits(%q) = %v, %v, %v, want %v, %v, true", c.zone, day, night, ok, c.day, c.night)
		}
	}
	// Not classes: the 1993 single class 4, spelling variants, nothing.
	for _, z := range []Zone{"4", "4A", "", "5", " 1"} {
		if day, night, ok := Limits(z); ok {
			t.Errorf("Limits(%q) = %v, %v, true, want ok false", z, day, night)
		}
	}
}
