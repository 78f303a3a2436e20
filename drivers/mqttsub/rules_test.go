package mqttsub

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBrokerURL(t *testing.T) {
	const want = "must be tcp://, mqtt://, ssl:// or mqtts:// with a host and an optional port, such as ssl://broker.example:8883"
	for _, tc := range []struct {
		in, url, msg string // url "" means not valid
	}{
		{"tcp://broker.local:1883", "tcp://broker.local:1883", ""},
		{"ssl://broker.local:8883", "ssl://broker.local:8883", ""},
		{"mqtt://broker.local", "mqtt://broker.local:1883", ""},
		{"mqtts://broker.local", "mqtts://broker.local:8883", ""},
		{"MQTTS://Broker.local/", "mqtts://Broker.local:8883", ""},
		{"tcp://[fd00::5]:1884", "tcp://[fd00::5]:1884", ""},
		{"tcp://10.0.0.5", "tcp://10.0.0.5:1883", ""},
		{"tcp://user:pw@h:1883", "", "must not hold a user or password: use username and password_file"},
		{"", "", "required"},
		{"http://h:1883", "", want},
		{"ws://h:80/mqtt", "", want},
		{"tcp://h:", "", want},
		{"tcp://h:0", "", want},
		{"tcp://h:01883", "", want},
		{"tcp://h:65536", "", want},
		{"tcp://:1883", "", want},
		{"tcp://h:1883/topic", "", want},
		{"tcp://h:1883?x=1", "", want},
		{"tcp://h:1883#x", "", want},
		{"h:1883", "", want},
		{"tcp:h", "", want},
	} {
		u, msg := brokerURL(tc.in)
		if got := ""; u != nil {
			got = u.String()
			if got != tc.url || msg != "" {
				t.Errorf("brokerURL(%q) = %q, %q; want %q", tc.in, got, msg, tc.url)
			}
		} else if tc.url != "" || msg != tc.msg {
			t.Errorf("brokerURL(%q) = nil, %q; want %q", tc.in, msg, tc.msg)
		}
	}
	if addr, ok := BrokerAddress("MQTT://Broker.local"); !ok || addr != "Broker.local:1883" {
		t.Errorf("BrokerAddress = %q, %v", addr, ok)
	}
}

