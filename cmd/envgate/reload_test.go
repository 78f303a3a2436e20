package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/internal/clock"
	"github.com/envgate/envgate/internal/testsvc"
)

// reloadConfig is a box with an MQTT meter publishing numbered PM2.5 readings, the
// simulated devices named in sims, and the sinks in sinks (YAML list items).
func reloadConfig(state, listen, broker string, sims map[string]string, sinks string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `gateway:
  id: box-reload
  site: canal
  state_dir: %s
  listen: %s
  shutdown_timeout: 6s
  health_interval: 1h
buffer:
  sync_interval: 100ms
  cursor_interval: 100ms
  segment_bytes: 64KiB
sinks:
%smqtt:
  - name: seq
    broker: %s
    client_id: envgateTestReload
    subscriptions:
      - topic: seq/+/+
        template: seq/{site}/{device}
        fields: [{path: v, quantity: pm25}]
        time: {path: ts, format: unix_ms}
devices:
`, state, listen, sinks, broker)
	for name, kind := range sims {
		fmt.Fprintf(&b, "  - name: %s\n    interval: 200ms\n    sim: {kind: %s}\n", name, kind)
	}
	return b.String()
}

// TestReloadSwapsWithoutLoss (issue 13): the real binary reloads its config on SIGHUP
// while an MQTT meter publishes 2000 numbered readings: a valid new config (a sink
// removed, a device added) is applied, an invalid one is refused with the running
// config kept and envgate_config_reload_success 0, and a third brings the sink back.
// InfluxDB ends with each of the 2000 readings exactly once; the removed sink's cursor
// file is deleted while the unchanged sink keeps its cursor (it re-sends at most what
// MQTT redelivers, not the buffer).
func TestReloadSwapsWithoutLoss(t *testing.T) {
	skipSubprocess(t)
	const n = 2000
	inf := testsvc.StartInflux(t)
	inf.Exec(t, "CREATE DATABASE backup")
	rec := testsvc.StartRecorder(t, inf.URL)
	broker := testsvc.StartMosquitto(t, testsvc.MosquittoOptions{MaxQueued: 100000})
	bin := buildBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	listen := loopback(t)
	cfgPath := filepath.Join(dir, "box.yaml")
	sinkInflux := fmt.Sprintf("  - name: influx\n    influxdb: {url: %s, bucket: %s, flush_interval: 100ms, retry_initial: 100ms}\n", rec.URL, inf.Bucket)
	sinkBackup := fmt.Sprintf("  - name: backup\n    influxdb: {url: %s, bucket: backup/autogen, flush_interval: 100ms, retry_initial: 100ms}\n", inf.URL)
	configA := reloadConfig(state, listen, broker.URL, map[string]string{"noise-1": "noise"}, sinkInflux+sinkBackup)
	configB := reloadConfig(state, listen, broker.URL, map[string]string{"noise-1": "noise", "air-1": "air"}, sinkInflux)
	writeFile(t, cfgPath, configA)

	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath)
	pub := newPublisher(t, broker.URL)
	pub.waitSubscribed(listen, "seq", "seq/probe/probe", "not json")

	// The meter publishes in the background, a reading every 5 ms, stamped an hour ago
	// plus its number in milliseconds.
	base := clock.Now().Add(-time.Hour).Truncate(time.Second) // the gateway's clock (shifted in fakeclock runs)
	var sent atomic.Int64
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range n {
			pub.publish("seq/canal/meter-9", fmt.Sprintf(`{"ts": %d, "v": %d}`, base.Add(time.Duration(i)*time.Millisecond).UnixMilli(), i))
			sent.Add(1)
			time.Sleep(5 * time.Millisecond) // pacing the publisher, not waiting for a condition
		}
	}()
	reload := func(config, logLine string, count int) {
		t.Helper()
		writeFile(t, cfgPath, config)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if !waitFor(t, 30*time.Second, func() bool { return strings.Count(p.stderr.String(), logLine) >= count }) {
			t.Fatalf("no %q after SIGHUP:\n%s", logLine, p.stderr.String())
		}
	}
	cursor := func(name string) string { return filepath.Join(state, "buffer", "cursors", name) }
	waitFor(t, 30*time.Second, func() bool { return sent.Load() > n/4 })
	if _, err := os.Stat(cursor("backup")); err != nil {
		t.Fatalf("the backup sink has no cursor before the reload: %v", err)
	}

	// B: backup removed, air-1 added.
	reload(configB, "config reloaded", 1)
	if _, err := os.Stat(cursor("backup")); !os.IsNotExist(err) {
		t.Errorf("the removed sink's cursor after the reload: %v, want it deleted", err)
	}
	if _, err := os.Stat(cursor("influx")); err != nil {
		t.Errorf("the unchanged sink's cursor after the reload: %v", err)
	}
	if !waitFor(t, 30*time.Second, func() bool { return scrapeValue(t, listen, `envgate_device_up{device="air-1"}`) == 1 }) {
		t.Errorf("the added device air-1 is not up after the reload")
	}
	if v := scrapeValue(t, listen, "envgate_config_reload_success "); v != 1 {
		t.Errorf("envgate_config_reload_success = %v after a good reload, want 1", v)
	}

	// An invalid file: refused, the running config stays.
	waitFor(t, 30*time.Second, func() bool { return sent.Load() > n/2 })
	reload(strings.Replace(configB, "interval: 200ms", "interval: -1s", 1), "config reload refused", 1)
	if v := scrapeValue(t, listen, "envgate_config_reload_success "); v != 0 {
		t.Errorf("envgate_config_reload_success = %v after a refused reload, want 0", v)
	}
	if !strings.Contains(p.stderr.String(), "interval") {
		t.Errorf("the log does not say what is wrong with the refused file:\n%s", p.stderr.String())
	}
	if v := scrapeValue(t, listen, `envgate_device_up{device="air-1"}`); v != 1 {
		t.Errorf("after a refused reload air-1 up = %v, want 1 (the running config kept)", v)
	}
	// A change only a restart can apply is refused too, naming the key.
	reload(strings.Replace(configB, "segment_bytes: 64KiB", "segment_bytes: 128KiB", 1), "config reload refused", 2)
	if !strings.Contains(p.stderr.String(), "buffer changed") {
		t.Errorf("the refusal does not name the buffer:\n%s", p.stderr.String())
	}

	// A again: the backup sink comes back and starts afresh.
	waitFor(t, 30*time.Second, func() bool { return sent.Load() > 3*n/4 })
	reload(configA, "config reloaded", 2)
	<-published

	count := func() int {
		rows := inf.Query(t, `SELECT COUNT("pm25") FROM "air" WHERE "device" = 'meter-9'`)
		if len(rows) == 0 {
			return 0
		}
		c, _ := rows[0].Values["count"].(float64)
		return int(c)
	}
	if !waitFor(t, 60*time.Second, func() bool { return count() >= n }) {
		t.Fatalf("InfluxDB holds %d of the %d readings", count(), n)
	}
	if c := count(); c != n {
		t.Errorf("InfluxDB holds %d points of meter-9, want exactly %d", c, n)
	}
	rows := inf.Query(t, `SELECT MIN("pm25"), MAX("pm25"), SUM("pm25") FROM "air" WHERE "device" = 'meter-9'`)
	if len(rows) != 1 || rows[0].Values["min"] != 0.0 || rows[0].Values["max"] != float64(n-1) || rows[0].Values["sum"] != float64(n*(n-1)/2) {
		t.Errorf("meter-9's readings are not 0..%d once each: %+v", n-1, rows)
	}
	// The unchanged sink kept its cursor: what it wrote of meter-9 is the readings once,
	// plus at most what MQTT delivered again after each of the two swaps (its window).
	written := 0
	for line, times := range rec.Lines() {
		if strings.Contains(line, "device=meter-9") {
			written += times
		}
	}
	if written < n || written > n+2*100 {
		t.Errorf("the influx sink wrote %d lines of meter-9 for %d readings: its cursor was not kept", written, n)
	}
	if code, _ := p.stop(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	t.Logf("%d readings through 2 reloads and 2 refusals: %d in InfluxDB, %d lines written by the kept sink", n, count(), written)
}

