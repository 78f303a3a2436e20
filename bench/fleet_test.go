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
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/reading"
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
`

// fleetDevices are the devices of fleetConfig, for the backlog a cut-off leaves.
var fleetDevices = []struct {
	name, kind string
	seed       int64
	every      time.Duration
}{{"noise-1", "noise", 1, time.Second}, {"air-1", "air", 2, 10 * time.Second}, {"water-1", "water", 3, time.Minute}}

// BenchmarkFleet is issue 15's fleet harness: for each N of -fleet-n it runs N envgate
// processes (the real binary, one templated config) against one InfluxDB on this host
// and reports:
//
//   - steady state over -fleet-window: central points/s (the boxes' written totals),
//     CPU % of a core and RSS per box;
//   - the cut-off: every box is stopped, and -fleet-outage of readings from its devices
//     (stamped before the boxes first started, so no point repeats a live one) are
//     appended to its buffer as an outage would have left them — the outage compressed
//     into seconds; derived readings are not in that backlog. Then all N start at once,
//     and the drain time is until every box has sent its backlog (its unsent readings
//     back to what its live readings leave, ≤ 50);
//   - the receiver's own ingest limit in the same run: the same backlog's points, as
//     line protocol gzipped beforehand, POSTed by 2 writers in requests of 5000 lines.
//
// Not part of the test run (a benchmark); about N × 0.2 s plus the window and the drain
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
	inf, _ := startInflux(b)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("boxes=%d", n), func(b *testing.B) {
			for range b.N {
				runFleet(b, bin, cfg, inf, n)
			}
		})
	}
}

// uplink stands for the boxes' 4G link to the bureau: a TCP proxy in front of InfluxDB
// that refuses connections (closes them at once) while it is down, and cuts the open
// ones when it goes down.
type uplink struct {
	ln     net.Listener
	target string
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
	go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
	<-done
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

func runFleet(b *testing.B, bin, cfg string, inf *testsvc.Influx, n int) {
	resetDB(b, inf)
	dir := b.TempDir()
	boxes := make([]*box, n)
	for i := range boxes {
		boxes[i] = &box{id: fmt.Sprintf("box-%03d", i+1), site: fmt.Sprintf("site-%03d", i+1),
			state: filepath.Join(dir, fmt.Sprintf("box-%03d", i+1)), listen: fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(b))}
	}
	link := startUplink(b, strings.TrimPrefix(inf.URL, "http://"))
	firstStart := clock.Now()
	startBoxes(b, bin, cfg, link.url(), inf.Bucket, boxes)
	b.Cleanup(func() { stopBoxes(boxes, syscall.SIGKILL) })

	// Steady state.
	written0, cpu0 := scrapeAll(b, boxes, "envgate_sink_written_total"), boxCPU(b, boxes)
	t0 := time.Now()
	time.Sleep(*fleetWindow)
	elapsed := time.Since(t0)
	written1, cpu1 := scrapeAll(b, boxes, "envgate_sink_written_total"), boxCPU(b, boxes)
	var points, cpu float64
	var rss, hwm []float64
	for i, bx := range boxes {
		points += written1[i] - written0[i]
		cpu += (cpu1[i] - cpu0[i]).Seconds()
		rss = append(rss, procStatus(bx.cmd.Process.Pid, "VmRSS")/(1<<20))
		hwm = append(hwm, procStatus(bx.cmd.Process.Pid, "VmHWM")/(1<<20))
	}
	b.ReportMetric(points/elapsed.Seconds(), "central-points/s")
	b.ReportMetric(100*cpu/elapsed.Seconds()/float64(n), "cpu-%-per-box")
	b.ReportMetric(mean(rss), "rss-MiB-per-box")
	b.ReportMetric(slices.Max(hwm), "peak-rss-MiB-max")

	// The cut-off, compressed: the link goes down; the boxes are stopped, the outage's
	// readings appended to their buffers, and the boxes started again, failing to reach
	// InfluxDB; once every box has failed at least once, the link comes back.
	link.set(false)
	stopBoxes(boxes, syscall.SIGTERM)
	var lines []string
	total := 0
	for _, bx := range boxes {
		rs := outageReadings(b, bx, firstStart.Add(-*fleetOutage), firstStart)
		appendBacklog(b, bx, rs)
		total += len(rs)
		for _, r := range rs {
			lines = append(lines, influx.Line(r, bx.id, time.Millisecond))
		}
	}
	startBoxes(b, bin, cfg, link.url(), inf.Bucket, boxes)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if failing := scrapeAll(b, boxes, "envgate_sink_failing"); slices.Min(failing) == 1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("not every box saw the link down within 5 min")
		}
	}
	drainStart := time.Now()
	link.set(true)
	waitDrained := func() {
		deadline := time.Now().Add(10 * time.Minute)
		for {
			unsent := scrapeAll(b, boxes, "envgate_sink_unsent_readings")
			if slices.Max(unsent) <= 50 {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("boxes still hold %.0f unsent readings after 10 min", sum(unsent))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitDrained()
	drain := time.Since(drainStart)
	stopBoxes(boxes, syscall.SIGTERM)

	// The receiver's limit for the same points.
	resetDB(b, inf)
	limit := &meter{b: b}
	postBodies(b, inf, gzipBodies(b, lines, -1), limit)
	lim := limit.result(total)
	b.ReportMetric(float64(total), "backlog-points")
	b.ReportMetric(drain.Seconds(), "drain-s")
	b.ReportMetric(float64(total)/drain.Seconds(), "drain-points/s")
	b.ReportMetric(lim.perSec, "receiver-limit-points/s")
	b.ReportMetric(float64(total)/drain.Seconds()/lim.perSec, "drain-vs-limit")
	b.ReportMetric(0, "ns/op")
}

// startBoxes starts every box at once, its sink writing to influxURL, and waits until
// each answers /healthz.
func startBoxes(b *testing.B, bin, cfg, influxURL, bucket string, boxes []*box) {
	b.Helper()
	for _, bx := range boxes {
		bx.logs = &lockedBuffer{}
		bx.cmd = exec.Command(bin, "run", "-c", cfg)
		bx.cmd.Env = append(os.Environ(), "FLEET_BOX="+bx.id, "FLEET_SITE="+bx.site, "FLEET_STATE="+bx.state,
			"FLEET_LISTEN="+bx.listen, "FLEET_INFLUX_URL="+influxURL, "FLEET_INFLUX_BUCKET="+bucket)
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

// scrapeAll returns, per box, the sum of the samples of metric on its /metrics.
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

// scrapeSum adds up the samples of metric (any labels) in the text exposition at url.
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
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
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
