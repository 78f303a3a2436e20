package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/modbus"
	"github.com/envgate/envgate/internal/testsvc"
)

// scrapeValue returns the value of the first /metrics sample whose line starts with
// prefix (name and labels, as written), or -1.
func scrapeValue(t *testing.T, addr, prefix string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return -1
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestModbusEndToEnd runs the real binary against pymodbus, an independent Modbus
// implementation: an RS-485 bus on a socat pty pair with two live slaves and one dead
// one, and a Modbus TCP water probe. Values flow to InfluxDB with the right decoding;
// the dead slave is down and produces no values (never zeros); the serial port
// disappears and comes back without restarting envgate.
func TestModbusEndToEnd(t *testing.T) {
	inf := testsvc.StartInflux(t)
	pty := testsvc.PtyPair(t)
	serialSlaves := map[uint8]testsvc.SlaveData{
		3: {Holding: map[uint16]uint16{0: 625}},          // generic-noise: 62.5 dB(A)
		7: {Input: map[uint16]uint16{1: 0xFF13, 2: 456}}, // xy-md02: -23.7 degC, 45.6 %
	}
	serial := testsvc.StartModbusSlave(t, testsvc.SlaveOptions{Serial: pty.A, Slaves: serialSlaves})
	ph, _ := modbus.Encode(7.25, modbus.Float32, modbus.CDAB)
	wt, _ := modbus.Encode(18.5, modbus.Float32, modbus.CDAB)
	tcp := testsvc.StartModbusSlave(t, testsvc.SlaveOptions{TCP: true, Slaves: map[uint8]testsvc.SlaveData{
		1: {Holding: map[uint16]uint16{0: ph[0], 1: ph[1], 2: wt[0], 3: wt[1]}},
	}})

	bin := buildBinary(t)
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	cfg := fmt.Sprintf(`gateway:
  id: box-modbus
  site: canal-east
  state_dir: %s
  listen: %s
  shutdown_timeout: 6s
  health_interval: 1m
buffer:
  sync_interval: 100ms
sinks:
  - name: influx
    influxdb: {url: %s, bucket: %s, flush_interval: 100ms, retry_initial: 100ms}
buses:
  - name: rs485-a
    serial: {port: %s, baud: 9600}
    timeout: 200ms
    devices:
      - {name: noise-3, slave: 3, profile: generic-noise, interval: 200ms}
      - {name: th-7, slave: 7, profile: xy-md02, interval: 500ms}
      - {name: dead-9, slave: 9, profile: generic-noise, interval: 200ms}
  - name: station
    tcp: {address: "%s"}
    timeout: 500ms
    devices:
      - {name: water-1, slave: 1, profile: float32-water-probe, interval: 500ms, site: canal-bridge}
`, filepath.Join(dir, "state"), listen, inf.URL, inf.Bucket, pty.B, tcp.Addr)
	cfgPath := filepath.Join(dir, "box.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)

	var logs bytes.Buffer
	cmd := exec.Command(bin, "run", "-c", cfgPath)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", logs.String())
		}
	}()
	defer cmd.Process.Kill()

	up := func(dev string) float64 { return scrapeValue(t, listen, `envgate_device_up{device="`+dev+`"}`) }
	polls := func(dev string) float64 {
		return scrapeValue(t, listen, `envgate_device_polls_total{device="`+dev+`",result="ok"}`)
	}
	eventually(t, 10*time.Second, "all live devices up", func() bool {
		return up("noise-3") == 1 && up("th-7") == 1 && up("water-1") == 1 && up("dead-9") == 0
	})
	if n := scrapeValue(t, listen, `envgate_modbus_transactions_total{bus="rs485-a",device="dead-9",result="timeout"}`); n < 1 {
		t.Errorf("dead slave: %v timeouts counted, want >= 1", n)
	}

	// The live slave keeps its rate next to the dead one: the dead slave's circuit
	// breaker probes it at 1 s, 2 s, 4 s …, not at its 200 ms interval, so while noise-3
	// makes 20 polls the dead slave costs a few timeouts of 200 ms, not one per poll (as
	// without the breaker). Counted against each other, not against the clock: a loaded
	// machine slows both alike.
	timeouts := func() float64 {
		return scrapeValue(t, listen, `envgate_modbus_transactions_total{bus="rs485-a",device="dead-9",result="timeout"}`)
	}
	before, deadBefore := polls("noise-3"), timeouts()
	eventually(t, 60*time.Second, "noise-3 polled 20 more times", func() bool { return polls("noise-3")-before >= 20 })
	if got, dead := polls("noise-3")-before, timeouts()-deadBefore; dead > got/4 {
		t.Errorf("while noise-3 made %v polls the dead slave timed out %v times: it takes the bus from the live one", got, dead)
	}

	// The port disappears (USB unplugged) and comes back.
	serial.Stop(t)
	pty.Close(t)
	eventually(t, 5*time.Second, "noise-3 down after the port vanished", func() bool { return up("noise-3") == 0 })
	pty.Restart(t)
	testsvc.StartModbusSlave(t, testsvc.SlaveOptions{Serial: pty.A, Slaves: serialSlaves})
	eventually(t, 45*time.Second, "noise-3 up again after the port came back", func() bool { return up("noise-3") == 1 })
	after := polls("noise-3")
	eventually(t, 5*time.Second, "polls resume", func() bool { return polls("noise-3") > after+2 })

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("envgate exit: %v", err)
	}
	if m := regexp.MustCompile(`(?m)msg="bus (down|up)"`).FindAllString(logs.String(), -1); len(m) < 2 {
		t.Errorf("bus down/up not logged (state changes): %v", m)
	}

	points := inf.Points(t)
	want := map[string]float64{"noise-3/la": 62.5, "th-7/temperature": -23.7, "th-7/humidity": 45.6,
		"water-1/ph": 7.25, "water-1/water_temperature": 18.5}
	counts := map[string]int{}
	for p, v := range points {
		key := p.Device + "/" + p.Field
		counts[key]++
		if p.Device == "dead-9" {
			t.Errorf("the dead slave produced a value: %+v = %v", p, v)
			continue
		}
		w, ok := want[key]
		if !ok {
			continue
		}
		if v != w {
			t.Errorf("%+v = %v, want %v", p, v, w)
		}
	}
	for key := range want {
		if counts[key] < 3 {
			t.Errorf("%s: %d points in InfluxDB, want several", key, counts[key])
		}
	}
	if counts["water-1/ph"] > 0 {
		for p := range points {
			if p.Device == "water-1" && p.Site != "canal-bridge" {
				t.Errorf("water-1 point with site %q, want canal-bridge", p.Site)
			}
		}
	}
	t.Logf("points per device/field: %v", counts)
}
