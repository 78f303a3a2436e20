package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want.err from the current output")

// unsetenv unsets name for the duration of the test.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // registers the restore
	os.Unsetenv(name)
}

// errLines renders err as envgate check would, without the file name: one problem a line.
func errLines(err error) string {
	var b strings.Builder
	for _, p := range Problems(err) {
		b.WriteString(p.Error() + "\n")
	}
	return b.String()
}

// TestGolden parses testdata/<case>/config.yaml and compares every problem, in order,
// with testdata/<case>/want.err. Run with -update to rewrite want.err.
func TestGolden(t *testing.T) {
	t.Setenv("ENVGATE_TEST_TOKEN", "s3cr3t")
	unsetenv(t, "ENVGATE_TEST_UNSET")
	files, err := filepath.Glob("testdata/*/config.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range files {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, err := Load(file)
			if err == nil || cfg != nil {
				t.Fatalf("Load(%s) = %v, %v; want nil and problems", file, cfg, err)
			}
			got := errLines(err)
			if got != err.Error()+"\n" {
				t.Errorf("Problems(err) renders differently from err.Error():\n%s\nvs\n%s", got, err)
			}
			if strings.Contains(got, "s3cr3t") {
				t.Errorf("problems contain the token:\n%s", got)
			}
			want := filepath.Join(dir, "want.err")
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(w) {
				t.Errorf("Load(%s) problems:\n%s\nwant:\n%s", file, got, w)
			}
		})
	}
}

// TestExamples loads every file in examples/, so a new example is covered as soon as
// it is added. It provides the environment variables and token file they use.
func TestExamples(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "influx-token")
	if err := os.WriteFile(tokenFile, []byte("envgate:s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVGATE_INFLUX_TOKEN_FILE", tokenFile)
	t.Setenv("INFLUX_URL", "http://127.0.0.1:8086")
	t.Setenv("INFLUX_TOKEN", "s3cr3t-2")

	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("Glob(examples/*.yaml) = %v, %v; want at least 5 files", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := Load(file)
			if err != nil {
				t.Fatalf("Load(%s):\n%s", file, errLines(err))
			}
			if len(cfg.Devices) == 0 && len(cfg.Buses) == 0 && len(cfg.MQTT) == 0 && len(cfg.PM) == 0 {
				t.Errorf("Load(%s): no devices, buses, mqtt sources or pm sensors", file)
			}
			for _, b := range cfg.Buses {
				for _, d := range b.Devices {
					if len(d.Points) == 0 {
						t.Errorf("Load(%s): device %s has no points after loading", file, d.Name)
					}
				}
			}
			for _, s := range cfg.Sinks {
				if s.InfluxDB != nil && s.InfluxDB.Token.Reveal() == "" {
					t.Errorf("Load(%s): sink %s has no token", file, s.Name)
				}
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Load(%s) then Validate() = %v, want nil", file, err)
			}
		})
	}
}

func TestExampleCanalDistrictToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "influx-token")
	if err := os.WriteFile(tokenFile, []byte("  envgate:s3cr3t \n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENVGATE_INFLUX_TOKEN_FILE", tokenFile)
	t.Setenv("INFLUX_URL", "https://influx.city.example:8086")
	cfg, err := Load("examples/canal-district.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	x := cfg.Sinks[0].InfluxDB
	if x.URL != "https://influx.city.example:8086" || x.Token.Reveal() != "envgate:s3cr3t" || x.Bucket != "envgate/autogen" {
		t.Errorf("sink = url %q token %q bucket %q", x.URL, x.Token.Reveal(), x.Bucket)
	}
	if x.TokenFile != tokenFile {
		t.Errorf("TokenFile = %q, want %q", x.TokenFile, tokenFile)
	}
	if cfg.Devices[3].Site != "canal-lock-2" || cfg.Devices[1].Site != "canal-east-3" {
		t.Errorf("sites = %q, %q", cfg.Devices[3].Site, cfg.Devices[1].Site)
	}
}

func TestDemo(t *testing.T) {
	cfg, err := Parse(Demo(), "demo.yaml")
	if err != nil {
		t.Fatalf("Parse(Demo()): %v", err)
	}
	if cfg.Gateway.ID != "demo-box" || cfg.Gateway.Site != "canal-demo" || len(cfg.Sinks) != 0 {
		t.Errorf("Demo gateway = %+v, %d sinks", cfg.Gateway, len(cfg.Sinks))
	}
	type dev struct {
		name, kind string
		interval   time.Duration
		seed       int64
	}
	want := []dev{{"noise-1", "noise", time.Second, 1}, {"air-1", "air", 10 * time.Second, 2}, {"water-1", "water", time.Minute, 3}, {"weather-1", "weather", 10 * time.Second, 4}}
	var got []dev
	for _, d := range cfg.Devices {
		got = append(got, dev{d.Name, d.Sim.Kind, d.Interval, d.Sim.Seed})
		if d.Site != "canal-demo" {
			t.Errorf("device %s site = %q, want canal-demo", d.Name, d.Site)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Demo devices = %v, want %v", got, want)
	}
	d := Demo()
	d[0] = 'X'
	if Demo()[0] == 'X' {
		t.Error("Demo returns a shared slice")
	}
}

const minimal = `
gateway: {id: box-1, site: canal}
sinks:
  - name: influx
    influxdb: {url: "http://127.0.0.1:8086", bucket: envgate}
devices:
  - name: noise-1
    interval: 2s
    sim: {kind: noise}
`

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "minimal.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Config{
		Gateway: Gateway{ID: "box-1", Site: "canal", StateDir: "/var/lib/envgate", Listen: "127.0.0.1:9273",
			LogLevel: "info", ShutdownTimeout: 15 * time.Second, HealthInterval: time.Minute, SeriesExpiry: 24 * time.Hour},
		Buffer: Buffer{MaxBytes: GiB, MaxAge: 720 * time.Hour, SegmentBytes: 8 * MiB, Sync: "interval",
			SyncInterval: time.Second, CursorInterval: 5 * time.Second, AckDelay: 5 * time.Second, MemoryReadings: 100000},
		Sinks: []Sink{{Name: "influx", InfluxDB: &InfluxDB{URL: "http://127.0.0.1:8086", Bucket: "envgate",
			Precision: "ms", BatchSize: 1000, FlushInterval: time.Second, MaxInFlight: 2, Timeout: 10 * time.Second, Gzip: new(true),
			RetryInitial: time.Second, RetryMax: 2 * time.Minute, AuthRetry: time.Minute,
			DeadLetter: "/var/lib/envgate/deadletter/influx.lp", DeadLetterMaxBytes: 16 * MiB, DeadLetterKeep: 3,
			SinkPacing: SinkPacing{RetryJitter: 5 * time.Second}}}},
		Devices: []Device{{Name: "noise-1", Site: "canal", Interval: 2 * time.Second, Timeout: 2 * time.Second,
			Sim: &Sim{Kind: "noise", Seed: 1}}},
		Screening: Screening{Hold: 10 * time.Minute},
	}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("Parse(minimal) =\n%#v\nwant\n%#v", *cfg, want)
	}

	// Defaults on a config built in code gives the same result, and is idempotent.
	built := Config{
		Gateway: Gateway{ID: "box-1", Site: "canal"},
		Sinks:   []Sink{{Name: "influx", InfluxDB: &InfluxDB{URL: "http://127.0.0.1:8086", Bucket: "envgate"}}},
		Devices: []Device{{Name: "noise-1", Interval: 2 * time.Second, Sim: &Sim{Kind: "noise"}}},
	}
	built.Defaults()
	built.Defaults()
	if !reflect.DeepEqual(built, want) {
		t.Errorf("Defaults() =\n%#v\nwant\n%#v", built, want)
	}
	if err := built.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

