package influx

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	http2 "github.com/influxdata/influxdb-client-go/v2/api/http"
)

// RetryError means the batch could not be delivered for a reason that passes: a network
// error, a timeout, 429 or 5xx. The caller keeps the batch and retries it, waiting at
// least RetryAfter. Check with errors.As.
type RetryError struct {
	StatusCode int // HTTP status; 0 for a network error or timeout
	after      time.Duration
	msg        string
	err        error
}

// Error returns "influx sink <name>: write <n> points: <status>: <server message>".
func (e *RetryError) Error() string { return e.msg }

// Unwrap returns the cause, usually an *http.Error of the client library.
func (e *RetryError) Unwrap() error { return e.err }

// RetryAfter returns the delay the server asked for with Retry-After, at most
// MaxRetryAfter; 0 if none, or if the header was malformed or a date in the past.
func (e *RetryError) RetryAfter() time.Duration { return e.after }

// MaxRetryAfter bounds the delay a server can ask for with Retry-After. A proxy or a
// misconfigured server answering "Retry-After: 999999999" (31 years) must not stop
// delivery until someone restarts the box; ten minutes is longer than any maintenance
// pause we know of asks for, and the buffer holds the readings meanwhile.
const MaxRetryAfter = 10 * time.Minute

// RetryAfter returns the delay a Retry-After value asks for (RFC 9110 section 10.2.3:
// delay-seconds or an HTTP-date, relative to now), capped at MaxRetryAfter. A number
// too large to parse is capped too; anything else malformed, and a date in the past,
// give 0 (the caller's own back-off applies). Every HTTP sink reads the header with it.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter // only an overflow fails: the string is all digits
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), MaxRetryAfter)
}

// PersistentError means the server refuses every write until someone fixes something:
// 401 or 403 (credentials, permissions), 404 (no such bucket or database) or another
// request-level 4xx. Nothing was dropped; the caller raises an alarm and retries slowly.
// Check with errors.As.
type PersistentError struct {
	StatusCode int // HTTP status
	msg        string
	err        error
}

// Error returns "influx sink <name>: write <n> points: <status>: <server message>".
func (e *PersistentError) Error() string { return e.msg }

// Unwrap returns the cause, usually an *http.Error of the client library.
func (e *PersistentError) Unwrap() error { return e.err }

// Persistent reports true: retrying soon will not help.
func (e *PersistentError) Persistent() bool { return true }

// maxMessage bounds a server message kept in an error or a dead-letter comment;
// InfluxDB 1.8 itself caps its X-Influxdb-Error header at 1024 bytes.
const maxMessage = 1024

// describe returns "<code> <status text>: <message>" for an HTTP error, or the cause
// of a network error.
func (s *Sink) describe(he *http2.Error) string {
	msg := s.message(he)
	if he.StatusCode == 0 {
		return msg
	}
	status := strconv.Itoa(he.StatusCode) + " " + http.StatusText(he.StatusCode)
	if msg == "" {
		return status
	}
	return status + ": " + msg
}

// message returns the server's message of he (or the cause of a network error) on one
// line, without the token, cut to maxMessage bytes.
func (s *Sink) message(he *http2.Error) string {
	// InfluxDB 1.8 puts its message in X-Influxdb-Error as well as in a JSON body the
	// library does not decode ({"error": ...}); for 429 and 503 the library then
	// substitutes a generic text.
	msg := he.Header.Get("X-Influxdb-Error")
	if msg == "" {
		msg = he.Message
	}
	if msg == "" && he.Err != nil {
		msg = he.Err.Error()
	}
	if msg == "" && !strings.HasPrefix(he.Code, strconv.Itoa(he.StatusCode)) {
		msg = he.Code // not just the status line again, as the library sets it for an empty body
	}
	msg = s.redact(OneLine(msg))
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return msg
}

// OneLine replaces the line breaks in s with spaces and trims it, for a server's
// message in an error or a dead-letter comment.
func OneLine(s string) string {
	return strings.TrimSpace(lineBreaks.Replace(s))
}

var lineBreaks = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

// redact removes the token, and the password of a "user:password" token, from s.
func (s *Sink) redact(msg string) string {
	for _, secret := range s.secrets {
		msg = strings.ReplaceAll(msg, secret, "[redacted]")
	}
	return msg
}
