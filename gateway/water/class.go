package water

import (
	"fmt"
	"strconv"
	"strings"
)

// Class is a GB 3838-2002 water-quality class, I (best) to V, or worse than V (劣V).
// The zero value means "no class" (no data, or a parameter the standard does not
// classify). Larger is worse, so the section class is the maximum of the parameter
// classes (docs/standards.md §3.2).
type Class uint8

// The classes of GB 3838-2002 §3 (docs/standards.md §3.1) and 劣V of the 2011 evaluation method
// (docs/standards.md §3.2). The numeric values are what the class_* series carry.
const (
	ClassI          Class = 1 // source water, national nature reserves
	ClassII         Class = 2 // first-grade drinking-water source protection, rare habitats
	ClassIII        Class = 3 // second-grade drinking-water source protection, fishery, swimming
	ClassIV         Class = 4 // general industrial water, non-contact recreation
	ClassV          Class = 5 // agriculture, general landscape
	ClassWorseThanV Class = 6 // 劣V: fails even the class V limit
)

var classNames = [...]struct{ zh, en, conditionZH, conditionEN string }{
	ClassI:   {"I", "I", "优", "excellent"},
	ClassII:  {"II", "II", "优", "excellent"},
	ClassIII: {"III", "III", "良好", "good"},
	ClassIV:  {"IV", "IV", "轻度污染", "lightly polluted"},
	ClassV:   {"V", "V", "中度污染", "moderately polluted"},
	// 劣V is written with the Latin letter V, like the other names.
	ClassWorseThanV: {"劣V", "worse than V", "重度污染", "heavily polluted"},
}

// Valid reports whether c is one of ClassI to ClassWorseThanV.
func (c Class) Valid() bool { return c >= ClassI && c <= ClassWorseThanV }

// Chinese returns the Chinese name of c: "I" to "V" or "劣V" (without the 类 suffix),
// and "" for an invalid class.
func (c Class) Chinese() string {
	if !c.Valid() {
		return ""
	}
	return classNames[c].zh
}

// English returns the English name of c: "I" to "V" or "worse than V", and "" for an
// invalid class.
func (c Class) English() string {
	if !c.Valid() {
		return ""
	}
	return classNames[c].en
}

// String returns the English name of c, or "class(n)" for an invalid one.
func (c Class) String() string {
	if !c.Valid() {
		return fmt.Sprintf("class(%d)", uint8(c))
	}
	return classNames[c].en
}

// Condition returns the qualitative term of c used in Chinese bulletins: 优 (I, II),
// 良好 (III), 轻度污染 (IV), 中度污染 (V), 重度污染 (劣V) (docs/standards.md §3.2 [S]); "" for an
// invalid class.
func (c Class) Condition() string {
	if !c.Valid() {
		return ""
	}
	return classNames[c].conditionZH
}

// ConditionEnglish returns an English rendering of Condition: "excellent", "good",
// "lightly polluted", "moderately polluted", "heavily polluted". The translation is the
// project's; the standards give only the Chinese terms.
func (c Class) ConditionEnglish() string {
	if !c.Valid() {
		return ""
	}
	return classNames[c].conditionEN
}

// ParseClass parses a class as written in configuration or reports: "I" to "V" in
// Latin letters (any case) or the Unicode numerals Ⅰ to Ⅴ, optionally followed by 类,
// "劣V" (劣Ⅴ, 劣V类), "worse than V", or the numbers "1" to "6".
func ParseClass(s string) (Class, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "类"))
	worse := false
	if rest, ok := strings.CutPrefix(t, "劣"); ok {
		worse, t = true, rest
	}
	if strings.EqualFold(t, "worse than V") {
		return ClassWorseThanV, nil
	}
	var c Class
	switch strings.ToUpper(t) {
	case "I", "Ⅰ":
		c = ClassI
	case "II", "Ⅱ":
		c = ClassII
	case "III", "Ⅲ":
		c = ClassIII
	case "IV", "Ⅳ":
		c = ClassIV
	case "V", "Ⅴ":
		c = ClassV
	default:
		if n, err := strconv.Atoi(t); err == nil && !worse && n >= int(ClassI) && n <= int(ClassWorseThanV) {
			return Class(n), nil
		}
		return 0, fmt.Errorf("class %q: want I, II, III, IV, V, 劣V or 1 to 6", s)
	}
	if worse {
		if c != ClassV {
			return 0, fmt.Errorf("class %q: only V has a 劣 (worse than) form", s)
		}
		return ClassWorseThanV, nil
	}
	return c, nil
}

// MarshalText returns the English name, so that a class round-trips through YAML and
// JSON as text; the zero Class (no class, or "the default" in a configuration) is "".
func (c Class) MarshalText() ([]byte, error) {
	if c == 0 {
		return []byte{}, nil
	}
	if !c.Valid() {
		return nil, fmt.Errorf("class %d is not valid", uint8(c))
	}
	return []byte(c.English()), nil
}

// UnmarshalText parses a class with ParseClass; empty text is the zero Class.
func (c *Class) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*c = 0
		return nil
	}
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
