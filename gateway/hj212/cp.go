package hj212

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Field is one "name=value" of the command parameters.
type Field struct{ Name, Value string }

// ParseCP splits command parameters into groups (separated by ';': one per
// pollutant or parameter) of fields (separated by ',': the values of one pollutant).
// Every field needs a '=' and a name; an empty group is an error. The error names
// the group and field by position, counting from 1.
func ParseCP(cp string) ([][]Field, error) {
	if cp == "" {
		return nil, nil
	}
	var groups [][]Field
	for gi, g := range strings.Split(cp, ";") {
		if g == "" {
			return nil, fmt.Errorf("CP group %d: empty", gi+1)
		}
		var fs []Field
		for fi, f := range strings.Split(g, ",") {
			name, v, ok := strings.Cut(f, "=")
			if !ok || name == "" {
				return nil, fmt.Errorf("CP group %d, field %d %q: want name=value", gi+1, fi+1, f)
			}
			fs = append(fs, Field{name, v})
		}
		groups = append(groups, fs)
	}
	return groups, nil
}

// Param returns the value of the first field named name in any group of cp.
func Param(groups [][]Field, name string) (string, bool) {
	for _, g := range groups {
		for _, f := range g {
			if f.Name == name {
				return f.Value, true
			}
		}
	}
	return "", false
}

// Factor is one pollutant (or noise statistic) of a data record: its code and its
// values by suffix, in the order sent ("Rtd" "47.3", "Flag" "N").
type Factor struct {
	Code   string
	Values []Field // Name is the suffix: Rtd, Min, Avg, Max, Cou, Data, DayData, NightData, Flag, EFlag, SampleTime, ...
}

// Value returns the value of suffix.
func (f Factor) Value(suffix string) (string, bool) {
	for _, v := range f.Values {
		if v.Name == suffix {
			return v.Value, true
		}
	}
	return "", false
}

// Record is the CP of a data upload (CN 2011, 2051, 2061, 2031): the record's time
// and its factors.
type Record struct {
	DataTime time.Time // real-time data: the sampling instant; others: the period's start
	Factors  []Factor
}

// TimeLayout is the layout of DataTime, SystemTime, BeginTime and EndTime
// (YYYYMMDDhhmmss), in the station's local time.
const TimeLayout = "20060102150405"

// ParseRecord reads a data upload's command parameters: DataTime (required, in loc)
// and the factors. A field "code-suffix" belongs to the factor code; a field without
// '-' other than DataTime is a parameter and is ignored. A factor's fields may be in
// one group (the standard's form) or spread over several. Errors name the field.
func ParseRecord(cp string, loc *time.Location) (Record, error) {
	groups, err := ParseCP(cp)
	if err != nil {
		return Record{}, err
	}
	var r Record
	hasTime := false
	index := map[string]int{}
	for _, g := range groups {
		for _, f := range g {
			code, suffix, ok := SplitFactorField(f.Name)
			if !ok {
				if f.Name == "DataTime" {
					if hasTime {
						return Record{}, errors.New("CP field DataTime: repeated")
					}
					t, err := ParseTime(f.Value, loc)
					if err != nil {
						return Record{}, fmt.Errorf("CP field DataTime=%q: want YYYYMMDDhhmmss", f.Value)
					}
					r.DataTime, hasTime = t, true
				}
				continue
			}
			if code == "" || suffix == "" {
				return Record{}, fmt.Errorf("CP field %q: want code-suffix", f.Name)
			}
			i, ok := index[code]
			if !ok {
				i = len(r.Factors)
				index[code] = i
				r.Factors = append(r.Factors, Factor{Code: code})
			}
			if _, dup := r.Factors[i].Value(suffix); dup {
				return Record{}, fmt.Errorf("CP field %s: repeated", f.Name)
			}
			r.Factors[i].Values = append(r.Factors[i].Values, Field{suffix, f.Value})
		}
	}
	if !hasTime {
		return Record{}, errors.New("CP: no DataTime")
	}
	return r, nil
}

// ParseTime reads a DataTime, SystemTime, BeginTime or EndTime: exactly 14 digits
// (time.Parse alone would take a fraction of a second after them).
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if !digits(s, 14) {
		return time.Time{}, &time.ParseError{Layout: "YYYYMMDDhhmmss", Value: s, Message: ": want 14 digits"}
	}
	return time.ParseInLocation(TimeLayout, s, loc)
}

// SplitFactorField splits a CP field name "code-suffix" (a21026-Rtd) at its last '-'
// into the factor code and the suffix; ok is false for a name without '-' (a parameter
// such as DataTime). Either part may be empty.
func SplitFactorField(name string) (code, suffix string, ok bool) {
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		return name[:i], name[i+1:], true
	}
	return name, "", false
}

// Group writes one CP group: fields joined by ','.
func Group(fields ...Field) string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.Name)
		b.WriteByte('=')
		b.WriteString(f.Value)
	}
	return b.String()
}

// FactorGroup writes a factor's group: "code-suffix=value" fields joined by ','.
func FactorGroup(code string, values ...Field) string {
	fs := make([]Field, len(values))
	for i, v := range values {
		fs[i] = Field{code + "-" + v.Name, v.Value}
	}
	return Group(fs...)
}

// Split builds the packets of one record: each packet is head with CP = the common
// groups (such as DataTime, repeated in every part) followed by as many of groups as
// keep its data segment within MaxSegment. One packet is returned unchanged (no
// Flag bit D); several get bit D and PNUM, PNO, and share head's QN. A group that
// cannot fit even alone is an error.
func Split(head Packet, common []string, groups []string) ([]Packet, error) {
	if head.Flag < 0 {
		head.Flag = Version2017
	}
	whole := head
	whole.Flag &^= FlagSplit
	whole.PNUM, whole.PNO = 0, 0
	whole.CP = strings.Join(append(append([]string{}, common...), groups...), ";")
	if seg, err := whole.Segment(); err != nil {
		return nil, err
	} else if len(seg) <= MaxSegment {
		return []Packet{whole}, nil
	}
	// Parts carry PNUM and PNO of up to 4 digits each: reserve them.
	part := whole
	part.Flag |= FlagSplit
	part.PNUM, part.PNO = 9999, 9999
	part.CP = strings.Join(common, ";")
	base, err := part.Segment()
	if err != nil {
		return nil, err
	}
	budget := MaxSegment - len(base)
	var cps []string
	cur, n := strings.Builder{}, 0
	cur.WriteString(part.CP)
	for _, g := range groups {
		add := len(g)
		if cur.Len() > 0 {
			add++
		}
		if add > budget {
			return nil, fmt.Errorf("CP group %.40q… of %d characters does not fit in one packet", g, len(g))
		}
		if n+add > budget {
			cps = append(cps, cur.String())
			cur.Reset()
			cur.WriteString(part.CP)
			n = 0
			add = len(g)
			if cur.Len() > 0 {
				add++
			}
		}
		if cur.Len() > 0 {
			cur.WriteByte(';')
		}
		cur.WriteString(g)
		n += add
	}
	cps = append(cps, cur.String())
	out := make([]Packet, len(cps))
	for i, cp := range cps {
		p := part
		p.PNUM, p.PNO, p.CP = len(cps), i+1, cp
		out[i] = p
	}
	return out, nil
}
