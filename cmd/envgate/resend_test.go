package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/config"
	"github.com/envgate/envgate/internal/testsvc"
)

// resendBatch is the sink's batch_size in TestRestartResendsNothingTwiceAndMissesNothing.
const resendBatch = 50

// resendBound is what one kill may make the sink send again (docs/design.md, "Re-sends
// after a crash"): fewer than batch_size acknowledged since the cursor was last saved,
// plus the batches sent and not acknowledged, max_in_flight (the default, 2) of at most
// the drain batch (5 × batch_size here). With one request in flight and no growth of
// the batch while a backlog waits, before issue 14, it was 2 × batch_size − 1.
const resendBound = resendBatch - 1 + config.DefaultMaxInFlight*5*resendBatch

// resendConfig is a box polling crashDevices (about 250 readings/s) and forwarding
// through the recorder at url. cursor_interval is left at its default, as on a box.
func resendConfig(state, listen, url, bucket string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `gateway:
  id: box-resend
  site: canal-resend
  state_dir: %s
  listen: %s
  shutdown_timeout: 10s
  health_interval: 1s
buffer:
  sync_interval: 100ms
  segment_bytes: 64KiB
sinks:
  - name: influx
    influxdb:
      url: %s
      bucket: %s
      batch_size: %d
      flush_interval: 100ms
      retry_initial: 50ms
      retry_max: 300ms
devices:
`, state, listen, url, bucket, resendBatch)
	for _, d := range crashDevices {
		fmt.Fprintf(&b, "  - name: %s\n    interval: %s\n    sim: {kind: %s, seed: %d}\n", d.name, d.interval, d.kind, d.seed)
	}
	return b.String()
}

// TestRestartResendsNothingTwiceAndMissesNothing runs the real binary in a crash loop
// (SIGKILL at random moments, a clean stop now and then, the uplink refusing writes for
// a few runs so that a backlog builds up and is caught up across kills) against a real
// InfluxDB behind a recording proxy, which counts every line the server accepted: a
// query cannot show re-sent points, InfluxDB overwrites them.
//
// It checks the promise of docs/design.md ("Re-sends after a crash"): nothing durable is
// missing, a clean stop re-sends nothing, and a crash re-sends at most resendBound
// readings (fewer than batch_size acknowledged since the cursor was last saved, plus
// the batches in flight).
func TestRestartResendsNothingTwiceAndMissesNothing(t *testing.T) {
	skipSubprocess(t)
	inf := testsvc.StartInflux(t)
	rec := testsvc.StartRecorder(t, inf.URL)
	bin := buildBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	listen := loopback(t)
	cfgPath := filepath.Join(dir, "box.yaml")
	writeFile(t, cfgPath, resendConfig(state, listen, rec.URL, inf.Bucket))

	const runs = 28
	durable := map[testsvc.Point]float64{}
	kills, cleanStops := 0, 0
	resentAfterKills, worstKill := 0, 0
	prevClean, prevDelivered := false, false
	total0, distinct0 := 0, 0
	for i := range runs {
		// Runs 10 to 13: the uplink refuses writes, a backlog builds up, and the runs
		// after it catch up in full batches while being killed.
		rec.Refuse(i >= 10 && i < 14)
		reqs0 := rec.Requests()
		p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath)
		waitHealthy(t, p, listen)
		time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond) // a random moment to stop
		clean := i%7 == 6
		if clean {
			if code, _ := p.stop(t, 15*time.Second); code != 0 {
				t.Fatalf("run %d: clean stop exited %d\n%s", i, code, p.stderr.String())
			}
		} else {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
		}
		delivered := rec.Requests() > reqs0
		for pt, v := range snapshot(t, state) {
			durable[pt] = v
		}
		// Re-sends in this run are caused by the stop before it.
		total, distinct := rec.Written()
		resent := (total - distinct) - (total0 - distinct0)
		total0, distinct0 = total, distinct
		if i > 0 {
			if prevClean {
				if prevDelivered && resent != 0 {
					t.Errorf("run %d re-sent %d readings after a clean stop; want 0", i, resent)
				}
			} else {
				resentAfterKills += resent
				worstKill = max(worstKill, resent)
				if resent > resendBound {
					t.Errorf("run %d re-sent %d readings after a kill; want at most batch_size − 1 + max_in_flight × 5 × batch_size = %d", i, resent, resendBound)
				}
			}
		}
		prevClean, prevDelivered = clean, delivered
		if clean {
			cleanStops++
		} else {
			kills++
		}
	}

	// A last run delivers the backlog and stops cleanly, which delivers the rest.
	p := startEnvgate(t, bin, cleanEnv(), "run", "-c", cfgPath)
	waitHealthy(t, p, listen)
	if !waitFor(t, 30*time.Second, func() bool { _, d := rec.Written(); return d >= len(durable) }) {
		t.Errorf("the last run did not deliver the backlog within 30s")
	}
	if code, _ := p.stop(t, 15*time.Second); code != 0 {
		t.Fatalf("last stop exited %d\n%s", code, p.stderr.String())
	}
	for pt, v := range snapshot(t, state) {
		durable[pt] = v
	}
	total, distinct := rec.Written()
	if resent := (total - distinct) - (total0 - distinct0); !prevClean {
		resentAfterKills += resent
		worstKill = max(worstKill, resent)
	}

	missing := checkStored(t, durable, inf.Points(t))
	bound := kills * resendBound
	t.Logf("%d kills, %d clean stops: %d readings durable, %d missing; %d lines written, %d distinct, "+
		"%d re-sent (%.1f%%), %d after kills (at most %d after one kill; bound %d = %d kills × %d, batch_size %d)",
		kills, cleanStops, len(durable), missing, total, distinct, total-distinct,
		100*float64(total-distinct)/float64(max(distinct, 1)), resentAfterKills, worstKill, bound, kills, resendBound, resendBatch)
	if total-distinct > bound {
		t.Errorf("%d readings re-sent over %d kills, more than the bound %d", total-distinct, kills, bound)
	}
	if len(durable) < 2000 {
		t.Errorf("only %d durable readings seen; the test did not exercise much", len(durable))
	}
}

// waitHealthy waits until the gateway at listen answers /healthz (the buffer is open and
// the forwarder runs), so that a kill lands in a running gateway, not in its start.
func waitHealthy(t *testing.T, p *proc, listen string) {
	t.Helper()
	if !waitFor(t, 10*time.Second, func() bool {
		code, _ := get("http://" + listen + "/healthz")
		return code == http.StatusOK || p.exited()
	}) || p.exited() {
		t.Fatalf("envgate not healthy on %s within 10s (exited: %v)\n%s", listen, p.exited(), p.stderr.String())
	}
}
