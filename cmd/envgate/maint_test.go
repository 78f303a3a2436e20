package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/gateway/maint"
	"github.com/envgate/envgate/gateway/status"
)

// TestMaintEndToEnd drives `envgate maint` against the real binary the way an
// installer does: start a calibration of the noise meter, see it on /metrics and
// /api/status with its readings kept out of the noise monitor, refuse an unknown
// device and a stop of a device not in maintenance, keep the window across a restart,
// stop it, and say so when no gateway runs.
func TestMaintEndToEnd(t *testing.T) {
	skipSubprocess(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := loopback(t)
	state := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, runConfig(state, addr, 10*time.Second, "")+
		"noise:\n  sites:\n    - {device: noise-1, zone: \"1\", sample: 100ms}\n")
	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath)
	p.waitMetrics(t, addr, 10*time.Second, func(m string) bool {
		v, ok := metricValue(m, `envgate_device_maintenance{device="noise-1",kind="calibration"}`)
		return ok && v == 0
	})

	maintCLI := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		code, out, errOut := cli(append([]string{"maint"}, args...)...)
		if code != wantCode {
			t.Fatalf("envgate maint %s = %d, stdout %q, stderr %q; want %d", strings.Join(args, " "), code, out, errOut, wantCode)
		}
		return out, errOut
	}
	if out, _ := maintCLI(0, "list", "-c", cfgPath); !strings.Contains(out, "no device in maintenance") {
		t.Errorf("envgate maint list before any start printed %q", out)
	}
	out, _ := maintCLI(0, "start", "-c", cfgPath, "--device", "noise-1", "--kind", "calibration", "--reason", "94 dB calibrator")
	if !strings.Contains(out, "noise-1: calibration since ") {
		t.Errorf("envgate maint start printed %q", out)
	}
	if _, errOut := maintCLI(1, "start", "-c", cfgPath, "--device", "noise-9"); !strings.Contains(errOut, `device "noise-9" is not in the gateway's config`) {
		t.Errorf("start of an unknown device: stderr %q", errOut)
	}
	if _, errOut := maintCLI(1, "stop", "-c", cfgPath, "--device", "air-1"); !strings.Contains(errOut, `device "air-1": not in maintenance or calibration`) {
		t.Errorf("stop of a device not in maintenance: stderr %q", errOut)
	}
	if _, errOut := maintCLI(2, "start", "-c", cfgPath); !strings.Contains(errOut, "--device D is required") {
		t.Errorf("start without --device: stderr %q", errOut)
	}
	// A change that is not JSON is refused, whatever its peer (a form on a web page).
	resp, err := http.Post("http://"+addr+"/api/maint/stop", "application/x-www-form-urlencoded", strings.NewReader(`{"device":"noise-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /api/maint/stop as a form = %s, want 403", resp.Status)
	}

	// The meter's readings are still stored (its latest value moves on) but kept out of
	// the noise monitor.
	var excluded float64
	p.waitMetrics(t, addr, 10*time.Second, func(m string) bool {
		v, ok := metricValue(m, `envgate_device_maintenance{device="noise-1",kind="calibration"}`)
		excluded, _ = metricValue(m, `envgate_readings_excluded_total{device="noise-1"}`)
		return ok && v == 1 && excluded >= 5
	})
	code, body := get("http://" + addr + "/api/status")
	var st status.Status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/api/status = %d, %v", code, err)
	}
	if len(st.Maintenance) != 1 || st.Maintenance[0].Device != "noise-1" || st.Maintenance[0].Kind != "calibration" ||
		st.Maintenance[0].Reason != "94 dB calibrator" || st.Maintenance[0].Excluded == 0 {
		t.Errorf("/api/status maintenance = %+v", st.Maintenance)
	}

	// The window survives a restart.
	if code, _ := p.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("envgate exited %d on SIGTERM", code)
	}
	if _, errOut := maintCLI(1, "list", "-c", cfgPath); !strings.Contains(errOut, "no gateway answers at "+addr) {
		t.Errorf("envgate maint list without a gateway: stderr %q", errOut)
	}
	p = startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath)
	p.waitMetrics(t, addr, 10*time.Second, func(m string) bool {
		v, ok := metricValue(m, `envgate_device_maintenance{device="noise-1",kind="calibration"}`)
		return ok && v == 1
	})
	if out, _ := maintCLI(0, "list", "--listen", addr); !strings.Contains(out, "noise-1: CALIBRATION since ") || !strings.Contains(out, "(94 dB calibrator)") {
		t.Errorf("envgate maint list after a restart printed %q", out)
	}
	out, _ = maintCLI(0, "stop", "-c", cfgPath, "--device", "noise-1")
	if !strings.Contains(out, "noise-1: calibration stopped") {
		t.Errorf("envgate maint stop printed %q", out)
	}
	p.waitMetrics(t, addr, 10*time.Second, func(m string) bool {
		v, ok := metricValue(m, `envgate_device_maintenance{device="noise-1",kind="calibration"}`)
		return ok && v == 0
	})
	if out, _ := maintCLI(0, "list", "-c", cfgPath); !strings.Contains(out, "past windows:\nnoise-1: calibration ") {
		t.Errorf("envgate maint list after stop printed %q", out)
	}
	if !strings.Contains(p.stderr.String(), "maintenance window stopped") {
		t.Errorf("the gateway's log lacks the stop:\n%s", p.stderr.String())
	}
}

// TestMaintAllowed: a change from the network needs a basic-auth user of the web
// config; from loopback it needs none, if its Host is an address or localhost (not a
// name rebound to 127.0.0.1); it is always JSON.
func TestMaintAllowed(t *testing.T) {
	dir := t.TempDir()
	withUsers := filepath.Join(dir, "web.yml")
	writeFile(t, withUsers, "basic_auth_users:\n  tech: $2y$10$abcdefghijklmnopqrstuuJ4vUZrBvYQEXH0SZHWNx1a/F4l5PRzK\n")
	noUsers := filepath.Join(dir, "web-tls.yml")
	writeFile(t, noUsers, "tls_server_config: {}\n")
	check := func(remote, host, ct string, auth bool, webConfig string, want bool) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/api/maint/start", nil)
		r.RemoteAddr, r.Host = remote, host
		r.Header.Set("Content-Type", ct)
		if auth {
			r.SetBasicAuth("tech", "x")
		}
		if err := maintAllowed(r, webConfig); (err == nil) != want {
			t.Errorf("maintAllowed(%s, Host %q, %q, auth %v, %q) = %v, want allowed %v", remote, host, ct, auth, webConfig, err, want)
		}
	}
	const lo = "127.0.0.1:9273"
	check("127.0.0.1:5000", lo, "application/json", false, "", true)
	check("127.0.0.1:5000", lo, "application/json; charset=utf-8", false, "", true)
	check("[::1]:5000", "[::1]:9273", "application/json", false, "", true)
	check("[::1]:5000", "[::1]", "application/json", false, "", true)
	check("127.0.0.1:5000", "localhost:9273", "application/json", false, "", true)
	check("127.0.0.1:5000", "LOCALHOST", "application/json", false, "", true)
	check("127.0.0.1:5000", "192.0.2.1:9273", "application/json", false, "", true)
	check("127.0.0.1:5000", lo, "text/plain", false, "", false)
	check("127.0.0.1:5000", lo, "application/jsonx", false, "", false)
	check("127.0.0.1:5000", lo, "application/json-patch+json", false, "", false)
	check("127.0.0.1:5000", lo, "", false, "", false)
	// DNS rebinding: a page of rebind.example, now resolving to 127.0.0.1.
	check("127.0.0.1:5000", "rebind.example:9273", "application/json", false, "", false)
	check("127.0.0.1:5000", "localhost.rebind.example", "application/json", false, "", false)
	check("127.0.0.1:5000", "rebind.example:9273", "application/json", true, withUsers, true)
	check("192.0.2.7:5000", lo, "application/json", false, "", false)
	check("192.0.2.7:5000", lo, "application/json", true, "", false)
	check("192.0.2.7:5000", lo, "application/json", true, noUsers, false)
	check("192.0.2.7:5000", lo, "application/json", false, withUsers, false)
	check("192.0.2.7:5000", lo, "application/json", true, withUsers, true)
	check("192.0.2.7:5000", lo, "application/jsonx", true, withUsers, false)
}

// maintPost sends a change to h from loopback and returns its status and body.
func maintPost(t *testing.T, h http.Handler, action, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/maint/"+action, strings.NewReader(body))
	r.RemoteAddr, r.Host = "127.0.0.1:5000", "127.0.0.1:9273"
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// TestMaintHJ212Station: the device of an hj212_listen station can be put in
// maintenance, and the status page shows it among the HJ 212 analyzers.
func TestMaintHJ212Station(t *testing.T) {
	cfg, err := config.Parse([]byte(`
gateway: {id: gw-1, site: canal-east}
hj212_listen:
  - name: analyzers
    listen: "127.0.0.1:9212"
    stations:
      - {mn: 33010500A0010001F0000002, device: cems-1}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := configuredDevices(cfg); !slices.Contains(got, "cems-1") {
		t.Errorf("configuredDevices = %q, want cems-1 in it", got)
	}
	var group *status.Group
	for _, g := range statusLayout(cfg) {
		if g.Kind == "hj212" {
			group = &g
		}
	}
	if group == nil || group.Name != "HJ 212 analyzers" || len(group.Devices) != 1 || group.Devices[0].Name != "cems-1" {
		t.Errorf("statusLayout's hj212 group = %+v, want HJ 212 analyzers with cems-1", group)
	}
	l := maint.New()
	h := maintHandler(l, cfg, slog.New(slog.DiscardHandler), http.NotFoundHandler())
	if code, body := maintPost(t, h, "start", `{"device":"cems-1","kind":"calibration"}`); code != http.StatusOK {
		t.Fatalf("start cems-1 = %d %s, want 200", code, body)
	}
	if w, ok := l.Active("cems-1"); !ok || w.Kind != maint.Calibration {
		t.Errorf("after start, Active(cems-1) = %+v, %v; want a calibration", w, ok)
	}
}

// TestMaintStopRemovedDevice: a window of a device the config no longer names can
// still be stopped (it would otherwise last for good), though none can be started.
func TestMaintStopRemovedDevice(t *testing.T) {
	cfg, err := config.Parse([]byte("gateway: {id: gw-1, site: canal-east}\ndevices:\n  - {name: noise-1, interval: 1s, sim: {kind: noise}}\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := maint.New()
	if _, err := l.Start("noise-2", maint.Maintenance, "moved away", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	h := maintHandler(l, cfg, slog.New(slog.DiscardHandler), http.NotFoundHandler())
	if code, body := maintPost(t, h, "start", `{"device":"noise-3"}`); code != http.StatusNotFound {
		t.Errorf("start of a device not in the config = %d %s, want 404", code, body)
	}
	if code, body := maintPost(t, h, "stop", `{"device":"noise-3"}`); code != http.StatusConflict {
		t.Errorf("stop of a device neither in the config nor in maintenance = %d %s, want 409", code, body)
	}
	if code, body := maintPost(t, h, "stop", `{"device":"noise-2"}`); code != http.StatusOK {
		t.Fatalf("stop of a removed device in maintenance = %d %s, want 200", code, body)
	}
	if w, ok := l.Active("noise-2"); ok {
		t.Errorf("after stop, Active(noise-2) = %+v", w)
	}
	if code, body := maintPost(t, h, "start", `{"device":"noise-2"}`); code != http.StatusNotFound {
		t.Errorf("start of the removed device = %d %s, want 404", code, body)
	}
}

// TestMaintReplay: envgate replay applies the state directory's maintenance log (or
// the one --maint names) as the gateway did, and --maint none applies none.
func TestMaintReplay(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, "gateway: {id: box, site: canal, state_dir: "+state+"}\nnoise:\n  sites:\n    - {device: noise-1, site: canal, zone: \"1\"}\n")
	// Two hours of a sample a second; the meter was calibrated in the first half hour.
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var csv strings.Builder
	csv.WriteString("time,site,device,quantity,value\n")
	for s := range 7200 {
		v := 50.0
		if s < 1800 {
			v = 94 // the calibrator's tone
		}
		fmt.Fprintf(&csv, "%s,canal,noise-1,la,%v\n", start.Add(time.Duration(s)*time.Second).Format(time.RFC3339), v)
	}
	input := filepath.Join(dir, "in.csv")
	writeFile(t, input, csv.String())
	l, err := maint.Open(filepath.Join(state, maint.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Start("noise-1", maint.Calibration, "", start); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Stop("noise-1", start.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	hourly := func(out string) string { // the LAeq of the first hour
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "laeq_1h=") && strings.HasSuffix(line, fmt.Sprint(start.UnixMilli())) {
				return line
			}
		}
		return ""
	}
	code, with, errOut := cli("replay", "-c", cfgPath, input)
	if code != 0 || !strings.Contains(hourly(with), "laeq_1h=50,") ||
		!strings.Contains(errOut, "1800 readings of noise-1 kept out of the derivations") {
		t.Errorf("replay with the state dir's log = %d, first hour %q, stderr %q; want LAeq 50 and 1800 kept out", code, hourly(with), errOut)
	}
	code, without, _ := cli("replay", "-c", cfgPath, "--maint", "none", input)
	if code != 0 || hourly(without) == "" || hourly(without) == hourly(with) {
		t.Errorf("replay --maint none = %d, first hour %q; want the calibrator in it", code, hourly(without))
	}
	writeFile(t, filepath.Join(dir, "bad.json"), "{")
	if code, _, errOut := cli("replay", "-c", cfgPath, "--maint", filepath.Join(dir, "bad.json"), input); code != 1 || !strings.Contains(errOut, "bad.json") {
		t.Errorf("replay --maint with a corrupt log = %d, %q; want 1 naming the file", code, errOut)
	}
}
