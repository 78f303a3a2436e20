package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/screen"
)

// The example of docs/config.md's screening section parses, validates and gives the
// rules it describes.
func TestScreeningExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	example := section(t, string(doc), "### `screening.channels[].drift`", "```yaml\n", "```\n")
	cfg, err := Parse([]byte(minimal+example), "screening.yaml")
	if err != nil {
		t.Fatalf("docs/config.md screening example:\n%s", errLines(err))
	}
	s := &cfg.Screening
	if s.Hold != DefaultScreeningHold {
		t.Errorf("hold %v", s.Hold)
	}
	pm, ok := s.Rules(screen.Key{Site: "canal", Device: "pm-1", Quantity: "pm25"})
	want := screen.Defaults("pm25")
	want.FlatFor, want.High = 2*time.Hour, 600
	want.DriftMax, want.DriftWindow, want.Reference = 8, 12*time.Hour, screen.Reference{Device: "pm-ref"}
	if !ok || pm != want {
		t.Errorf("pm-1 pm25 rules %+v, %v; want %+v", pm, ok, want)
	}
	// pm-1's other quantities keep their defaults.
	if pm10, _ := s.Rules(screen.Key{Device: "pm-1", Quantity: "pm10"}); pm10 != screen.Defaults("pm10") {
		t.Errorf("pm-1 pm10 rules %+v", pm10)
	}
	ph, ok := s.Rules(screen.Key{Device: "ph-1", Quantity: "ph"})
	if !ok || ph.Reference != (screen.Reference{Device: "ph-check", Check: true, Expected: 7}) || ph.DriftMax != 0.3 {
		t.Errorf("ph-1 rules %+v", ph)
	}
	if la, ok := s.Rules(screen.Key{Device: "noise-2", Quantity: "la"}); ok {
		t.Errorf("noise-2 la: flatline off and no other rule, still screened: %+v", la)
	}
	if la, ok := s.Rules(screen.Key{Device: "noise-1", Quantity: "la"}); !ok || la.FlatFor != 15*time.Minute {
		t.Errorf("noise-1 la keeps the default: %+v, %v", la, ok)
	}
	if refs := s.References(); len(refs) != 2 || refs[0] != "pm-ref" || refs[1] != "ph-check" {
		t.Errorf("references %v", refs)
	}
	// Derived series and quantities without defaults are not screened.
	if r, ok := s.Rules(screen.Key{Device: "noise-1", Quantity: "laeq_1h"}); ok {
		t.Errorf("laeq_1h screened: %+v", r)
	}
	cfg.Screening.Off = true
	if _, ok := cfg.Screening.Rules(screen.Key{Device: "pm-1", Quantity: "pm25"}); ok {
		t.Error("screening off, still screened")
	}
}

func TestScreeningProblems(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"no device":    {"channels: [{quantity: pm25}]", "screening.channels[0].device: required"},
		"quantity":     {"channels: [{device: a, quantity: pm2.5}]", `screening.channels[0].quantity: unknown quantity "pm2.5"`},
		"twice":        {"channels: [{device: a}, {device: a}]", `screening.channels[1]: device "a" quantity "" is already set at screening.channels[0]`},
		"limits":       {"channels: [{device: a, low: 5, high: 5}]", "screening.channels[0].high: must be above low"},
		"resolution":   {"channels: [{device: a, resolution: -1}]", "screening.channels[0].resolution: must be >= 0"},
		"flat samples": {"channels: [{device: a, flatline_samples: 1}]", "screening.channels[0].flatline_samples: must be at least 2"},
		"spike within": {"channels: [{device: a, spike_within: 11}]", "screening.channels[0].spike_within: must be between 1 and 10"},
		"drift both":   {"channels: [{device: a, drift: {max: 1, reference: b, check: c, expected: 1}}]", "screening.channels[0].drift: needs exactly one of reference"},
		"drift self":   {"channels: [{device: a, drift: {max: 1, reference: a}}]", "screening.channels[0].drift: the reference must be another device"},
		"drift max":    {"channels: [{device: a, drift: {reference: b}}]", "screening.channels[0].drift.max: required, > 0"},
		"drift expect": {"channels: [{device: a, drift: {max: 1, check: c}}]", "screening.channels[0].drift.expected: required with check"},
		"hold":         {"hold: -1s", "screening.hold: must be > 0"},
		"nan":          {"channels: [{device: a, spike: .nan}]", "screening.channels[0].spike: must be a finite number"},
	} {
		_, err := Parse([]byte(minimal+"screening:\n  "+c.yaml+"\n"), "s.yaml")
		path, msg, _ := strings.Cut(c.want, ": ")
		if err == nil || !strings.Contains(errLines(err), path+" (line ") || !strings.Contains(errLines(err), msg) {
			t.Errorf("%s: problems\n%v\nwant %q", name, errLines(err), c.want)
		}
	}
}
