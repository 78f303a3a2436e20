//go:build linux

package bench_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/mqttpub"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/remotewrite"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

var (
	fleetSizes  = flag.String("fleet-n", "10", "BenchmarkFleet: box counts, comma-separated (issue 15: 10,50,100,200)")
	fleetWindow = flag.Duration("fleet-window", time.Minute, "BenchmarkFleet: steady-state section")
	fleetOutage = flag.Duration("fleet-outage", 30*time.Minute, "BenchmarkFleet: how long every box was cut off (its backlog)")
)

// fleetConfig is every box's configuration: one template, the box's identity and
// places from its environment (${VAR}, docs/config.md). Devices at realistic rates:
// a noise meter at 1 Hz judged as a quiet-district site, an air monitor every 10 s, a
// water section every minute, with their derivations.
const fleetConfig = `gateway:
  id: ${FLEET_BOX}
  site: ${FLEET_SITE}
  state_dir: ${FLEET_STATE}
  listen: ${FLEET_LISTEN}
devices:
  - {name: noise-1, interval: 1s, sim: {kind: noise, seed: 1}}
  - {name: air-1, interval: 10s, sim: {kind: air, seed: 2}}
  - {name: water-1, interval: 60s, sim: {kind: water, seed: 3}}
noise:
  sites:
    - {device: noise-1, zone: "1", quiet_district: true}
air:
  sites:
    - {device: air-1}
water:
  sections:
    - {site: "${FLEET_SITE}", waterbody: river}
sinks:
  - name: influx
    influxdb: {url: "${FLEET_INFLUX_URL}", bucket: "${FLEET_INFLUX_BUCKET}"}
  - name: prom
    prometheus_remote_write: {url: "${FLEET_RW_URL}"}
  - name: uplink
    mqtt: {broker: "${FLEET_MQTT_URL}"}
`

// fleetSinks are fleetConfig's sinks: one receiver each on this host.
var fleetSinks = []string{"influx", "prom", "uplink"}

// fleetDevices are the devices of fleetConfig, for the backlog a cut-off leaves.
var fleetDevices = []struct {
	name, kind string
	seed       int64
	every      time.Duration
}{{"noise-1", "noise", 1, time.Second}, {"air-1", "air", 2, 10 * time.Second}, {"water-1", "water", 3, time.Minute}}

// BenchmarkFleet is issue 15's fleet harness: for each N of -fleet-n it runs N envgate
// processes (the real binary, one templated config, three sinks) against one receiver
// of each kind on this host — InfluxDB 1.8 (line protocol), Prometheus 2.42 (remote
// write, with a 2 h out-of-order window) and Mosquitto (the MQTT uplink) — each behind
// a TCP proxy that stands for the boxes' 4G link, and reports:
//
//   - steady state over -fleet-window: central points/s per receiver (the boxes'
//     written totals), CPU % of a core and RSS per box;
//   - the cut-off: the links go down; every box is stopped, and -fleet-outage of
//     readings from its devices (stamped before the boxes first started, so no point
//     repeats a live one) are appended to its buffer as the outage would have left
//     them — the outage compressed into seconds; derived readings are not in that
//     backlog. The boxes start again, fail to reach their receivers, and once every
//     sink of every box has failed, the links come back: the drain time per receiver is
//     until every box's sink has sent its backlog (unsent readings back to ≤ 50), and
//     the peak is the most points the receiver took in one second meanwhile;
//   - each receiver's own ingest limit in the same run, for the same points under other
//     gateway names: InfluxDB, line protocol gzipped beforehand, POSTed by 2 writers in
//     requests of 5000 lines; Prometheus, remote-write requests of 5000 samples from 2
//     writers (gateway/remotewrite); Mosquitto, QoS 1 messages from 4 publishers with
//     100 each awaiting PUBACK.
//
// Not part of the test run (a benchmark); about N × 0.3 s plus the window and the drain
// per N. See bench/README.md, BenchmarkFleet.
func BenchmarkFleet(b *testing.B) {
	if testing.Short() {
		b.Skip("runs N envgate processes against a real InfluxDB; skipped with -short")
	}
	var sizes []int
	for _, f := range strings.Split(*fleetSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("-fleet-n: %q is not a box count", f)
		}
		sizes = append(sizes, n)
	}
	bin := filepath.Join(b.TempDir(), "envgate")
	if out, err := exec.Command("go", "build", "-tags="+clock.Tags, "-o", bin, "github.com/envgate/envgate/cmd/envgate").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(b.TempDir(), "box.yaml")
	if err := os.WriteFile(cfg, []byte(fleetConfig), 0o644); err != nil {
		b.Fatal(err)
	}
	rc := &receivers{influx: testsvc.StartInflux(b),
		prom: testsvc.StartPrometheus(b, testsvc.PrometheusOptions{RemoteWriteReceiver: true, OutOfOrderTimeWindow: 2 * time.Hour}),
		mqtt: testsvc.StartMosquitto(b, testsvc.MosquittoOptions{})}
	rc.links = map[string]*uplink{
		"influx": startUplink(b, strings.TrimPrefix(rc.influx.URL, "http://")),
		"prom":   startUplink(b, strings.TrimPrefix(rc.prom.URL, "http://")),
		"uplink": startUplink(b, strings.TrimPrefix(rc.mqtt.URL, "tcp://")),
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("boxes=%d", n), func(b *testing.B) {
			for i := range b.N {
				runFleet(b, bin, cfg, rc, n, fmt.Sprintf("n%d-%d", n, i))
			}
		})
	}
}

