package gateway

import (
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// fakeClocks is a wall clock that a test sets (NTP stepping it) and a monotonic clock
// that only moves forward.
type fakeClocks struct {
	wall time.Time
	mono time.Duration
}

func (c *fakeClocks) advance(d time.Duration) { c.wall = c.wall.Add(d); c.mono += d }

func newFakeGate(c *fakeClocks, synced *bool) (*timeGate, *int) {
	dropped := 0
	g := newTimeGate(func() (bool, bool) { return *synced, true }, func(reading.Reading) { dropped++ })
	g.now = func() time.Time { return c.wall }
	g.mono = func() time.Duration { return c.mono }
	return g, &dropped
}

// A box without a real-time clock boots in 1970: readings stamped then are held, not
// passed on; once NTP sets the clock and the kernel reports it synchronised they are
// released, re-stamped by the step the clock made, in order.
func TestTimeGateRestampsAfterSync(t *testing.T) {
	boot := time.Unix(60, 0).UTC() // 1970, a minute after the epoch
	c := &fakeClocks{wall: boot}
	synced := false
	g, _ := newFakeGate(c, &synced)

	var sent []reading.Reading
	for i := range 3 {
		r := reading.New(c.wall, "canal-east", "noise-1", "la", float64(i))
		if got := g.pass([]reading.Reading{r}, false); len(got) != 0 {
			t.Fatalf("reading stamped %v passed: %v", r.Time, got)
		}
		sent = append(sent, r)
		c.advance(10 * time.Second)
	}
	// A payload time after the build time passes at once, clock or no clock.
	good := reading.New(clock.BuildTime().Add(time.Hour), "canal-east", "mqtt-1", "la", 7)
	if got := g.pass([]reading.Reading{good}, false); len(got) != 1 {
		t.Errorf("a reading stamped after the build time was held: %v", got)
	}
	if g.heldN.Load() != 3 {
		t.Fatalf("held %d, want 3", g.heldN.Load())
	}
	if rs, own := g.release(); rs != nil || own != nil {
		t.Fatalf("released while the clock is in 1970: %v %v", rs, own)
	}

	// NTP steps the clock to the real time; the kernel still says unsynchronised.
	c.advance(5 * time.Second)
	real := clock.BuildTime().Add(400 * 24 * time.Hour).Truncate(time.Second)
	step := real.Sub(c.wall)
	c.wall = real
	if rs, _ := g.release(); rs != nil {
		t.Fatalf("released while the kernel reports the clock unsynchronised: %v", rs)
	}
	synced = true
	rs, own := g.release()
	if len(rs) != 3 || len(own) != 0 {
		t.Fatalf("released %d untrusted, %d trusted; want 3, 0", len(rs), len(own))
	}
	for i, r := range rs {
		// Measured 35 s, 25 s and 15 s before now on the monotonic clock.
		want := sent[i].Time.Add(step)
		if wantAgo := time.Duration(35-10*i) * time.Second; !r.Time.Equal(real.Add(-wantAgo)) || !r.Time.Equal(want) {
			t.Errorf("reading %d re-stamped %v, want %v (%v before the clock was set)", i, r.Time, want, wantAgo)
		}
		if r.Quality != reading.Good || r.Value != float64(i) {
			t.Errorf("reading %d = %+v, want it unchanged but for its time", i, r)
		}
	}
	if g.heldN.Load() != 0 || g.restamped.Load() != 3 {
		t.Errorf("after release held %d, restamped %d; want 0, 3", g.heldN.Load(), g.restamped.Load())
	}
}

// A clock set but never reported synchronised releases the held readings after the
// grace period, marked Suspect; the hold is bounded, dropping (and counting) the oldest.
func TestTimeGateUnsyncedGraceAndBound(t *testing.T) {
	c := &fakeClocks{wall: time.Unix(0, 0).UTC()}
	synced := false
	g, dropped := newFakeGate(c, &synced)
	g.maxHeld = 2
	for i := range 3 {
		g.pass([]reading.Reading{reading.New(c.wall, "canal-east", "noise-1", "la", float64(i))}, i == 2)
		c.advance(time.Second)
	}
	if *dropped != 1 || g.heldN.Load() != 2 {
		t.Fatalf("dropped %d, held %d; want 1, 2", *dropped, g.heldN.Load())
	}
	c.wall = clock.BuildTime().Add(time.Hour)
	if rs, own := g.release(); rs != nil || own != nil {
		t.Fatal("released at once without synchronisation")
	}
	c.advance(unsyncedGrace + time.Second)
	rs, own := g.release()
	if len(rs) != 1 || len(own) != 1 || rs[0].Value != 1 || own[0].Value != 2 {
		t.Fatalf("released %v and own %v; want value 1 untrusted, 2 trusted", rs, own)
	}
	if rs[0].Quality != reading.Suspect || !clock.Plausible(rs[0].Time) {
		t.Errorf("released %+v: want Suspect, re-stamped after the build time", rs[0])
	}
}

// A reading stamped by the 1970 clock that reaches the writer just after NTP stepped the
// clock (it waited in the ingest channel, or its poll was in flight) moves by the step,
// as the held ones do, instead of being refused as before_build. (Found in review.)
func TestInFlightReadingAcrossStepIsRestamped(t *testing.T) {
	c := &fakeClocks{wall: time.Unix(60, 0).UTC()}
	synced := false
	g, _ := newFakeGate(c, &synced)
	g.pass([]reading.Reading{reading.New(c.wall, "canal-east", "noise-1", "la", 1)}, false)
	inFlight := reading.New(c.wall.Add(time.Second), "canal-east", "noise-1", "la", 2) // stamped in 1970
	c.advance(2 * time.Second)
	stepped := clock.BuildTime().Add(400 * 24 * time.Hour)
	c.wall = stepped // NTP steps before the writer takes it
	synced = true
	got := g.pass([]reading.Reading{inFlight}, false)
	// Stamped a second after the held reading, on a clock that then ran 2 s and stepped
	// to stepped: it belongs one second before the step.
	if want := stepped.Add(-time.Second); len(got) != 1 || !got[0].Time.Equal(want) {
		t.Fatalf("pass after the step = %v, want the reading at %v", got, want)
	}
	if why := (&Pipeline{}).check(got[0], false); why != "" {
		t.Errorf("the re-stamped reading is refused: %s", why)
	}
	// Long after the step a time before the build is a payload's own: left for check.
	c.advance(inFlightWindow + time.Second)
	late := reading.New(time.Unix(3600, 0), "canal-east", "noise-1", "la", 3)
	if got := g.pass([]reading.Reading{late}, false); !got[0].Time.Equal(late.Time) {
		t.Errorf("a 1970 payload time long after the step was moved to %v", got[0].Time)
	}
}
