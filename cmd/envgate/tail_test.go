package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/status"
)

// statusServer serves the status handler of a gateway whose readings come from feed,
// and returns its host:port.
func statusServer(t *testing.T, feed *status.Feed) string {
	t.Helper()
	s := status.New(status.Config{Metrics: metrics.New(), Feed: feed, Heartbeat: 50 * time.Millisecond})
	ts := httptest.NewServer(s.Handler(nil))
	t.Cleanup(ts.Close)
	t.Cleanup(feed.Close) // before ts.Close, which waits for the stream
	u, _ := url.Parse(ts.URL)
	return u.Host
}

// publishWhileSubscribed publishes rs over and over until stop is closed, once feed has
// a subscriber (the tail under test).
func publishWhileSubscribed(feed *status.Feed, stop <-chan struct{}, rs ...reading.Reading) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		for _, r := range rs {
			feed.Publish(r)
		}
	}
}

// TestTailFilters runs `envgate tail` with each filter flag against a gateway's stream
// carrying readings of several devices, sites and quantities: it prints only those
// that pass, one per line, and stops after -n.
func TestTailFilters(t *testing.T) {
	at := time.Date(2026, 7, 1, 12, 0, 0, 500e6, time.UTC)
	noise := reading.New(at, "canal-west", "noise-1", "la", 52.1)
	lmax := reading.New(at, "canal-west", "noise-1", "laeq", 60)
	air := reading.New(at, "canal-east", "air-1", "pm25", 31)
	air2 := reading.New(at, "canal-west", "air-2", "pm25", 7.5)
	air2.Quality = reading.Suspect
	for _, tc := range []struct {
		flags []string
		want  []string // site/device quantity of every line
	}{
		{[]string{"--device", "noise-1"}, []string{"canal-west/noise-1 la", "canal-west/noise-1 laeq"}},
		{[]string{"--device", "air-1,air-2"}, []string{"canal-east/air-1 pm25", "canal-west/air-2 pm25"}},
		{[]string{"--site", "canal-east"}, []string{"canal-east/air-1 pm25"}},
		{[]string{"--quantity", "la"}, []string{"canal-west/noise-1 la"}},
		{[]string{"--site", "canal-west", "--quantity", "pm25"}, []string{"canal-west/air-2 pm25"}},
		{nil, []string{"canal-west/noise-1 la", "canal-west/noise-1 laeq", "canal-east/air-1 pm25", "canal-west/air-2 pm25"}},
	} {
		feed := status.NewFeed(2)
		addr := statusServer(t, feed)
		stop := make(chan struct{})
		go publishWhileSubscribed(feed, stop, noise, lmax, air, air2)
		n := 3 * len(tc.want)
		code, out, errOut := cli(append([]string{"tail", "--listen", addr, "-n", fmt.Sprint(n)}, tc.flags...)...)
		close(stop)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if code != 0 || len(lines) != n {
			t.Errorf("envgate tail %v = %d, %d lines, stderr %q; want 0 and %d lines", tc.flags, code, len(lines), errOut, n)
			continue
		}
		seen := map[string]bool{}
		for i, line := range lines {
			f := strings.Fields(line)
			if len(f) < 5 || !slices.Contains(tc.want, f[1]+" "+f[2]) {
				t.Errorf("envgate tail %v line %d = %q, want one of %q", tc.flags, i+1, line, tc.want)
				continue
			}
			seen[f[1]+" "+f[2]] = true
		}
		if len(seen) != len(tc.want) {
			t.Errorf("envgate tail %v printed %v, want each of %q", tc.flags, seen, tc.want)
		}
		if want := at.Local().Format("2006-01-02T15:04:05.000Z07:00") + " canal-west/air-2 pm25 7.5 ug/m3 (suspect)"; len(tc.flags) == 0 && !slices.Contains(lines, want) {
			t.Errorf("envgate tail lines %q lack %q", lines, want)
		}
	}
}

// TestTailNoGateway checks the message when nothing listens at the gateway's address,
// and the usage errors.
func TestTailNoGateway(t *testing.T) {
	addr := loopback(t)
	code, out, errOut := cli("tail", "--listen", addr)
	if code != 1 || out != "" || !strings.Contains(errOut, "no gateway answers at "+addr+": is envgate running there?") {
		t.Errorf("envgate tail with no gateway = %d, %q, %q; want 1 and a message saying so", code, out, errOut)
	}
	if code, _, errOut := cli("tail", "--quantity", "lq", "--listen", addr); code != 2 || !strings.Contains(errOut, `"la"`) {
		t.Errorf("envgate tail --quantity lq = %d, %q; want 2 and a suggestion", code, errOut)
	}
	if code, _, errOut := cli("tail", "noise-1"); code != 2 || !strings.Contains(errOut, "--device") {
		t.Errorf("envgate tail noise-1 = %d, %q; want 2 and a hint at --device", code, errOut)
	}
	// Not an envgate: a server without the stream.
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	if code, _, errOut := cli("tail", "--listen", u.Host); code != 1 || !strings.Contains(errOut, "has no reading stream") {
		t.Errorf("envgate tail at a server without /api/readings = %d, %q", code, errOut)
	}
}

