package window

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// every returns a Config of windows of length d aligned to t0.
func every(d, lateness time.Duration, maxEmpty int) Config[int] {
	return Config[int]{
		Start:    func(t time.Time) time.Time { return t0.Add(t.Sub(t0) / d * d) },
		End:      func(start time.Time) time.Time { return start.Add(d) },
		Lateness: lateness,
		MaxEmpty: maxEmpty,
	}
}

func TestOnce(t *testing.T) {
	s := New(every(time.Minute, 5*time.Second, 0))
	s.Begin(t0)
	w := s.Find(t0.Add(30 * time.Second))
	r := reading.Reading{Time: t0.Add(30 * time.Second), Site: "s", Device: "d", Quantity: "la", Value: 60}
	if !w.Once(KeyOf(r)) {
		t.Fatal("first reading refused")
	}
	again := r
	again.Value = 70 // the same device, quantity and time: the same reading
	if w.Once(KeyOf(again)) {
		t.Error("redelivered reading counted again")
	}
	for _, other := range []func(*reading.Reading){
		func(r *reading.Reading) { r.Device = "e" },
		func(r *reading.Reading) { r.Site = "t" },
		func(r *reading.Reading) { r.Quantity = "laeq" },
		func(r *reading.Reading) { r.Time = r.Time.Add(time.Nanosecond) },
	} {
		o := r
		other(&o)
		if !w.Once(KeyOf(o)) {
			t.Errorf("%+v refused as a duplicate of %+v", o, r)
		}
	}
	// Equal instants in other zones are the same time.
	z := r
	z.Time = r.Time.In(time.FixedZone("CST", 8*3600))
	if w.Once(KeyOf(z)) {
		t.Error("the same instant in another zone counted again")
	}
}

// closes records the windows a close callback receives.
type closes []string

func (c *closes) add(k int, w *Window[int]) {
	*c = append(*c, fmt.Sprintf("%d:%s-%s", k, w.Start.Format("15:04"), w.End.Format("15:04")))
}

// Windows close in order of their ends, at equal ends in the order of the series; a
// window takes readings until its end + lateness; the seen-set goes with the window.
func TestAdvance(t *testing.T) {
	minute, five := New(every(time.Minute, 5*time.Second, 0)), New(every(5*time.Minute, 5*time.Second, 0))
	minute.Begin(t0.Add(3 * time.Minute))
	five.Begin(t0.Add(3 * time.Minute))
	var got closes
	Advance(t0.Add(5*time.Minute+4*time.Second), got.add, minute, five)
	if want := "0:00:03-00:04"; strings.Join(got, " ") != want {
		t.Errorf("closed %v, want %s", got, want)
	}
	if w := minute.Find(t0.Add(4*time.Minute + 59*time.Second)); w == nil || !w.Start.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("the minute 00:04 is not open 4 s after its end: %v", w)
	}
	got = nil
	Advance(t0.Add(7*time.Minute+5*time.Second), got.add, minute, five)
	if want := "0:00:04-00:05 1:00:00-00:05 0:00:05-00:06 0:00:06-00:07"; strings.Join(got, " ") != want {
		t.Errorf("closed %v, want %s", got, want)
	}
	if w := minute.Find(t0.Add(6 * time.Minute)); w != nil {
		t.Errorf("a closed minute found: %v", w)
	}
	if o := minute.Oldest(); !o.Equal(t0.Add(7 * time.Minute)) {
		t.Errorf("Oldest = %v, want 00:07", o)
	}
	if n := len(minute.open) + len(five.open); n != 2 {
		t.Errorf("%d windows open, want 2 (the minute and the 5 min containing 00:07:05)", n)
	}
}

// A jump of the clock closes the open windows and at most MaxEmpty empty ones, the
// newest; Skipped counts the rest.
func TestAdvanceBoundsEmptyWindows(t *testing.T) {
	s := New(every(time.Hour, time.Minute, 3))
	s.Begin(t0.Add(30 * time.Minute))
	var got closes
	s.Advance(t0.Add(10*time.Hour+30*time.Minute), func(w *Window[int]) { got.add(0, w) })
	// Due: 00-01 (open), then 01-02 … 09-10 empty; the newest 3 of those close.
	if want := "0:00:00-01:00 0:07:00-08:00 0:08:00-09:00 0:09:00-10:00"; strings.Join(got, " ") != want {
		t.Errorf("closed %v, want %s", got, want)
	}
	if s.Skipped() != 6 {
		t.Errorf("Skipped = %d, want 6", s.Skipped())
	}
	if w := s.Find(t0.Add(10*time.Hour + 59*time.Minute)); w == nil || !w.Start.Equal(t0.Add(10*time.Hour)) {
		t.Errorf("10:00 not open: %v", w)
	}
	// A gap of exactly MaxEmpty skips nothing.
	got = nil
	s.Advance(t0.Add(14*time.Hour+time.Minute), func(w *Window[int]) { got.add(0, w) })
	if want := "0:10:00-11:00 0:11:00-12:00 0:12:00-13:00 0:13:00-14:00"; strings.Join(got, " ") != want || s.Skipped() != 6 {
		t.Errorf("closed %v, skipped %d; want %s, 6", got, s.Skipped(), want)
	}
}

// Windows of unequal lengths (a noise day 06–22 and night 22–06) walk and skip by
// their own bounds; Make gives each its data.
func TestUnequalWindows(t *testing.T) {
	start := func(t time.Time) time.Time {
		d := t.Truncate(24 * time.Hour)
		switch h := t.Sub(d); {
		case h < 6*time.Hour:
			return d.Add(-2 * time.Hour)
		case h < 22*time.Hour:
			return d.Add(6 * time.Hour)
		}
		return d.Add(22 * time.Hour)
	}
	end := func(s time.Time) time.Time {
		if s.Sub(s.Truncate(24*time.Hour)) == 6*time.Hour {
			return s.Add(16 * time.Hour)
		}
		return s.Add(8 * time.Hour)
	}
	s := New(Config[int]{Start: start, End: end, Lateness: time.Second, MaxEmpty: 2,
		Make: func(start, end time.Time) int { return int(end.Sub(start).Hours()) }})
	s.Begin(t0.Add(12 * time.Hour))
	var got []string
	s.Advance(t0.Add(5*24*time.Hour+12*time.Hour), func(w *Window[int]) {
		got = append(got, fmt.Sprintf("%s+%d", w.Start.Format("02T15"), w.Data))
	})
	// The clock is 06T12. Open: 01T06 (16 h); empty and due (ended by 06T12): 01T22 …
	// 05T22, of which the newest two close; 06T06 is open.
	if want := "01T06+16 05T06+16 05T22+8"; strings.Join(got, " ") != want {
		t.Errorf("closed %v, want %s", got, want)
	}
	if w := s.Find(t0.Add(5*24*time.Hour + 12*time.Hour)); w == nil || w.Data != 16 {
		t.Errorf("06T06 not open with its data: %+v", w)
	}
}