func TestTopicFilter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"env/+/+/#", ""},
		{"#", ""},
		{"+", ""},
		{"/env//x", ""},
		{"$SYS/broker/load", ""},
		{"", "required"},
		{"env/#/x", "# must be the last level, on its own, as in env/#"},
		{"env/x#", "# must be the last level, on its own, as in env/#"},
		{"env/a+/x", "+ must be a whole level, as in env/+/pm25"},
		{"env/{device}/x", "level 2 is {device}: the topic is an MQTT filter, so write + there and name the level in template"},
		{"env/\x00", "must be UTF-8 without U+0000, at most 65535 bytes"},
		{"env/\xff", "must be UTF-8 without U+0000, at most 65535 bytes"},
		{strings.Repeat("a", 65536), "must be UTF-8 without U+0000, at most 65535 bytes"},
		{"$share/g/env/+", `"$share/g/env/+": shared subscriptions are not supported`},
		{"$queue/env/+", `"$queue/env/+": shared subscriptions are not supported`},
	} {
		if got := checkTopicFilter(tc.in); got != tc.want {
			t.Errorf("checkTopicFilter(%.40q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTemplate(t *testing.T) {
	check := func(tmpl, topic string, want ...string) {
		t.Helper()
		got := checkTemplate(tmpl, topic, checkTopicFilter(topic) == "")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("checkTemplate(%q, %q) =\n  %q\nwant\n  %q", tmpl, topic, got, want)
		}
	}
	// Good: the topic's levels, some named.
	check("env/{site}/{device}/#", "env/+/+/#")
	check("env/{site}/{device}/pm", "env/+/+/pm")
	check("env/+/{device}/{quantity}", "env/+/+/+")
	check("lora/{device}/{quantity}", "lora/+/+")
	check("env/{site}/x", "env/canal/x") // a name over a literal level
	check("env/+/x", "env/canal/x")
	check("env/{site}/#", "env/+") // a final # may match no level
	check("#", "#")
	check("{device}", "+")

	// Syntax: names, wildcards.
	check("env/{site}/{site}", "env/+/+", "{site} appears more than once")
	check("env/{sensor}/x", "env/+/x", "unknown name {sensor} at level 2 (known: {site}, {device}, {quantity})")
	check("env/dev-{device}", "env/+", `level 2 ("dev-{device}"): a name such as {device} must be a whole level`)
	check("env/{site", "env/+", `level 2 ("{site"): a name such as {device} must be a whole level`)
	check("env/{{site}}", "env/+", `level 2 ("{{site}}"): a name such as {device} must be a whole level`)
	check("env/#/{device}", "env/#", "# must be the last level, on its own, as in env/{site}/#")
	check("env/{site}+", "env/+", `level 2 ("{site}+"): a name such as {device} must be a whole level`)
	check("env/x+", "env/+", "+ must be a whole level, as in env/+/{device}")
	// Syntax problems are reported without comparing with a bad topic.
	check("env/{site}", "env/#/x")

	// Levels that do not fit the topic's.
	check("env/{site}/{device}", "env/+/+/#",
		"level 4 of the topic is #, which matches any number of levels, so the template needs # there too")
	check("env/{site}/{device}/#", "env/#",
		"level 2 of the topic is #, which matches any number of levels, so the template needs # there too")
	check("env/{site}/#", "env/+/x",
		`level 3 of the template is # but the topic has "x" there; the template has the topic's levels`)
	check("env/canal/{device}", "env/+/+",
		`level 2 of the topic is +, so the template needs a name or + there, not "canal"`)
	check("air/{site}/{device}", "env/+/+",
		`level 1 is "env" in the topic but "air" in the template`)
	check("env/{site}", "env/+/+",
		"has 2 levels but the topic has 3; the template is the topic with some levels named")
	check("env/{site}/{device}/x", "env/+/+",
		"has 4 levels but the topic has 3; the template is the topic with some levels named")
}

// TestJSONPath checks the messages of parsePath for the paths of fields and times;
// TestParsePath checks the steps of good paths.
func TestJSONPath(t *testing.T) {
	const bad = "must be keys separated by dots, with [i] for array elements, such as data.pm25 or sensors[0].value"
	for _, tc := range []struct{ in, want string }{
		{"pm25", ""},
		{"data.pm25", ""},
		{"object.sensors[0].value", ""},
		{"[0].v", ""},
		{"m[0][12]", ""},
		{"a-b.c_d.值", ""},
		{"", "required"},
		{"a..b", bad},
		{".a", bad},
		{"a.", bad},
		{"a.[0]", bad},
		{"a[", bad},
		{"a[]", bad},
		{"a[x]", bad},
		{"a[-1]", bad},
		{"a[0]b", bad},
		{"a]", bad},
		{"a[0", bad},
		{"a[[0]]", bad},
		{"a[99999999]", bad},
		{"a[1048577]", "array index 1048577 is larger than 1048576"},
		{"a[1048576]", ""},
	} {
		_, err := parsePath(tc.in)
		if got := ""; err != nil {
			if got = err.Error(); got != tc.want {
				t.Errorf("parsePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("parsePath(%q) = nil error, want %q", tc.in, tc.want)
		}
	}
}

func TestTimeSpec(t *testing.T) {
	const layoutMsg = "a Go layout must give the year, month, day, hour (15, or 3 with PM), minute and second, such as \"2006-01-02 15:04:05\""
	shanghai := time.FixedZone("CST", 8*3600)
	check := func(format string, ts TimeSpec, want ...string) {
		t.Helper()
		var got []string
		compileTime(ts, format, func(field, f string, args ...any) {
			got = append(got, field+": "+fmt.Sprintf(f, args...))
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %+v: problems =\n  %q\nwant\n  %q", format, ts, got, want)
		}
	}
	check("json", TimeSpec{})
	for _, f := range []string{"unix", "unix_ms", "unix_us", "unix_ns", "rfc3339", "2006-01-02 15:04:05", "02/01/2006 03:04:05 PM", time.RFC1123, "20060102T150405Z0700"} {
		check("json", TimeSpec{Path: "ts", Format: f, Location: shanghai})
	}
	check("json", TimeSpec{Path: "ts", Format: "2006-01-02 03:04:05"}, "time.format: "+layoutMsg)
	check("json", TimeSpec{Path: "ts", Format: "2006-01-02 15:04"}, "time.format: "+layoutMsg)
	check("json", TimeSpec{Path: "ts", Format: "2006"}, "time.format: "+layoutMsg)
	check("json", TimeSpec{Path: "ts", Format: "unix_s"},
		`time.format: must be unix, unix_ms, unix_us, unix_ns, rfc3339, or a Go layout containing the year 2006, such as "2006-01-02 15:04:05"`)
	check("json", TimeSpec{Path: "ts"},
		`time.format: required with path: unix, unix_ms, unix_us, unix_ns, rfc3339, or a Go layout such as "2006-01-02 15:04:05"`)
	check("json", TimeSpec{Path: "a..b", Format: "unix"},
		"time.path: must be keys separated by dots, with [i] for array elements, such as data.pm25 or sensors[0].value")
	check("json", TimeSpec{Format: "unix"},
		"time.format: needs time.path, the JSON key holding the time (without it, readings get the arrival time)")
	check("json", TimeSpec{Path: "ts", Format: "unix", Location: time.Local},
		"time.location: must name a zone such as Asia/Shanghai or UTC; Local depends on the box's settings")
	check("json", TimeSpec{Format: "rfc3339", Location: time.UTC},
		"time.format: needs time.path, the JSON key holding the time (without it, readings get the arrival time)",
		"time.location: needs time.path: it is the zone of the times read from there")
	check("lineprotocol", TimeSpec{Format: "unix_ms"})
	check("lineprotocol", TimeSpec{Path: "ts", Format: "rfc3339"},
		"time.path: is for format json; line protocol carries its timestamp at the end of each line",
		"time.format: must be one of unix, unix_ms, unix_us, unix_ns for format lineprotocol: the precision of the lines' timestamps (default unix_ns)")
	check("number", TimeSpec{Format: "unix"},
		"time: is for formats json and lineprotocol: a number payload has only its value, and its reading gets the arrival time")
}
