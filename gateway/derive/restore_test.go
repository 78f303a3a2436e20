package derive

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/water"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// restoreMonitors is one monitor of each kind: noise with day/night periods and the
// 24-h figures, air with its hours, 8-h windows and day, water with 4-h windows.
func restoreMonitors() Monitors {
	return Monitors{
		Noise: []Noise{{Zone: "1", Config: noise.Config{Site: "canal", Device: "n-1", Zone: noise.Zone1}}},
		Air:   []Air{{Config: air.Config{Site: "canal", Device: "air-1"}}},
		Water: []Water{{Config: water.Config{Site: "lock", Waterbody: water.River, Window: 4 * time.Hour, Lateness: time.Minute}}},
	}
}

// recording is three days of samples ending at end: a noise level every 30 s, PM2.5,
// PM10, NO2 and O3 every 5 min, water parameters every 20 min; values vary so that
// every window differs. Batches are what one append stores.
func recording(rng *rand.Rand, end time.Time) [][]reading.Reading {
	start := end.Add(-72 * time.Hour)
	var batches [][]reading.Reading
	for ts := start; !ts.After(end); ts = ts.Add(30 * time.Second) {
		b := []reading.Reading{reading.New(ts, "canal", "n-1", "la", 40+float64(rng.IntN(400))/10)}
		if ts.Sub(start)%(5*time.Minute) == 0 {
			b = append(b,
				reading.New(ts, "canal", "air-1", "pm25", float64(5+rng.IntN(200))),
				reading.New(ts, "canal", "air-1", "pm10", float64(10+rng.IntN(300))),
				reading.New(ts, "canal", "air-1", "no2", float64(5+rng.IntN(150))),
				reading.New(ts, "canal", "air-1", "o3", float64(10+rng.IntN(250))))
		}
		if ts.Sub(start)%(20*time.Minute) == 0 {
			b = append(b,
				reading.New(ts, "lock", "probe-1", "ph", 6.5+float64(rng.IntN(20))/10),
				reading.New(ts, "lock", "probe-1", "do", 2+float64(rng.IntN(60))/10),
				reading.New(ts, "lock", "probe-1", "nh3n", float64(rng.IntN(200))/100))
		}
		batches = append(batches, b)
	}
	return batches
}

// live runs batches through s as the pipeline's writer does, the wall clock following
// the samples: each append stores the batch and what it derived. It returns the log.
func live(s *Set, wall *time.Time, batches [][]reading.Reading) (log [][]reading.Reading) {
	return liveWalls(s, wall, batches, wallsOf(batches))
}

// wallsOf is the wall clock of live: a second after each batch's first sample.
func wallsOf(batches [][]reading.Reading) []time.Time {
	walls := make([]time.Time, len(batches))
	for i, b := range batches {
		walls[i] = b[0].Time.Add(time.Second)
	}
	return walls
}

// liveWalls is live with the wall clock of each batch given apart, so that a batch
// may be empty.
func liveWalls(s *Set, wall *time.Time, batches [][]reading.Reading, walls []time.Time) (log [][]reading.Reading) {
	for i, b := range batches {
		*wall = walls[i]
		d := s.Add(nil, b...)
		d = s.Tick(d, *wall)
		log = append(log, append(append([]reading.Reading(nil), b...), d...))
	}
	return log
}

func derivedOf(log [][]reading.Reading) []reading.Reading {
	var out []reading.Reading
	for _, a := range log {
		for _, r := range a {
			if derivedNames[r.Quantity] {
				out = append(out, r)
			}
		}
	}
	return out
}

func scanOf(log [][]reading.Reading) func(func(reading.Reading)) error {
	return func(fn func(reading.Reading)) error {
		for _, a := range log {
			for _, r := range a {
				fn(r)
			}
		}
		return nil
	}
}

func newSet(t *testing.T, wall *time.Time) *Set {
	t.Helper()
	s, err := New(restoreMonitors())
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return *wall }
	return s
}

