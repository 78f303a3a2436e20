package status

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/metrics"
	"github.com/envgate/envgate/gateway/reading"
)

// testLayout is a box with a simulated device, a Modbus bus with two meters, an MQTT
// source naming one device, and the gateway itself.
var testLayout = Layout{
	{Name: "simulated devices", Kind: "sim", Devices: []Device{{Name: "noise-1"}}},
	{Name: "rs485-a", Kind: "modbus", Devices: []Device{{Name: "meter-1"}, {Name: "meter-2"}}},
	{Name: "city-mqtt", Kind: "mqtt", Devices: []Device{{Name: "aq-7"}}},
	{Name: "this gateway", Kind: "gateway", Devices: []Device{{Name: reading.HealthDevice}}},
}

func find(t *testing.T, st Status, name string) (Group, Device) {
	t.Helper()
	for _, g := range st.Groups {
		for _, d := range g.Devices {
			if d.Name == name {
				return g, d
			}
		}
	}
	t.Fatalf("device %s not in the status: %+v", name, st.Groups)
	return Group{}, Device{}
}

// TestStatusDevices checks that every configured device appears in its group, with
// up, last error and the age of its readings; a device never polled has up null; a
// device no config names goes in "other"; the gateway is up while healthy.
func TestStatusDevices(t *testing.T) {
	m := metrics.New()
	now := time.Now()
	m.ObserveReading(reading.New(now.Add(-3*time.Second), "canal", "noise-1", "la", 52.5))
	m.ObservePoll("noise-1", time.Millisecond, nil)
	m.ObservePoll("meter-2", time.Millisecond, errors.New("read holding registers 0-1 on unit 7: timeout"))
	m.ObserveReading(reading.New(now.Add(-time.Second), "elsewhere", "stray-9", "pm25", 12))
	m.AddMQTT("city-mqtt", func() metrics.MQTTStats { return metrics.MQTTStats{Connected: true} })
	var unhealthy error
	s := New(Config{Gateway: "box-1", Site: "canal", Build: "1.0", Layout: testLayout, Metrics: m,
		Healthy: func() error { return unhealthy }, Now: func() time.Time { return now }})
	st := s.Status()

	if st.Version != Version || st.Gateway != "box-1" || st.Health != "ok" || !st.Now.Equal(now) {
		t.Errorf("Status header = %d %q %q %v, want %d box-1 ok %v", st.Version, st.Gateway, st.Health, st.Now, Version, now)
	}
	var names []string
	for _, g := range st.Groups {
		names = append(names, g.Name)
	}
	if got := strings.Join(names, ","); got != "simulated devices,rs485-a,city-mqtt,this gateway,other" {
		t.Errorf("groups = %s", got)
	}
	_, n := find(t, st, "noise-1")
	if n.Up == nil || !*n.Up || n.Age == nil || math.Abs(*n.Age-3) > 0.01 || len(n.Readings) != 1 ||
		n.Readings[0].Value != 52.5 || n.Readings[0].Unit != "dB(A)" || n.LastError != "" {
		t.Errorf("noise-1 = %+v, want up, age 3 s, la 52.5 dB(A), no error", n)
	}
	_, m1 := find(t, st, "meter-1")
	if m1.Up != nil || m1.Age != nil || len(m1.Readings) != 0 || m1.LastPoll != nil {
		t.Errorf("meter-1 (never polled) = %+v, want up null, no age, no readings", m1)
	}
	_, m2 := find(t, st, "meter-2")
	if m2.Up == nil || *m2.Up || !strings.Contains(m2.LastError, "timeout") || m2.LastErrorAt == nil {
		t.Errorf("meter-2 = %+v, want down with its timeout", m2)
	}
	g, stray := find(t, st, "stray-9")
	if g.Kind != "other" || len(stray.Readings) != 1 || stray.Readings[0].Site != "elsewhere" {
		t.Errorf("stray-9 in group %s = %+v, want in other with its pm25", g.Name, stray)
	}
	g, _ = find(t, st, "aq-7")
	if g.Connected == nil || !*g.Connected {
		t.Errorf("city-mqtt connected = %v, want true", g.Connected)
	}
	if _, gw := find(t, st, reading.HealthDevice); gw.Up == nil || !*gw.Up {
		t.Errorf("gateway up = %v while healthy, want true", gw.Up)
	}

	unhealthy = errors.New("buffer degraded: disk writes fail")
	st = s.Status()
	if _, gw := find(t, st, reading.HealthDevice); st.Health != unhealthy.Error() || gw.Up == nil || *gw.Up {
		t.Errorf("unhealthy: health %q, gateway up %v; want the error and down", st.Health, gw.Up)
	}

	// A device polled again after failing is up, and keeps its last error for the page.
	m.ObservePoll("meter-2", time.Millisecond, nil)
	if _, m2 := find(t, s.Status(), "meter-2"); m2.Up == nil || !*m2.Up || m2.LastError == "" {
		t.Errorf("meter-2 after recovering = %+v, want up with the old error kept", m2)
	}
}

