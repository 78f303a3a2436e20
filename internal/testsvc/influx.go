package testsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/clock"
)

// InfluxInstallHint tells how to install the InfluxDB version the tests are written against.
const InfluxInstallHint = "go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10"

const (
	influxReadyTimeout = 30 * time.Second // a cold start on a slow CI runner takes a few seconds
	influxGraceful     = 5 * time.Second  // after SIGTERM, before the second SIGTERM
	influxHardStop     = 10 * time.Second // after the second SIGTERM, before SIGKILL
	logTailLines       = 40
)

// Influx is an InfluxDB 1.8 server started by StartInflux for one test. It serves the
// v1 API and the v2 write API (/api/v2/write) on URL; database DB exists from the start.
// Its methods are for the test goroutine only.
type Influx struct {
	URL    string // base URL, e.g. "http://127.0.0.1:41234"
	DB     string // the database created at start, "envgate"
	Bucket string // the v2 bucket naming DB's default retention policy, DB+"/autogen"
	Dir    string // meta, data and WAL directories, config and log file
	Log    string // path of influxd's log file

	config string
	http   *http.Client
	proc   *process
}

// StartInflux starts influxd on free loopback ports (HTTP and the RPC bind-address) with
// its files in t.TempDir(), waits for /ping, creates database "envgate" and stops the
// server in t.Cleanup. When the test fails, the tail of influxd's log is printed.
// Under -short it skips, unless CI=true.
func StartInflux(t testing.TB) *Influx {
	t.Helper()
	if testing.Short() && !inCI() {
		t.Skip("integration test with a real InfluxDB; skipped with -short")
	}
	bin := Binary(t, "influxd", InfluxInstallHint)
	dir := t.TempDir()
	httpPort, rpcPort := FreePort(t), FreePort(t)
	for httpPort == rpcPort {
		rpcPort = FreePort(t)
	}
	i := &Influx{
		URL:    fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		DB:     "envgate",
		Bucket: "envgate/autogen",
		Dir:    dir,
		Log:    filepath.Join(dir, "influxd.log"),
		config: filepath.Join(dir, "influxdb.conf"),
		http:   &http.Client{Timeout: 30 * time.Second},
	}
	// influxd 1.8 can hang in its clean shutdown until its own 30 s limit (it happened
	// once while these tests were written); a second SIGTERM makes it exit at once, with
	// a non-zero status. Every acknowledged write is already in its WAL, fsynced per
	// write, so nothing is lost. SIGKILL is the last resort.
	i.proc = &process{
		name: "influxd on " + i.URL, bin: bin, args: []string{"-config", i.config}, log: i.Log,
		ready: httpReady(i.http, i.URL+"/ping", http.StatusNoContent), readyTimeout: influxReadyTimeout,
		stopWaits: []time.Duration{influxGraceful, influxHardStop}, logTail: logTailLines,
	}
	conf := fmt.Sprintf(influxConfig, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"),
		filepath.Join(dir, "wal"), httpPort)
	if err := os.WriteFile(i.config, []byte(conf), 0o644); err != nil {
		t.Fatalf("write influxd config: %v", err)
	}
	i.proc.run(t, "influxd", i.Stop)
	i.Exec(t, "CREATE DATABASE "+quoteIdent(i.DB))
	return i
}

// influxConfig is an influxd 1.8 configuration for tests: loopback only, no usage
// reporting, no _internal monitor database, Flux on; no HTTP access or query log, so
// the log file holds little more than start-up and shutdown.
// Arguments: RPC port, meta dir, data dir, WAL dir, HTTP port.
const influxConfig = `reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %q
  logging-enabled = false

[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  log-enabled = false

[http]
  bind-address = "127.0.0.1:%d"
  log-enabled = false
  flux-enabled = true
  flux-log-enabled = false
  pprof-enabled = false

[logging]
  format = "logfmt"
  level = "info"
  suppress-logo = true
`

// Start starts the server again on the same ports and data directory (after Stop) and
// waits until it answers /ping.
func (i *Influx) Start(t testing.TB) {
	t.Helper()
	i.proc.start(t)
}

// Stop stops the server with SIGTERM (twice if need be, see StartInflux) and waits for
// it to exit. Data written before Stop is on disk; Start brings the server back.
// Stopping a stopped server does nothing.
func (i *Influx) Stop(t testing.TB) {
	t.Helper()
	i.proc.stop(t)
	i.http.CloseIdleConnections()
}

// Row is one row of a query result: series are flattened, so every row carries its
// series' measurement and tags. Time is in milliseconds since the Unix epoch (0 when
// the result has no time column); Values holds every other column, with numbers as
// float64 (InfluxQL's JSON does not say whether 35 was stored as float or integer:
// use SHOW FIELD KEYS for that).
type Row struct {
	Measurement string
	Tags        map[string]string
	Time        int64
	Values      map[string]any
}

