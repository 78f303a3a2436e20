package config

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// redacted is how a non-empty Secret shows in every printed, logged or encoded form.
const redacted = "[redacted]"

// Secret is a string that never shows its value: fmt verbs, slog, YAML, JSON and
// text encoding all render "[redacted]" (or "" when it is empty). Reveal returns the
// value for the one place that needs it, such as an Authorization header.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns the quoted String form, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format writes the String form for every verb, quoted for %q and %#v, so that no
// verb (%x included) prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML encodes the redacted form, so a dumped config holds no secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText encodes the redacted form (used by encoding/json and slog's JSON handler).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