// A restart at any point — in the middle of a minute, an hour, a day or night period,
// an air day, a water window — rebuilds the open windows from the log: the derived
// readings after the restart are byte for byte those of an uninterrupted run, and
// nothing derived before it is emitted again.
func TestRestoreContinuesAsIfUninterrupted(t *testing.T) {
	end := time.Now().Truncate(time.Minute) // the wall clock follows the samples; no fixed date
	rng := rand.New(rand.NewPCG(1, 2))
	batches := recording(rng, end)
	var wall time.Time
	ref := live(newSet(t, &wall), &wall, batches)
	refDerived := derivedOf(ref)
	if len(refDerived) < 1000 {
		t.Fatalf("the uninterrupted run derived only %d readings", len(refDerived))
	}
	// Restart points: random ones and the middle of a night and of a day period.
	points := []int{len(batches) / 2, len(batches) - 7, 1}
	for range 5 {
		points = append(points, 1+rng.IntN(len(batches)-1))
	}
	for _, k := range points {
		s := newSet(t, &wall)
		wall = batches[k-1][0].Time.Add(2 * time.Second)
		// The log as the crash left it: what the buffer keeps, the appends of the last
		// Reach and ten minutes (cmd/envgate keepFor), as the wall clock followed the samples.
		j := k
		for j > 0 && !batches[j-1][0].Time.Before(wall.Add(-s.Reach()-10*time.Minute)) {
			j--
		}
		before := ref[j:k]
		missing, st, err := s.Restore(scanOf(before))
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) != 0 {
			t.Errorf("restart at %d: Restore found %d derived readings missing from a complete log: %s", k, len(missing), windowtest.Format(missing[:min(5, len(missing))]))
		}
		after := live(s, &wall, batches[k:])
		got, want := windowtest.Format(derivedOf(after)), windowtest.Format(derivedOf(ref[k:]))
		if got != want {
			t.Errorf("restart at %d (%s, %d samples restored): derived readings after it differ from the uninterrupted run\n%s", k,
				batches[k][0].Time.Format(time.DateTime), st.Readings, firstDiff(got, want))
		}
	}
}

// A crash that cut the append of the derived readings (the samples that closed a
// window stored, its derived readings not): Restore returns them to be stored.
func TestRestoreReturnsDerivedReadingsTheLogLacks(t *testing.T) {
	end := time.Now().Truncate(time.Minute)
	batches := recording(rand.New(rand.NewPCG(3, 4)), end)
	var wall time.Time
	ref := live(newSet(t, &wall), &wall, batches)
	k := len(batches) - 1
	for ; k > 0 && len(derivedOf(ref[k-1:k])) == 0; k-- {
	}
	cut := append([][]reading.Reading(nil), ref[:k-1]...)
	var lost []reading.Reading
	var samples []reading.Reading
	for _, r := range ref[k-1] {
		if derivedNames[r.Quantity] {
			lost = append(lost, r)
		} else {
			samples = append(samples, r)
		}
	}
	cut = append(cut, samples)
	s := newSet(t, &wall)
	wall = batches[k-1][0].Time.Add(2 * time.Second)
	missing, st, err := s.Restore(scanOf(cut))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := windowtest.Format(missing), windowtest.Format(lost); got != want {
		t.Errorf("Restore returned\n%s\nwant the %d derived readings the crash cut\n%s", got, len(lost), want)
	}
	if st.Missing != len(lost) || st.Logged == 0 {
		t.Errorf("Restored = %+v", st)
	}
}

// The counters metrics export start from zero after Restore: a Prometheus counter
// resets with the process, and the restored samples were counted before it.
func TestRestoreStartsCountersAtZero(t *testing.T) {
	end := time.Now().Truncate(time.Minute)
	batches := recording(rand.New(rand.NewPCG(5, 6)), end)
	var wall time.Time
	ref := live(newSet(t, &wall), &wall, batches[:200])
	s := newSet(t, &wall)
	if _, st, err := s.Restore(scanOf(ref)); err != nil || st.Readings == 0 {
		t.Fatalf("Restore: %+v, %v", st, err)
	}
	n := s.NoiseStates(wall)[0]
	if n.Accepted != 0 || n.Energy != 0 || n.Seconds != 0 {
		t.Errorf("after Restore NoiseStates = %+v, want counters at 0", n)
	}
	live(s, &wall, batches[200:210])
	n = s.NoiseStates(wall)[0]
	// An instantaneous level counts for the meter's sample interval, 1 s by default.
	if n.Accepted != 10 || math.Abs(n.Seconds-10) > 1e-9 {
		t.Errorf("10 samples after Restore: Accepted %d, Seconds %v; want 10 and 10", n.Accepted, n.Seconds)
	}
	if a := s.AirStates(wall)[0]; a.Accepted != 4 {
		t.Errorf("air Accepted %d after Restore and one more sample of 4 pollutants, want 4", a.Accepted)
	}
}

