package reading

import "testing"

func TestReserved(t *testing.T) {
	for _, tc := range []struct {
		device, quantity string
		want             bool
	}{
		{"noise-1", "la", false},
		{"gateway", "la", true},
		{"Gateway", "pm25", true},
		{"noise-1", "buffer_dropped", true},
		{"gateway", "uptime", true},
		{"gateway-2", "la", false},
		{"noise-1", "no_such_quantity", false},
	} {
		if got := Reserved(tc.device, tc.quantity); got != tc.want {
			t.Errorf("Reserved(%q, %q) = %v, want %v", tc.device, tc.quantity, got, tc.want)
		}
	}
	for _, q := range Quantities() {
		if got := IsHealthQuantity(q.Name); got != (q.Domain == Health) {
			t.Errorf("IsHealthQuantity(%q) = %v, want %v", q.Name, got, q.Domain == Health)
		}
	}
}
