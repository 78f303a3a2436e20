//go:build linux

package bench_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

var (
	footprintRate     = flag.Int("footprint-rate", 200, "BenchmarkFootprint: MQTT messages per second")
	footprintDuration = flag.Duration("footprint-duration", 20*time.Second, "BenchmarkFootprint: how long the stream runs")
)

// BenchmarkFootprint runs the real envgate binary, as a box runs it (one MQTT source,
// one InfluxDB sink, defaults otherwise), on a steady stream of -footprint-rate QoS 1
// messages a second for -footprint-duration, and measures the process from outside:
// its peak resident memory (VmHWM), its CPU per message and share of a core
// (/proc/<pid>/stat), and what it wrote to storage (/proc/<pid>/io write_bytes). The
// publisher runs in this process, so none of its cost is counted. It checks that
// InfluxDB holds every reading once. See bench/README.md.
func BenchmarkFootprint(b *testing.B) {
	if testing.Short() {
		b.Skip("runs envgate against real servers; skipped with -short")
	}
	bin := filepath.Join(b.TempDir(), "envgate")
	if out, err := exec.Command("go", "build", "-tags="+clock.Tags, "-o", bin, "github.com/envgate/envgate/cmd/envgate").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	inf := testsvc.StartInflux(b)
	broker := testsvc.StartMosquitto(b, testsvc.MosquittoOptions{MaxInflight: 1000})
	rate, dur := *footprintRate, *footprintDuration
	for i := 0; i < b.N; i++ {
		inf.Exec(b, "DROP DATABASE "+inf.DB)
		inf.Exec(b, "CREATE DATABASE "+inf.DB)
		f := runFootprint(b, bin, inf, broker, rate, dur, fmt.Sprintf("envgateFootprint%d", i))
		b.ReportMetric(f.peakRSS/(1<<20), "peak-rss-MiB")
		b.ReportMetric(f.cpu.Seconds()*1e6/float64(f.msgs), "cpu-µs/msg")
		b.ReportMetric(100*f.cpu.Seconds()/f.elapsed.Seconds(), "cpu-%-of-core")
		b.ReportMetric(float64(f.written)/float64(f.msgs), "write-bytes/msg")
	}
}

type footprint struct {
	msgs    int
	elapsed time.Duration
	cpu     time.Duration
	peakRSS float64 // bytes
	written int64   // bytes, /proc/<pid>/io write_bytes during the stream
}

func runFootprint(b *testing.B, bin string, inf *testsvc.Influx, broker *testsvc.Mosquitto, rate int, dur time.Duration, clientID string) footprint {
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "box.yaml")
	yaml := fmt.Sprintf(`gateway:
  id: box-footprint
  site: canal
  state_dir: %s
  listen: %s
mqtt:
  - name: env
    broker: %s
    client_id: %s
    subscriptions:
      - topic: env/+/+/json
        template: env/{site}/{device}/json
        format: json
        fields:
          - {path: pm25, quantity: pm25}
          - {path: pm10, quantity: pm10}
          - {path: no2, quantity: no2}
        time: {path: ts, format: unix_ms}
        qos: 1
sinks:
  - name: influx
    influxdb: {url: %s, bucket: %s}
`, filepath.Join(dir, "state"), listen, broker.URL, clientID, inf.URL, inf.Bucket)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if b.Failed() {
			b.Logf("envgate logs:\n%s", logs.String())
		}
	}()
	pid := cmd.Process.Pid
	waitMetric(b, listen, `envgate_mqtt_connected{source="env"} 1`, exited)

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID(clientID + "-pub"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)

	var f footprint
	cpu0 := mustProcCPU(b, pid)
	w0 := procIO(b, pid, "write_bytes")
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	stopRSS := make(chan struct{})
	rssDone := make(chan float64)
	go func() { // VmHWM is the peak; sampling VmRSS as well shows a leak as a rising line
		peak := 0.0
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, procStatus(pid, "VmHWM"))
			select {
			case <-stopRSS:
				rssDone <- max(peak, procStatus(pid, "VmHWM"))
				return
			case <-t.C:
			}
		}
	}()
	now := time.Now().UnixMilli()
	for time.Since(start) < dur {
		<-tick.C
		ts := now + int64(f.msgs) // distinct points per device
		topic := fmt.Sprintf("env/site-%d/dev-%d/json", f.msgs%2, f.msgs%3)
		payload := fmt.Sprintf(`{"ts":%d,"pm25":%d.5,"pm10":%d,"no2":%d}`, ts, 10+f.msgs%50, 20+f.msgs%70, 5+f.msgs%30)
		pub.Publish(topic, 1, false, payload) // QoS 1: mosquitto acknowledges; envgate's PUBACK is separate
		f.msgs++
	}
	tick.Stop()
	// Every reading in InfluxDB: the stream is over once envgate has delivered it.
	want := f.msgs
	deadline := time.Now().Add(2 * time.Minute)
	for inf.Count(b, "air", "pm25") < want || inf.Count(b, "air", "no2") < want {
		if time.Now().After(deadline) {
			b.Fatalf("InfluxDB holds %d of %d pm25 values after 2 minutes", inf.Count(b, "air", "pm25"), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.elapsed = time.Since(start)
	f.cpu = mustProcCPU(b, pid) - cpu0
	f.written = procIO(b, pid, "write_bytes") - w0
	close(stopRSS)
	f.peakRSS = <-rssDone
	if got := inf.Count(b, "air", "pm10"); got != want {
		b.Errorf("InfluxDB holds %d pm10 values, want %d (one per message)", got, want)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-exited
	return f
}

// waitMetric waits until envgate's /metrics has a line starting with line.
func waitMetric(b *testing.B, listen, line string, exited <-chan struct{}) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/metrics")
		if err == nil {
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if strings.Contains(body.String(), line) {
				return
			}
		}
		select {
		case <-exited:
			b.Fatal("envgate exited")
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("no %q on /metrics within 30 s (last error %v)", line, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustProcCPU(b *testing.B, pid int) time.Duration {
	d, err := procCPU(pid)
	if err != nil {
		b.Fatalf("CPU of envgate: %v", err)
	}
	return d
}

// procStatus returns a "kB" field of /proc/<pid>/status in bytes, 0 if unreadable.
func procStatus(pid int, field string) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// procIO returns a field of /proc/<pid>/io.
func procIO(b *testing.B, pid int, field string) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		b.Fatalf("/proc/%d/io: %v", pid, err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(l, field+": "); ok {
			n, err := strconv.ParseInt(rest, 10, 64)
			if err != nil {
				b.Fatalf("/proc/%d/io %s: %v", pid, field, err)
			}
			return n
		}
	}
	b.Fatalf("/proc/%d/io has no %s", pid, field)
	return 0
}