// receivers are the fleet's central servers and the links to them, by sink name.
type receivers struct {
	influx *testsvc.Influx
	prom   *testsvc.Prometheus
	mqtt   *testsvc.Mosquitto
	links  map[string]*uplink
}

// env is the part of a box's environment that names the receivers (through the links).
func (rc *receivers) env() []string {
	return []string{"FLEET_INFLUX_URL=" + rc.links["influx"].url(), "FLEET_INFLUX_BUCKET=" + rc.influx.Bucket,
		"FLEET_RW_URL=" + rc.links["prom"].url() + "/api/v1/write",
		"FLEET_MQTT_URL=tcp://" + rc.links["uplink"].ln.Addr().String()}
}

// setLinks brings every link up or down.
func (rc *receivers) setLinks(up bool) {
	for _, l := range rc.links {
		l.set(up)
	}
}

// uplink stands for the boxes' 4G link to the bureau: a TCP proxy in front of InfluxDB
// that refuses connections (closes them at once) while it is down, and cuts the open
// ones when it goes down.
type uplink struct {
	ln     net.Listener
	target string
	bytes  atomic.Int64 // carried both ways: what the link would bill
	mu     sync.Mutex
	up     bool
	conns  map[net.Conn]bool
}

func startUplink(b *testing.B, target string) *uplink {
	b.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(b)))
	if err != nil {
		b.Fatal(err)
	}
	u := &uplink{ln: ln, target: target, up: true, conns: map[net.Conn]bool{}}
	go u.serve()
	b.Cleanup(func() { ln.Close(); u.set(false) })
	return u
}

func (u *uplink) url() string { return "http://" + u.ln.Addr().String() }

func (u *uplink) serve() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		up := u.up
		if up {
			u.conns[c] = true
		}
		u.mu.Unlock()
		if !up {
			c.Close()
			continue
		}
		go u.pipe(c)
	}
}

func (u *uplink) pipe(c net.Conn) {
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		c.Close()
	}()
	s, err := net.Dial("tcp", u.target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(counting{s, &u.bytes}, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(counting{c, &u.bytes}, s); done <- struct{}{} }()
	<-done
}

// counting is a writer that adds what it writes to n.
type counting struct {
	w io.Writer
	n *atomic.Int64
}

func (c counting) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n.Add(int64(k))
	return k, err
}

// set brings the link up or down; down closes every connection through it.
func (u *uplink) set(up bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.up = up
	if !up {
		for c := range u.conns {
			c.Close()
		}
	}
}

// box is one envgate process of the fleet.
type box struct {
	id, site, state, listen string
	cmd                     *exec.Cmd
	exited                  chan struct{}
	logs                    *lockedBuffer
}

