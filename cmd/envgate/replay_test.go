package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The worked examples hold a level constant for most of an hour, which the
// screening's flatline rule would flag (docs/data-model.md): it is off here.
const replayConfig = `gateway: {id: box-1, site: canal}
noise:
  sites:
    - {device: meter-1, zone: "1"}
screening: {off: true}
`

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// docs/standards.md §1.8: 45 min at 62.0 dB plus 15 min at 70.0 dB is LAeq 65.67 dB, not the
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

// Issue 11: flags after the input file exited 2 with only the usage text. They are
// accepted anywhere now, and a usage error says what is wrong.
func TestReplayFlagsAfterInput(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "box.yaml", replayConfig)
	input := writeTemp(t, dir, "in.csv", "time,la\n2026-11-28 20:00:00,60\n2026-11-28 20:00:01,60\n")
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", "-c", cfg, input, "--format", "csv", "--site", "canal", "--device=meter-1", "--raw"}, &stdout, &stderr)
	if code != 0 || !strings.HasPrefix(stdout.String(), "time,site,device,quantity,value,unit,quality\n") ||
		!strings.Contains(stdout.String(), ",canal,meter-1,la,60,dB(A),good\n") {
		t.Fatalf("flags after the input: exit %d, stdout:\n%.500s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	// After "--" an argument starting with "-" is the input, not a flag.
	dash := writeTemp(t, dir, "-in.csv", "time,la\n2026-11-28 20:00:00,60\n")
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"replay", "--site", "canal", "-c", cfg, "--device", "meter-1", "--", dash}, &stdout, &stderr); code != 0 {
		t.Errorf("input after --: exit %d: %s", code, stderr.String())
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"replay", input}, []string{"envgate replay: -c FILE is required: the config whose noise, air and water monitors derive the series"}},
		{[]string{"replay", "-c", cfg}, []string{"envgate replay: no input: give INPUT.csv, or - for stdin"}},
		{[]string{"replay", input, "-c", cfg, input, "--format", "xml"}, []string{
			"envgate replay: one input file, got 2: " + input + " " + input,
			`envgate replay: --format "xml": want lp or csv`}},
	} {
		stderr.Reset()
		code := run(c.args, &stdout, &stderr)
		for _, w := range c.want {
			if code != 2 || !strings.Contains(stderr.String(), w+"\n") {
				t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 2 and %q", c.args[1:], code, stderr.String(), w)
			}
		}
	}
}

// Issue 11: a file whose readings no monitor takes gave an empty output, exit 0 and no
// word. It is now an error that names what the file has and what the monitors take.
func TestReplayNoReadingMatched(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "box.yaml", replayConfig)
	input := writeTemp(t, dir, "in.csv", "time,site,device,quantity,value\n"+
		"2026-11-28 20:00:00,canal,meter-2,la,60\n"+
		"2026-11-28 20:00:01,canal,meter-2,la,60\n")
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", "-c", cfg, input}, &stdout, &stderr)
	want := "in.csv: none of its 2 readings belongs to a monitor of " + cfg + ", so nothing was derived: " +
		"the file has site canal device meter-2 (la); the monitors take noise: site canal device meter-1 (la, laeq)\n"
	if code != 1 || !strings.HasSuffix(stderr.String(), want) || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %q", code, stdout.String(), stderr.String(), want)
	}
}

// Issue 11: samples dropped as late (their minute had closed) were not counted
// anywhere. noise.lateness is 5 s by default: 20:02:57 after 20:02:59 is out of order
// but still in its open minute and used; 20:00:30 after 20:02:59 is late (its minute
// closed at 20:01:05) and dropped.
func TestReplayCountsLateAndOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "box.yaml", replayConfig)
	var in strings.Builder
	in.WriteString("time,la\n")
	for s := range 180 {
		fmt.Fprintf(&in, "2026-11-28 20:%02d:%02d,60\n", s/60, s%60)
	}
	in.WriteString("2026-11-28 20:02:57,60\n2026-11-28 20:00:30,90\n")
	input := writeTemp(t, dir, "in.csv", in.String())
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", "-c", cfg, "--site", "canal", "--device", "meter-1", input}, &stdout, &stderr)
	want := input + ": readings dropped as late: 1 (their window had closed: sort the file by time, or raise the lateness in the config); out of time order: 2 (those within the lateness were used)\n"
	if code != 0 || stderr.String() != want {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 0 and %q", code, stderr.String(), want)
	}
	// The late 90 dB(A) is not in the first minute's LAeq.
	if !strings.Contains(stdout.String(), " laeq_1m=60,laeq_1m_quality=1i 1795867200000\n") &&
		!strings.Contains(stdout.String(), " laeq_1m=60 1795867200000\n") {
		t.Errorf("the first minute is not 60 dB(A):\n%.1500s", stdout.String())
	}
}

