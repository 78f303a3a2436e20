package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// loudEvening is 20 minutes of 1-s samples from 21:50 to 22:10 (Shanghai): a loud
// evening at 65-68 dB(A) until 22:00, a quiet night at 40 after it, and a 5-s burst
// at 85 dB(A) at 22:05 (the class 1 night limit 45 + 15 is 60). Start is its first
// sample.
func loudEvening(start time.Time) (times []time.Time, levels []float64) {
	for s := range 1200 {
		t := start.Add(time.Duration(s) * time.Second)
		v := 65 + float64(s%4) // 65..68, varied so percentiles differ
		if s >= 600 {
			v = 40 + float64(s%3)/10
		}
		if s >= 900 && s < 905 {
			v = 85
		}
		times, levels = append(times, t), append(levels, v)
	}
	return times, levels
}

// recentEvening returns 21:50 China Standard Time two evenings before now: the night
// after it (22:00-06:00) ended between 18 and 42 hours before now, so the live monitors
// (which refuse readings more than a week old or ahead of now) take the whole evening
// and their wall clock closes every window of it, as replay's end of input does.
func recentEvening(now time.Time) time.Time {
	d := now.In(reading.ChinaStandardTime)
	return time.Date(d.Year(), d.Month(), d.Day()-2, 21, 50, 0, 0, reading.ChinaStandardTime)
}

// replayPoints turns replay's line protocol into points keyed like testsvc.Points.
func replayPoints(t *testing.T, out string) map[testsvc.Point]float64 {
	t.Helper()
	pts := map[testsvc.Point]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		// noise,device=D,gateway=G,site=S field=v[,field_quality=1i] ms
		parts := strings.Fields(sc.Text())
		if len(parts) != 3 {
			t.Fatalf("line %q", sc.Text())
		}
		tags := strings.Split(parts[0], ",")
		p := testsvc.Point{Measurement: tags[0]}
		for _, kv := range tags[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "device":
				p.Device = v
			case "site":
				p.Site = v
			}
		}
		p.Time, _ = strconv.ParseInt(parts[2], 10, 64)
		for _, f := range strings.Split(parts[1], ",") {
			k, v, _ := strings.Cut(f, "=")
			if strings.HasSuffix(k, "_quality") {
				continue
			}
			p.Field = k
			pts[p], _ = strconv.ParseFloat(v, 64)
		}
	}
	return pts
}

// TestNoiseReplayMatchesLive sends a recorded loud evening through the real binary
// (MQTT with the samples' own timestamps → derivation → buffer → InfluxDB) and through
// `envgate replay`, and checks that both give the same derived points.
func TestNoiseReplayMatchesLive(t *testing.T) {
	inf := testsvc.StartInflux(t)
	broker := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{MaxQueued: 100000}) // the default 1000 drops beyond it (mqtt_test.go)
	bin := buildBinary(t)
	dir := t.TempDir()
	listen := loopback(t)
	// Relative to now (the gateway's clock): a fixed date passes only within a week of it.
	start := recentEvening(clock.Now())
	times, levels := loudEvening(start)

	noiseCfg := `noise:
  close_after: 20s # windows close by the samples; the wall clock only after 20 s of silence (a loaded CI machine can pause the stream)
  sites:
    - {device: meter-1, site: canal, zone: "1", quiet_district: true}
`
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-noise
  site: canal
  state_dir: %s
  listen: %s
  health_interval: 1h
buffer: {sync_interval: 100ms}
sinks:
  - name: influx
    influxdb: {url: %s, bucket: %s, flush_interval: 100ms, retry_initial: 100ms}
mqtt:
  - name: meters
    broker: %s
    client_id: envgateTestNoise
    subscriptions:
      - topic: noise/+/+
        template: noise/{site}/{device}
        fields: [{path: la, quantity: la}]
        time: {path: ts, format: unix_ms}
