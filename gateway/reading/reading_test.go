package reading

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode"
)

func TestValidate(t *testing.T) {
	now := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	good := New(now, "canal-east", "noise-1", "la", 55.2)
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v, want nil", good, err)
	}
	check := func(name string, mutate func(*Reading), want string) {
		t.Helper()
		r := good
		mutate(&r)
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v, want error containing %q", name, err, want)
		}
	}
	check("unknown quantity", func(r *Reading) { r.Quantity = "pm2.5" }, `unknown quantity "pm2.5"`)
	check("wrong unit", func(r *Reading) { r.Unit = "dB" }, `unit "dB", want "dB(A)"`)
	check("empty site", func(r *Reading) { r.Site = "" }, "site: must not be empty")
	check("bad device", func(r *Reading) { r.Device = "a b" }, `device: character ' ' not allowed`)
	check("zero time", func(r *Reading) { r.Time = time.Time{} }, "time is zero")
	check("NaN", func(r *Reading) { r.Value = math.NaN() }, "not a finite number")
	check("Inf", func(r *Reading) { r.Value = math.Inf(1) }, "not a finite number")
	check("quality", func(r *Reading) { r.Quality = 9 }, "unknown quality 9")
	// Issue 10: times after 2262 overflowed the buffer's record encoder (UnixNano).
	check("after 2262", func(r *Reading) { r.Time = time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC) },
		"time 2263-01-01T00:00:00Z outside 1970-01-01 to 2200-01-01")
	check("year 2200", func(r *Reading) { r.Time = MaxTime }, "outside 1970-01-01 to 2200-01-01")
	check("before 1970", func(r *Reading) { r.Time = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }, "outside 1970-01-01")
	edge := good
	edge.Time = MaxTime.Add(-time.Nanosecond)
	if err := edge.Validate(); err != nil {
		t.Errorf("Validate at %v = %v, want nil", edge.Time, err)
	}
}

func TestCheckNameAcceptsCJK(t *testing.T) {
	for _, s := range []string{"运河东-3", "box_017", "a.b"} {
		if err := CheckName(s); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", s, err)
		}
	}
	if err := CheckName(strings.Repeat("x", MaxNameLen+1)); err == nil {
		t.Errorf("CheckName(65 bytes) = nil, want error")
	}
}

func TestCatalogIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range Quantities() {
		if seen[q.Name] {
			t.Errorf("quantity %q listed twice", q.Name)
		}
		seen[q.Name] = true
		if q.Name != strings.ToLower(q.Name) || strings.ContainsAny(q.Name, " .-") {
			t.Errorf("quantity %q: names are lowercase snake_case field keys", q.Name)
		}
		if strings.HasSuffix(q.Name, "_quality") {
			t.Errorf("quantity %q: the _quality suffix is reserved for quality fields", q.Name)
		}
		if q.Min >= q.Max || q.Unit == "" || q.Doc == "" || q.Domain == "" {
			t.Errorf("quantity %+v: incomplete entry", q)
		}
		if got, ok := Lookup(q.Name); !ok || got != q {
			t.Errorf("Lookup(%q) = %+v, %v", q.Name, got, ok)
		}
	}
}

// checkNameRef is CheckName's rule on runes alone, without the ASCII table.
func checkNameRef(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for _, c := range s {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// CheckName's ASCII fast path (issue 14) accepts exactly what the rune rule accepts.
func FuzzCheckName(f *testing.F) {
	for c := range 256 {
		f.Add(string([]byte{byte(c)}))
		f.Add("noise-" + string([]byte{byte(c)}) + "1")
	}
	for _, s := range []string{"canal-east_3.a", "噪声-1", "ÄÖ", "a b", "", strings.Repeat("x", MaxNameLen), strings.Repeat("x", MaxNameLen+1), "\xff\xfe", "x\u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := CheckName(s) == nil, checkNameRef(s); got != want {
			t.Fatalf("CheckName(%q) accepts: %v, the rune rule: %v", s, got, want)
		}
	})
}
