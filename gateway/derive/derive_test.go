package derive

import (
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/noise"
	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/water"
)

var t0 = time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC) // 10:00 in Shanghai: day

func noiseMonitor() Noise {
	return Noise{Zone: "1", QuietDistrict: true, Weather: "ws-1",
		Config: noise.Config{Site: "canal", Device: "n-1", Zone: noise.Zone1, RainMax: 0.5}}
}

func TestSetRoutesAndDerives(t *testing.T) {
	s, err := New(Monitors{Noise: []Noise{noiseMonitor()}, CloseAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var out []reading.Reading
	for i := range 60 {
		s.now = func() time.Time { return t0.Add(time.Duration(i) * time.Second) } // arrival = sample time
		ts := t0.Add(time.Duration(i) * time.Second)
		out = s.Add(out,
			reading.New(ts, "canal", "n-1", "la", 60),
			reading.New(ts, "canal", "n-2", "la", 90),          // another device: ignored
			reading.New(ts, "other", "n-1", "la", 90),          // same name at another site: ignored
			reading.New(ts, "canal", "ws-1", "temperature", 9), // weather device, not rain/wind
		)
	}
	out = s.Add(out, reading.New(t0.Add(30*time.Second), "canal", "ws-1", "rain_rate", 2)) // rain: suspect; not the monitor's own arrival
	if len(out) != 0 {
		t.Fatalf("derived before the minute closed: %v", out)
	}
	// The last sample arrived (wall clock) at t0+59s: 30 s later the device counts as
	// live and Tick leaves its windows to its own samples; a minute later it does not.
	if got := s.Tick(nil, t0.Add(89*time.Second)); len(got) != 0 {
		t.Fatalf("Tick closed windows of a device that is still sending: %v", got)
	}
	out = s.Tick(out, t0.Add(119*time.Second))
	var got *reading.Reading
	for i, r := range out {
		if r.Quantity == noise.QuantityLAeqMinute {
			got = &out[i]
		}
	}
	if got == nil || got.Value != 60 || got.Site != "canal" || got.Device != "n-1" || got.Quality != reading.Suspect || !got.Time.Equal(t0) {
		t.Fatalf("laeq_1m = %+v, want 60 dB(A) at %v, suspect (rain)", got, t0)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("derived reading does not validate (not in the catalog?): %v", err)
	}
	st := s.NoiseStates(t0.Add(90 * time.Second))
	if len(st) != 1 || st[0].Zone != "1" || !st[0].QuietDistrict || st[0].Limit != 55 || st[0].Accepted != 60 || st[0].Seconds != 60 {
		t.Errorf("NoiseStates = %+v", st)
	}
}

func TestNewNamesTheBadMonitor(t *testing.T) {
	m := noiseMonitor()
	m.Config.Zone = "9"
	_, err := New(Monitors{Noise: []Noise{m}})
	if err == nil || err.Error()[:len("noise monitor canal/n-1: ")] != "noise monitor canal/n-1: " {
		t.Fatalf("New with zone 9 = %v", err)
	}
	var empty *Set
	if !empty.Empty() || len(empty.Add(nil, reading.New(t0, "canal", "n-1", "la", 60))) != 0 || empty.NoiseStates(t0) != nil {
		t.Error("a nil Set must derive nothing")
	}
}

// A reading stamped years away from the wall clock is refused (counted as rejected)
// instead of making the aggregator walk every window in between; replay takes it.
func TestLiveRefusesReadingsFarFromTheClock(t *testing.T) {
	s, err := New(Monitors{Noise: []Noise{noiseMonitor()}, CloseAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return t0 }
	out := s.Add(nil,
		reading.New(t0.AddDate(4, 0, 0), "canal", "n-1", "la", 60),
		reading.New(t0.AddDate(-1, 0, 0), "canal", "n-1", "la", 60),
		reading.New(t0, "canal", "n-1", "la", 60))
	st := s.NoiseStates(t0)
	if len(out) != 0 || st[0].Rejected != 2 || st[0].Accepted != 1 {
		t.Errorf("derived %d, state %+v; want 2 rejected, 1 accepted", len(out), st[0])
	}
	s.ForReplay()
	s.Add(nil, reading.New(t0.Add(time.Hour), "canal", "n-1", "la", 60))
	if st := s.NoiseStates(t0); st[0].Accepted != 2 {
		t.Errorf("replay refused a reading an hour ahead of the wall clock: %+v", st[0])
	}
}

// Air and water monitors take their readings, derive through the same Add/Flush path
// as noise, and their derived readings are in the catalog.
func TestAirAndWaterMonitors(t *testing.T) {
	s, err := New(Monitors{
		Air:   []Air{{Config: air.Config{Site: "canal", Device: "air-1"}}},
		Water: []Water{{Config: water.Config{Site: "lock", Waterbody: water.River}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.ForReplay()
	var out []reading.Reading
	// One reading a minute: a full hour of PM2.5 at 80 ug/m3, IAQI 119 by HJ 633-2026
	// (60 → 100, 115 → 150, rounded up); the reading at 61 min closes the hour.
	for i := range 62 {
		ts := t0.Add(time.Duration(i) * time.Minute)
		out = s.Add(out, reading.New(ts, "canal", "air-1", "pm25", 80), reading.New(ts, "canal", "air-2", "pm25", 500))
	}
	for _, q := range []struct {
		name string
		v    float64
	}{{"ph", 7.5}, {"do", 4.0}, {"codmn", 3}, {"nh3n", 0.4}, {"tp", 0.1}} { // DO 4.0 is class IV
		out = s.Add(out, reading.New(t0, "lock", "probe-1", q.name, q.v))
	}
	as := s.AirStates(t0.Add(2 * time.Hour))
	out = s.Flush(out, t0.Add(time.Hour))
	got := map[string]float64{}
	for _, r := range out {
		if err := r.Validate(); err != nil {
			t.Errorf("derived %+v: %v", r, err)
		}
		got[r.Device+"/"+r.Quantity] = r.Value
	}
	if got["air-1/pm25_1h"] != 80 || got["air-1/aqi_1h"] != 119 {
		t.Errorf("air: pm25_1h %v, aqi_1h %v; want 80 and 119 (the other device's 500 ignored)", got["air-1/pm25_1h"], got["air-1/aqi_1h"])
	}
	if v, ok := got["section/class"]; !ok || v != 4 {
		t.Errorf("water: class %v (found %v), want 4 (DO 4.0 mg/L is class IV); derived: %v", v, ok, got)
	}
	ws := s.WaterStates(t0)
	if len(as) != 1 || as[0].AQI != 119 || as[0].Edition != "cn-2026" || len(as[0].Primary) != 1 || as[0].Primary[0] != "PM2.5" {
		t.Errorf("AirStates = %+v", as)
	}
	if len(ws) != 1 || ws[0].Class != 4 || ws[0].Target != 3 || ws[0].Missed != 1 || ws[0].Params["do"] != 4 {
		t.Errorf("WaterStates = %+v", ws)
	}
}

// A box that boots in 1970 and ticks before NTP steps the clock: the monitor closes its
// 1970 windows and starts afresh at the first real sample instead of walking 56 years
// of windows (millions of readings in the writer).
func TestJumpOfTheClockRestartsTheMonitor(t *testing.T) {
	s, err := New(Monitors{Noise: []Noise{noiseMonitor()}, CloseAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	boot := time.Unix(60, 0)
	s.now = func() time.Time { return boot }
	s.all[0].lastArrival = boot                 // as if New ran at boot
	out := s.Tick(nil, boot.Add(2*time.Minute)) // silent since New: the wall clock starts the windows in 1970
	s.now = func() time.Time { return t0 }      // NTP
	for i := range 3 {
		out = s.Add(out, reading.New(t0.Add(time.Duration(i)*time.Second), "canal", "n-1", "la", 60))
	}
	if len(out) > 100 {
		t.Fatalf("the jump produced %d readings", len(out))
	}
	if m := s.noise[0]; m.resets != 1 || !m.clock.Equal(t0.Add(2*time.Second)) {
		t.Errorf("resets %d, clock %v; want 1 reset and the clock at the last sample", m.resets, m.clock)
	}
	if st := s.NoiseStates(t0); st[0].Accepted != 3 {
		t.Errorf("after the reset the fresh monitor accepted %d samples, want 3", st[0].Accepted)
	}
}

// A backlog arriving right after the start (an MQTT session catching up) is aggregated
// in full: the first Tick does not close its windows.
func TestStartupBacklogIsNotLate(t *testing.T) {
	start := t0.Add(time.Hour)
	s, err := New(Monitors{Noise: []Noise{noiseMonitor()}, CloseAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return start }
	s.all[0].lastArrival = start // as if New ran at start, not at the real now (issue 10)
	s.Tick(nil, start.Add(time.Second))
	for i := range 600 { // the last 10 minutes before the start
		s.Add(nil, reading.New(start.Add(time.Duration(i-600)*time.Second), "canal", "n-1", "la", 60))
	}
	if st := s.NoiseStates(start); st[0].Accepted != 600 || st[0].Late != 0 {
		t.Errorf("backlog: accepted %d, late %d; want 600, 0", st[0].Accepted, st[0].Late)
	}
}

// A temperature probe that keeps reporting at a water site does not keep a section
// whose analysers died alive: the wall clock closes its windows.
func TestWaterSectionClosesWhenAnalysersStop(t *testing.T) {
	s, err := New(Monitors{Water: []Water{{Config: water.Config{Site: "lock", Waterbody: water.River, Window: time.Hour, Lateness: time.Minute}}}})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	s.now = func() time.Time { return now }
	s.Add(nil, reading.New(t0, "lock", "station", "do", 6.5))
	var out []reading.Reading
	for i := range 12 * 60 { // 12 h of a temperature probe, one reading a minute
		now = t0.Add(time.Duration(i) * time.Minute)
		s.Add(nil, reading.New(now, "lock", "probe", "water_temperature", 12))
		out = s.Tick(out, now)
	}
	var missing int
	for _, r := range out {
		if r.Quantity == "params_missing" {
			missing++
		}
	}
	if missing < 10 {
		t.Errorf("%d windows closed in 12 h with only a temperature probe reporting; want about 11", missing)
	}
}

// A sample offered twice (an MQTT redelivery) counts once and shows as a duplicate in
// each kind's states, which /metrics exports as samples_total{result="duplicate"}.
func TestStatesCountDuplicates(t *testing.T) {
	s, err := New(Monitors{
		Noise: []Noise{noiseMonitor()},
		Air:   []Air{{Config: air.Config{Site: "canal", Device: "air-1"}}},
		Water: []Water{{Config: water.Config{Site: "lock", Waterbody: water.River}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return t0 }
	rs := []reading.Reading{
		reading.New(t0, "canal", "n-1", "la", 60),
		reading.New(t0, "canal", "air-1", "pm25", 35),
		reading.New(t0, "lock", "probe-1", "ph", 7.5),
	}
	s.Add(nil, rs...)
	s.Add(nil, rs...)
	n, a, w := s.NoiseStates(t0)[0], s.AirStates(t0)[0], s.WaterStates(t0)[0]
	if n.Accepted != 1 || n.Duplicate != 1 || a.Accepted != 1 || a.Duplicate != 1 || w.Accepted != 1 || w.Duplicate != 1 {
		t.Errorf("accepted/duplicate: noise %d/%d, air %d/%d, water %d/%d; want 1/1 each",
			n.Accepted, n.Duplicate, a.Accepted, a.Duplicate, w.Accepted, w.Duplicate)
	}
}
