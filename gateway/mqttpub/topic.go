package mqttpub

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/envgate/envgate/gateway/reading"
)

// Placeholders a topic template may use, each replaced by a name of the reading (or of
// the box, for {gateway}). Every value is a reading.CheckName name or a catalog name:
// never empty, at most reading.MaxNameLen bytes, without '/', '+', '#' or NUL, so a
// template that passes ParseTopic makes a valid topic name for every valid reading.
var Placeholders = []string{"gateway", "site", "device", "domain", "quantity"}

// MaxTemplateLen bounds a topic template. MQTT 3.1.1 §1.5.3 allows topic names of up
// to 65535 bytes; with five placeholders of at most 64 bytes each a template of 1 KiB
// stays far below that, and no sensible topic is longer.
const MaxTemplateLen = 1024

// DefaultTopic is the topic template of a sink that names none: the box first, so a
// central subscriber can take one box (envgate/<gateway>/#) or one quantity across the
// fleet (envgate/+/+/+/+/pm25).
const DefaultTopic = "envgate/{gateway}/{site}/{device}/{domain}/{quantity}"

// A Topic is a parsed topic template: literal text and placeholders, in order.
type Topic struct {
	parts []part
}

// part is a literal (field < 0) or a placeholder (field: index into Placeholders).
type part struct {
	lit   string
	field int
}

// ParseTopic parses a topic template: a topic name (MQTT 3.1.1 §4.7) whose text may hold
// placeholders {gateway}, {site}, {device}, {domain} and {quantity}, anywhere in a level
// ("sensors/{site}-{device}" is fine). It refuses what a broker would refuse or what
// would publish somewhere unintended: an empty template, wildcards '+' and '#' (not
// allowed in a topic name, §4.7.1.1), empty levels (a leading, trailing or doubled '/'),
// a leading '$' (reserved for the broker's own topics, §4.7.2), NUL, invalid UTF-8,
// unknown or unclosed placeholders, and templates longer than MaxTemplateLen. The error
// says what is wrong and where (a byte offset).
func ParseTopic(s string) (*Topic, error) {
	switch {
	case s == "":
		return nil, errors.New("must not be empty")
	case len(s) > MaxTemplateLen:
		return nil, fmt.Errorf("longer than %d bytes", MaxTemplateLen)
	case !utf8.ValidString(s):
		return nil, errors.New("not valid UTF-8")
	case s[0] == '$':
		return nil, errors.New(`must not start with "$": such topics are the broker's own`)
	}
	if i := strings.IndexAny(s, "+#\x00"); i >= 0 {
		if s[i] == 0 {
			return nil, fmt.Errorf("NUL character at offset %d", i)
		}
		return nil, fmt.Errorf("wildcard %q at offset %d: a topic to publish to names one topic, without + or #", s[i], i)
	}
	t := &Topic{}
	level := 0 // start of the current level
	for i := 0; i < len(s); {
		switch s[i] {
		case '/':
			if i == level {
				return nil, fmt.Errorf("empty level at offset %d (a leading, trailing or doubled '/')", i)
			}
			level = i + 1
			t.addLit("/")
			i++
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed '{' at offset %d", i)
			}
			name := s[i+1 : i+end]
			field := -1
			for k, p := range Placeholders {
				if p == name {
					field = k
				}
			}
			if field < 0 {
				return nil, fmt.Errorf("unknown placeholder {%s} at offset %d (known: {%s})", name, i, strings.Join(Placeholders, "}, {"))
			}
			t.parts = append(t.parts, part{field: field})
			i += end + 1
		case '}':
			return nil, fmt.Errorf("'}' without '{' at offset %d", i)
		default:
			j := i
			for j < len(s) && s[j] != '/' && s[j] != '{' && s[j] != '}' {
				j++
			}
			t.addLit(s[i:j])
			i = j
		}
	}
	if level == len(s) {
		return nil, fmt.Errorf("empty level at offset %d (a leading, trailing or doubled '/')", len(s))
	}
	return t, nil
}

// addLit appends literal text, merging it with a literal before it.
func (t *Topic) addLit(s string) {
	if n := len(t.parts); n > 0 && t.parts[n-1].field < 0 {
		t.parts[n-1].lit += s
		return
	}
	t.parts = append(t.parts, part{lit: s, field: -1})
}

// String returns the template in its source form.
func (t *Topic) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.field < 0 {
			b.WriteString(p.lit)
		} else {
			b.WriteString("{" + Placeholders[p.field] + "}")
		}
	}
	return b.String()
}

// appendTopic appends the topic of r, published by the box gatewayID, to dst.
func (t *Topic) appendTopic(dst []byte, r reading.Reading, gatewayID string) []byte {
	for _, p := range t.parts {
		switch p.field {
		case -1:
			dst = append(dst, p.lit...)
		case 0:
			dst = append(dst, gatewayID...)
		case 1:
			dst = append(dst, r.Site...)
		case 2:
			dst = append(dst, r.Device...)
		case 3:
			q, _ := reading.Lookup(r.Quantity)
			dst = append(dst, q.Domain...)
		case 4:
			dst = append(dst, r.Quantity...)
		}
	}
	return dst
}