// Query runs a read-only InfluxQL statement (SELECT, SHOW) against DB and returns its
// rows; any error fails the test.
func (i *Influx) Query(t testing.TB, influxql string) []Row {
	t.Helper()
	return i.query(t, http.MethodGet, influxql)
}

// Exec runs an InfluxQL statement that changes something (CREATE, DROP, DELETE)
// against DB; any error fails the test.
func (i *Influx) Exec(t testing.TB, influxql string) {
	t.Helper()
	i.query(t, http.MethodPost, influxql)
}

func (i *Influx) query(t testing.TB, method, influxql string) []Row {
	t.Helper()
	params := url.Values{"db": {i.DB}, "epoch": {"ms"}, "q": {influxql}}
	u := i.URL + "/query"
	var body io.Reader
	header := ""
	if method == http.MethodGet {
		u += "?" + params.Encode()
	} else {
		body = strings.NewReader(params.Encode())
		header = "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatalf("query %q: %v", influxql, err)
	}
	if header != "" {
		req.Header.Set("Content-Type", header)
	}
	resp, err := i.http.Do(req)
	if err != nil {
		t.Fatalf("query %q: %v", influxql, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("query %q: read response: %v", influxql, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query %q: %s: %s", influxql, resp.Status, bytes.TrimSpace(raw))
	}
	var r struct {
		Error   string `json:"error"`
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Name    string            `json:"name"`
				Tags    map[string]string `json:"tags"`
				Columns []string          `json:"columns"`
				Values  [][]any           `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("query %q: decode %s: %v", influxql, raw, err)
	}
	if r.Error != "" {
		t.Fatalf("query %q: %s", influxql, r.Error)
	}
	var rows []Row
	for _, res := range r.Results {
		if res.Error != "" {
			t.Fatalf("query %q: %s", influxql, res.Error)
		}
		for _, s := range res.Series {
			for _, vals := range s.Values {
				row := Row{Measurement: s.Name, Tags: s.Tags, Values: make(map[string]any, len(vals))}
				for c, v := range vals {
					if c >= len(s.Columns) {
						break
					}
					if s.Columns[c] == "time" {
						if n, ok := v.(json.Number); ok {
							row.Time, err = n.Int64()
							if err != nil {
								t.Fatalf("query %q: time %v: %v", influxql, n, err)
							}
							continue
						}
					}
					if n, ok := v.(json.Number); ok {
						f, err := n.Float64()
						if err != nil {
							t.Fatalf("query %q: column %s: %v", influxql, s.Columns[c], err)
						}
						v = f
					}
					row.Values[s.Columns[c]] = v
				}
				rows = append(rows, row)
			}
		}
	}
	return rows
}

// Count returns the number of values of field in measurement (SELECT COUNT).
func (i *Influx) Count(t testing.TB, measurement, field string) int {
	t.Helper()
	rows := i.Query(t, fmt.Sprintf("SELECT COUNT(%s) FROM %s", quoteIdent(field), quoteIdent(measurement)))
	if len(rows) == 0 {
		return 0
	}
	n, ok := rows[0].Values["count"].(float64)
	if !ok {
		t.Fatalf("count %s.%s: unexpected row %+v", measurement, field, rows[0])
	}
	return int(n)
}

// Write writes line protocol to DB through the v1 /write endpoint, with timestamps in
// nanoseconds (InfluxDB's default); any error fails the test. Lines without a timestamp
// get clock.Now(), one for the whole call, as InfluxDB would give them its own clock:
// in a fakeclock build (internal/clock) that is the shifted clock, which InfluxDB's is not.
func (i *Influx) Write(t testing.TB, lines ...string) {
	t.Helper()
	now := " " + strconv.FormatInt(clock.Now().UnixNano(), 10)
	stamped := make([]string, len(lines))
	for k, l := range lines {
		stamped[k] = l
		if !hasTimestamp(l) {
			stamped[k] += now
		}
	}
	u := i.URL + "/write?" + url.Values{"db": {i.DB}}.Encode()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(strings.Join(stamped, "\n")))
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := i.http.Do(req)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write %q: %s: %s", lines, resp.Status, bytes.TrimSpace(raw))
	}
}

// hasTimestamp reports whether a line of line protocol ends with a timestamp: whether it
// has three sections, separated by spaces neither escaped nor inside a quoted string.
func hasTimestamp(line string) bool {
	sections, quoted := 1, false
	for k := 0; k < len(line); k++ {
		switch line[k] {
		case '\\':
			k++
		case '"':
			quoted = !quoted
		case ' ':
			if !quoted {
				sections++
			}
		}
	}
	return sections >= 3
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