// TestExplicitValues checks that a value written in the file is kept, including 0
// and false, and that an explicit zero where zero is invalid is reported.
func TestExplicitValues(t *testing.T) {
	cfg, err := Parse([]byte(minimal+`
buffer: {memory_readings: 0, max_bytes: 1048576, segment_bytes: "64 KiB", sync: batch}
`), "x.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if b := cfg.Buffer; b.MemoryReadings != 0 || b.MaxBytes != MiB || b.SegmentBytes != 64*KiB || b.Sync != "batch" {
		t.Errorf("Buffer = %+v", b)
	}

	cfg, err = Parse([]byte(strings.Replace(minimal, "bucket: envgate}", "bucket: envgate, gzip: false, batch_size: \"500\"}", 1)), "x.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if x := cfg.Sinks[0].InfluxDB; *x.Gzip || x.BatchSize != 500 {
		t.Errorf("gzip = %v, batch_size = %d; want false, 500", *x.Gzip, x.BatchSize)
	}

	cfg, err = Parse([]byte(strings.Replace(minimal, "bucket: envgate}", "bucket: envgate, dead_letter_max_bytes: 1MiB, dead_letter_keep: 0}", 1)), "x.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if x := cfg.Sinks[0].InfluxDB; x.DeadLetterMaxBytes != MiB || x.DeadLetterKeep != 0 {
		t.Errorf("dead_letter_max_bytes = %d, dead_letter_keep = %d; want 1MiB, 0", x.DeadLetterMaxBytes, x.DeadLetterKeep)
	}
	_, err = Parse([]byte(strings.Replace(minimal, "bucket: envgate}", "bucket: envgate, dead_letter_max_bytes: 1KiB, dead_letter_keep: 21}", 1)), "x.yaml")
	if got := errLines(err); !strings.Contains(got, "dead_letter_max_bytes (line") || !strings.Contains(got, "must be between 64KiB and 1GiB") ||
		!strings.Contains(got, "dead_letter_keep (line") || !strings.Contains(got, "must be between 0 and 20") {
		t.Errorf("dead-letter bounds out of range: got %q", got)
	}

	_, err = Parse([]byte(minimal+"buffer: {sync_interval: 0s}\n"), "x.yaml")
	if got, want := errLines(err), "buffer.sync_interval (line 10): must be > 0\n"; got != want {
		t.Errorf("explicit zero: got %q, want %q", got, want)
	}
}

func TestParseProblems(t *testing.T) {
	unsetenv(t, "ENVGATE_TEST_UNSET")
	check := func(name, yaml string, want ...string) {
		t.Helper()
		cfg, err := Parse([]byte(yaml), name)
		if cfg != nil {
			t.Errorf("%s: Parse returned a config with errors %v", name, err)
		}
		var got []string
		for _, p := range Problems(err) {
			got = append(got, p.Error())
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Parse problems =\n  %s\nwant\n  %s", name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	check("empty document", "---\n",
		"gateway.id: required")
	check("comments only", "# nothing yet\n",
		"gateway.id: required")
	check("scalar root", "hello\n",
		"gateway.id: required",
		"line 1: the file must be a mapping with the keys gateway, buffer, sinks, devices, buses, mqtt, pm, hj212_listen, noise, air, water, screening and profile_files, not a single value")
	check("two documents", minimal+"---\ngateway: {id: b}\n",
		"line 10: the file holds more than one YAML document; use one per box")
	check("syntax", "gateway:\n  id: [a\n",
		"line 1: invalid YAML: did not find expected ',' or ']'")
	check("unknown top-level key", "gateway: {id: a}\ndevice: []\nfoo: 1\n",
		`device (line 2): unknown key (did you mean "devices"?)`,
		"foo (line 3): unknown key (known keys: gateway, buffer, sinks, devices, buses, mqtt, pm, hj212_listen, noise, air, water, screening, profile_files)")
	check("duplicate key", "gateway:\n  id: a\n  id: b\n",
		"gateway.id (line 3): duplicate key (first at line 2)")
	check("missing site", "gateway: {id: a}\ndevices:\n  - name: d\n    interval: 1s\n    sim: {kind: air}\n",
		"devices[0].site (line 3): required (set it here or as gateway.site)")
	check("missing interval and driver", "gateway: {id: a, site: s}\ndevices:\n  - name: d\n",
		"devices[0].interval (line 3): required",
		"devices[0] (line 3): needs a driver block: sim")
	check("timeout over interval", "gateway: {id: a, site: s}\ndevices:\n  - {name: d, interval: 1s, timeout: 2s, sim: {kind: air}}\n",
		"devices[0].timeout (line 3): must be <= interval (1s)")
	check("bad driver block", "gateway: {id: a, site: s}\ndevices:\n  - name: d\n    interval: 1s\n    sim: [air]\n",
		"devices[0].sim (line 5): must be a mapping of keys, not a list")
	check("sink without kind", "gateway: {id: a}\nsinks:\n  - name: s\n  - name: s\n    influxdb: {url: ftp://x, bucket: b, retry_initial: 5s, retry_max: 1s}\n",
		"sinks[0] (line 3): needs a sink kind block: influxdb, mqtt, prometheus_remote_write or hj212",
		`sinks[1].name (line 4): duplicate sink name "s" (first at sinks[0])`,
		"sinks[1].influxdb.url (line 5): must be an http or https URL with a host, such as http://influx.example:8086",
		"sinks[1].influxdb.retry_max (line 5): must be >= retry_initial (5s)")
	check("gateway values", "gateway:\n  id: a b\n  listen: localhost\n  log_level: loud\n  health_interval: 10ms\n",
		"gateway.id (line 2): character ' ' not allowed (letters, digits, '-', '_', '.')",
		`gateway.listen (line 3): must be host:port with a numeric port, such as "127.0.0.1:9273" or ":9273"`,
		"gateway.log_level (line 4): must be one of debug, info, warn, error",
		"gateway.health_interval (line 5): must be at least 1s")
	check("buffer values", "gateway: {id: a}\nbuffer:\n  max_bytes: 1KiB\n  segment_bytes: 1GiB\n  max_age: 0s\n",
		"buffer.max_bytes (line 3): must be at least 1MiB",
		"buffer.segment_bytes (line 4): must be between 64KiB and 256MiB",
		"buffer.max_age (line 5): must be > 0")
	check("env in a number", "gateway: {id: a}\nbuffer: {memory_readings: \"${ENVGATE_TEST_UNSET:-x}\"}\n",
		`buffer.memory_readings (line 2): must be a whole number, got "x"`)
	check("bad expansion", "gateway: {id: \"${\"}\nbuffer: {sync: \"${1x}\"}\n",
		`gateway.id (line 1): "${" without a closing "}" (write "$$" for a literal "$")`,
		`buffer.sync (line 2): "${...}" needs a variable name of letters, digits and "_", not starting with a digit`)
}

// TestAliasBomb nests merge keys so that a naive walk would decode 10^7 mappings.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("gateway: {id: a, site: s}\nm0: &m0 {name: d, interval: 1s, sim: {kind: air}}\n")
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&b, "m%d: &m%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 10), ", "))
	}
	b.WriteString("devices: [*m7]\n")
	start := time.Now()
	_, err := Parse([]byte(b.String()), "bomb.yaml")
	if !strings.Contains(fmt.Sprint(err), "too many values after alias expansion") {
		t.Errorf("Parse(alias bomb) = %v, want too many values", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse(alias bomb) took %v", d)
	}
}

