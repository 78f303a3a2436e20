package screen

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

var t0 = time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)

// one returns a Screen with rules for every channel.
func one(r Rules) *Screen { return New(func(Key) (Rules, bool) { return r, true }, nil) }

// run screens values (one a minute from t0, device "pm-1", pm25) and returns the
// released readings, flushed at the end.
func run(s *Screen, device string, values []float64, every time.Duration) []reading.Reading {
	var out []reading.Reading
	for i, v := range values {
		out = s.Add(out, reading.New(t0.Add(time.Duration(i)*every), "canal-1", device, "pm25", v), t0)
	}
	return s.Flush(out)
}

func reasons(rs []reading.Reading) []reading.Reason {
	out := make([]reading.Reason, len(rs))
	for i, r := range rs {
		out[i] = r.Reason
	}
	return out
}

func TestFlatline(t *testing.T) {
	r := NoLimits()
	r.FlatFor, r.Resolution = 2*time.Hour, 0.5
	values := make([]float64, 0, 12*60)
	for i := range 60 {
		values = append(values, 30+float64(i%7)) // healthy for an hour
	}
	for range 12 * 60 {
		values = append(values, 35+0.2*float64(len(values)%2)) // a dead laser: 35.0/35.2 for 12 hours
	}
	out := run(one(r), "pm-1", values, time.Minute)
	if len(out) != len(values) {
		t.Fatalf("%d released, want %d", len(out), len(values))
	}
	first := -1
	for i, x := range out {
		if x.Reason == reading.Flatline && first < 0 {
			first = i
		}
		if first >= 0 && x.Reason != reading.Flatline {
			t.Fatalf("reading %d after the flatline began: %v", i, x.Reason)
		}
		if x.Value != values[i] || !x.Time.Equal(t0.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("reading %d changed: %+v", i, x)
		}
	}
	// The run starts at minute 60; it is flagged once it has lasted 2 hours.
	if first != 60+120 {
		t.Errorf("first flagged at minute %d, want %d", first, 180)
	}
	if out[first].Quality != reading.Suspect {
		t.Errorf("quality %v", out[first].Quality)
	}
}

func TestSingleSpike(t *testing.T) {
	r := NoLimits()
	r.SpikeJump = 300
	values := []float64{35, 36, 34, 999, 35, 36, 35}
	out := run(one(r), "pm-1", values, time.Minute)
	want := []reading.Reason{0, 0, 0, reading.Spike, 0, 0, 0}
	if got := reasons(out); !equal(got, want) {
		t.Errorf("reasons %v, want %v", got, want)
	}
	// Two samples of a glitch, back within SpikeWithin: both flagged.
	out = run(one(r), "pm-1", []float64{35, 999, 998, 36, 35}, time.Minute)
	if got := reasons(out); !equal(got, []reading.Reason{0, reading.Spike, reading.Spike, 0, 0}) {
		t.Errorf("two-sample spike: %v", got)
	}
}

func TestStepChangeIsNotASpike(t *testing.T) {
	r := NoLimits()
	r.SpikeJump = 300
	// A real plume: up to 420 and staying there.
	values := []float64{35, 36, 420, 418, 425, 430, 410}
	out := run(one(r), "pm-1", values, time.Minute)
	for i, x := range out {
		if x.Reason != reading.NoReason || x.Value != values[i] {
			t.Errorf("reading %d: %+v", i, x)
		}
	}
	// A step, then a spike from the new level.
	out = run(one(r), "pm-1", []float64{35, 420, 425, 430, 40, 428, 426}, time.Minute)
	if got := reasons(out); !equal(got, []reading.Reason{0, 0, 0, 0, reading.Spike, 0, 0}) {
		t.Errorf("spike after a step: %v", got)
	}
}

func TestRange(t *testing.T) {
	r := NoLimits()
	r.Low, r.High = 0, 500
	out := run(one(r), "pm-1", []float64{35, 600, -1, 40, 1e6}, time.Minute)
	if got := reasons(out); !equal(got, []reading.Reason{0, reading.Range, reading.Range, 0, reading.Range}) {
		t.Errorf("reasons %v", got)
	}
}

func TestDriftAgainstACoLocatedSensor(t *testing.T) {
	r := NoLimits()
	r.DriftMax, r.DriftWindow = 5, 6*time.Hour
	r.Reference.Device = "pm-ref"
	s := New(func(k Key) (Rules, bool) { return r, k.Device == "pm-1" }, []string{"pm-ref"})
	var out []reading.Reading
	rng := rand.New(rand.NewPCG(1, 2))
	firstFlag := -1
	for i := range 48 * 60 { // two days a minute; pm-1 drifts 0.5 µg/m3 an hour from the start of day 2
		at := t0.Add(time.Duration(i) * time.Minute)
		truth := 30 + 10*math.Sin(float64(i)/200)
		drift := 0.0
		if i >= 24*60 {
			drift = 0.5 * float64(i-24*60) / 60
		}
		s.Add(nil, reading.New(at, "canal-1", "pm-ref", "pm25", truth+rng.NormFloat64()), t0)
		n := len(out)
		out = s.Add(out, reading.New(at.Add(time.Second), "canal-1", "pm-1", "pm25", truth+drift+rng.NormFloat64()), t0)
		if len(out) > n && out[n].Reason == reading.Drift && firstFlag < 0 {
			firstFlag = i
		}
	}
	// A mean error of 5 over the last 6 hours: 0.5/h × (t − 3 h) > 5 once the drift
	// has run 13 hours.
	if firstFlag < 24*60+12*60 || firstFlag > 24*60+14*60 {
		t.Errorf("first drift flag at minute %d, want between %d and %d", firstFlag, 24*60+12*60, 24*60+14*60)
	}
	for _, x := range out[:24*60] {
		if x.Reason != reading.NoReason {
			t.Fatalf("flagged on the first, healthy day: %+v", x)
		}
	}
}