// firstDiff shows where two renderings part.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-200)
	return "got:  …" + got[from:min(len(got), i+300)] + "\nwant: …" + want[from:min(len(want), i+300)]
}

// Windows the wall clock closed before the restart (a silent device, CloseAfter) are
// open again after Restore, which has no wall clock to replay; when the wall clock
// closes them once more, what they derive is in the log already and is not emitted
// again.
func TestRestoreDoesNotReemitWindowsClosedByTheWallClock(t *testing.T) {
	start := time.Now().Truncate(time.Hour).Add(-3 * time.Hour)
	var wall time.Time
	mk := func() *Set {
		s, err := New(Monitors{CloseAfter: time.Minute, Noise: restoreMonitors().Noise})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return wall }
		return s
	}
	var samples []reading.Reading
	for i := range 600 { // ten minutes, then silence
		samples = append(samples, reading.New(start.Add(time.Duration(i)*time.Second), "canal", "n-1", "la", 50+float64(i%7)))
	}
	// The uninterrupted run, and its log: samples arriving live, then ticks every
	// second of wall time up to 40 minutes after the start.
	run := func(s *Set, from, to time.Duration, log *[][]reading.Reading) {
		for d := from; d < to; d += time.Second {
			wall = start.Add(d)
			var a []reading.Reading
			if i := int(d / time.Second); i < len(samples) {
				a = append(a, samples[i])
				a = s.Add(a, samples[i])
			}
			a = s.Tick(a, wall)
			if len(a) > 0 {
				*log = append(*log, a)
			}
		}
	}
	var ref [][]reading.Reading
	run(mk(), 0, 70*time.Minute, &ref)
	// A restart 20 minutes in: the minutes 0..9 were closed by the wall clock at 11 min.
	var before [][]reading.Reading
	s1 := mk()
	run(s1, 0, 20*time.Minute, &before)
	if len(derivedOf(before)) < 10 {
		t.Fatalf("the wall clock closed nothing before the restart: %d derived", len(derivedOf(before)))
	}
	s2 := mk()
	wall = start.Add(20 * time.Minute)
	if _, st, err := s2.Restore(scanOf(before)); err != nil || st.Readings != 600 {
		t.Fatalf("Restore: %+v, %v", st, err)
	}
	after := before
	run(s2, 20*time.Minute, 70*time.Minute, &after)
	if got, want := windowtest.Format(derivedOf(after)), windowtest.Format(derivedOf(ref)); got != want {
		t.Errorf("derived readings with a restart differ from the uninterrupted run\n%s", firstDiff(got, want))
	}
}