func runFleet(b *testing.B, bin, cfg string, rc *receivers, n int, run string) {
	resetDB(b, rc.influx)
	dir := b.TempDir()
	boxes := make([]*box, n)
	for i := range boxes {
		// The run in the names: every pass writes new series to Prometheus and new
		// client ids to Mosquitto.
		boxes[i] = &box{id: fmt.Sprintf("box-%s-%03d", run, i+1), site: fmt.Sprintf("site-%03d", i+1),
			state: filepath.Join(dir, fmt.Sprintf("box-%03d", i+1)), listen: fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(b))}
	}
	rc.setLinks(true)
	firstStart := clock.Now()
	startBoxes(b, bin, cfg, rc.env(), boxes)
	b.Cleanup(func() { stopBoxes(boxes, syscall.SIGKILL) })

	// Steady state.
	linkBytes := func() map[string]int64 {
		out := map[string]int64{}
		for sk, l := range rc.links {
			out[sk] = l.bytes.Load()
		}
		return out
	}
	written0, cpu0, bytes0 := writtenBySink(b, boxes), boxCPU(b, boxes), linkBytes()
	t0 := time.Now()
	time.Sleep(*fleetWindow)
	elapsed := time.Since(t0)
	written1, cpu1, bytes1 := writtenBySink(b, boxes), boxCPU(b, boxes), linkBytes()
	var cpu float64
	var rss, hwm []float64
	for i, bx := range boxes {
		cpu += (cpu1[i] - cpu0[i]).Seconds()
		rss = append(rss, procStatus(bx.cmd.Process.Pid, "VmRSS")/(1<<20))
		hwm = append(hwm, procStatus(bx.cmd.Process.Pid, "VmHWM")/(1<<20))
	}
	for _, sk := range fleetSinks {
		b.ReportMetric((written1[sk]-written0[sk])/elapsed.Seconds(), "central-points/s-"+sk)
		// Both directions, TCP payload (HTTP or MQTT and their headers; no TCP/IP or TLS).
		b.ReportMetric(float64(bytes1[sk]-bytes0[sk])/elapsed.Seconds()*86400/float64(n)/1e6, "link-MB/day/box-"+sk)
	}
	b.ReportMetric(100*cpu/elapsed.Seconds()/float64(n), "cpu-%-per-box")
	b.ReportMetric(mean(rss), "rss-MiB-per-box")
	b.ReportMetric(slices.Max(hwm), "peak-rss-MiB-max")

	// The cut-off, compressed (see BenchmarkFleet).
	rc.setLinks(false)
	stopBoxes(boxes, syscall.SIGTERM)
	var backlog []fleetPoint
	for _, bx := range boxes {
		rs := outageReadings(b, bx, firstStart.Add(-*fleetOutage), firstStart)
		appendBacklog(b, bx, rs)
		for _, r := range rs {
			backlog = append(backlog, fleetPoint{bx.id, r})
		}
	}
	startBoxes(b, bin, cfg, rc.env(), boxes)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if failing := scrapeAll(b, boxes, "envgate_sink_failing"); slices.Min(failing) == float64(len(fleetSinks)) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("not every sink of every box saw its link down within 5 min")
		}
	}
	drainStart := time.Now()
	rc.setLinks(true)
	drained := map[string]time.Duration{}
	peak := map[string]float64{}
	last, lastAt := writtenBySink(b, boxes), time.Now()
	for deadline := time.Now().Add(10 * time.Minute); len(drained) < len(fleetSinks); time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("after 10 min only %v drained", drained)
		}
		now, at := writtenBySink(b, boxes), time.Now()
		for _, sk := range fleetSinks {
			if at.Sub(lastAt) >= 900*time.Millisecond {
				peak[sk] = max(peak[sk], (now[sk]-last[sk])/at.Sub(lastAt).Seconds())
			}
			if _, done := drained[sk]; done {
				continue
			}
			unsent := scrapeAll(b, boxes, `envgate_sink_unsent_readings{sink="`+sk+`"}`)
			if slices.Max(unsent) <= 50 {
				drained[sk] = time.Since(drainStart)
			}
		}
		if at.Sub(lastAt) >= 900*time.Millisecond {
			last, lastAt = now, at
		}
	}
	stopBoxes(boxes, syscall.SIGTERM)

	// The receivers' limits for the same points.
	limits := receiverLimits(b, rc, backlog, run)
	b.ReportMetric(float64(len(backlog)), "backlog-points")
	for _, sk := range fleetSinks {
		b.ReportMetric(drained[sk].Seconds(), "drain-s-"+sk)
		b.ReportMetric(peak[sk], "peak-points/s-"+sk)
		b.ReportMetric(limits[sk], "limit-points/s-"+sk)
		b.ReportMetric(peak[sk]/limits[sk], "peak-vs-limit-"+sk)
	}
	b.ReportMetric(0, "ns/op")
}

