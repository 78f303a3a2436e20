package reading

import "testing"

// TestWaterCODBOD5 checks the catalog entries of COD and BOD5 (mg/L, like the other
// GB 3838-2002 concentrations) and their unit conversion: every Table 1 limit of
// either (COD 15, 20, 30, 40; BOD5 3, 4, 6, 10 mg/L, docs/standards.md §3.1) given in
// ug/L or ppb comes out as exactly that limit, so a converted reading is classified
// like one sent in mg/L (15000 ug/L × 0.001 = 15 mg/L and so on, each product exact
// in float64).
func TestWaterCODBOD5(t *testing.T) {
	for _, c := range []struct {
		name   string
		max    float64
		limits []float64
	}{
		{"cod", 2000, []float64{15, 20, 30, 40}},
		{"bod5", 1000, []float64{3, 4, 6, 10}},
	} {
		q, ok := Lookup(c.name)
		if !ok || q.Unit != "mg/L" || q.Domain != Water || !q.Plausible(0) || !q.Plausible(c.max) || q.Plausible(-0.1) || q.Plausible(c.max+1) {
			t.Errorf("Lookup(%s) = %+v, %v; want mg/L, water, 0..%v", c.name, q, ok, c.max)
		}
		if err := CheckQuantity(c.name); err != nil {
			t.Errorf("CheckQuantity(%s) = %v", c.name, err)
		}
		for _, l := range c.limits {
			for _, u := range []struct {
				unit string
				v    float64
			}{{"mg/L", l}, {"g/m3", l}, {"ppm", l}, {"ug/L", l * 1000}, {"µg/L", l * 1000}, {"ppb", l * 1000}} {
				if got, err := Convert(c.name, u.v, u.unit); err != nil || got != l {
					t.Errorf("Convert(%s, %v, %s) = %v, %v; want exactly %v", c.name, u.v, u.unit, got, err, l)
				}
			}
		}
		if _, err := Convert(c.name, 1, "mg/m3"); err == nil {
			t.Errorf("Convert(%s, 1, mg/m3) accepted an air unit", c.name)
		}
	}
}
