package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/envgate/envgate/gateway/reading"
)

// Issue 10 review: buffer.memory_readings had no upper bound, and gateway.series_expiry
// could be shorter than the staleness alerts that need the series (a water analyser's
// series expired before WaterParamSensorStale fired, or after and resolved it).
func TestLimitsMemoryReadingsAndSeriesExpiry(t *testing.T) {
	if n := unsafe.Sizeof(reading.Reading{}); n > 104 {
		t.Errorf("a Reading is %d bytes; update maxMemoryReadings' comment and docs/config.md", n)
	}
	for _, c := range []struct{ yaml, want string }{
		{"gateway: {id: gw-1}\nbuffer: {memory_readings: 1000001}\n", "must be between 0 and 1000000"},
		{"gateway: {id: gw-1, series_expiry: 5h}\nwater: {sections: [{site: river-in, waterbody: river}]}\n", "must be at least 6h with water sections"},
	} {
		_, err := Parse([]byte(c.yaml), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a problem containing %q", c.yaml, err, c.want)
		}
	}
	if _, err := Parse([]byte("gateway: {id: gw-1, series_expiry: 6h}\nbuffer: {memory_readings: 1000000}\nwater: {sections: [{site: river-in, waterbody: river}]}\n"), "t.yaml"); err != nil {
		t.Errorf("the limits themselves: %v", err)
	}
}

// TestProfileFilesAreBounded is the regression test of the issue 10 review: 5000
// entries naming one 1 MiB profile file took 175 s to check. A path named twice is read
// once; the list is capped at MaxProfileFiles entries, also when an alias expands to
// them; the bytes read from all files together at MaxProfileTotal.
func TestProfileFilesAreBounded(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "envgate.yaml")
	// A valid profile padded with a comment to just under MaxProfileFile.
	profile := func(name string) string {
		head := "name: " + name + "\npoints:\n  - {quantity: do, type: float32}\n"
		return head + "#" + strings.Repeat("x", int(MaxProfileFile)-len(head)-2) + "\n"
	}
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%d.yaml", i)), []byte(profile(fmt.Sprintf("p%d", i))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name, in, want string) {
		t.Helper()
		_, err := Parse([]byte(in), cfgFile)
		if got := errLines(err); got != want {
			t.Errorf("%s: problems:\n%swant:\n%s", name, got, want)
		}
	}
	list := func(n int, path string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(path+", ", n), ", ") + "]"
	}

	// Named again, also as ./p0.yaml or through sub/..: read once, so no "also defined in".
	check("same file", "gateway: {id: a, site: s}\nprofile_files: ["+
		"p0.yaml, ./p0.yaml, sub/../p0.yaml, "+filepath.Join(dir, "p0.yaml")+"]\n", "")
	check("same file 64 times", "gateway: {id: a, site: s}\nprofile_files: "+list(MaxProfileFiles, "p0.yaml")+"\n", "")
	check("5000 entries", "gateway: {id: a, site: s}\nprofile_files: "+list(5000, "p0.yaml")+"\n",
		"profile_files (line 2): at most 64 files (this list has 5000); none is read\n")
	// An alias counts every entry it stands for.
	check("alias", "gateway: {id: a, site: s}\n"+
		"mqtt:\n  - name: m\n    broker: tcp://h:1883\n    client_id: c\n    subscriptions:\n"+
		"      - {topic: \"x/+\", template: \"x/{device}\", site: s, format: number, quantity: laeq, devices: &many "+list(65, "p0")+"}\n"+
		"profile_files: *many\n",
		"profile_files (line 8): at most 64 files (this list has 65); none is read\n")
	// Five different files of almost 1 MiB: the fifth takes the total past 4 MiB.
	check("total bytes", "gateway: {id: a, site: s}\nprofile_files: [p0.yaml, p1.yaml, p2.yaml, p3.yaml, p4.yaml]\n",
		"profile_files[4] (line 2): the profile files up to this one hold more than 4MiB together, the limit for all of them; no more are read\n")
}
