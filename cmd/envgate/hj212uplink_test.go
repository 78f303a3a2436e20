package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/hj212/hj212test"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// TestHJ212UplinkBinary is issue 16's end-to-end test: the real binary polls a
// simulated noise meter and reports it to an HJ 212 platform stand-in (its own
// parser and CRC check every packet) as real-time (CN 2011) and minute (2051) records;
// killed with SIGKILL and restarted, it resumes from its cursor: every record the
// platform answered stays answered once (a repeat only of what was in flight), and
// minute records keep coming.
func TestHJ212UplinkBinary(t *testing.T) {
	p := hj212test.New(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "box.yaml")
	listen := loopback(t)
	const mn = "33010500A0010001F0000009"
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-hj212
  site: canal-hj
  state_dir: %s
  listen: %s
  health_interval: 1s
buffer: {sync: batch, cursor_interval: 100ms, segment_bytes: 64KiB}
sinks:
  - name: province
    hj212:
      address: %s
      answer_timeout: 2s
      retries: 2
      rtd_interval: 30s
      batch_size: 50
      flush_interval: 50ms
      retry_initial: 50ms
      retry_max: 500ms
      retry_jitter: 0s
      stations:
        - {st: "23", mn: %s, pw: "123456", realtime: true, records: [minute]}
devices:
  - {name: noise-1, interval: 200ms, sim: {kind: noise, seed: 11}}
noise:
  sites:
    - {device: noise-1, zone: "1", sample: 200ms}
`, state, listen, p.Addr(), mn))
	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "-c", cfgPath)
		cmd.Env = cleanEnv()
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	defer func() {
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	}()
	has := func(cn string, after int) func([]hj212test.Packet) bool {
		return func(pks []hj212test.Packet) bool {
			for _, pk := range pks[min(after, len(pks)):] {
				if pk.CN == cn && pk.MN == mn && strings.Contains(pk.CP, "-Flag=") {
					return true
				}
			}
			return false
		}
	}
	cmd := start()
	p.Wait(30*time.Second, "a real-time packet", has("2011", 0))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killedAt := len(p.Packets())

	cmd = start()
	// The clock minute closes within 60 s; its LAeq comes as a minute record.
	pks := p.Wait(90*time.Second, "a minute record after the restart", has("2051", killedAt))
	if !strings.Contains(strings.Join(cps(pks, "2051"), " "), "Leq-Data=") {
		t.Errorf("minute records without Leq-Data: %v", cps(pks, "2051"))
	}
	if !waitFor(t, 10*time.Second, func() bool {
		code, body := get("http://" + listen + "/metrics")
		v, ok := metricValue(body, `envgate_hj212_packets_answered_total{sink="province"}`)
		c, _ := metricValue(body, `envgate_hj212_connected{sink="province"}`)
		return code == 200 && ok && v > 0 && c == 1
	}) {
		t.Error("envgate_hj212_packets_answered_total not > 0 or envgate_hj212_connected not 1")
	}
	// A calibration of the meter: its real-time values go out flagged C until it ends.
	if code, out, errOut := cli("maint", "start", "-c", cfgPath, "--device", "noise-1", "--kind", "calibration", "--reason", "94 dB"); code != 0 {
		t.Fatalf("envgate maint start = %d: %s %s", code, out, errOut)
	}
	calibrating := len(p.Packets())
	p.Wait(60*time.Second, "a real-time packet flagged C", func(pks []hj212test.Packet) bool {
		for _, pk := range pks[min(calibrating, len(pks)):] {
			if pk.CN == "2011" && strings.Contains(pk.CP, "LA-Flag=C") {
				return true
			}
		}
		return false
	})
	if code, out, errOut := cli("maint", "stop", "-c", cfgPath, "--device", "noise-1"); code != 0 {
		t.Fatalf("envgate maint stop = %d: %s %s", code, out, errOut)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean shutdown: %v", err)
	}
	_, dups, conflicts := hj212test.Records(p.Packets())
	if conflicts != nil {
		t.Errorf("values sent twice with different values: %v", conflicts)
	}
	// SIGKILL may lose the answer of the packet in flight: its values come again.
	if dups > 2*4 {
		t.Errorf("%d values sent again after one SIGKILL; want at most those of a packet in flight", dups)
	}
	if p.Connections() < 2 {
		t.Errorf("%d connections to the platform, want one per run", p.Connections())
	}
}

// cps returns the CP of the packets of cn.
func cps(pks []hj212test.Packet, cn string) []string {
	var out []string
	for _, pk := range pks {
		if pk.CN == cn {
			out = append(out, pk.CP)
		}
	}
	return out
}

// TestHJ212BufferHistory: a platform's history request reads what the buffer holds in
// the period asked for, and nothing outside it.
func TestHJ212BufferHistory(t *testing.T) {
	q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), MaxBytes: 1 << 30, SegmentBytes: 64 << 10,
		CursorInterval: time.Second, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	t0 := clock.Now().Truncate(time.Hour).Add(-3 * time.Hour)
	var rs []reading.Reading
	for i := range 180 {
		rs = append(rs, reading.New(t0.Add(time.Duration(i)*time.Minute), "canal", "noise-1", "laeq_1m", 50+float64(i%10)))
	}
	if err := q.Append(rs...); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	var got []reading.Reading
	from, to := t0.Add(time.Hour), t0.Add(2*time.Hour)
	err = bufferHistory(q)(t.Context(), from, to, func(b []reading.Reading) error {
		got = append(got, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 61 || !got[0].Time.Equal(from) || !got[60].Time.Equal(to) {
		t.Errorf("history of [%v, %v]: %d readings, want 61 from the first to the last minute", from, to, len(got))
	}
}