// `envgate run -c FILE --listen ADDR`: the address given on the command line holds for
// the process, so a reload of an unchanged file is applied, not refused as a change of
// gateway.listen. (Found in review: every SIGHUP was refused.)
func TestReloadKeepsRunListen(t *testing.T) {
	skipSubprocess(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "box.yaml")
	fileListen, flagListen := loopback(t), loopback(t)
	writeFile(t, cfgPath, fmt.Sprintf(`gateway:
  id: box-reload
  site: canal
  state_dir: %s
  listen: %s
  health_interval: 1h
devices:
  - name: noise-1
    interval: 200ms
    sim: {kind: noise}
`, filepath.Join(dir, "state"), fileListen))
	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath, "--listen", flagListen)
	p.waitMetrics(t, flagListen, 30*time.Second, func(string) bool { return true })
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitFor(t, 30*time.Second, func() bool {
		s := p.stderr.String()
		return strings.Contains(s, "config reloaded") || strings.Contains(s, "config reload refused")
	}) || !strings.Contains(p.stderr.String(), "config reloaded") {
		t.Errorf("the reload of an unchanged file was not applied:\n%s", p.stderr.String())
	}
	if v := scrapeValue(t, flagListen, "envgate_config_reload_success "); v != 1 {
		t.Errorf("envgate_config_reload_success = %v on the --listen address, want 1", v)
	}
	if code, _ := p.stop(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}
