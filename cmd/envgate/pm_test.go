package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/testsvc"
)

// pmsFrame builds a PMS5003 measurement frame (docs/engineering-notes.md §3.1): 0x42 0x4D, length 28,
// thirteen big-endian words (PM1/PM2.5/PM10 CF=1, the same atmospheric, six particle
// counts, reserved) and the 16-bit sum of the 30 bytes before it.
func pmsFrame(cf1, atm [3]uint16) []byte {
	b := []byte{0x42, 0x4D, 0, 28}
	words := append(cf1[:], atm[:]...)
	words = append(words, 100, 50, 20, 5, 2, 1, 0)
	for _, w := range words {
		b = binary.BigEndian.AppendUint16(b, w)
	}
	var sum uint16
	for _, c := range b {
		sum += uint16(c)
	}
	return binary.BigEndian.AppendUint16(b, sum)
}

// TestPMSensorEndToEnd: the real binary reads a PMS5003 (simulated on a socat pty pair,
// with garbage between frames) and reports its atmospheric PM2.5 and its frame
// counters on /metrics.
func TestPMSensorEndToEnd(t *testing.T) {
	pty := testsvc.PtyPair(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	listen := loopback(t)
	cfg := filepath.Join(dir, "box.yaml")
	writeFile(t, cfg, fmt.Sprintf(`gateway: {id: box-pm, site: canal, state_dir: %s, listen: %s, health_interval: 1h}
pm:
  - {name: pms-1, port: %s, model: pms5003, mode: active, interval: 1s, warmup: 0s}
`, filepath.Join(dir, "state"), listen, pty.B))
	sensor, err := os.OpenFile(pty.A, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sensor.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the sensor in active mode: a frame every 200 ms, a stray byte now and then
		frame := pmsFrame([3]uint16{12, 40, 55}, [3]uint16{11, 35, 50})
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if i%5 == 0 {
				sensor.Write([]byte{0x00, 0x42}) // garbage, including a false start byte
			}
			sensor.Write(frame)
		}
	}()
	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfg)
	body := p.waitMetrics(t, listen, 30*time.Second, func(m string) bool {
		// A reading (and the up verdict) comes at the end of each 1-s interval.
		v, ok := metricValue(m, `envgate_pm_frames_total{device="pms-1"}`)
		_, reported := metricValue(m, `envgate_device_up{device="pms-1"}`)
		return ok && v >= 5 && reported && strings.Contains(m, `quantity="pm25"`)
	})
	if v, ok := metricValue(body, `envgate_reading_value{device="pms-1",quantity="pm25",site="canal",unit="ug/m3"}`); !ok || v != 35 {
		t.Errorf("pm25 = %v (found %v), want the atmospheric 35", v, ok)
	}
	if v, ok := metricValue(body, `envgate_device_up{device="pms-1"}`); !ok || v != 1 {
		t.Errorf("envgate_device_up = %v (found %v), want 1", v, ok)
	}
	if v, ok := metricValue(body, `envgate_pm_garbage_bytes_total{device="pms-1"}`); !ok || v == 0 {
		t.Errorf("garbage bytes = %v (found %v), want some skipped", v, ok)
	}
	p.stop(t, 15*time.Second)
}
