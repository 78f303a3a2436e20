package mqttsub

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The rules of a Config that New checks, worded for the operator who wrote the
// config file: envgate check shows these messages at the file's keys.

var (
	formats       = []string{FormatJSON, FormatNumber, FormatLineProtocol}
	timeFormats   = []string{TimeUnix, TimeUnixMs, TimeUnixUs, TimeUnixNs, TimeRFC3339}
	epochFormats  = []string{TimeUnix, TimeUnixMs, TimeUnixUs, TimeUnixNs}
	brokerSchemes = []string{"tcp", "mqtt", "ssl", "mqtts"}
	tlsSchemes    = []string{"ssl", "mqtts"}
	levelNames    = []string{"{site}", "{device}", "{quantity}"}
)

// brokerURL parses a broker address: a known scheme, a host, no port or one from 1 to
// 65535, and nothing else (no user, path or query). The URL returned has the scheme
// in lower case and the port in Host, the scheme's default (1883 or 8883) when none is
// written; msg says what is wrong instead. No message quotes the address, which may
// hold a password.
func brokerURL(s string) (u *url.URL, msg string) {
	const want = "must be tcp://, mqtt://, ssl:// or mqtts:// with a host and an optional port, such as ssl://broker.example:8883"
	if s == "" {
		return nil, "required"
	}
	u, err := url.Parse(s) // lower-cases the scheme
	if err != nil || !slices.Contains(brokerSchemes, u.Scheme) || u.Hostname() == "" {
		return nil, want
	}
	if u.User != nil {
		return nil, "must not hold a user or password: use username and password_file"
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, want
	}
	host := u.Host
	if u.Port() == "" {
		if strings.HasSuffix(host, ":") {
			return nil, want
		}
		port := "1883" // IANA "mqtt"
		if slices.Contains(tlsSchemes, u.Scheme) {
			port = "8883" // IANA "secure-mqtt"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	if n, err := strconv.ParseUint(u.Port(), 10, 16); u.Port() != "" && (err != nil || n == 0 || strconv.FormatUint(n, 10) != u.Port()) {
		return nil, want
	}
	return &url.URL{Scheme: u.Scheme, Host: host}, ""
}

// BrokerAddress returns the host:port a valid broker address connects to, the port
// filled in from the scheme, so that callers can tell two spellings of one broker
// apart from two brokers; ok is false for an address New refuses.
func BrokerAddress(broker string) (addr string, ok bool) {
	u, msg := brokerURL(broker)
	if msg != "" {
		return "", false
	}
	return u.Host, true
}

// mqttString reports whether s can be sent as an MQTT string (MQTT 3.1.1 §1.5.3:
// UTF-8 without U+0000, a 16-bit length).
func mqttString(s string) bool {
	return len(s) <= maxStringLen && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// checkTopicFilter explains why f is not a topic filter the gateway can subscribe to,
// or returns "": MQTT 3.1.1 §4.7 (+ fills one whole level, # the last whole level;
// §4.7.3: at least one character), and no shared subscription, whose messages the
// broker would share out among several clients.
func checkTopicFilter(f string) string {
	switch {
	case f == "":
		return "required"
	case !mqttString(f):
		return fmt.Sprintf("must be UTF-8 without U+0000, at most %d bytes", maxStringLen)
	case strings.HasPrefix(f, "$share/") || strings.HasPrefix(f, "$queue/"):
		return fmt.Sprintf("%q: shared subscriptions are not supported", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case slices.Contains(levelNames, l):
			return fmt.Sprintf("level %d is %s: the topic is an MQTT filter, so write + there and name the level in template", i+1, l)
		case l == "+", l == "#" && i == len(levels)-1:
		case strings.Contains(l, "#"):
			return "# must be the last level, on its own, as in env/#"
		case strings.Contains(l, "+"):
			return "+ must be a whole level, as in env/+/pm25"
		}
	}
	return ""
}

// checkTemplate explains what is wrong with a template: its syntax and, when topicOK,
// whether it has the levels of its topic filter. The template must fit every topic
// the filter delivers, so that no message is dead-lettered for its topic alone: level
// by level, a literal matches the same literal, a + of the topic needs a name or +,
// and a # of the topic needs a # at the same level of the template. A final # of the
// template may also match no level at all.
func checkTemplate(tmpl, topic string, topicOK bool) []string {
	var msgs []string
	levels := strings.Split(tmpl, "/")
	seen := map[string]bool{}
	for i, l := range levels {
		switch {
		case slices.Contains(levelNames, l):
			if seen[l] {
				msgs = append(msgs, fmt.Sprintf("%s appears more than once", l))
			}
			seen[l] = true
		case strings.HasPrefix(l, "{") && strings.HasSuffix(l, "}") && strings.Count(l, "{")+strings.Count(l, "}") == 2:
			msgs = append(msgs, fmt.Sprintf("unknown name %s at level %d (known: %s)", l, i+1, strings.Join(levelNames, ", ")))
		case strings.ContainsAny(l, "{}"):
			msgs = append(msgs, fmt.Sprintf("level %d (%q): a name such as {device} must be a whole level", i+1, l))
		case l == "+", l == "#" && i == len(levels)-1:
		case strings.Contains(l, "#"):
			msgs = append(msgs, "# must be the last level, on its own, as in env/{site}/#")
		case strings.Contains(l, "+"):
			msgs = append(msgs, "+ must be a whole level, as in env/+/{device}")
		}
	}
	if len(msgs) > 0 || !topicOK {
		return msgs
	}
	if msg := templateFits(levels, strings.Split(topic, "/")); msg != "" {
		return []string{msg}
	}
	return nil
}

// templateFits explains why a template (split into levels, its syntax sound) does not
// fit every topic its filter delivers, or returns "".
func templateFits(levels, tl []string) string {
	for i := 0; i < len(levels) && i < len(tl); i++ {
		l, t := levels[i], tl[i]
		switch {
		case l == "#" && t == "#":
			return ""
		case t == "#":
			return fmt.Sprintf("level %d of the topic is #, which matches any number of levels, so the template needs # there too", i+1)
		case l == "#":
			return fmt.Sprintf("level %d of the template is # but the topic has %q there; the template has the topic's levels", i+1, t)
		case l == t, l == "+", slices.Contains(levelNames, l):
			// A name may also stand for a literal level of the topic: it always
			// gives the same value, which is harmless.
		case t == "+":
			return fmt.Sprintf("level %d of the topic is +, so the template needs a name or + there, not %q", i+1, l)
		default:
			return fmt.Sprintf("level %d is %q in the topic but %q in the template", i+1, t, l)
		}
	}
	switch {
	case len(levels) == len(tl), len(levels) == len(tl)+1 && levels[len(levels)-1] == "#":
		return ""
	case tl[len(tl)-1] == "#":
		return fmt.Sprintf("level %d of the topic is #, which matches any number of levels, so the template needs # there too", len(tl))
	}
	return fmt.Sprintf("has %d levels but the topic has %d; the template is the topic with some levels named", len(levels), len(tl))
}

// hasLevel reports whether the template has a level named name, such as "{site}".
func hasLevel(tmpl, name string) bool {
	return tmpl != "" && slices.Contains(strings.Split(tmpl, "/"), name)
}

// checkTimeFormat explains why format cannot read the time of a JSON message, or
// returns "": a named format, or a Go layout that reads back a time to the second.
func checkTimeFormat(format string) string {
	switch {
	case format == "":
		return fmt.Sprintf("required with path: %s, or a Go layout such as \"2006-01-02 15:04:05\"", strings.Join(timeFormats, ", "))
	case slices.Contains(timeFormats, format):
		return ""
	case !strings.Contains(format, "2006"):
		return fmt.Sprintf("must be %s, or a Go layout containing the year 2006, such as \"2006-01-02 15:04:05\"", strings.Join(timeFormats, ", "))
	case !layoutToSecond(format):
		return "a Go layout must give the year, month, day, hour (15, or 3 with PM), minute and second, such as \"2006-01-02 15:04:05\""
	}
	return ""
}

// layoutToSecond reports whether a Go time layout reads back a time to the second: a
// reference instant in the afternoon (to catch "03" without "PM") survives formatting
// and parsing.
func layoutToSecond(layout string) bool {
	ref := time.Date(2026, 11, 28, 13, 4, 5, 0, time.UTC)
	t, err := time.Parse(layout, ref.Format(layout))
	return err == nil && t.Year() == ref.Year() && t.YearDay() == ref.YearDay() &&
		t.Hour() == ref.Hour() && t.Minute() == ref.Minute() && t.Second() == ref.Second()
}
