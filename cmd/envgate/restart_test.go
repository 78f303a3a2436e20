package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// meterDay is 36 hours of a smart meter's own 1-min Leq, from 20:00 China Standard Time
// three days before now to 07:59 the day before now: an evening, a night, a day, a
// night and a morning, so that one Lden 24 hours (07:00 to 07:00) is whole. Levels vary by the minute so that every window differs; the night has
// a few loud minutes. The night after it ends more than a day before now, so the live
// monitors take all of it (they refuse readings over a week old) and their wall clock
// closes every window of it once the meter falls silent, as replay's end of input does.
func meterDay(now time.Time) (times []time.Time, levels []float64) {
	d := now.In(reading.ChinaStandardTime)
	start := time.Date(d.Year(), d.Month(), d.Day()-3, 20, 0, 0, 0, reading.ChinaStandardTime)
	for i := range 36 * 60 {
		t := start.Add(time.Duration(i) * time.Minute)
		h := t.In(reading.ChinaStandardTime).Hour()
		v := 52 + float64(i%13)/2 // day: 52..58
		if h >= 22 || h < 6 {
			v = 40 + float64(i%9)/2 // night: 40..44
			if i%97 == 0 {
				v = 63 // a loud minute
			}
		}
		times, levels = append(times, t), append(levels, v)
	}
	return times, levels
}

// TestRestartMidPeriodDerivesAsUninterrupted (issue 11, defect 4) runs the real binary
// on a recorded meter day sent over MQTT, kills it with SIGKILL in the middle of an
// hour of the night period (03:30) and again in the middle of an hour of the day
// period (14:30), each time after every sample so far is durable and delivered, and
// restarts it. The derived points in InfluxDB — minute and hour LAeq, percentiles, Ld,
// Ln, Ldn, Lden, exceedances — equal those of `envgate replay` over the whole
// recording, which is the uninterrupted run. Before the fix the restarted gateway
// began its hour, night and day windows empty and its valid-data rates fell.
func TestRestartMidPeriodDerivesAsUninterrupted(t *testing.T) {
	inf := testsvc.StartInflux(t)
	broker := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{MaxQueued: 100000})
	bin := buildBinary(t)
	dir := t.TempDir()
	listen := loopback(t)
	times, levels := meterDay(clock.Now())
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-restart
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
    client_id: envgateTestRestart
    subscriptions:
      - topic: noise/+/+
        template: noise/{site}/{device}
        fields: [{path: laeq, quantity: laeq}]
        time: {path: ts, format: unix_ms}
noise:
  close_after: 30s # the wall clock closes the windows only after 30 s of silence: the end of the recording
  sites:
    - {device: meter-1, site: canal, zone: "1", laeq_period: 1m}
`, filepath.Join(dir, "state"), listen, inf.URL, inf.Bucket, broker.URL))

	g := &gatewayProc{t: t, bin: bin, cfg: cfgPath}
	var logs strings.Builder
	defer func() {
		if t.Failed() {
			t.Logf("envgate logs:\n%s%s", logs.String(), g.logs.String())
		}
	}()
	pub := newPublisher(t, broker.URL)
	send := func(from, to int) {
		pub.publishWindowed(to-from, func(i int) (string, string) {
			return "noise/canal/meter-1", fmt.Sprintf(`{"ts": %d, "laeq": %v}`, times[from+i].UnixMilli(), levels[from+i])
		})
	}
	// delivered waits until InfluxDB holds the sample at times[i]: it, and every sample
	// before it, is durable and delivered (the buffer no longer needs it for a sink).
	delivered := func(i int) {
		t.Helper()
		p := testsvc.Point{Measurement: "noise", Device: "meter-1", Site: "canal", Field: "laeq", Time: times[i].UnixMilli()}
		if !waitFor(t, 60*time.Second, func() bool { _, ok := inf.Points(t)[p]; return ok }) {
			t.Fatalf("InfluxDB lacks the sample of %s", times[i].In(reading.ChinaStandardTime).Format(time.DateTime))
		}
	}
	kill := func() {
		t.Helper()
		g.stop(syscall.SIGKILL)
		logs.WriteString(g.logs.String())
		g.logs.Reset()
		g.start()
	}

	g.start()
	pub.waitSubscribed(listen, "meters", "noise/probe/probe", "not json")
	night, day := 450, 1110 // 03:30 and 14:30 of the day after the first evening
	for _, cut := range []int{night, day} {
		if got := times[cut].In(reading.ChinaStandardTime).Format("15:04"); got != map[int]string{night: "03:30", day: "14:30"}[cut] {
			t.Fatalf("cut at %s", got)
		}
	}
	send(0, night)
	delivered(night - 1)
	kill()
	send(night, day)
	delivered(day - 1)
	kill()
	send(day, len(times))

	// The uninterrupted run: replay of the whole recording.
	want := replayMeter(t, cfgPath, dir, "laeq", times, levels)
	got := waitLiveDerived(t, inf, want, 180*time.Second)
	g.stop(syscall.SIGTERM)
	logs.WriteString(g.logs.String())
	g.logs.Reset()
	compareLiveReplay(t, got, want, times[len(times)-1])
	fields := map[string]int{}
	for p := range want {
		fields[p.Field]++
	}
	for _, f := range []string{"laeq_1h", "ln", "ld", "vdr_period", "ldn", "lden"} {
		if fields[f] == 0 {
			t.Errorf("replay derived no %s: the recording does not cover what the test checks", f)
		}
	}
	// Both restarts rebuilt their windows from the buffer, and found nothing missing.
	restored := regexp.MustCompile(`derivations restored from the buffer" samples=(\d+) derived_in_buffer=(\d+) derived_missing=(\d+)`).FindAllStringSubmatch(logs.String(), -1)
	if len(restored) != 3 || restored[1][1] != fmt.Sprint(night) || restored[2][1] != fmt.Sprint(day) || restored[1][3] != "0" || restored[2][3] != "0" {
		t.Errorf("restore log lines %q, want 3 (the first start with nothing), the restarts with %d and %d samples and none missing", restored, night, day)
	}
	t.Logf("%d derived points after 2 SIGKILLs = uninterrupted; restores: %q", len(want), restored)
}
