package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
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

// publisher is a QoS 1 MQTT client for the tests; Publish waits for the PUBACK.
type publisher struct {
	t *testing.T
	c mqtt.Client
}

func newPublisher(t *testing.T, broker string) *publisher {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("testpub%d", rand.IntN(1e9)))
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &publisher{t: t, c: c}
}

func (p *publisher) publish(topic string, payload string) {
	p.t.Helper()
	tok := p.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		p.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitSubscribed waits until the gateway listening on listen has subscribed its MQTT
// source named source: it publishes a retained probe to topic, which that source's
// subscriptions match, and waits until the source has received a message. A broker
// sends its retained messages on SUBSCRIBE, so the probe arrives as soon as the
// subscription exists, and whatever is published after it is queued for the gateway.
// The probe is then cleared so that no later subscription gets it again. Use a payload
// the source dead-letters, so that it adds no reading. Waiting for the condition, not
// a fixed sleep, keeps a loaded machine from failing the test (issue 10).
func (p *publisher) waitSubscribed(listen, source, topic, payload string) {
	p.t.Helper()
	retain := func(payload string) {
		p.t.Helper()
		tok := p.c.Publish(topic, 1, true, payload)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			p.t.Fatalf("publish retained %s: %v", topic, tok.Error())
		}
	}
	retain(payload)
	eventually(p.t, 60*time.Second, fmt.Sprintf("MQTT source %s subscribed (it received the retained probe on %s)", source, topic), func() bool {
		return scrapeValue(p.t, listen, `envgate_mqtt_messages_total{source="`+source+`"}`) >= 1
	})
	retain("") // an empty retained message deletes the retained one
}

// gatewayProc runs the real binary with a config and keeps its logs.
type gatewayProc struct {
	t    *testing.T
	bin  string
	cfg  string
	cmd  *exec.Cmd
	logs bytes.Buffer
}

func (g *gatewayProc) start() {
	g.t.Helper()
	g.cmd = exec.Command(g.bin, "run", "-c", g.cfg)
	g.cmd.Stderr = &g.logs
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gatewayProc) stop(sig syscall.Signal) {
	g.t.Helper()
	g.cmd.Process.Signal(sig)
	err := g.cmd.Wait()
	if sig == syscall.SIGTERM && err != nil {
		g.t.Fatalf("envgate exit after SIGTERM: %v", err)
	}
}