func TestAliasesAndMerge(t *testing.T) {
	const in = `
gateway: {id: box-1, site: canal}
devices:
  - &fast
    name: a
    interval: 1s
    timeout: 500ms
    sim: &sim {kind: noise, seed: 7}
  - <<: *fast
    name: b
    interval: 2s
  - name: c
    interval: 5s
    sim: *sim
`
	cfg, err := Parse([]byte(in), "x.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	b := cfg.Devices[1]
	if b.Name != "b" || b.Interval != 2*time.Second || b.Timeout != 500*time.Millisecond || b.Sim.Kind != "noise" {
		t.Errorf("merged device = %+v", b)
	}
	if c := cfg.Devices[2]; c.Sim.Seed != 7 || c.Sim == cfg.Devices[0].Sim {
		t.Errorf("aliased sim = %+v (shared: %v)", c.Sim, c.Sim == cfg.Devices[0].Sim)
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("ENVGATE_A", "alpha")
	t.Setenv("ENVGATE_EMPTY", "")
	unsetenv(t, "ENVGATE_UNSET")
	lookup := os.LookupEnv
	check := func(in, want string, wantFromEnv bool, wantErr string) {
		t.Helper()
		got, fromEnv, errs := expand(in, lookup)
		if wantErr != "" {
			if len(errs) == 0 || !strings.Contains(errs[0], wantErr) {
				t.Errorf("expand(%q) errors = %q, want one containing %q", in, errs, wantErr)
			}
			return
		}
		if len(errs) > 0 || got != want || fromEnv != wantFromEnv {
			t.Errorf("expand(%q) = %q, %v, %q; want %q, %v", in, got, fromEnv, errs, want, wantFromEnv)
		}
	}
	check("plain", "plain", false, "")
	check("${ENVGATE_A}", "alpha", true, "")
	check("x-${ENVGATE_A}-${ENVGATE_A}", "x-alpha-alpha", true, "")
	check("${ENVGATE_EMPTY}", "", true, "")
	check("${ENVGATE_UNSET:-dflt}", "dflt", false, "")
	check("${ENVGATE_EMPTY:-dflt}", "dflt", false, "")
	check("${ENVGATE_A:-dflt}", "alpha", true, "")
	check("${ENVGATE_UNSET:-}", "", false, "")
	check("${ENVGATE_UNSET:-a:-b}", "a:-b", false, "")
	check("$${ENVGATE_A}", "${ENVGATE_A}", false, "")
	check("pa$$word", "pa$word", false, "")
	check("$HOME $ 5$", "$HOME $ 5$", false, "")
	check("${ENVGATE_UNSET}", "", false, "environment variable ENVGATE_UNSET is not set")
	check("${ENVGATE_A", "", false, `without a closing "}"`)
	check("${}", "", false, "needs a variable name")
	check("${ENVGATE-A}", "", false, "needs a variable name")
	check("${9A}", "", false, "needs a variable name")

	// In a file: values are expanded, keys are not, and the result is typed after expansion.
	t.Setenv("ENVGATE_INTERVAL", "3s")
	t.Setenv("ENVGATE_BATCH", "250")
	t.Setenv("ENVGATE_GZIP", "false")
	cfg, err := Parse([]byte(`
gateway: {id: "${ENVGATE_A}", site: '${ENVGATE_UNSET:-canal}', state_dir: /var/$$lib}
sinks:
  - name: s
    influxdb:
      url: http://${ENVGATE_A}:8086
      bucket: b
      batch_size: ${ENVGATE_BATCH}
      gzip: ${ENVGATE_GZIP}
devices:
  - {name: d, interval: "${ENVGATE_INTERVAL}", sim: {kind: air}}
`), "x.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	x := cfg.Sinks[0].InfluxDB
	if cfg.Gateway.ID != "alpha" || cfg.Gateway.Site != "canal" || cfg.Gateway.StateDir != "/var/$lib" ||
		x.URL != "http://alpha:8086" || x.BatchSize != 250 || *x.Gzip || cfg.Devices[0].Interval != 3*time.Second {
		t.Errorf("expanded config = %+v %+v %+v", cfg.Gateway, *x, cfg.Devices[0])
	}
	_, err = Parse([]byte("gateway:\n  ${ENVGATE_A}: 1\n"), "x.yaml")
	if got := errLines(err); !strings.Contains(got, "gateway.${ENVGATE_A} (line 2): unknown key") {
		t.Errorf("keys must not be expanded; got %q", got)
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("tok", "\n  tok-123 \r\n")
	write("empty", " \n")
	write("big", strings.Repeat("x", int(MaxSecretFile)+1))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "envgate.yaml")
	sink := func(extra string) string {
		return "gateway: {id: a}\nsinks:\n  - name: s\n    influxdb:\n      url: http://h:8086\n      bucket: b\n" + extra
	}
	check := func(name, in, wantToken, wantErr string) {
		t.Helper()
		cfg, err := Parse([]byte(in), cfgFile)
		if wantErr != "" {
			if got := errLines(err); got != wantErr {
				t.Errorf("%s: problems = %q, want %q", name, got, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		if got := cfg.Sinks[0].InfluxDB.Token.Reveal(); got != wantToken {
			t.Errorf("%s: token = %q, want %q", name, got, wantToken)
		}
	}
	check("absolute", sink("      token_file: "+filepath.Join(dir, "tok")+"\n"), "tok-123", "")
	check("relative to the config file", sink("      token_file: tok\n"), "tok-123", "")
	check("inline token", sink("      token: inline\n"), "inline", "")
	check("both", sink("      token: inline\n      token_file: tok\n"), "",
		"sinks[0].influxdb.token_file (line 8): set token or token_file, not both\n")
	check("missing", sink("      token_file: nope\n"), "",
		"sinks[0].influxdb.token_file (line 7): cannot read token: open "+filepath.Join(dir, "nope")+": no such file or directory\n")
	check("empty", sink("      token_file: empty\n"), "",
		"sinks[0].influxdb.token_file (line 7): file is empty\n")
	check("too big", sink("      token_file: big\n"), "",
		"sinks[0].influxdb.token_file (line 7): cannot read token: "+filepath.Join(dir, "big")+" is larger than 64KiB\n")
	// Issue 10: a FIFO hung Parse forever, and /dev/zero exhausted memory.
	check("fifo", sink("      token_file: fifo\n"), "",
		"sinks[0].influxdb.token_file (line 7): cannot read token: "+filepath.Join(dir, "fifo")+" is a named pipe (FIFO), not a regular file\n")
	check("device", sink("      token_file: /dev/zero\n"), "",
		"sinks[0].influxdb.token_file (line 7): cannot read token: /dev/zero is a device, not a regular file\n")
	check("directory", sink("      token_file: .\n"), "",
		"sinks[0].influxdb.token_file (line 7): cannot read token: "+dir+" is a directory, not a regular file\n")
}

// TestSecretsNeverLeak puts a token in through ${VAR}, an anchor and a token file,
// breaks many other fields, and checks that the token appears in no error and no
// formatted config.
func TestSecretsNeverLeak(t *testing.T) {
	const secret = "s3cr3t"
	t.Setenv("TOK", secret)
	t.Setenv("ENVGATE_SECRET_URL", "http://user:"+secret+"@")
	tokenFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tokenFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := `
gateway: {id: "bad id", listen: nowhere}
sinks:
  - name: a
    influxdb:
      url: ${ENVGATE_SECRET_URL}
      bucket: b
      token: &t ${TOK}
      timeout: ${TOK}
      batch_size: ${TOK}
      gzip: ${TOK}
      retry_max: *t
      precision: ${TOK}
  - name: b
    influxdb: {url: "http://h", bucket: b, token: [` + secret + `], token_file: ` + tokenFile + `}
  - name: c
    influxdb: {url: "http://h", bucket: b, token: "${TOK}${NOT_SET_ENVGATE}", tokne: 1}
devices:
  - {name: d, interval: 0s, sim: {kind: "${TOK}"}}
  - {name: "${TOK}", interval: 1s, sim: {kind: air}}
`
	cfg, err := Parse([]byte(broken), "x.yaml")
	if err == nil {
		t.Fatal("Parse(broken) = nil error")
	}
	if got := err.Error(); strings.Contains(got, secret) {
		t.Errorf("error contains the secret:\n%s", got)
	}
	if n := len(Problems(err)); n < 10 {
		t.Errorf("only %d problems:\n%s", n, err)
	}
	t.Logf("problems:\n%s", err)

	good := `
gateway: {id: a, site: s}
sinks:
  - name: a
    influxdb: {url: "http://h", bucket: b, token: "${TOK}"}
  - name: b
    influxdb: {url: "http://h", bucket: b, token_file: ` + tokenFile + `}
devices:
  - {name: d, interval: 1s, sim: {kind: air}}
`
	cfg, err = Parse([]byte(good), "x.yaml")
	if err != nil {
		t.Fatalf("Parse(good): %v", err)
	}
	for _, s := range cfg.Sinks {
		if s.InfluxDB.Token.Reveal() != secret {
			t.Fatalf("sink %s token = %q", s.Name, s.InfluxDB.Token.Reveal())
		}
	}
	out := fmt.Sprintf("%v %+v %#v %v %+v %#v %s %q %x", cfg, *cfg, *cfg, *cfg.Sinks[0].InfluxDB, *cfg.Sinks[1].InfluxDB,
		*cfg.Sinks[0].InfluxDB, cfg.Sinks[0].InfluxDB.Token, cfg.Sinks[0].InfluxDB.Token, cfg.Sinks[0].InfluxDB.Token)
	if strings.Contains(out, secret) || !strings.Contains(out, "[redacted]") {
		t.Errorf("formatted config shows the secret or no [redacted]:\n%s", out)
	}
}

func TestProblemError(t *testing.T) {
	for _, tc := range []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "devices[2].interval", Line: 41, Msg: "must be > 0"}, "devices[2].interval (line 41): must be > 0"},
		{Problem{Path: "gateway.id", Msg: "required"}, "gateway.id: required"},
		{Problem{Line: 3, Msg: "invalid YAML: x"}, "line 3: invalid YAML: x"},
		{Problem{Msg: "read config: x"}, "read config: x"},
		{Problem{Path: "points[1].type", Line: 7, Msg: "required", File: "/etc/envgate/acme.yaml"}, "/etc/envgate/acme.yaml: points[1].type (line 7): required"},
		{Problem{Line: 2, Msg: "invalid YAML: x", File: "p.yaml"}, "p.yaml: line 2: invalid YAML: x"},
	} {
		if got := tc.p.Error(); got != tc.want {
			t.Errorf("%#v.Error() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestProblems(t *testing.T) {
	if got := Problems(nil); got != nil {
		t.Errorf("Problems(nil) = %v", got)
	}
	a, b := &Problem{Path: "a", Msg: "x"}, &Problem{Path: "b", Msg: "y"}
	got := Problems(fmt.Errorf("wrapped: %w", errors.Join(a, errors.Join(b))))
	// A wrapped join is not unwrapped by errors.As into both; the first is found.
	if len(got) != 1 || got[0] != a {
		t.Errorf("Problems(wrapped join) = %v", got)
	}
	got = Problems(errors.Join(a, errors.Join(b), errors.New("plain")))
	if len(got) != 3 || got[0] != a || got[1] != b || got[2].Msg != "plain" {
		t.Errorf("Problems(join) = %v", got)
	}
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if ps := Problems(err); len(ps) != 1 || !strings.HasPrefix(ps[0].Msg, "read config: open ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
}

// TestProblemsNeverQuoteFileContent is the regression test of issue 10: "envgate check
// -c /etc/shadow" printed every line of it as an unknown key. A key is quoted only if it
// could be a mistyped key; the text of the file never is, not even through yaml.v3's
// own messages.
func TestProblemsNeverQuoteFileContent(t *testing.T) {
	const hash = "$6$Hx9c2kD1$abcdefghijklmnopqrstuvwxyz0123456789"
	shadow := "root:" + hash + ":19700:0:99999:7:::\n" +
		"daemon:*:19700:0:99999:7:::\n" +
		"sshd:!:19700::::::\n" +
		"gatway: {}\n" + // a plausible key is still quoted, with a suggestion
		strings.Repeat("x", maxKeyLen+1) + ": 1\n"
	_, err := Parse([]byte(shadow), "shadow")
	got := errLines(err)
	for _, leak := range []string{hash, "root", "daemon", "sshd", "19700", "xxxx"} {
		if strings.Contains(got, leak) {
			t.Errorf("problems quote %q from the file:\n%s", leak, got)
		}
	}
	const hidden = `unknown key, not shown: it is not a word of letters, digits, "_" and "-" (known keys: gateway, buffer, sinks, devices, buses, mqtt, pm, hj212_listen, noise, air, water, screening, profile_files)`
	want := "gateway.id: required\n" +
		"line 1: " + hidden + "\n" +
		"line 2: " + hidden + "\n" +
		"line 3: " + hidden + "\n" +
		`gatway (line 4): unknown key (did you mean "gateway"?)` + "\n" +
		"line 5: " + hidden + "\n"
	if got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}

	_, err = Parse([]byte("gateway: *hunter2secret\n"), "x")
	if got, want := errLines(err), "invalid YAML: unknown anchor referenced\n"; got != want {
		t.Errorf("unknown anchor: problems = %q, want %q", got, want)
	}
}

// TestProblemsAreCapped is the regression test of issue 10: a 50 MB config took 2.6 GB
// and printed 2.87 million problems. Parse returns the first 100 and counts the rest,
// and stops decoding after maxVisits keys and values.
func TestProblemsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("gateway: {id: a}\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "k%d: x\n", i)
	}
	ps := Problems(func() error { _, err := Parse([]byte(b.String()), "x"); return err }())
	if len(ps) != maxReported+1 {
		t.Fatalf("Parse(5000 unknown keys) = %d problems, want %d", len(ps), maxReported+1)
	}
	if got := ps[0].Error(); got != `k0 (line 2): unknown key (did you mean "pm"?)` {
		t.Errorf("first problem = %q", got)
	}
	last := ps[len(ps)-1]
	if last.Omitted != 5000-maxReported || last.Error() != "... and 4900 more problems" {
		t.Errorf("last problem = %q (Omitted %d), want ... and 4900 more problems", last.Error(), last.Omitted)
	}

	b.Reset()
	for i := range maxVisits + 10 {
		fmt.Fprintf(&b, "k%d: x\n", i)
	}
	ps = Problems(func() error { _, err := Parse([]byte(b.String()), "x"); return err }())
	if got, want := ps[0].Error(), "more than 100000 keys and values (stopped at line 99999); the file is not a plausible config"; got != want {
		t.Errorf("first problem = %q, want %q", got, want)
	}
	if n := len(ps); n != maxReported+1 || ps[n-1].Omitted < maxVisits-maxReported {
		t.Errorf("Parse(%d unknown keys) = %d problems, last %q", maxVisits+10, n, ps[n-1].Error())
	}
}
