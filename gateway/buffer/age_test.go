package buffer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// readingsAt returns n readings from value from on, stamped at t plus i seconds.
func readingsAt(t time.Time, from, n int) []reading.Reading {
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = reading.New(t.Add(time.Duration(i)*time.Second), "canal-east", "noise-1", "la", float64(from+i))
	}
	return rs
}

// appendSegments appends n readings from value from on, stamped from t on, 50 to a sync:
// several segments.
func appendSegments(t *testing.T, q *Queue, at time.Time, from, n int) {
	t.Helper()
	for i := 0; i < n; i += 50 {
		appendSync(t, q, readingsAt(at.Add(time.Duration(i)*time.Second), from+i, min(50, n-i)))
	}
}

// setSegmentMtimes sets every segment file's mtime to mtime: what a box that wrote them
// with a wrong clock, or whose clock was stepped, leaves behind.
func setSegmentMtimes(t *testing.T, dir string, mtime time.Time) int {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	for _, s := range segs {
		if err := os.Chtimes(s, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return len(segs)
}

// MaxAge judges a segment by its newest reading, not its file's mtime: segments of
// readings two days old whose mtimes say "just written" are dropped (and counted) after
// a restart; segments of fresh readings whose mtimes say 1970 (written before NTP set
// the clock) are kept.
func TestMaxAgeFromRecordTimesNotMtimes(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name        string
		stamp       time.Time // the readings' time
		mtime       time.Time // the files' mtime, wrong
		wantDropped bool
	}{
		{"old readings, fresh mtimes", now.Add(-48 * time.Hour), now, true},
		{"fresh readings, 1970 mtimes", now.Add(-time.Minute), time.Unix(0, 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := testOptions(t)
			opt.MaxAge = 24 * time.Hour
			opt.now = func() time.Time { return tc.stamp.Add(time.Hour) } // written when fresh
			q := mustOpen(t, opt)
			q.Reader("influx") // never delivers
			appendSegments(t, q, tc.stamp, 0, 400)
			q.Close()
			opt.now = time.Now
			if n := setSegmentMtimes(t, opt.Dir, tc.mtime); n < 3 {
				t.Fatalf("%d segments, want several", n)
			}
			q = mustOpen(t, opt)
			defer q.Close()
			r, _ := q.Reader("influx")
			appendSegments(t, q, now, 400, 200) // rotates: the bounds are applied
			got := drain(t, r, 1000)
			s := q.Stats()
			if tc.wantDropped && (s.Dropped < 300 || got[0] < 300 || uint64(len(got))+s.Dropped != 600) {
				t.Errorf("dropped %d, delivered %d from %v; want the old readings dropped by age and counted", s.Dropped, len(got), got[0])
			}
			if !tc.wantDropped && (s.Dropped != 0 || len(got) != 600) {
				t.Errorf("dropped %d, delivered %d; want all 600 kept", s.Dropped, len(got))
			}
		})
	}
}

// Keep (retention of delivered segments for the derivations) uses the same age: fresh
// readings in files with 1970 mtimes stay for Recent after a restart.
func TestKeepFromRecordTimesNotMtimes(t *testing.T) {
	opt := testOptions(t)
	opt.Keep = time.Hour
	q := mustOpen(t, opt)
	r, _ := q.Reader("influx")
	appendSegments(t, q, time.Now().Add(-time.Minute), 0, 400)
	if got := drain(t, r, 64); len(got) != 400 {
		t.Fatalf("drained %d, want 400", len(got))
	}
	q.Close()
	if n := setSegmentMtimes(t, opt.Dir, time.Unix(0, 0)); n < 3 {
		t.Fatalf("%d segments, want several", n)
	}
	q = mustOpen(t, opt)
	defer q.Close()
	r, _ = q.Reader("influx")
	appendSegments(t, q, time.Now(), 400, 200)
	drain(t, r, 64)
	var got []float64
	if err := q.Recent(time.Now().Add(-time.Hour), func(r reading.Reading) { got = append(got, r.Value) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 600 || got[0] != 0 {
		t.Errorf("Recent(an hour ago) gave %d values from %v; want all 600 kept", len(got), got[:min(1, len(got))])
	}
}

// While the wall clock is before the build time (a box without a real-time clock, not
// yet set), no segment goes for its age: every age would be wrong.
func TestNoAgeBoundWhileClockImplausible(t *testing.T) {
	opt := testOptions(t)
	opt.MaxAge = time.Hour
	opt.now = func() time.Time { return time.Unix(3600, 0) } // 1970
	q := mustOpen(t, opt)
	defer q.Close()
	r, _ := q.Reader("influx")
	appendSegments(t, q, time.Now().Add(-48*time.Hour), 0, 200)
	appendSegments(t, q, time.Now(), 200, 200)
	if got := drain(t, r, 1000); len(got) != 400 || q.Stats().Dropped != 0 {
		t.Errorf("delivered %d, dropped %d; want all 400 kept while the clock is in 1970", len(got), q.Stats().Dropped)
	}
}