// fleetPoint is a reading of a box's backlog.
type fleetPoint struct {
	gateway string
	r       reading.Reading
}

// writtenBySink returns, per sink name, the readings all boxes have written to it.
func writtenBySink(b *testing.B, boxes []*box) map[string]float64 {
	out := map[string]float64{}
	for _, sk := range fleetSinks {
		out[sk] = sum(scrapeAll(b, boxes, `envgate_sink_written_total{sink="`+sk+`"}`))
	}
	return out
}

// receiverLimits measures each receiver's ingest rate for the backlog's points, under
// gateway names of their own (new series, new client ids): see BenchmarkFleet.
func receiverLimits(b *testing.B, rc *receivers, backlog []fleetPoint, run string) map[string]float64 {
	b.Helper()
	out := map[string]float64{}
	rename := func(gw string) string { return "limit-" + gw }

	resetDB(b, rc.influx)
	lines := make([]string, len(backlog))
	for i, p := range backlog {
		lines[i] = influx.Line(p.r, rename(p.gateway), time.Millisecond)
	}
	m := &meter{b: b}
	postBodies(b, rc.influx, gzipBodies(b, lines, -1), m)
	out["influx"] = float64(len(backlog)) / m.elapsed.Seconds()

	// Remote write: per writer, whole boxes (a series' samples in time order).
	byBox := map[string][]reading.Reading{}
	var names []string
	for _, p := range backlog {
		if byBox[p.gateway] == nil {
			names = append(names, p.gateway)
		}
		byBox[p.gateway] = append(byBox[p.gateway], p.r)
	}
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < len(names); i += 2 {
				sink, err := remotewrite.New(remotewrite.Config{Name: "limit", URL: rc.prom.URL + "/api/v1/write",
					Timeout: 30 * time.Second, GatewayID: rename(names[i]), DeadLetter: filepath.Join(b.TempDir(), "dl.lp")}, nil)
				if err != nil {
					errs <- err
					return
				}
				rs := byBox[names[i]]
				for j := 0; j < len(rs); j += directBatch {
					if err := sink.Write(context.Background(), rs[j:min(j+directBatch, len(rs))]); err != nil {
						errs <- err
						break
					}
				}
				if st := sink.Stats(); st.Rejected != 0 {
					errs <- fmt.Errorf("remote write %s: %d requests rejected", names[i], st.Rejected)
				}
				sink.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	out["prom"] = float64(len(backlog)) / time.Since(began).Seconds()

	// MQTT: the uplink's JSON messages on its default topic, QoS 1, 4 publishers.
	msgs := make([]message, len(backlog))
	for i, p := range backlog {
		q, _ := reading.Lookup(p.r.Quantity)
		gw := rename(p.gateway)
		msgs[i] = message{topic: fmt.Sprintf("envgate/%s/%s/%s/%s/%s", gw, p.r.Site, p.r.Device, q.Domain, p.r.Quantity),
			payload: mqttpub.Payload(p.r, gw, mqttpub.FormatJSON)}
	}
	began = time.Now()
	for w := range 4 {
		wg.Go(func() {
			var part []message
			for i := w; i < len(msgs); i += 4 {
				part = append(part, msgs[i])
			}
			publishAllAs(b, rc.mqtt.URL, fmt.Sprintf("limit-%s-%d", run, w), part, nil)
		})
	}
	wg.Wait()
	out["uplink"] = float64(len(backlog)) / time.Since(began).Seconds()
	return out
}

// startBoxes starts every box at once, with env naming the receivers, and waits until
// each answers /healthz.
func startBoxes(b *testing.B, bin, cfg string, env []string, boxes []*box) {
	b.Helper()
	for _, bx := range boxes {
		bx.logs = &lockedBuffer{}
		bx.cmd = exec.Command(bin, "run", "-c", cfg)
		bx.cmd.Env = append(append(os.Environ(), "FLEET_BOX="+bx.id, "FLEET_SITE="+bx.site, "FLEET_STATE="+bx.state,
			"FLEET_LISTEN="+bx.listen), env...)
		bx.cmd.Stdout, bx.cmd.Stderr = bx.logs, bx.logs
		if err := bx.cmd.Start(); err != nil {
			b.Fatalf("start %s: %v", bx.id, err)
		}
		bx.exited = make(chan struct{})
		go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(bx.cmd, bx.exited)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, bx := range boxes {
		deadline := time.Now().Add(time.Minute)
		for {
			resp, err := client.Get("http://" + bx.listen + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-bx.exited:
				b.Fatalf("%s exited: %s", bx.id, bx.logs.String())
			default:
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not healthy within a minute (%v): %s", bx.id, err, bx.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// stopBoxes signals every running box and waits for it to exit.
func stopBoxes(boxes []*box, sig syscall.Signal) {
	for _, bx := range boxes {
		if bx.cmd != nil {
			_ = bx.cmd.Process.Signal(sig)
		}
	}
	for _, bx := range boxes {
		if bx.cmd != nil {
			<-bx.exited
			bx.cmd = nil
		}
	}
}

// scrapeAll returns, per box, the sum of the samples of metric on its /metrics (see
// scrapeSum).
func scrapeAll(b *testing.B, boxes []*box, metric string) []float64 {
	b.Helper()
	out := make([]float64, len(boxes))
	errs := make([]error, len(boxes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	client := &http.Client{Timeout: 5 * time.Second}
	for i, bx := range boxes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = scrapeSum(client, "http://"+bx.listen+"/metrics", metric)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("%s: %v; its log:\n%s", boxes[i].id, err, boxes[i].logs.String())
		}
	}
	return out
}

// scrapeSum adds up the samples of metric (a name: any labels; or a series written
// as the exposition writes it, `name{label="value"}`) in the text exposition at url.
func scrapeSum(client *http.Client, url, metric string) (float64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, metric)
		switch {
		case !ok:
			continue
		case strings.HasSuffix(metric, "}"): // a series: its value follows
			if rest == "" || rest[0] != ' ' {
				continue
			}
		case rest != "" && rest[0] != '{' && rest[0] != ' ': // a longer metric name
			continue
		}
		f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %v", metric, line, err)
		}
		total += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no %s on %s", metric, url)
	}
	return total, sc.Err()
}

// boxCPU returns each box's CPU time so far.
func boxCPU(b *testing.B, boxes []*box) []time.Duration {
	out := make([]time.Duration, len(boxes))
	for i, bx := range boxes {
		d, err := procCPU(bx.cmd.Process.Pid)
		if err != nil {
			b.Fatalf("%s: CPU: %v; its log:\n%s", bx.id, err, bx.logs.String())
		}
		out[i] = d
	}
	return out
}

// outageReadings returns what the box's devices measure in [from, to), in time order.
func outageReadings(b *testing.B, bx *box, from, to time.Time) []reading.Reading {
	b.Helper()
	var rs []reading.Reading
	for _, d := range fleetDevices {
		var now time.Time
		drv, err := sim.New(sim.Config{Kind: d.kind, Seed: d.seed, Site: bx.site, Device: d.name, Now: func() time.Time { return now }})
		if err != nil {
			b.Fatal(err)
		}
		for now = from; now.Before(to); now = now.Add(d.every) {
			got, err := drv.Poll(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			rs = append(rs, got...)
		}
	}
	slices.SortStableFunc(rs, func(x, y reading.Reading) int { return x.Time.Compare(y.Time) })
	return rs
}

// appendBacklog appends rs to the stopped box's buffer, as its writer would have.
func appendBacklog(b *testing.B, bx *box, rs []reading.Reading) {
	b.Helper()
	q, err := buffer.Open(buffer.Options{Dir: filepath.Join(bx.state, "buffer"), MaxBytes: 1 << 30,
		MaxAge: 720 * time.Hour, SegmentBytes: 8 << 20, CursorInterval: 5 * time.Second, MemoryReadings: 100_000})
	if err != nil {
		b.Fatalf("%s: open its buffer: %v", bx.id, err)
	}
	if err := q.Append(rs...); err != nil {
		b.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

func mean(xs []float64) float64 { return sum(xs) / float64(len(xs)) }

// lockedBuffer is a strings.Builder safe for a process's stdout and stderr at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // keep the first MiB
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
