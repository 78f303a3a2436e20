package reading

import (
	"strings"
	"testing"
)

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

func TestCheckQuantity(t *testing.T) {
	for name, want := range map[string]string{
		"pm25":           "",
		"la":             "",
		"pm2.5":          `unknown quantity "pm2.5" (did you mean "pm25"?)`,
		"LA":             `unknown quantity "LA" (did you mean "la"?)`,
		"uptime":         `"uptime" is one of the gateway's own health quantities, not a measurement`,
		"buffer_dropped": `"buffer_dropped" is one of the gateway's own health quantities, not a measurement`,
	} {
		got := ""
		if err := CheckQuantity(name); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("CheckQuantity(%q) = %q, want %q", name, got, want)
		}
	}
	if err := CheckQuantity("zzzzzzzzzz"); err == nil || !strings.Contains(err.Error(), "(known: ") || strings.Contains(err.Error(), "uptime") {
		t.Errorf("CheckQuantity(far from all) = %v, want the list of measurement quantities", err)
	}
}
