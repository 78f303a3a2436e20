package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const replayConfig = `gateway: {id: box-1, site: canal}
noise:
  sites:
    - {device: meter-1, zone: "1"}
`

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// standards §1.8: 45 min at 62.0 dB plus 15 min at 70.0 dB is LAeq 65.67 dB, not the
// arithmetic 64.0. The hour 20:00-21:00 Shanghai is in the day (limit 55 in zone 1).
func TestReplayWorkedExample(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "box.yaml", replayConfig)
	var in strings.Builder
	in.WriteString("time,la\n")
	for s := range 3600 {
		v := 62.0
		if s >= 2700 {
			v = 70
		}
		fmt.Fprintf(&in, "2026-11-28 20:%02d:%02d,%v\n", s/60, s%60, v)
	}
	input := writeTemp(t, dir, "meter.csv", in.String())
	var stdout, stderr bytes.Buffer
	if code := run([]string{"replay", "-c", cfg, "--site", "canal", "--device", "meter-1", input}, &stdout, &stderr); code != 0 {
		t.Fatalf("replay exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	field := func(name string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^noise,device=meter-1,gateway=box-1,site=canal ` + name + `=([0-9.e+-]+) 1795867200000$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s for the hour starting 20:00 (1795867200000 ms) in:\n%.2000s", name, out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	if got := field("laeq_1h"); math.Abs(got-65.67) > 0.005 {
		t.Errorf("laeq_1h = %.3f, want 65.67", got)
	}
	if got := field("exceedance_1h"); math.Abs(got-10.67) > 0.005 {
		t.Errorf("exceedance_1h = %.3f, want 10.67 over the day limit 55", got)
	}
	if got := field("vdr_1h"); got != 100 {
		t.Errorf("vdr_1h = %v, want 100", got)
	}
	// Flushed at the end: the day period (06:00-22:00) closes with an Ld of the same
	// energy, suspect (1 hour of 16 is far below 75 %).
	if !regexp.MustCompile(`(?m)^noise,device=meter-1,gateway=box-1,site=canal ld=65\.6[0-9]*,ld_quality=1i `).MatchString(out) {
		t.Errorf("no suspect ld in the output:\n%.3000s", out)
	}

	// CSV output replays again (the long form, with unit and quality).
	stdout.Reset()
	if code := run([]string{"replay", "-c", cfg, "--format", "csv", "--raw", "--site", "canal", "--device", "meter-1", input}, &stdout, &stderr); code != 0 {
		t.Fatalf("replay --format csv exit %d: %s", code, stderr.String())
	}
	again := writeTemp(t, dir, "again.csv", stdout.String())
	stdout.Reset()
	if code := run([]string{"replay", "-c", cfg, again}, &stdout, &stderr); code != 0 {
		t.Fatalf("replay of replay's CSV exit %d: %s", code, stderr.String())
	}
}

func TestReplayReportsBadRowsAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "box.yaml", replayConfig)
	input := writeTemp(t, dir, "in.csv", "time,site,device,quantity,value\n"+
		"2026-11-28 20:00:00,canal,meter-1,la,60\n"+
		"2026-11-28 20:00:01,canal,meter-1,la,loud\n"+
		"2026-11-28 20:00:02,canal,meter-1,la,60\n")
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", "-c", cfg, input}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), `in.csv: line 3, column value: "loud" is not a number`) ||
		!strings.Contains(stderr.String(), "1 of 3 rows skipped") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), " laeq_1m=60,laeq_1m_quality=1i ") {
		t.Errorf("the good rows were not replayed:\n%s", stdout.String())
	}
	for _, args := range [][]string{{"replay"}, {"replay", "-c", cfg}, {"replay", "-c", cfg, "--format", "xml", input}} {
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
