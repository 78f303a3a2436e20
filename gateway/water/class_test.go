package water

import (
	"encoding/json"
	"testing"
)

func TestClassNames(t *testing.T) {
	for _, c := range []struct {
		class                Class
		zh, en, cond, condEN string
	}{
		{ClassI, "I", "I", "优", "excellent"},
		{ClassII, "II", "II", "优", "excellent"},
		{ClassIII, "III", "III", "良好", "good"},
		{ClassIV, "IV", "IV", "轻度污染", "lightly polluted"},
		{ClassV, "V", "V", "中度污染", "moderately polluted"},
		{ClassWorseThanV, "劣V", "worse than V", "重度污染", "heavily polluted"},
	} {
		if !c.class.Valid() {
			t.Errorf("Class(%d).Valid() = false", c.class)
		}
		if got := c.class.Chinese(); got != c.zh {
			t.Errorf("Class(%d).Chinese() = %q, want %q", c.class, got, c.zh)
		}
		if got := c.class.English(); got != c.en {
			t.Errorf("Class(%d).English() = %q, want %q", c.class, got, c.en)
		}
		if got := c.class.String(); got != c.en {
			t.Errorf("Class(%d).String() = %q, want %q", c.class, got, c.en)
		}
		if got := c.class.Condition(); got != c.cond {
			t.Errorf("Class(%d).Condition() = %q, want %q", c.class, got, c.cond)
		}
		if got := c.class.ConditionEnglish(); got != c.condEN {
			t.Errorf("Class(%d).ConditionEnglish() = %q, want %q", c.class, got, c.condEN)
		}
	}
	for _, c := range []Class{0, 7, 255} {
		if c.Valid() || c.Chinese() != "" || c.English() != "" || c.Condition() != "" || c.ConditionEnglish() != "" {
			t.Errorf("Class(%d): want invalid with empty names", c)
		}
	}
	if got := Class(7).String(); got != "class(7)" {
		t.Errorf("Class(7).String() = %q", got)
	}
}

func TestParseClass(t *testing.T) {
	check := func(in string, want Class) {
		t.Helper()
		got, err := ParseClass(in)
		if err != nil || got != want {
			t.Errorf("ParseClass(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	check("I", ClassI)
	check("ii", ClassII)
	check(" III ", ClassIII)
	check("Ⅲ类", ClassIII)
	check("IV类", ClassIV)
	check("Ⅴ", ClassV)
	check("劣V", ClassWorseThanV)
	check("劣Ⅴ类", ClassWorseThanV)
	check("worse than V", ClassWorseThanV)
	check("Worse Than V", ClassWorseThanV)
	check("3", ClassIII)
	check("6", ClassWorseThanV)
	for _, bad := range []string{"", "0", "7", "VI", "劣IV", "劣6", "three", "劣"} {
		if got, err := ParseClass(bad); err == nil {
			t.Errorf("ParseClass(%q) = %v, want error", bad, got)
		}
	}
	// Every name round-trips.
	for c := ClassI; c <= ClassWorseThanV; c++ {
		check(c.Chinese(), c)
		check(c.English(), c)
	}
}

func TestClassText(t *testing.T) {
	var v struct{ Target Class }
	if err := json.Unmarshal([]byte(`{"Target":"劣V"}`), &v); err != nil || v.Target != ClassWorseThanV {
		t.Fatalf("Unmarshal 劣V = %v, %v", v.Target, err)
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) != `{"Target":"worse than V"}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"Target":"VI"}`), &v); err == nil {
		t.Errorf("Unmarshal VI: want error")
	}
	if _, err := Class(7).MarshalText(); err == nil {
		t.Errorf("Class(7).MarshalText(): want error")
	}
	// The zero Class (the default target) round-trips as "".
	v.Target = 0
	b, err = json.Marshal(v)
	if err != nil || string(b) != `{"Target":""}` {
		t.Errorf("Marshal zero = %s, %v", b, err)
	}
	v.Target = ClassII
	if err := json.Unmarshal(b, &v); err != nil || v.Target != 0 {
		t.Errorf("Unmarshal %s = %v, %v, want 0", b, v.Target, err)
	}
}
