package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecretRedaction(t *testing.T) {
	const value = "s3cr3t"
	s := Secret(value)
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q, want %q", s.Reveal(), value)
	}
	x := InfluxDB{URL: "http://h", Token: s}
	type wrap struct{ S Secret }
	for _, tc := range []struct{ format, want string }{
		{"%v", "[redacted]"},
		{"%s", "[redacted]"},
		{"%q", `"[redacted]"`},
		{"%#v", `"[redacted]"`},
		{"%x", "[redacted]"},
		{"%d", "[redacted]"},
		{"%10v", "[redacted]"},
	} {
		if got := fmt.Sprintf(tc.format, s); got != tc.want {
			t.Errorf("Sprintf(%q, secret) = %q, want %q", tc.format, got, tc.want)
		}
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{x, &x, wrap{s}, []Secret{s}, map[string]Secret{"k": s}} {
			if got := fmt.Sprintf(format, v); strings.Contains(got, value) || !strings.Contains(got, "[redacted]") {
				t.Errorf("Sprintf(%q, %T) = %s", format, v, got)
			}
		}
	}
	if got := s.String() + s.GoString(); got != `[redacted]"[redacted]"` {
		t.Errorf("String+GoString = %q", got)
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("config", "token", s, "sink", x, "ptr", &x)
	}
	if got := buf.String(); strings.Contains(got, value) || !strings.Contains(got, "[redacted]") {
		t.Errorf("slog output = %s", got)
	}

	y, err := yaml.Marshal(x)
	if err != nil || strings.Contains(string(y), value) || !strings.Contains(string(y), "token: '[redacted]'") {
		t.Errorf("yaml.Marshal = %s, %v", y, err)
	}
	j, err := json.Marshal(x)
	if err != nil || strings.Contains(string(j), value) || !strings.Contains(string(j), `"Token":"[redacted]"`) {
		t.Errorf("json.Marshal = %s, %v", j, err)
	}
}

func TestEmptySecret(t *testing.T) {
	var s Secret
	if got := fmt.Sprintf("%v|%s|%q|%#v", s, s, s, s); got != `||""|""` {
		t.Errorf("empty secret formats as %q", got)
	}
	if b, _ := s.MarshalText(); len(b) != 0 {
		t.Errorf("MarshalText(empty) = %q", b)
	}
	if v := s.LogValue(); v.String() != "" {
		t.Errorf("LogValue(empty) = %q", v)
	}
}
