package testsvc

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// VictoriaMetricsInstallHint tells how to install the single-node server (Debian
// bookworm: victoria-metrics 1.79).
const VictoriaMetricsInstallHint = "apt-get install victoria-metrics, or scripts/install-deps.sh"

// VictoriaMetrics is a single-node VictoriaMetrics started by StartVictoriaMetrics for
// one test or benchmark, on a free loopback port with its storage in a temporary
// directory. It takes remote write at URL + "/api/v1/write" and InfluxDB line protocol
// at URL + "/write". Its methods are for the test goroutine only.
type VictoriaMetrics struct {
	URL  string // "http://127.0.0.1:port"
	Data string // -storageDataPath
	Log  string

	http *http.Client
	proc *process
}

// StartVictoriaMetrics starts the server with a retention of 100 years (so that no
// test date falls outside it), waits until /health answers and stops it in t.Cleanup.
// A missing binary skips, or fails under CI=true.
func StartVictoriaMetrics(t testing.TB) *VictoriaMetrics {
	t.Helper()
	if testing.Short() && !inCI() {
		t.Skip("integration test with a real VictoriaMetrics; skipped with -short")
	}
	bin := Binary(t, "victoria-metrics", VictoriaMetricsInstallHint)
	dir := t.TempDir()
	port := FreePort(t)
	v := &VictoriaMetrics{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Data: filepath.Join(dir, "data"),
		Log: filepath.Join(dir, "victoria-metrics.log"), http: &http.Client{Timeout: 30 * time.Second}}
	v.proc = &process{
		name: "victoria-metrics on " + v.URL, bin: bin, log: v.Log,
		args: []string{"-storageDataPath=" + v.Data, "-httpListenAddr=127.0.0.1:" + strconv.Itoa(port),
			"-retentionPeriod=100y", "-loggerLevel=WARN"},
		ready: httpReady(v.http, v.URL+"/health", http.StatusOK), readyTimeout: 30 * time.Second,
		stopWaits: []time.Duration{15 * time.Second}, checkExit: true, logTail: 40,
	}
	v.proc.run(t, "victoria-metrics", func(t testing.TB) { v.proc.stop(t); v.http.CloseIdleConnections() })
	return v
}

// Compact makes the server write everything it holds in memory to disk and merge its
// parts (/internal/force_flush, /internal/force_merge), and waits until no merge runs,
// so that DiskBytes measures what the data takes at rest.
func (v *VictoriaMetrics) Compact(t testing.TB) {
	t.Helper()
	for _, path := range []string{"/internal/force_flush", "/internal/force_merge"} {
		resp, err := v.http.Get(v.URL + path)
		if err != nil {
			t.Fatalf("victoria-metrics %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("victoria-metrics %s: %s: %s", path, resp.Status, body)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for quiet := 0; quiet < 3; time.Sleep(500 * time.Millisecond) {
		if v.activeMerges(t) == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if time.Now().After(deadline) {
			t.Fatal("victoria-metrics still merging after 2 minutes")
		}
	}
}

// activeMerges sums vm_active_merges from the server's own metrics.
func (v *VictoriaMetrics) activeMerges(t testing.TB) float64 {
	resp, err := v.http.Get(v.URL + "/metrics")
	if err != nil {
		t.Fatalf("victoria-metrics /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	total := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "vm_active_merges") {
			continue
		}
		f := strings.Fields(line)
		if n, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			total += n
		}
	}
	return total
}

// DiskBytes returns the bytes of the files under the storage directory's sub-directory
// sub ("data" for the samples, "indexdb" for the index, "" for all).
func (v *VictoriaMetrics) DiskBytes(t testing.TB, sub string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(v.Data, sub), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("victoria-metrics disk use: %v", err)
	}
	return n
}
