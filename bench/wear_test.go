//go:build linux

package bench_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sys/unix"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/drivers/mqttsub"
	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway"
	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/schedule"
	"github.com/envgate/envgate/internal/testsvc"
)

var (
	wearDuration = flag.Duration("wear-duration", 20*time.Second, "BenchmarkWear: measured time per scenario")
	syncCostGap  = flag.Duration("sync-cost-gap", 1100*time.Millisecond, "BenchmarkSyncCost: time between two syncs")
	wearOnly     = flag.String("wear-only", "", "BenchmarkWear: run only the scenarios whose name contains this")
	wearMount    = flag.String("wear-mount", "", "BenchmarkWear: mount options of the loop-mounted ext4 (e.g. noatime,lazytime); default: ext4's")
	wearAckDelay = flag.Duration("wear-ack-delay", config.DefaultAckDelay, "BenchmarkWear: buffer.ack_delay of the new policy")
)

// wearSimChannels is how many simulated channels the sim scenarios poll at 1 Hz.
const wearSimChannels = 200

// wearScenario is one load BenchmarkWear measures.
type wearScenario struct {
	name     string
	rate     int           // MQTT messages per second (one reading each); 0: the sim source
	ackDelay time.Duration // buffer.ack_delay
	window   int           // the broker's max_inflight_messages and mqtt[].max_inflight
	old      bool          // the policy before issue 14: add the old cursor saves' measured cost
}

// matched is the broker window sized to rate × ack_delay, at least mosquitto's default.
func matched(rate int, d time.Duration) int {
	return max(config.DefaultMaxInflight, int(float64(rate)*d.Seconds()))
}

