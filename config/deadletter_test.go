package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeadLetterFilesAreTheirOwn checks the dead-letter paths after defaults (issue 10
// review): two users of one file, or of one file and its rotations, and a file inside
// the buffer's directory are problems; paths are compared cleaned and absolute.
func TestDeadLetterFilesAreTheirOwn(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	state := filepath.Join(dir, "state")
	cfg := `gateway: {id: box, site: canal, state_dir: ` + state + `}
sinks:
  - name: a
    influxdb: {url: "http://h:8086", bucket: b, dead_letter: dl/x.lp, dead_letter_keep: 2}
  - name: b
    influxdb: {url: "http://h:8086", bucket: b, dead_letter: ` + filepath.Join(dir, "dl", ".", "x.lp") + `, dead_letter_keep: 0}
  - name: c
    influxdb: {url: "http://h:8086", bucket: b, dead_letter: dl/x.lp.2}
  - name: d
    influxdb: {url: "http://h:8086", bucket: b, dead_letter: dl/x.lp.3}
  - name: e
    influxdb: {url: "http://h:8086", bucket: b, dead_letter: ` + state + `/buffer/../buffer/cursors/e}
mqtt:
  - name: m
    broker: tcp://h:1883
    client_id: c
    dead_letter: ` + state + `/deadletter
    subscriptions:
      - {topic: "a/b", device: n, site: s, format: number, quantity: laeq}
  - name: a
    broker: tcp://h:1883
    client_id: d
    subscriptions:
      - {topic: "a/c", device: n2, site: s, format: number, quantity: laeq}
`
	_, err := Parse([]byte(cfg), filepath.Join(dir, "envgate.yaml"))
	got := errLines(err)
	for _, want := range []string{
		"sinks[1].influxdb.dead_letter (line 6): " + filepath.Join(dir, "dl", ".", "x.lp") + " is also the dead-letter file of sinks[0].influxdb.dead_letter; each sink and mqtt source needs its own\n",
		"sinks[2].influxdb.dead_letter (line 8): dl/x.lp.2 is where the dead-letter file of sinks[0].influxdb.dead_letter rotates to; each sink and mqtt source needs its own\n",
		"sinks[4].influxdb.dead_letter (line 12): " + state + "/buffer/../buffer/cursors/e is inside " + state + "/buffer, which belongs to the buffer; keep dead letters elsewhere\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q; got:\n%s", want, got)
		}
	}
	// dead_letter_keep 2 and 0: x.lp.3 is not one of a's or b's files; a directory that does not
	// exist yet is no problem; the mqtt source "a" and the sink "a" have different defaults.
	for _, not := range []string{"sinks[3]", "mqtt[0]", "mqtt[1]", "sinks[0]"} {
		if strings.HasPrefix(got, not+".") || strings.Contains(got, "\n"+not+".") {
			t.Errorf("problems name %s; got:\n%s", not, got)
		}
	}

	// A file that exists and is not regular is refused; a regular one is fine.
	if err := os.MkdirAll(filepath.Join(state, "deadletter"), 0o750); err != nil {
		t.Fatal(err)
	}
	_, err = Parse([]byte(cfg), filepath.Join(dir, "envgate.yaml"))
	if want := "mqtt[0].dead_letter (line 17): " + state + "/deadletter is a directory, not a regular file\n"; !strings.Contains(errLines(err), want) {
		t.Errorf("problems lack %q; got:\n%s", want, errLines(err))
	}
}