// An air monitor's month spans far more than the buffer keeps: its ledger of closed
// days is saved beside the buffer after each sync (SaveState) and loaded before Restore
// (LoadState). Restarted at several points of 65 days of readings — so in the
// middle of a month and across its end — the gateway emits the monthly statistics, and
// everything else, as an uninterrupted run does, each once. Without the saved ledger a
// month that began before the kept log lacks its first days.
func TestRestoreKeepsTheAirMonthAcrossRestarts(t *testing.T) {
	end := time.Now().Truncate(time.Hour)
	rng := rand.New(rand.NewPCG(7, 8))
	var batches [][]reading.Reading
	for ts := end.Add(-65 * 24 * time.Hour); !ts.After(end); ts = ts.Add(20 * time.Minute) { // a whole month on any day
		batches = append(batches, []reading.Reading{
			reading.New(ts, "canal", "air-1", "pm25", float64(5+rng.IntN(150))),
			reading.New(ts, "canal", "air-1", "pm10", float64(10+rng.IntN(250))),
			reading.New(ts, "canal", "air-1", "co", float64(rng.IntN(40))/10),
			reading.New(ts, "canal", "air-1", "o3", float64(10+rng.IntN(250))),
		})
	}
	var wall time.Time
	mk := func() *Set {
		s, err := New(Monitors{Air: []Air{{Config: air.Config{Site: "canal", Device: "air-1", Sample: 20 * time.Minute}}}})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return wall }
		return s
	}
	ref := live(mk(), &wall, batches)
	months := 0
	for _, r := range derivedOf(ref) {
		if r.Quantity == "pm25_1mo" {
			months++
		}
	}
	if months == 0 {
		t.Fatal("the uninterrupted run emitted no monthly PM2.5 mean")
	}
	for _, k := range []int{len(batches) / 3, len(batches) / 2, 2 * len(batches) / 3, len(batches) - 5} {
		dir := t.TempDir()
		s := mk()
		var log [][]reading.Reading
		for _, b := range batches[:k] { // live, saving the state after every append ("sync")
			log = append(log, live(s, &wall, [][]reading.Reading{b})...)
			if err := s.SaveState(dir); err != nil {
				t.Fatal(err)
			}
		}
		wall = batches[k-1][0].Time.Add(time.Second)
		j := k
		for j > 0 && !batches[j-1][0].Time.Before(wall.Add(-s.Reach()-10*time.Minute)) {
			j--
		}
		restarted := mk()
		if err := restarted.LoadState(dir); err != nil {
			t.Fatal(err)
		}
		if _, _, err := restarted.Restore(scanOf(log[j:])); err != nil {
			t.Fatal(err)
		}
		after := live(restarted, &wall, batches[k:])
		if got, want := windowtest.Format(derivedOf(after)), windowtest.Format(derivedOf(ref[k:])); got != want {
			t.Errorf("restart at %s: derived readings after it differ from the uninterrupted run\n%s",
				batches[k][0].Time.Format(time.DateTime), firstDiff(got, want))
		}
	}
}

// A damaged ledger file is reported with its name and set aside as .bad, whole, for a
// person to look at; the monitor starts without it and saves a new one. A flipped bit
// is damage too (the checksum), not another figure. A file that cannot be read at all is
// left alone and not overwritten by this process.
func TestLoadStateSetsDamagedLedgerAside(t *testing.T) {
	end := time.Now().Truncate(time.Hour)
	hour := func(s *Set, wall *time.Time) {
		var b [][]reading.Reading
		for ts := end.Add(-3 * time.Hour); ts.Before(end.Add(-time.Hour)); ts = ts.Add(5 * time.Minute) {
			b = append(b, []reading.Reading{reading.New(ts, "canal", "air-1", "pm25", 30)})
		}
		live(s, wall, b)
	}
	// A good file first, to damage.
	dir := t.TempDir()
	var wall time.Time
	s := newSet(t, &wall)
	hour(s, &wall)
	if err := s.SaveState(dir); err != nil {
		t.Fatal(err)
	}
	name := s.air[0].ledger.name
	path := filepath.Join(dir, name)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fresh := newSet(t, &wall); fresh.LoadState(dir) != nil {
		t.Fatal("LoadState refused the file SaveState wrote")
	}
	for _, c := range []struct {
		what string
		data []byte
	}{
		{"not a ledger", []byte("not a ledger")},
		{"one bit flipped", func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 0x10; return b }()},
	} {
		writeFileT(t, path, string(c.data))
		s := newSet(t, &wall)
		err := s.LoadState(dir)
		if err == nil || !strings.Contains(err.Error(), name) || !errors.Is(err, air.ErrCorruptLedger) {
			t.Errorf("%s: LoadState = %v, want an error naming %s and wrapping air.ErrCorruptLedger", c.what, err, name)
		}
		if aside, _ := os.ReadFile(path + ".bad"); !bytes.Equal(aside, c.data) {
			t.Errorf("%s: %s.bad holds %q, want the damaged file", c.what, name, aside)
		}
		hour(s, &wall)
		if err := s.SaveState(dir); err != nil {
			t.Fatal(err)
		}
		if again := newSet(t, &wall); again.LoadState(dir) != nil {
			t.Errorf("%s: the new ledger does not load", c.what)
		}
	}
	// Unreadable (here a directory where the file should be): left alone.
	os.Remove(path)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	s = newSet(t, &wall)
	if err := s.LoadState(dir); err == nil {
		t.Error("LoadState read a directory as a ledger")
	}
	hour(s, &wall)
	if err := s.SaveState(dir); err != nil {
		t.Errorf("SaveState with an unread ledger: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Errorf("the unreadable ledger's place was overwritten: %v", err)
	}
}

func writeFileT(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
