package mqttpub

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/envgate/envgate/gateway/reading"
)

func TestParseTopic(t *testing.T) {
	r := reading.New(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), "canal-east-3", "aq-1", "pm25", 35)
	for _, tc := range []struct{ tmpl, want string }{
		{DefaultTopic, "envgate/gw-7/canal-east-3/aq-1/air/pm25"},
		{"city/{site}-{device}/{quantity}", "city/canal-east-3-aq-1/pm25"},
		{"fixed", "fixed"},
		{"{gateway}", "gw-7"},
		{"a/{domain}{quantity}/b", "a/airpm25/b"},
		{"运河/{site}", "运河/canal-east-3"},
	} {
		topic, err := ParseTopic(tc.tmpl)
		if err != nil {
			t.Errorf("ParseTopic(%q) = %v, want a topic", tc.tmpl, err)
			continue
		}
		if got := string(topic.appendTopic(nil, r, "gw-7")); got != tc.want {
			t.Errorf("ParseTopic(%q) makes %q, want %q", tc.tmpl, got, tc.want)
		}
		if got := topic.String(); got != tc.tmpl {
			t.Errorf("ParseTopic(%q).String() = %q", tc.tmpl, got)
		}
	}
	for _, tc := range []struct{ tmpl, want string }{
		{"", "must not be empty"},
		{"a/+/b", `wildcard '+' at offset 2`},
		{"a/#", `wildcard '#' at offset 2`},
		{"a/{site}#", `wildcard '#' at offset 8`},
		{"/a", "empty level at offset 0"},
		{"a/", "empty level at offset 2"},
		{"a//b", "empty level at offset 2"},
		{"$SYS/x", `must not start with "$"`},
		{"a/{sensor}", "unknown placeholder {sensor} at offset 2 (known: {gateway}, {site}, {device}, {domain}, {quantity})"},
		{"a/{site", "unclosed '{' at offset 2"},
		{"a/site}", "'}' without '{' at offset 6"},
		{"a/{}", "unknown placeholder {} at offset 2"},
		{"a\x00b", "NUL character at offset 1"},
		{"a\xffb", "not valid UTF-8"},
		{strings.Repeat("a", MaxTemplateLen+1), "longer than 1024 bytes"},
	} {
		_, err := ParseTopic(tc.tmpl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTopic(%q) = %v, want an error with %q", tc.tmpl, err, tc.want)
		}
	}
}

// FuzzParseTopic checks that a template ParseTopic takes round-trips through String and
// makes, for a valid reading, a topic a broker takes: UTF-8 without NUL or wildcards,
// no empty level, within MQTT's 65535 bytes.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{DefaultTopic, "a/{site}-{device}", "{", "}", "a//b", "+", "#", "$x", "{gateway}/{domain}",
		"a/{quantity}{quantity}", "a/{unknown}", "\x00", "é/{site}"} {
		f.Add(s)
	}
	r := reading.New(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), "canal-east-3", "aq-1", "pm25", 35)
	f.Fuzz(func(t *testing.T, s string) {
		topic, err := ParseTopic(s)
		if err != nil {
			if topic != nil {
				t.Fatalf("ParseTopic(%q) returned a topic and %v", s, err)
			}
			return
		}
		if got := topic.String(); got != s {
			t.Fatalf("ParseTopic(%q).String() = %q", s, got)
		}
		name := string(topic.appendTopic(nil, r, "gw-7"))
		switch {
		case name == "", len(name) > 65535, !utf8.ValidString(name), strings.ContainsAny(name, "+#\x00"), name[0] == '$':
			t.Fatalf("ParseTopic(%q) makes the invalid topic %q", s, name)
		}
		for _, level := range strings.Split(name, "/") {
			if level == "" {
				t.Fatalf("ParseTopic(%q) makes %q with an empty level", s, name)
			}
		}
	})
}