// TestTailSilentLink checks that tail gives up on a stream that sends nothing, not even
// the heartbeat, for its idle limit.
func TestTailSilentLink(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	var out, errOut bytes.Buffer
	err := tail(t.Context(), tailConn{addr: u.Host}, status.Filter{}, 0, 200*time.Millisecond, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "nothing from the gateway") {
		t.Errorf("tail of a silent stream = %v, want it to call the link dead", err)
	}
}

// TestPrintStream checks the stream reader: readings printed, a note for dropped
// readings, heartbeats silent, and each malformed line (bad JSON, too long, cut off)
// named by its number and skipped without losing the lines after it.
func TestPrintStream(t *testing.T) {
	reading := `{"reading":{"time":"2026-07-01T12:00:00Z","site":"s","device":"d","quantity":"la","value":%d,"unit":"dB(A)","quality":"good"}}` + "\n"
	in := fmt.Sprintf(reading, 1) +
		`{"heartbeat":"2026-07-01T12:00:01Z"}` + "\n" +
		`{"dropped":7}` + "\n" +
		"not json\n" +
		`{"reading":{"time":"2026-07-01T12:00:00Z","site":"s","device":"d","quantity":"la","value":2,"unit":"dB(A)"},"x":1}` + "\n" +
		strings.Repeat("x", status.MaxLine+100) + "\n" +
		fmt.Sprintf(reading, 3) +
		`{"dropped":`
	var out, errOut bytes.Buffer
	alive := 0
	n, err := printStream(strings.NewReader(in), &out, &errOut, 0, func() { alive++ })
	if n != 2 || err != nil || alive != 7 {
		t.Errorf("printStream = %d, %v, alive %d times; want 2 readings, nil, 7", n, err, alive)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " s/d la 1 dB(A)") || !strings.HasSuffix(lines[1], " s/d la 3 dB(A)") {
		t.Errorf("stdout = %q, want readings 1 and 3", out.String())
	}
	for _, want := range []string{"7 readings dropped", "stream line 4: not a stream line", "stream line 5: not a stream line",
		"stream line 6: longer than 4096 bytes", "stream line 8: cut off"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}

// FuzzPrintStream feeds the stream reader arbitrary bytes: it never panics, and prints
// exactly the readings it counts.
func FuzzPrintStream(f *testing.F) {
	f.Add([]byte(`{"reading":{"time":"2026-07-01T12:00:00Z","site":"s","device":"d","quantity":"la","value":1,"unit":"dB(A)"}}` + "\n" + `{"dropped":3}` + "\n"))
	f.Add([]byte("\n\n{\n}\n"))
	f.Add([]byte(strings.Repeat("{", status.MaxLine+10)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var out, errOut bytes.Buffer
		n, err := printStream(bytes.NewReader(b), &out, &errOut, 0, func() {})
		if err != nil {
			t.Fatalf("printStream of bytes = %v", err)
		}
		if got := strings.Count(out.String(), "\n"); got != n {
			t.Fatalf("printStream printed %d lines, counted %d", got, n)
		}
	})
}

// TestDialAddr checks that a wildcard listen address is reached on loopback.
func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9273": "127.0.0.1:9273", ":9273": "127.0.0.1:9273", "0.0.0.0:9273": "127.0.0.1:9273",
		"[::]:9273": "127.0.0.1:9273", "10.0.0.5:80": "10.0.0.5:80", "box.local:9273": "box.local:9273",
	} {
		if got := dialAddr(in); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTailRunningGateway runs the envgate binary and `envgate tail -c` on its config:
// the readings of the chosen device arrive; and the gateway, stopped while the stream
// is open, still exits at once with 0 (the stream ends before the HTTP server's
// shutdown, which would otherwise wait for it and fail).
func TestTailRunningGateway(t *testing.T) {
	skipSubprocess(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := loopback(t)
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, runConfig(filepath.Join(dir, "state"), addr, 10*time.Second, ""))
	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath)
	p.waitMetrics(t, addr, 10*time.Second, func(string) bool { return true })

	code, out, errOut := cli("tail", "-c", cfgPath, "--device", "air-1", "-n", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("envgate tail -c %s --device air-1 -n 3 = %d, stdout %q, stderr %q", cfgPath, code, out, errOut)
	}
	for _, l := range lines {
		if !strings.Contains(l, " canal-cli/air-1 ") {
			t.Errorf("envgate tail --device air-1 printed %q", l)
		}
	}

	resp, err := http.Get("http://" + addr + "/api/readings")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if code, took := p.stop(t, 10*time.Second); code != 0 || took > 5*time.Second {
		t.Errorf("envgate with an open stream exited %d after %v on SIGTERM, want 0 promptly", code, took)
	}
}
