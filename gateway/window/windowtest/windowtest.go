// Package windowtest makes the at-least-once streams the aggregators' tests feed: every
// reading twice, or random subsets of the recent readings again, out of order.
package windowtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Twice returns rs with every reading followed by a copy of itself.
func Twice(rs []reading.Reading) []reading.Reading {
	out := make([]reading.Reading, 0, 2*len(rs))
	for _, r := range rs {
		out = append(out, r, r)
	}
	return out
}

// Redeliver returns rs with, after a random tenth of its readings, a random subset of
// the readings already fed whose time is within lateness of the latest time so far,
// shuffled: each of them is still in an open window (a window closes lateness after its
// end), as after an MQTT reconnect or a source re-sending its last batch.
func Redeliver(rng *rand.Rand, rs []reading.Reading, lateness time.Duration) []reading.Reading {
	var out []reading.Reading
	var latest time.Time
	for i, r := range rs {
		out = append(out, r)
		if r.Time.After(latest) {
			latest = r.Time
		}
		if rng.IntN(10) != 0 {
			continue
		}
		var recent []reading.Reading
		for j := i; j >= 0 && !rs[j].Time.Before(latest.Add(-lateness)); j-- {
			if rng.IntN(2) == 0 {
				recent = append(recent, rs[j])
			}
		}
		rng.Shuffle(len(recent), func(a, b int) { recent[a], recent[b] = recent[b], recent[a] })
		out = append(out, recent...)
	}
	return out
}

// Format renders readings one a line, values as their bits, for a byte-wise comparison.
func Format(rs []reading.Reading) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %s/%s %s=%v (%#x) %s q%d\n", r.Time.UTC().Format(time.RFC3339Nano),
			r.Site, r.Device, r.Quantity, r.Value, math.Float64bits(r.Value), r.Unit, r.Quality)
	}
	return b.String()
}

// Diff returns the first line where got and want differ, or "".
func Diff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: got %q, want %q (%d and %d lines)", i+1, gl, wl, len(g), len(w))
		}
	}
	return ""
}

// Aggregator is what Feed drives: noise, air and water aggregators all have it.
type Aggregator interface {
	Add(r reading.Reading) []reading.Reading
	Tick(now time.Time) []reading.Reading
	FlushTime(t time.Time) time.Time
}

// Feed adds rs to a in order, then ticks it at the flush time of the latest reading
// that clocks it (all readings when clocks is nil), and returns everything it derived
// in Format's byte-exact form.
func Feed(a Aggregator, rs []reading.Reading, clocks func(reading.Reading) bool) string {
	var out []reading.Reading
	var last time.Time
	for _, r := range rs {
		out = append(out, a.Add(r)...)
		if (clocks == nil || clocks(r)) && r.Time.After(last) {
			last = r.Time
		}
	}
	return Format(append(out, a.Tick(a.FlushTime(last))...))
}