// TestStatusDomains checks noise against its limit, the AQI's official colour, the
// water class, and that values without data are null in the JSON (never 0 or NaN).
func TestStatusDomains(t *testing.T) {
	m := metrics.New()
	m.SetNoise(func() []metrics.NoiseState {
		return []metrics.NoiseState{
			{Site: "quiet-1", Device: "noise-1", Zone: "1", QuietDistrict: true, Night: true, Limit: 45,
				LeqMinute: 50.04, LeqHour: 47, LeqPeriod: 46.2, Exceedance: 1.2},
			{Site: "quiet-2", Device: "noise-2", Zone: "1", Limit: 55, LeqMinute: math.NaN(), LeqHour: math.NaN(),
				LeqPeriod: math.NaN(), Exceedance: math.NaN()},
		}
	})
	m.SetAir(func() []metrics.AirState {
		return []metrics.AirState{
			{Site: "s", Device: "air-1", Edition: "cn-2026", Hour: 1.7e9, AQI: 123, Level: 3, Primary: []string{"PM2.5"}, DailyAQI: math.NaN()},
			{Site: "s", Device: "air-2", Edition: "cn-2026", Hour: math.NaN(), AQI: math.NaN(), DailyAQI: math.NaN()},
		}
	})
	m.SetWater(func() []metrics.WaterState {
		return []metrics.WaterState{
			{Site: "river-1", Waterbody: "river", WindowStart: 1.7e9, Class: 6, Target: 3, Missed: 2},
			{Site: "river-2", Waterbody: "river", WindowStart: math.NaN(), Target: 3},
		}
	})
	st := New(Config{Metrics: m}).Status()

	n := st.Noise[0]
	if n.Period != "night" || *n.Limit != 45 || *n.LeqMinute != 50.04 || !n.Over || *n.Exceedance != 1.2 {
		t.Errorf("noise-1 = %+v, want night, limit 45, over by 1.2", n)
	}
	if n := st.Noise[1]; n.Over || n.LeqMinute != nil || n.Exceedance != nil || n.Period != "day" {
		t.Errorf("noise-2 without data = %+v, want nulls, not over", n)
	}
	a := st.Air[0]
	if *a.AQI != 123 || a.Level != 3 || a.Category != "Lightly polluted" || a.Colour != "#FF7E00" || a.Hour == nil || a.DailyAQI != nil {
		t.Errorf("air-1 = %+v, want AQI 123, level 3 lightly polluted in #FF7E00", a)
	}
	if a := st.Air[1]; a.AQI != nil || a.Colour != "" || a.Hour != nil || a.Primary == nil {
		t.Errorf("air-2 without an AQI = %+v, want no AQI, no colour, primary []", a)
	}
	w := st.Water[0]
	if w.ClassName != "worse than V" || w.TargetName != "III" || w.Met == nil || *w.Met || w.Missed != 2 {
		t.Errorf("river-1 = %+v, want worse than V, missing target III", w)
	}
	if w := st.Water[1]; w.Class != 0 || w.Met != nil || w.WindowStart != nil {
		t.Errorf("river-2 without data = %+v, want class 0, met null", w)
	}

	b, err := json.Marshal(st)
	if err != nil {
		t.Fatalf("json.Marshal(Status) = %v", err)
	}
	js := string(b)
	for _, want := range []string{`"laeq_1m":null`, `"aqi":null`, `"met":null`, `"buffer":null`, `"sinks":[]`, `"errors":[]`} {
		if !strings.Contains(js, want) {
			t.Errorf("status JSON lacks %s:\n%s", want, js)
		}
	}
}

