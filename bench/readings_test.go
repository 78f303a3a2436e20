//go:build linux

package bench_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/envgate/envgate/drivers/sim"
	"github.com/envgate/envgate/gateway/influx"
	"github.com/envgate/envgate/gateway/reading"
)

// TestReadingsDistinct checks what the benchmarks rely on: makeReadings gives exactly n
// valid Good readings, each the simulator's value at its time, and no two are the same
// InfluxDB point (measurement, tags, field, time), so none overwrites another.
func TestReadingsDistinct(t *testing.T) {
	const n = 5000
	rs, err := makeReadings(n)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != n {
		t.Fatalf("makeReadings(%d) returned %d readings", n, len(rs))
	}
	type point struct {
		measurement, device, field string
		ms                         int64
	}
	seen := map[point]bool{}
	for i, r := range rs {
		if err := r.Validate(); err != nil || r.Quality != reading.Good {
			t.Fatalf("reading %d = %+v: Validate() = %v, want a valid Good reading", i, r, err)
		}
		q, _ := reading.Lookup(r.Quantity)
		p := point{string(q.Domain), r.Device, r.Quantity, r.Time.UnixMilli()}
		if seen[p] {
			t.Fatalf("reading %d (%s) repeats point %+v", i, influx.Line(r, gatewayID, time.Millisecond), p)
		}
		seen[p] = true
		kind := r.Device[:len(r.Device)-2] // "<kind>-<i>"
		if want := sim.Value(kind, seedOf(t, r.Device), r.Device, r.Quantity, r.Time); r.Value != want {
			t.Errorf("reading %d: %s of %s at %v = %v, want %v (the simulator's value)", i, r.Quantity, r.Device, r.Time, r.Value, want)
		}
	}
}

// seedOf returns the seed makeReadings gives device "<kind>-<i>".
func seedOf(t *testing.T, device string) int64 {
	t.Helper()
	for k, kind := range sim.Kinds() {
		for i := range perKind {
			if device == fmt.Sprintf("%s-%d", kind, i+1) {
				return int64(10*k + i + 1)
			}
		}
	}
	t.Fatalf("unknown device %q", device)
	return 0
}

// TestMessagesDistinct checks what BenchmarkMQTT relies on: every message makeMessages
// gives decodes, as the subscriber decodes it, into mqttFields valid Good readings
// stamped with the message's own time, and no two readings are the same InfluxDB point.
func TestMessagesDistinct(t *testing.T) {
	const n = 5000
	msgs := makeMessages(n)
	rs, err := decodeMessages(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != n*mqttFields {
		t.Fatalf("%d messages decode to %d readings, want %d", n, len(rs), n*mqttFields)
	}
	type point struct {
		measurement, site, device, field string
		ms                               int64
	}
	seen := map[point]bool{}
	for i, r := range rs {
		if err := r.Validate(); err != nil || r.Quality != reading.Good {
			t.Fatalf("reading %d = %+v: Validate() = %v, want a valid Good reading", i, r, err)
		}
		if want := t0.Add(time.Duration(i/mqttFields) * mqttStep); !r.Time.Equal(want) {
			t.Errorf("reading %d (%s): time %v, want %v (its message's ts)", i, msgs[i/mqttFields].payload, r.Time, want)
		}
		q, _ := reading.Lookup(r.Quantity)
		p := point{string(q.Domain), r.Site, r.Device, r.Quantity, r.Time.UnixMilli()}
		if seen[p] {
			t.Fatalf("reading %d (%s) repeats point %+v", i, influx.Line(r, gatewayID, time.Millisecond), p)
		}
		seen[p] = true
	}
}