// peakRSS returns the process's peak resident set size in KiB (VmHWM).
func peakRSS(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// TestMQTTEndToEnd runs the real binary against a real Mosquitto and a real InfluxDB:
// several topics and formats (one source over TLS with a CA made by the test), a
// persistent session across a stop, SIGKILL between receiving and acknowledging, and
// 10 000 malformed messages interleaved with good ones.
func TestMQTTEndToEnd(t *testing.T) {
	inf := testsvc.StartInflux(t)
	ca := testsvc.NewTestCA(t)
	// Mosquitto queues at most max_queued_messages (default 1000) beyond the in-flight
	// window for a client, and drops the rest silently; a burst of 11 000 on a loaded
	// machine, or one arriving while the gateway reconnects, needs more. A deployment
	// sizes it for its longest outage (docs/config.md).
	broker := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{TLS: ca, MaxQueued: 100000})
	bin := buildBinary(t)
	dir := t.TempDir()
	deadLetter := filepath.Join(dir, "dead.log")
	listen := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	cfg := fmt.Sprintf(`gateway:
  id: box-mqtt
  site: canal-east
  state_dir: %s
  listen: %s
  shutdown_timeout: 6s
  health_interval: 1h
sinks:
  - name: influx
    influxdb: {url: %s, bucket: %s, flush_interval: 100ms, retry_initial: 100ms}
mqtt:
  - name: lora
    broker: %s
    client_id: envgateTestLora
    tls: {ca_file: %s}
    dead_letter: %s
    subscriptions:
      - topic: env/+/+/json
        template: env/{site}/{device}/json
        fields:
          - {path: data.pm25, quantity: pm25}
          - {path: data.pm10, quantity: pm10, optional: true}
        time: {path: ts, format: unix_ms}
      - topic: num/+/+
        template: num/{device}/{quantity}
        format: number
  - name: plain
    broker: %s
    client_id: envgateTestPlain
    subscriptions:
      - topic: lp/#
        format: lineprotocol
        time: {format: unix_ms}
`, filepath.Join(dir, "state"), listen, inf.URL, inf.Bucket, broker.TLSURL, ca.CertFile, deadLetter, broker.URL)
	cfgPath := filepath.Join(dir, "box.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	}()
	pub := newPublisher(t, broker.URL)
	// An hour before now (the gateway's clock): it refuses payload times more than a day
	// after the arrival, so a fixed date would fail on a clock set before it.
	base := clock.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()

	// 1. Several topics and formats. The very first session has no subscriptions on the
	// broker yet: wait until both sources are subscribed. Their probes are dead-lettered.
	g.start()
	pub.waitSubscribed(listen, "lora", "num/probe/la", "probe")
	pub.waitSubscribed(listen, "plain", "lp/probe", "probe")
	waitPoints := func(what string, want int, count func() int) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() bool { return count() >= want })
		if got := count(); got != want {
			t.Errorf("%s: %d points, want exactly %d", what, got, want)
		}
	}
	pub.publish("env/canal-west/air-7/json", fmt.Sprintf(`{"ts": %d, "data": {"pm25": 35, "pm10": 61}}`, base))
	pub.publish("num/noise-9/la", "58.4")
	pub.publish("lp/x", fmt.Sprintf("anything,site=lock-2,device=water-3 ph=7.3,do=6.1 %d", base+1000))
	waitPoints("first messages", 5, func() int { return len(inf.Points(t)) })
	pts := inf.Points(t)
	want := map[testsvc.Point]float64{
		{Measurement: "air", Device: "air-7", Site: "canal-west", Field: "pm25", Time: base}:      35,
		{Measurement: "air", Device: "air-7", Site: "canal-west", Field: "pm10", Time: base}:      61,
		{Measurement: "water", Device: "water-3", Site: "lock-2", Field: "ph", Time: base + 1000}: 7.3,
		{Measurement: "water", Device: "water-3", Site: "lock-2", Field: "do", Time: base + 1000}: 6.1,
	}
	for p, v := range want {
		if got, ok := pts[p]; !ok || got != v {
			t.Errorf("point %+v = %v (present %v), want %v", p, got, ok, v)
		}
	}
	var noise int
	for p, v := range pts {
		if p.Device == "noise-9" && p.Field == "la" && p.Site == "canal-east" && v == 58.4 {
			noise++
		}
	}
	if noise != 1 {
		t.Errorf("number message: %d matching points (device noise-9, site from gateway.site, value 58.4), want 1", noise)
	}

	// 2. Persistent session: published while envgate is stopped, delivered after restart.
	g.stop(syscall.SIGTERM)
	for i := range 50 {
		pub.publish("env/canal-west/air-8/json", fmt.Sprintf(`{"ts": %d, "data": {"pm25": %d}}`, base+int64(i)*1000, i))
	}
	g.start()
	air8 := func() int {
		n := 0
		for p := range inf.Points(t) {
			if p.Device == "air-8" {
				n++
			}
		}
		return n
	}
	waitPoints("messages published while envgate was stopped", 50, air8)

	// 3. SIGKILL between receiving and acknowledging: keep publishing while envgate is
	// killed three times; the broker redelivers what was not acknowledged.
	const burst = 600
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range burst {
			tok := pub.c.Publish("env/canal-west/air-9/json", 1, false,
				fmt.Sprintf(`{"ts": %d, "data": {"pm25": %d}}`, base+int64(i)*1000, i%500))
			tok.WaitTimeout(10 * time.Second)
			if i%50 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	for range 3 {
		time.Sleep(time.Duration(200+rand.IntN(300)) * time.Millisecond)
		g.stop(syscall.SIGKILL)
		g.start()
	}
	<-done
	air9 := func() int {
		n := 0
		for p, v := range inf.Points(t) {
			if p.Device == "air-9" {
				n++
				if i := (p.Time - base) / 1000; v != float64(i%500) {
					t.Errorf("air-9 at %d = %v, want %d", p.Time, v, i%500)
				}
			}
		}
		return n
	}
	waitPoints("messages across 3 SIGKILLs", burst, air9)

	// 4. 10 000 malformed messages interleaved with 1 000 good ones.
	const bad, good = 10000, 1000
	for i := range bad + good {
		if i%11 == 10 {
			k := i / 11
			pub.publish("env/canal-west/air-10/json", fmt.Sprintf(`{"ts": %d, "data": {"pm25": %d}}`, base+int64(k)*1000, k%400))
			continue
		}
		switch i % 3 {
		case 0:
			pub.publish("env/canal-west/air-10/json", `{"ts": 1, "data": {"pm25": "lots"}}`)
		case 1:
			pub.publish("num/noise-9/la", "loud")
		default:
			pub.publish("env/canal-west/air-10/json", `{not json`)
		}
	}
	air10 := func() int {
		n := 0
		for p := range inf.Points(t) {
			if p.Device == "air-10" {
				n++
			}
		}
		return n
	}
	if !waitFor(t, 60*time.Second, func() bool { return air10() >= good }) {
		for _, m := range []string{"messages_total", "readings_total", "dead_lettered_total", "unacknowledged_total", "in_flight_messages"} {
			t.Logf("envgate_mqtt_%s{source=lora...}: %v", m, scrapeValue(t, listen, "envgate_mqtt_"+m+`{source="lora"`))
		}
		t.Fatalf("good messages among 10 000 malformed: %d of %d arrived", air10(), good)
	}
	rss := peakRSS(g.cmd.Process.Pid)
	g.stop(syscall.SIGTERM)
	b, err := os.ReadFile(deadLetter)
	if err != nil {
		t.Fatalf("dead-letter file: %v", err)
	}
	// The lora source's dead letters: the json and number malformed messages (and the
	// subscription probe, not counted).
	lines := 0
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if strings.HasSuffix(l, "\n") && !strings.Contains(l, "probe") {
			lines++
		}
	}
	if lines != bad {
		t.Errorf("dead-letter file has %d lines, want %d (one per malformed message)", lines, bad)
	}
	if rss > 150*1024 {
		t.Errorf("peak RSS %d KiB while consuming 11 000 messages, want bounded (< 150 MiB)", rss)
	}
	t.Logf("peak RSS %d MiB; dead-letter lines %d", rss/1024, lines)
}