const replayAirConfig = `gateway: {id: box-1, site: canal}
air:
  sites:
    - {device: aq-1, pollutants: [pm25]%s}
`

// Issue 11: hourly air data (one reading an hour, as a bureau's export has them) with
// the default sample of 1 min gave hours of 1 minute's sampling, no 1-h means and no
// hint. Replay now names the key to set; with it set, the means come out. The unit
// column is converted as well: 0.125 mg/m3 is 125 ug/m3 (×1000, exact in binary).
func TestReplayHourlyAirHint(t *testing.T) {
	dir := t.TempDir()
	var in strings.Builder
	in.WriteString("time,site,device,quantity,value,unit\n")
	for h := range 24 {
		fmt.Fprintf(&in, "2026-11-28 %02d:00:00,canal,aq-1,pm25,0.125,mg/m3\n", h)
	}
	input := writeTemp(t, dir, "hourly.csv", in.String())

	cfg := writeTemp(t, dir, "box.yaml", fmt.Sprintf(replayAirConfig, ""))
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", "-c", cfg, input}, &stdout, &stderr)
	want := "hint: air monitor site canal device aq-1: its pm25 readings are 1h apart, but air.sites[0].sample is 1m: " +
		"each reading stands for 1m of sampling, fewer than the 45m an hour a valid 1-h mean needs (air.min_minutes_hour), " +
		"so no 1-h mean, AQI or daily figure was derived; set air.sites[0].sample: 1h (docs/config.md)\n"
	if code != 0 || stderr.String() != want || strings.Contains(stdout.String(), "pm25_1h=") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 0 and %q; stdout:\n%.1000s", code, stderr.String(), want, stdout.String())
	}

	cfg = writeTemp(t, dir, "box.yaml", fmt.Sprintf(replayAirConfig, ", sample: 1h"))
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"replay", "-c", cfg, input}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Errorf("with sample: 1h: exit %d, stderr:\n%s", code, stderr.String())
	}
	// 00:00 Shanghai is 1795795200000 ms.
	if !strings.Contains(stdout.String(), "\nair,device=aq-1,gateway=box-1,site=canal pm25_1h=125 1795795200000\n") {
		t.Errorf("no pm25_1h=125 for the hour 00:00 in:\n%.2000s", stdout.String())
	}
}

// Issue 11, defect 3: two exports of a meter that overlap by a few seconds (within
// noise.lateness, 5 s) replayed as one file derive exactly what one export of the same
// span does: the repeated rows count once (they used to count twice, moving the LAeq of
// the minutes they are in).
func TestReplayOverlappingExports(t *testing.T) {
	dir := t.TempDir()
	cfg := writeTemp(t, dir, "box.yaml", replayConfig)
	row := func(b *strings.Builder, s int) {
		fmt.Fprintf(b, "2026-11-28 20:%02d:%02d,%d\n", s/60, s%60, 50+(s*7)%31)
	}
	var one, two strings.Builder
	one.WriteString("time,la\n")
	two.WriteString("time,la\n")
	for s := range 240 {
		row(&one, s)
	}
	for s := range 123 { // 20:00:00 to 20:02:02
		row(&two, s)
	}
	for s := 118; s < 240; s++ { // 20:01:58 to 20:03:59
		row(&two, s)
	}
	var outs [2]string
	for i, in := range []string{one.String(), two.String()} {
		input := writeTemp(t, dir, fmt.Sprintf("in%d.csv", i), in)
		var stdout, stderr bytes.Buffer
		if code := run([]string{"replay", "-c", cfg, "--site", "canal", "--device", "meter-1", input}, &stdout, &stderr); code != 0 {
			t.Fatalf("replay %s: exit %d, stderr:\n%s", input, code, stderr.String())
		}
		outs[i] = stdout.String()
	}
	if outs[0] != outs[1] || !strings.Contains(outs[0], "laeq_1m=") {
		t.Errorf("one export derived:\n%.3000s\nthe overlapping exports:\n%.3000s", outs[0], outs[1])
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the arguments, then the flags site and raw
	}{
		{[]string{"a.csv", "--site", "s"}, "[a.csv] s false"},
		{[]string{"--raw", "a.csv", "-site=s"}, "[a.csv] s true"},
		{[]string{"a.csv", "--", "-b.csv", "--raw"}, "[a.csv -b.csv --raw]  false"},
		{[]string{"--site", "--", "a.csv", "--raw"}, "[a.csv] -- true"}, // "--" is the value of --site
		{[]string{"--raw", "--", "--site"}, "[--site]  true"},
		{[]string{"-", "--raw"}, "[-]  true"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		site := fs.String("site", "", "")
		raw := fs.Bool("raw", false, "")
		args, err := parseInterleaved(fs, c.args)
		if got := fmt.Sprintf("%v %s %v", args, *site, *raw); err != nil || got != c.want {
			t.Errorf("parseInterleaved(%q) = %s, %v, want %s", c.args, got, err, c.want)
		}
	}
}