func TestDriftAgainstADailyCheck(t *testing.T) {
	r := NoLimits()
	r.DriftMax = 0.3
	r.Reference = Reference{Device: "ph-check", Check: true, Expected: 7.00}
	s := New(func(k Key) (Rules, bool) { return r, k.Device == "ph-1" }, []string{"ph-check"})
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	add := func(dev string, h int, v float64) reading.Reason {
		out := s.Add(nil, reading.Reading{Time: at(h), Site: "canal-1", Device: dev, Quantity: "ph", Value: v, Unit: "pH"}, t0)
		return out[0].Reason
	}
	if got := add("ph-1", 1, 7.4); got != 0 {
		t.Errorf("before any check: %v", got)
	}
	add("ph-check", 2, 7.1) // error 0.1: fine
	if got := add("ph-1", 3, 7.4); got != 0 {
		t.Errorf("after a passing check: %v", got)
	}
	add("ph-check", 26, 7.5) // error 0.5: the probe drifted
	if got := add("ph-1", 27, 7.9); got != reading.Drift {
		t.Errorf("after a failing check: %v", got)
	}
	add("ph-check", 50, 6.95) // recalibrated
	if got := add("ph-1", 51, 7.2); got != 0 {
		t.Errorf("after the next passing check: %v", got)
	}
}

// A noisy but healthy sensor: a realistic day of PM2.5 with noise, plumes and an
// integer resolution, a minute apart, gets no flag under the default rules.
func TestNoisyHealthySensorNotFlagged(t *testing.T) {
	r := Defaults("pm25")
	rng := rand.New(rand.NewPCG(3, 4))
	var values []float64
	for i := range 24 * 60 {
		v := 35 + 15*math.Sin(float64(i)/180) + 4*rng.NormFloat64()
		if i%240 > 200 && i%240 < 215 { // a plume every 4 hours
			v += 120
		}
		values = append(values, math.Max(0, math.Round(v)))
	}
	for i, x := range run(one(r), "pm-1", values, time.Minute) {
		if x.Reason != reading.NoReason {
			t.Fatalf("minute %d (%v): flagged %v", i, x.Value, x.Reason)
		}
	}
}

// At-least-once: every reading arriving twice (right after itself, or in a batch
// re-sent later) gives the same flags, and each copy carries its original's flag.
func TestRedeliveryGivesTheSameFlags(t *testing.T) {
	r := NoLimits()
	r.SpikeJump, r.FlatFor = 300, 30*time.Minute
	values := []float64{35, 36, 999, 35, 35, 35, 35, 35, 35, 35, 35, 35, 36, 500, 501, 499}
	at := func(i int) reading.Reading {
		return reading.New(t0.Add(time.Duration(i)*5*time.Minute), "canal-1", "pm-1", "pm25", values[i])
	}
	once := run(one(r), "pm-1", values, 5*time.Minute)
	byTime := map[time.Time]reading.Reason{}
	for _, x := range once {
		byTime[x.Time] = x.Reason
	}
	s := one(r)
	var twice []reading.Reading
	for i := range values {
		twice = s.Add(twice, at(i), t0)
		twice = s.Add(twice, at(i), t0)
		if i%4 == 3 { // a batch of four re-sent
			for j := i - 3; j <= i; j++ {
				twice = s.Add(twice, at(j), t0)
			}
		}
	}
	twice = s.Flush(twice)
	seen := map[time.Time]bool{}
	for _, x := range twice {
		if want := byTime[x.Time]; x.Reason != want {
			t.Errorf("copy at %v: reason %v, original %v", x.Time, x.Reason, want)
		}
		seen[x.Time] = true
	}
	if len(seen) != len(values) {
		t.Errorf("%d distinct readings released, want %d", len(seen), len(values))
	}
}

func equal(a, b []reading.Reason) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A held jump waits for its deciding samples by the wall clock of arrival, not by the
// readings' own (old, in a backlog) times; a channel silent for the hold releases it
// as a step.
func TestHeldJumpReleasedBySilence(t *testing.T) {
	r := NoLimits()
	r.SpikeJump = 300
	s := one(r)
	wall := time.Now()
	old := t0 // a backlog: readings days older than the wall clock
	var out []reading.Reading
	out = s.Add(out, reading.New(old, "canal-1", "pm-1", "pm25", 35), wall)
	out = s.Add(out, reading.New(old.Add(time.Minute), "canal-1", "pm-1", "pm25", 900), wall)
	if out = s.FlushBefore(out, wall.Add(-10*time.Minute)); len(out) != 1 {
		t.Fatalf("the jump was released while its channel is not silent: %+v", out)
	}
	out = s.FlushBefore(out, wall.Add(time.Second))
	if len(out) != 2 || out[1].Value != 900 || out[1].Reason != reading.NoReason {
		t.Fatalf("after the silence: %+v; want the jump released as a valid step", out)
	}
}