// TestAQILevels checks every level's category and colour against docs/standards.md §2.5.
func TestAQILevels(t *testing.T) {
	want := map[int][2]string{
		1: {"Excellent", "#00E400"}, 2: {"Good", "#FFFF00"}, 3: {"Lightly polluted", "#FF7E00"},
		4: {"Moderately polluted", "#FF0000"}, 5: {"Heavily polluted", "#99004C"}, 6: {"Severely polluted", "#7E0023"},
		0: {"", ""}, 7: {"", ""}, -1: {"", ""},
	}
	for level, w := range want {
		if c, col := AQILevel(level); c != w[0] || col != w[1] {
			t.Errorf("AQILevel(%d) = %q, %q, want %q, %q", level, c, col, w[0], w[1])
		}
	}
}

// TestSinkETA checks the backlog's delivery rate and ETA: unknown with one sample,
// then the rate of the written counter, and the ETA at the rate the backlog shrinks
// (delivered minus arrived); null when it does not shrink, 0 when caught up.
func TestSinkETA(t *testing.T) {
	m := metrics.New()
	var stats metrics.SinkStats
	m.AddSink("city", func() metrics.SinkStats { return stats })
	s := New(Config{Metrics: m})
	t0 := time.Now()
	sink := func(at time.Duration, written uint64, unsent int64) Sink {
		stats.Written, stats.Unsent = written, unsent
		return s.sinkOf(metrics.NamedSinkStats{Name: "city", SinkStats: stats}, t0.Add(at))
	}
	if k := sink(0, 0, 1000); k.DeliveryRate != nil || k.ETA != nil {
		t.Errorf("first sample: rate %v eta %v, want both unknown", k.DeliveryRate, k.ETA)
	}
	// 10 s later: 300 delivered, the backlog shrank by 200 (100 arrived): 20/s net.
	k := sink(10*time.Second, 300, 800)
	if k.DeliveryRate == nil || *k.DeliveryRate != 30 || k.ETA == nil || *k.ETA != 40 {
		t.Errorf("after 10 s: rate %v eta %v, want 30/s and 800/20 = 40 s", deref(k.DeliveryRate), deref(k.ETA))
	}
	// A backlog larger than a minute ago has no ETA.
	if k := sink(20*time.Second, 300, 1500); k.ETA != nil || *k.DeliveryRate != 15 {
		t.Errorf("growing backlog: rate %v eta %v, want 15/s and no ETA", deref(k.DeliveryRate), deref(k.ETA))
	}
	if k := sink(30*time.Second, 1200, 0); k.ETA == nil || *k.ETA != 0 {
		t.Errorf("caught up: eta %v, want 0", deref(k.ETA))
	}
	// Old samples leave the window, and the samples stay bounded.
	for i := range 500 {
		sink(time.Duration(31+i)*time.Second, 1200+uint64(i), 0)
	}
	if n := len(s.samples["city"]); n > maxSamples {
		t.Errorf("%d samples kept, want at most %d", n, maxSamples)
	}
	if k := sink(600*time.Second, 2000, 0); k.DeliveryRate == nil || *k.DeliveryRate > 100 {
		t.Errorf("rate after a steady minute = %v, want the last minute's (~14/s)", deref(k.DeliveryRate))
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
