package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/config"
)

// TestCheckRefusesWhatRunRefuses is the regression test of issue 10 "check must run
// exactly what run validates": a URL with user:password@ passed check and failed at
// start, a sink named "." or ".." passed and made its cursor path a directory, and a
// missing or unusable certificate file passed check. For each, check must fail with the
// message run fails with: a config problem that "envgate run" prints too, or the error
// start returns.
func TestCheckRefusesWhatRunRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	writeFile(t, notPEM, "not a certificate\n")

	box := func(sink, mqtt string) string {
		return fmt.Sprintf(`gateway: {id: box, site: canal, state_dir: %s, listen: "127.0.0.1:0"}
sinks:
%s
devices:
  - {name: noise-1, interval: 1s, sim: {kind: noise}}
%s`, filepath.Join(dir, "state"), sink, mqtt)
	}
	influx := func(name, extra string) string {
		return fmt.Sprintf("  - name: %q\n    influxdb: {url: \"http://127.0.0.1:8086\", bucket: b%s}\n", name, extra)
	}
	remoteWrite := func(name, extra string) string {
		return fmt.Sprintf("  - name: %q\n    prometheus_remote_write: {url: \"http://127.0.0.1:9090/api/v1/write\"%s}\n", name, extra)
	}
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, "tok\n")
	mqttTLS := func(tls string) string {
		return `mqtt:
  - name: lora
    broker: ssl://127.0.0.1:8883
    client_id: box
    tls: {` + tls + `}
    subscriptions:
      - {topic: "a/b", device: node, site: canal, format: number, quantity: laeq}
`
	}
	uplink := func(extra string) string {
		return "  - name: central\n    mqtt:\n      broker: ssl://127.0.0.1:8883\n      " + extra + "\n"
	}
	mqttPlain := func(name, extra string) string {
		return `mqtt:
  - name: ` + name + `
    broker: tcp://127.0.0.1:1883
    client_id: box
    subscriptions:
      - {topic: "a/b", device: node, site: canal, format: number, quantity: laeq}
` + extra
	}
	cases := []struct {
		name, config string
		want         string // the line check prints after "<file>: "
		problem      bool   // a config problem (run prints it too), else an error of start
	}{
		{"url with a password", box(`  - name: city
    influxdb: {url: "http://user:hunter2@127.0.0.1:8086", bucket: b}`, ""),
			"sinks[0].influxdb.url (line 4): must not hold a user or password: use token or token_file", true},
		{"sink named .", box(influx(".", ""), ""),
			`sinks[0].name (line 3): must not be ".": it names files in the state directory`, true},
		{"sink named ..", box(influx("..", ""), ""),
			`sinks[0].name (line 3): must not be "..": it names files in the state directory`, true},
		{"sink named x.tmp", box(influx("x.tmp", ""), ""),
			`sinks[0].name (line 3): must not end in ".tmp": the buffer removes such files on start as leftovers of a crash`, true},
		{"influx ca_file missing", box(influx("city", ", ca_file: "+filepath.Join(dir, "nope.pem")), ""),
			"sinks[0] (city): ca_file: open " + filepath.Join(dir, "nope.pem") + ": no such file or directory", false},
		{"influx ca_file not PEM", box(influx("city", ", ca_file: "+notPEM), ""),
			"sinks[0] (city): ca_file " + notPEM + ": no PEM certificates", false},
		{"influx ca_file a FIFO", box(influx("city", ", ca_file: "+fifo), ""),
			"sinks[0] (city): ca_file: " + fifo + " is a named pipe (FIFO), not a regular file", false},
		{"mqtt ca_file missing", box(influx("city", ""), mqttTLS("ca_file: "+filepath.Join(dir, "nope.pem"))),
			"mqtt[0] (lora): tls: ca_file: open " + filepath.Join(dir, "nope.pem") + ": no such file or directory", false},
		{"mqtt cert_file a FIFO", box(influx("city", ""), mqttTLS("cert_file: "+fifo+", key_file: "+notPEM)),
			"mqtt[0] (lora): tls: cert_file: " + fifo + " is a named pipe (FIFO), not a regular file", false},
		{"mqtt key pair not PEM", box(influx("city", ""), mqttTLS("cert_file: "+notPEM+", key_file: "+notPEM)),
			"mqtt[0] (lora): tls: cert_file/key_file: tls: failed to find any PEM data in certificate input", false},

		// The MQTT uplink sink (issue 15): its files are read by build, its template
		// checked by config.
		{"uplink cert_file a FIFO", box(uplink("tls: {cert_file: "+fifo+", key_file: "+notPEM+"}"), ""),
			"sinks[0] (central): tls: cert_file: " + fifo + " is a named pipe (FIFO), not a regular file", false},
		{"uplink ca_file not PEM", box(uplink("tls: {ca_file: "+notPEM+"}"), ""),
			"sinks[0] (central): tls: ca_file " + notPEM + ": no PEM certificates", false},
		{"uplink topic with a wildcard", box(uplink("topic: envgate/+/{device}"), ""),
			"sinks[0].mqtt.topic (line 6): wildcard '+' at offset 8: a topic to publish to names one topic, without + or #", true},

		// Dead-letter files (issue 10 review): one that exists and is not a regular file
		// makes every write fail at run time; two users of one file rotate each other's;
		// the buffer owns every file in its directory.
		{"influx dead_letter a FIFO", box(influx("city", ", dead_letter: "+fifo), ""),
			"sinks[0].influxdb.dead_letter (line 4): " + fifo + " is a named pipe (FIFO), not a regular file", true},
		{"default mqtt dead_letter a directory", box(influx("city", ""), mqttPlain("lora-dir", "")),
			"mqtt[0].dead_letter (line 9): the default " + filepath.Join(dir, "state", "deadletter", "lora-dir.mqtt.log") + " is a directory, not a regular file", true},
		{"dead_letter shared with a default", box(influx("city", "")+influx("town", ", dead_letter: "+filepath.Join(dir, "state", "deadletter", "city.lp")), ""),
			"sinks[1].influxdb.dead_letter (line 6): " + filepath.Join(dir, "state", "deadletter", "city.lp") + " is also the dead-letter file of sinks[0].influxdb.dead_letter; each sink and mqtt source needs its own", true},
		{"mqtt dead_letter in the buffer", box(influx("city", ""), mqttPlain("lora", "    dead_letter: "+filepath.Join(dir, "state", "buffer", "lora.log")+"\n")),
			"mqtt[0].dead_letter (line 14): " + filepath.Join(dir, "state", "buffer", "lora.log") + " is inside " + filepath.Join(dir, "state", "buffer") + ", which belongs to the buffer; keep dead letters elsewhere", true},

		// Issue 15: the remote-write sink.
		{"remote write url with a password", box(`  - name: central
    prometheus_remote_write: {url: "http://user:hunter2@127.0.0.1:9090/api/v1/write"}`, ""),
			"sinks[0].prometheus_remote_write.url (line 4): must not hold a user or password: use username and password", true},
		{"remote write bad url", box(`  - name: central
    prometheus_remote_write: {url: "127.0.0.1:9090"}`, ""),
			"sinks[0].prometheus_remote_write.url (line 4): must be an http or https URL with a host, such as http://prometheus.example:9090/api/v1/write", true},
		{"remote write token and token file", box(remoteWrite("central", ", bearer_token: hunter2, bearer_token_file: "+tokenFile), ""),
			"sinks[0].prometheus_remote_write.bearer_token_file (line 4): set bearer_token or bearer_token_file, not both", true},
		{"remote write and influxdb in one sink", box(remoteWrite("central", "")+"    influxdb: {url: \"http://127.0.0.1:8086\", bucket: b}\n", ""),
			"sinks[0] (line 3): has 2 sink kind blocks, influxdb and prometheus_remote_write: one sink has one kind", true},
		{"remote write ca_file not PEM", box(remoteWrite("central", ", ca_file: "+notPEM), ""),
			"sinks[0] (central): ca_file " + notPEM + ": no PEM certificates", false},
		{"remote write dead_letter shared", box(influx("city", "")+remoteWrite("central", ", dead_letter: "+filepath.Join(dir, "state", "deadletter", "city.lp")), ""),
			"sinks[1].prometheus_remote_write.dead_letter (line 6): " + filepath.Join(dir, "state", "deadletter", "city.lp") + " is also the dead-letter file of sinks[0].influxdb.dead_letter; each sink and mqtt source needs its own", true},
	}
	if err := os.MkdirAll(filepath.Join(dir, "state", "deadletter", "lora-dir.mqtt.log"), 0o750); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		path := filepath.Join(dir, fmt.Sprintf("case%d.yaml", i))
		writeFile(t, path, tc.config)
		done := make(chan struct{})
		go func() {
			defer close(done)
			code, out, _ := cli("check", "-c", path)
			if want := path + ": " + tc.want + "\n"; code != 1 || !strings.HasPrefix(out, want) {
				t.Errorf("%s: envgate check = %d, %q; want 1, %q", tc.name, code, out, want)
				if code == 0 {
					return // run would start a gateway that runs until stopped
				}
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("%s: envgate check shows the password: %q", tc.name, out)
			}
			if tc.problem {
				code, _, errOut := cli("run", "-c", path)
				if code != 1 || !strings.Contains(errOut, "  "+tc.want+"\n") {
					t.Errorf("%s: envgate run = %d, %q; want 1 and the same problem", tc.name, code, errOut)
				}
				return
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Errorf("%s: config.Load: %v", tc.name, err)
				return
			}
			g, err := start(cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				g.close()
			}
			if fmt.Sprint(err) != tc.want {
				t.Errorf("%s: start = %v, want %s", tc.name, err, tc.want)
			}
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			// The old code blocked on a FIFO; open it for writing to end the read.
			t.Errorf("%s: still blocked after 30s", tc.name)
			if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
			<-done
		}
	}
}

// TestReplayRefusesAFIFO checks that replay reads its input through the same check of
// regular files as the config (issue 10): a named pipe is refused at once, not waited
// on; a pipe can still come in on stdin ("-").
func TestReplayRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "r.yaml")
	writeFile(t, cfg, "gateway: {id: a, site: s}\nnoise:\n  sites:\n    - {device: n1, zone: \"1\"}\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, _, errOut := cli("replay", "-c", cfg, fifo)
		if want := "envgate replay: " + fifo + " is a named pipe (FIFO), not a regular file\n"; code != 1 || errOut != want {
			t.Errorf("envgate replay FIFO = %d, %q; want 1, %q", code, errOut, want)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Errorf("replay still blocked on the FIFO after 30s")
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-done
	}
}
