package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// buildBinary builds envgate once per test into a temp dir, with this test binary's
// clock (a fakeclock build makes a fakeclock binary, which inherits the offset).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "envgate")
	out, err := exec.Command("go", "build", "-tags="+clock.Tags, "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type crashDevice struct {
	name, kind string
	seed       int64
	interval   string
}

var crashDevices = []crashDevice{
	{"noise-1", "noise", 11, "20ms"},
	{"air-1", "air", 12, "50ms"},
	{"water-1", "water", 13, "100ms"},
}

func crashConfig(inf *testsvc.Influx, state string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `gateway:
  id: box-crash
  site: canal-crash
  state_dir: %s
  listen: 127.0.0.1:%d
  shutdown_timeout: 10s
  health_interval: 1s
buffer:
  sync: batch
  cursor_interval: 100ms
  segment_bytes: 64KiB
sinks:
  - name: influx
    influxdb:
      url: %s
      bucket: %s
      batch_size: 200
      flush_interval: 50ms
      retry_initial: 50ms
      retry_max: 500ms
devices:
`, state, 0, inf.URL, inf.Bucket)
	for _, d := range crashDevices {
		fmt.Fprintf(&b, "  - name: %s\n    interval: %s\n    sim: {kind: %s, seed: %d}\n", d.name, d.interval, d.kind, d.seed)
	}
	return b.String()
}

// snapshot returns every reading found in the buffer's segments, read from a copy so
// the gateway's own files are untouched.
func snapshot(t *testing.T, state string) map[testsvc.Point]float64 {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", filepath.Join(state, "buffer"), cp).CombinedOutput(); err != nil {
		t.Fatalf("copy buffer: %v: %s", err, out)
	}
	q, err := buffer.Open(buffer.Options{Dir: cp, SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatalf("open copy of the buffer: %v", err)
	}
	defer q.Close()
	r, _ := q.Reader("audit-" + fmt.Sprint(rand.Int()))
	out := map[testsvc.Point]float64{}
	for {
		rs, next, err := r.Peek(1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range rs {
			q, _ := reading.Lookup(x.Quantity)
			out[testsvc.Point{Measurement: string(q.Domain), Device: x.Device, Site: x.Site, Field: x.Quantity, Time: x.Time.UnixMilli()}] = x.Value
		}
		r.Ack(next)
		if len(rs) == 0 {
			return out
		}
	}
}

// checkStored fails the test for every durable reading that stored (InfluxDB's points)
// lacks or holds with another value, naming the first five missing, and returns how
// many are missing.
func checkStored(t *testing.T, durable, stored map[testsvc.Point]float64) (missing int) {
	t.Helper()
	for p, v := range durable {
		got, ok := stored[p]
		if !ok {
			missing++
			if missing <= 5 {
				t.Errorf("durable reading %+v = %v is not in InfluxDB", p, v)
			}
			continue
		}
		if got != v {
			t.Errorf("%+v: InfluxDB has %v, the buffer had %v", p, got, v)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d durable readings missing from InfluxDB", missing, len(durable))
	}
	return missing
}

// TestSIGKILLLosesNothingDurable kills the real binary with SIGKILL ten times while it
// polls simulated devices and forwards to a real InfluxDB (which is also down for a
// while). Every reading that was in the buffer at any kill must end up in InfluxDB,
// with the simulator's exact value, once.
func TestSIGKILLLosesNothingDurable(t *testing.T) {
	inf := testsvc.StartInflux(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "box.yaml")
	if err := os.WriteFile(cfgPath, []byte(crashConfig(inf, state)), 0o600); err != nil {
		t.Fatal(err)
	}
	durable := map[testsvc.Point]float64{}
	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "-c", cfgPath)
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	const kills = 10
	for i := range kills {
		if i == 3 {
			inf.Stop(t) // an outage across kills 3..5: the backlog must survive them
		}
		cmd := start()
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		snap := snapshot(t, state)
		t.Logf("kill %d: %d readings in the buffer", i, len(snap))
		for p, v := range snap {
			durable[p] = v
		}
		if i == 5 {
			inf.Start(t)
		}
	}
	// A last, clean run drains the backlog: until InfluxDB holds every reading seen
	// durable (what is missing then is reported below), not for a fixed time.
	cmd := start()
	drained := func() bool {
		stored := inf.Points(t)
		for p := range durable {
			if _, ok := stored[p]; !ok {
				return false
			}
		}
		return true
	}
	if !waitFor(t, 2*time.Minute, drained) {
		t.Logf("the backlog did not drain within 2 minutes")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean shutdown: %v\n%s", err, logs.String())
	}
	for p, v := range snapshot(t, state) {
		durable[p] = v
	}

	stored := inf.Points(t)
	checkStored(t, durable, stored)
	// Nothing in InfluxDB that the simulator did not produce (no torn or mixed records).
	perDevice := map[string]int{}
	for p, v := range stored {
		for _, d := range crashDevices {
			if d.name == p.Device {
				perDevice[d.name]++
				if want := sim.Value(d.kind, d.seed, d.name, p.Field, time.UnixMilli(p.Time)); v != want {
					t.Errorf("%+v = %v, want the simulator's %v", p, v, want)
				}
			}
		}
	}
	t.Logf("%d kills; %d readings seen durable in the buffer; InfluxDB holds %d points (%v per device)",
		kills, len(durable), len(stored), perDevice)
	if len(durable) < 500 {
		t.Errorf("only %d durable readings seen; the test did not exercise much", len(durable))
	}
	if t.Failed() {
		t.Logf("gateway logs:\n%s", logs.String())
	}
}