// BenchmarkWear prints the bytes envgate makes the storage write per day at 1, 20 and
// 200 MQTT messages a second (real mosquitto, one reading a message) and for 200
// simulated channels at 1 Hz: the block device's sectors written while the load runs,
// extrapolated to a day, next to the log's own growth. See bench/README.md.
//
// The buffer lives on a dedicated ext4 image mounted through a loop device when the
// benchmark runs as root (nothing else writes to it, so its sectors-written counter is
// envgate's alone, journal and metadata included); otherwise on the file system of the
// temporary directory, minus an idle baseline of the same length measured first.
func BenchmarkWear(b *testing.B) {
	if testing.Short() {
		b.Skip("storage wear benchmark; skipped with -short")
	}
	st := newWearStore(b)
	replace, inPlace := cursorSaveCosts(b, st)
	fmt.Printf("BenchmarkWear storage: %s; one cursor save: %d bytes replacing the file (before issue 14), %d bytes in place\n",
		st.what, replace, inPlace)
	def := *wearAckDelay
	scenarios := []wearScenario{
		{name: "mqtt-1/old", rate: 1, window: config.DefaultMaxInflight, old: true},
		{name: "mqtt-1/new", rate: 1, ackDelay: def, window: matched(1, def)},
		{name: "mqtt-20/old", rate: 20, window: config.DefaultMaxInflight, old: true},
		{name: "mqtt-20/new", rate: 20, ackDelay: def, window: matched(20, def)},
		{name: "mqtt-200/old", rate: 200, window: config.DefaultMaxInflight, old: true},
		{name: "mqtt-200/new", rate: 200, ackDelay: def, window: matched(200, def)},
		{name: "mqtt-200/new-window20", rate: 200, ackDelay: def, window: config.DefaultMaxInflight},
		{name: "sim-200ch/old", old: true},
		{name: "sim-200ch/new", ackDelay: def},
	}
	for _, sc := range scenarios {
		if !strings.Contains(sc.name, *wearOnly) {
			continue
		}
		b.Run(sc.name, func(b *testing.B) {
			var w wearResult
			for range b.N {
				w.add(runWear(b, st, sc))
			}
			day := float64(24*time.Hour) / float64(w.elapsed)
			dev := float64(w.dev) * day
			if sc.old {
				// The old cursor policy: one save replacing the file per cursor_interval
				// (5 s) per sink; the measured run saved in place (counted in dev).
				dev += float64(replace) * float64(24*time.Hour/(5*time.Second))
			}
			logDay := float64(w.log) * day
			b.ReportMetric(dev/1e9, "GB/day")
			b.ReportMetric(float64(w.proc)*day/1e9, "write_bytes-GB/day")
			b.ReportMetric(logDay/1e9, "log-GB/day")
			if logDay > 0 {
				b.ReportMetric(dev/logDay, "WA")
			}
			perSec := float64(wearSimChannels) // the sim's channels, each polled at 1 Hz
			if sc.rate > 0 {
				perSec = float64(w.acked) / w.elapsed.Seconds() // one reading a message
				b.ReportMetric(perSec, "acked-msgs/s")
			}
			if perSec > 0 {
				b.ReportMetric(dev/day/(perSec*w.elapsed.Seconds()), "bytes/reading")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// wearSub is mqttSub with one field: one reading a message.
var wearSub = mqttsub.Subscription{Topic: mqttSub.Topic, Template: mqttSub.Template, Format: mqttsub.FormatJSON,
	Fields: []mqttsub.Field{{Path: "pm25", Quantity: "pm25"}}, Time: mqttSub.Time, QoS: 1}

// wearResult adds up measured sections.
type wearResult struct {
	elapsed        time.Duration
	dev, proc, log int64 // bytes: device sectors × 512, /proc/self/io write_bytes, log growth
	acked          uint64
}

func (w *wearResult) add(o wearResult) {
	w.elapsed += o.elapsed
	w.dev += o.dev
	w.proc += o.proc
	w.log += o.log
	w.acked += o.acked
}

// runWear runs one scenario: warm-up, then the measured section.
func runWear(b *testing.B, st *wearStore, sc wearScenario) wearResult {
	b.Helper()
	log := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir, err := os.MkdirTemp(st.dir, "run")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q := openQueue(b, dir, log) // config defaults: 8 MiB segments, cursor_interval 5s
	runningCursor(b, q)
	var sources []gateway.Source
	var sub *mqttsub.Subscriber
	var broker *testsvc.Mosquitto
	if sc.rate > 0 {
		broker = testsvc.StartMosquitto(b, testsvc.MosquittoOptions{MaxInflight: sc.window, MaxQueued: 100_000})
		cfg := mqttConfig(broker.URL)
		cfg.Subscriptions = []mqttsub.Subscription{wearSub}
		cfg.MaxInflight = sc.window
		sub, err = mqttsub.New(cfg, log.With("source", mqttSource))
		if err != nil {
			b.Fatal(err)
		}
		sources = append(sources, sub)
	} else {
		sources = simChannels(b, wearSimChannels)
	}
	p, err := gateway.New(gateway.Config{
		GatewayID: gatewayID, Site: site, Queue: q, Metrics: metrics.New(),
		SyncInterval: config.DefaultSyncInterval, AckDelay: sc.ackDelay, ShutdownGrace: 10 * time.Second, Log: log,
		Sources: sources,
		Sinks: []gateway.SinkSpec{{Name: sinkName, Sink: nullSink{}, BatchSize: config.DefaultBatchSize,
			FlushInterval: config.DefaultFlushInterval, RetryInitial: time.Second, RetryMax: 2 * time.Minute, AuthRetry: time.Minute}},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	if sub != nil {
		waitSubscribed(b, sub)
		go func() { defer close(pubDone); publishAt(b, pubCtx, broker.URL, sc.rate) }()
	} else {
		close(pubDone)
	}

	// Warm-up: the first segment exists, the ack delay and the cursor policy are in
	// their steady state.
	time.Sleep(max(sc.ackDelay, 2*time.Second) + time.Second)
	st.syncfs(b)
	dev0, proc0, log0 := st.sectors(b), procWriteBytes(b), q.Stats().Bytes
	var acked0 uint64
	if sub != nil {
		acked0 = sub.Stats().Acked
	}
	began := time.Now()
	time.Sleep(*wearDuration)
	st.syncfs(b)
	elapsed := time.Since(began)
	w := wearResult{elapsed: elapsed, dev: (st.sectors(b)-dev0)*512 - st.idle(elapsed), proc: procWriteBytes(b) - proc0,
		log: q.Stats().Bytes - log0}
	if sub != nil {
		w.acked = sub.Stats().Acked - acked0
	}
	stopPub()
	<-pubDone
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	if s := q.Stats(); s.Dropped != 0 || s.QuarantinedRecords != 0 || s.Degraded {
		b.Fatalf("buffer Stats() = %+v, want nothing dropped or quarantined", s)
	}
	return w
}

// runningCursor gives the sink's reader the cursor file of a box that has been running:
// a reader replaces the file whole at its first save (a new file and a rename, 64 KiB
// on ext4: once per start and sink) and saves in place after that. Without it the
// measured section of a slow scenario held that first save: at 20 msgs/s it comes
// about a minute after the start, and a 60 s section measured 0.51 instead of 0.42
// GB/day.
func runningCursor(b *testing.B, q *buffer.Queue) {
	b.Helper()
	if err := q.Append(reading.New(t0, site, "warm-up", "pm25", 1)); err != nil {
		b.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		b.Fatal(err)
	}
	r, err := q.Reader(sinkName)
	if err != nil {
		b.Fatal(err)
	}
	if _, next, err := r.Peek(1); err != nil {
		b.Fatal(err)
	} else if err := r.Ack(next); err != nil {
		b.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		b.Fatal(err)
	}
}

// nullSink takes every batch: the benchmark measures the gateway's own storage, with
// the forwarder acknowledging (and saving cursors) as it does against a healthy InfluxDB.
type nullSink struct{}

func (nullSink) Write(context.Context, []reading.Reading) error { return nil }

// simChannels returns simulated devices of every kind, round robin, polled at 1 Hz,
// until they report at least n channels (quantities).
func simChannels(b *testing.B, n int) []gateway.Source {
	b.Helper()
	kinds := []string{"noise", "air", "water", "weather"}
	var out []gateway.Source
	for i, ch := 0, 0; ch < n; i++ {
		name := fmt.Sprintf("%s-%d", kinds[i%len(kinds)], i)
		d, err := sim.New(sim.Config{Kind: kinds[i%len(kinds)], Seed: int64(i + 1), Site: site, Device: name})
		if err != nil {
			b.Fatal(err)
		}
		ch += len(d.Quantities())
		out = append(out, &schedule.Source{Device: name, Poller: d, Options: schedule.Options{Interval: time.Second}})
	}
	return out
}

// publishAt publishes mqttSub's messages at QoS 1 at rate a second until ctx is done,
// without waiting for the broker's PUBACKs in between (the broker takes them at once;
// its window towards the gateway is what the scenario sets).
func publishAt(b *testing.B, ctx context.Context, url string, rate int) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(mqttPubID).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(mqttPubTimeout))
	if tok := c.Connect(); !tok.WaitTimeout(mqttPubTimeout) || tok.Error() != nil {
		b.Errorf("publisher: connect to %s: %v", url, tokenErr(tok))
		return
	}
	defer c.Disconnect(250)
	began := time.Now()
	for i := 0; ; i++ {
		at := began.Add(time.Duration(i) * time.Second / time.Duration(rate))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		// One reading a message (the load of issue 14: 200 msgs/s grew the log by
		// 11 kB/s), stamped now: a reading stamped before the build-time bound would be
		// held in memory (docs/design.md §11), never written.
		k := i % (mqttSites * mqttDevices)
		c.Publish(fmt.Sprintf("env/site-%d/dev-%d/json", k/mqttDevices+1, k%mqttDevices+1), 1, false,
			fmt.Appendf(nil, `{"ts":%d,"pm25":%.1f}`, time.Now().UnixMilli(), float64(i*7919%2000)/10))
	}
}

// wearStore is where the benchmark's buffers live and how their writes are counted.
type wearStore struct {
	dir   string
	stat  string  // /sys/dev/block/<major>:<minor>/stat of the device under dir
	what  string  // for the log and README
	idleB float64 // bytes a second the device writes with nothing running (fallback only)
}

// newWearStore mounts a fresh ext4 image on a loop device when running as root, and
// otherwise measures the temporary directory's device with an idle baseline.
func newWearStore(b *testing.B) *wearStore {
	b.Helper()
	if st, err := loopStore(b); err == nil {
		return st
	} else {
		b.Logf("no loop-mounted ext4 (%v): measuring the temporary directory's device with an idle baseline", err)
	}
	dir := b.TempDir()
	st := &wearStore{dir: dir, stat: devStat(b, dir)}
	st.what = "the device of " + dir + " (" + st.stat + "), idle baseline subtracted"
	st.syncfs(b)
	s0, t0 := st.sectors(b), time.Now()
	time.Sleep(*wearDuration)
	st.syncfs(b)
	st.idleB = float64(st.sectors(b)-s0) * 512 / time.Since(t0).Seconds()
	b.Logf("idle baseline: %.0f bytes/s", st.idleB)
	return st
}

func loopStore(b *testing.B) (*wearStore, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("not root")
	}
	img := filepath.Join(b.TempDir(), "wear.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(img, 1<<30); err != nil {
		return nil, err
	}
	// No lazy initialisation: its background writes would be counted.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		return nil, fmt.Errorf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	mnt := b.TempDir()
	args := []string{"-t", "ext4", dev, mnt}
	if *wearMount != "" {
		args = append(args, "-o", *wearMount)
	}
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		exec.Command("losetup", "-d", dev).Run()
		return nil, fmt.Errorf("mount: %v: %s", err, out)
	}
	b.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			b.Logf("umount %s: %v: %s", mnt, err, out)
		}
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			b.Logf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	st := &wearStore{dir: mnt, stat: devStat(b, mnt)}
	st.what = fmt.Sprintf("a fresh 1 GiB ext4 image (mkfs.ext4 defaults: 4 KiB blocks, ordered journal) on %s, mounted at %s with options %q", dev, mnt, *wearMount)
	return st, nil
}

// devStat is the sysfs stat file of the block device holding dir.
func devStat(b *testing.B, dir string) string {
	var s syscall.Stat_t
	if err := syscall.Stat(dir, &s); err != nil {
		b.Fatal(err)
	}
	major, minor := (s.Dev>>8)&0xfff|(s.Dev>>32)&^0xfff, s.Dev&0xff|(s.Dev>>12)&^0xff
	return fmt.Sprintf("/sys/dev/block/%d:%d/stat", major, minor)
}

// sectors is the device's sectors written (field 7 of its stat file, 512-byte units,
// Documentation/block/stat.rst).
func (st *wearStore) sectors(b *testing.B) int64 {
	data, err := os.ReadFile(st.stat)
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) < 7 {
		b.Fatalf("%s: %q", st.stat, data)
	}
	n, err := strconv.ParseInt(f[6], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// idle is the idle baseline's bytes over d.
func (st *wearStore) idle(d time.Duration) int64 { return int64(st.idleB * d.Seconds()) }

// syncfs writes back everything dirty on the store's file system and commits its
// journal, so that a section's count includes what its writes cost later.
func (st *wearStore) syncfs(b *testing.B) {
	f, err := os.Open(st.dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		b.Fatalf("syncfs %s: %v", st.dir, err)
	}
}

// procWriteBytes is this process's write_bytes from /proc/self/io: bytes it caused to
// be sent to storage (page cache pages it dirtied), without the journal and metadata
// writes of the file system.
func procWriteBytes(b *testing.B) int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("/proc/self/io has no write_bytes")
	return 0
}

// cursorSaveCosts measures what one cursor save costs the store's device, both ways:
// replacing a 12-byte file (write tmp, fdatasync, rename, directory fsync: the format
// before issue 14) and overwriting a 20-byte slot of an existing file in place with
// fdatasync (buffer/cursor.go). Each is the mean of 50 saves, with syncfs around them.
func cursorSaveCosts(b *testing.B, st *wearStore) (replace, inPlace int64) {
	b.Helper()
	dir, err := os.MkdirTemp(st.dir, "cursor")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	const n = 50
	path := filepath.Join(dir, "sink")
	measure := func(save func(i int)) int64 {
		st.syncfs(b)
		s0, t0 := st.sectors(b), time.Now()
		for i := range n {
			save(i)
		}
		st.syncfs(b)
		return ((st.sectors(b)-s0)*512 - st.idle(time.Since(t0))) / n
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	replace = measure(func(i int) {
		f, err := os.Create(path + ".tmp")
		must(err)
		_, err = f.Write(make([]byte, 12))
		must(err)
		must(syscall.Fdatasync(int(f.Fd())))
		must(f.Close())
		must(os.Rename(path+".tmp", path))
		d, err := os.Open(dir)
		must(err)
		must(d.Sync())
		must(d.Close())
	})
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(err)
	defer f.Close()
	_, err = f.WriteAt(make([]byte, 4096+20), 0)
	must(err)
	must(f.Sync())
	inPlace = measure(func(i int) {
		_, err := f.WriteAt([]byte(fmt.Sprintf("%020d", i)), int64(i%2)*4096)
		must(err)
		must(syscall.Fdatasync(int(f.Fd())))
	})
	return replace, inPlace
}