%s`, filepath.Join(dir, "state"), listen, inf.URL, inf.Bucket, broker.URL, noiseCfg))

	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s", g.logs.String())
		}
	}()
	g.start()
	pub := newPublisher(t, broker.URL)
	// Messages published before the gateway subscribes are not queued for it.
	pub.waitSubscribed(listen, "meters", "noise/probe/probe", "not json")
	for i, ts := range times {
		pub.publish("noise/canal/meter-1", fmt.Sprintf(`{"ts": %d, "la": %v}`, ts.UnixMilli(), levels[i]))
	}

	want := replayMeter(t, cfgPath, dir, "la", times, levels)
	got := waitLiveDerived(t, inf, want, 120*time.Second)
	g.stop(syscall.SIGTERM)
	compareLiveReplay(t, got, want, times[len(times)-1])
	// The arithmetic: 21:50-22:00 holds 65..68 dB(A) in equal shares.
	e := (math.Pow(10, 6.5) + math.Pow(10, 6.6) + math.Pow(10, 6.7) + math.Pow(10, 6.8)) / 4
	hour21 := testsvc.Point{Measurement: "noise", Device: "meter-1", Site: "canal", Field: "laeq_1h", Time: start.Truncate(time.Hour).UnixMilli()}
	if v := got[hour21]; math.Abs(v-10*math.Log10(e)) > 1e-9 {
		t.Errorf("laeq_1h of 21:00 = %v, want %v (energy mean of 65..68)", v, 10*math.Log10(e))
	}
	burst := testsvc.Point{Measurement: "noise", Device: "meter-1", Site: "canal", Field: "lmax_burst", Time: times[900].UnixMilli()}
	if v, found := got[burst]; !found || v != 85 {
		t.Errorf("lmax_burst at 22:05 = %v (found %v), want 85", v, found)
	}
	t.Logf("%d derived points, live = replay", len(want))
}

// replayMeter runs `envgate replay -c cfgPath` over a CSV (written in dir) of meter-1's
// quantity at canal with the given times and values, and returns the points it prints:
// what an uninterrupted gateway derives from them.
func replayMeter(t *testing.T, cfgPath, dir, quantity string, times []time.Time, values []float64) map[testsvc.Point]float64 {
	t.Helper()
	var csv strings.Builder
	csv.WriteString("time,site,device,quantity,value\n")
	for i, ts := range times {
		fmt.Fprintf(&csv, "%s,canal,meter-1,%s,%v\n", ts.Format(time.RFC3339), quantity, values[i])
	}
	in := filepath.Join(dir, "recording.csv")
	writeFile(t, in, csv.String())
	defer os.Remove(in)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"replay", "-c", cfgPath, in}, &stdout, &stderr); code != 0 {
		t.Fatalf("replay exit %d: %s", code, stderr.String())
	}
	return replayPoints(t, stdout.String())
}

// waitLiveDerived waits until InfluxDB holds as many derived noise points up to the
// last of want as want has, and returns them.
func waitLiveDerived(t *testing.T, inf *testsvc.Influx, want map[testsvc.Point]float64, limit time.Duration) map[testsvc.Point]float64 {
	t.Helper()
	var last int64
	for p := range want {
		last = max(last, p.Time)
	}
	derived := map[string]bool{}
	for _, q := range noise.Quantities() {
		derived[q.Name] = true
	}
	var got map[testsvc.Point]float64
	if !waitFor(t, limit, func() bool {
		got = map[testsvc.Point]float64{}
		for p, v := range inf.Points(t) {
			if derived[p.Field] && p.Time <= last {
				got[p] = v
			}
		}
		return len(got) >= len(want)
	}) {
		t.Errorf("InfluxDB has %d derived points up to the replay's last window, replay printed %d", len(got), len(want))
	}
	return got
}

// compareLiveReplay fails the test for every point of want that got lacks or has with
// another value, and every point of got that want lacks — but for the empty windows
// after lastSample, which only the live gateway opens: replay's flush stops at the end
// of the windows containing the last sample, while the live wall clock goes on.
func compareLiveReplay(t *testing.T, got, want map[testsvc.Point]float64, lastSample time.Time) {
	t.Helper()
	at := func(p testsvc.Point) string {
		return p.Field + " " + time.UnixMilli(p.Time).In(reading.ChinaStandardTime).Format(time.DateTime)
	}
	for p, w := range want {
		v, found := got[p]
		switch {
		case !found:
			t.Errorf("the live gateway lacks %s = %v", at(p), w)
		case math.Abs(v-w) > 1e-9*math.Max(1, math.Abs(w)):
			t.Errorf("%s: live %v, replay (uninterrupted) %v", at(p), v, w)
		}
	}
	for p, v := range got {
		if _, found := want[p]; !found && p.Time <= lastSample.UnixMilli() {
			t.Errorf("the live gateway has %s = %v, replay does not", at(p), v)
		}
	}
}
