package sim

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

var (
	shanghai = time.FixedZone("CST", 8*3600)
	// start is a Monday at local midnight.
	start = time.Date(2026, 6, 1, 0, 0, 0, 0, shanghai)
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestNew(t *testing.T) {
	check := func(cfg Config, want string) {
		t.Helper()
		_, err := New(cfg)
		if want == "" {
			if err != nil {
				t.Errorf("New(%+v) = %v, want nil", cfg, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%+v) = %v, want error containing %q", cfg, err, want)
		}
	}
	check(Config{Kind: "noise", Site: "canal-east", Device: "noise-1"}, "")
	check(Config{Kind: "radiation", Site: "canal-east", Device: "n1"}, `kind "radiation": must be one of noise, air, water, weather`)
	check(Config{Kind: "air", Site: "", Device: "n1"}, "site")
	check(Config{Kind: "air", Site: "s", Device: "a b"}, "device")
}

func TestQuantities(t *testing.T) {
	want := map[string][]string{
		"noise":   {"la"},
		"air":     {"pm1", "pm25", "pm10", "so2", "no2", "o3", "co"},
		"water":   {"water_temperature", "ph", "do", "codmn", "nh3n", "tp", "conductivity", "turbidity"},
		"weather": {"temperature", "humidity", "pressure", "wind_speed", "wind_direction", "rain_rate"},
	}
	for _, kind := range Kinds() {
		d, err := New(Config{Kind: kind, Site: "s", Device: "d"})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Quantities(); !slices.Equal(got, want[kind]) {
			t.Errorf("%s: Quantities() = %v, want %v", kind, got, want[kind])
		}
		for _, q := range d.Quantities() {
			if _, ok := reading.Lookup(q); !ok {
				t.Errorf("%s: quantity %q not in the catalog", kind, q)
			}
		}
	}
}

func TestPollMatchesValue(t *testing.T) {
	now := time.Date(2026, 11, 28, 23, 17, 42, 123_456_789, time.UTC)
	for _, kind := range Kinds() {
		d, err := New(Config{Kind: kind, Seed: 7, Site: "canal-east", Device: kind + "-1", Now: fixedClock(now)})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := d.Poll(t.Context())
		if err != nil {
			t.Fatalf("%s: Poll() = %v", kind, err)
		}
		if len(rs) != len(d.Quantities()) {
			t.Fatalf("%s: Poll() returned %d readings, want %d", kind, len(rs), len(d.Quantities()))
		}
		want := now.Truncate(time.Millisecond)
		for i, r := range rs {
			if !r.Time.Equal(want) {
				t.Errorf("%s %s: time %v, want %v", kind, r.Quantity, r.Time, want)
			}
			if r.Quantity != d.Quantities()[i] || r.Site != "canal-east" || r.Device != kind+"-1" || r.Quality != reading.Good {
				t.Errorf("%s: reading %d = %+v", kind, i, r)
			}
			if v := Value(kind, 7, kind+"-1", r.Quantity, r.Time); v != r.Value {
				t.Errorf("%s: Value(%s) = %v, Poll gave %v", kind, r.Quantity, v, r.Value)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("%s: %v", kind, err)
			}
		}
	}
}

func TestPollCancelled(t *testing.T) {
	d, err := New(Config{Kind: "air", Site: "s", Device: "d"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if rs, err := d.Poll(ctx); err == nil || rs != nil {
		t.Errorf("Poll(cancelled) = %v, %v; want nil, error", rs, err)
	}
}

func TestDeterminism(t *testing.T) {
	now := time.Date(2026, 3, 14, 8, 30, 0, 0, shanghai)
	for _, kind := range Kinds() {
		a, _ := New(Config{Kind: kind, Seed: 42, Site: "s", Device: "box-1", Now: fixedClock(now)})
		b, _ := New(Config{Kind: kind, Seed: 42, Site: "s", Device: "box-1", Now: fixedClock(now)})
		ra, _ := a.Poll(t.Context())
		rb, _ := b.Poll(t.Context())
		if !slices.Equal(ra, rb) {
			t.Errorf("%s: two drivers with the same seed disagree:\n%v\n%v", kind, ra, rb)
		}
	}
	// Same arguments, same value; the time zone of t does not matter.
	for _, q := range []string{"la", "pm25", "do", "temperature"} {
		kind := map[string]string{"la": "noise", "pm25": "air", "do": "water", "temperature": "weather"}[q]
		v1 := Value(kind, 1, "dev", q, now)
		v2 := Value(kind, 1, "dev", q, now.UTC())
		if v1 != v2 {
			t.Errorf("Value(%s) = %v in +08:00, %v in UTC", q, v1, v2)
		}
	}
	// Different seeds or devices give different series.
	differ := func(name string, f func(t time.Time) (float64, float64)) {
		t.Helper()
		same := 0
		for i := range 100 {
			a, b := f(start.Add(time.Duration(i) * 7 * time.Minute))
			if a == b {
				same++
			}
		}
		if same > 20 {
			t.Errorf("%s: %d of 100 values equal", name, same)
		}
	}
	differ("seeds", func(t time.Time) (float64, float64) {
		return Value("air", 1, "d", "pm25", t), Value("air", 2, "d", "pm25", t)
	})
	differ("devices", func(t time.Time) (float64, float64) {
		return Value("water", 1, "w1", "do", t), Value("water", 1, "w2", "do", t)
	})
	if v := Value("air", 1, "d", "la", now); !math.IsNaN(v) {
		t.Errorf("Value(air, la) = %v, want NaN", v)
	}
	if v := Value("soil", 1, "d", "la", now); !math.IsNaN(v) {
		t.Errorf("Value(soil, la) = %v, want NaN", v)
	}
}

// TestResolution checks every value is a short decimal at the sensor's resolution, so
// line protocol carries it unchanged.
func TestResolution(t *testing.T) {
	for kind, chans := range kinds {
		for _, c := range chans {
			decimals := int(math.Round(math.Log10(c.scale)))
			for i := range 500 {
				tm := start.Add(time.Duration(i) * 613 * time.Second)
				v := Value(kind, 3, "d", c.quantity, tm)
				s := strconv.FormatFloat(v, 'f', -1, 64)
				if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 > decimals {
					t.Fatalf("%s at %v = %s, more than %d decimals", c.quantity, tm, s, decimals)
				}
				if p, _ := strconv.ParseFloat(s, 64); p != v {
					t.Fatalf("%s: %v does not round-trip through %q", c.quantity, v, s)
				}
			}
		}
	}
}

// TestPlausibleWeek polls every kind over a simulated week every 37 s.
func TestPlausibleWeek(t *testing.T) {
	for _, kind := range Kinds() {
		now := start
		d, err := New(Config{Kind: kind, Seed: 11, Site: "canal-east", Device: "d-" + kind, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := map[string]float64{}, map[string]float64{}
		for ; now.Before(start.AddDate(0, 0, 7)); now = now.Add(37 * time.Second) {
			rs, err := d.Poll(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if err := r.Validate(); err != nil {
					t.Fatalf("%v: %v", r, err)
				}
				q, _ := reading.Lookup(r.Quantity)
				if !q.Plausible(r.Value) {
					t.Fatalf("%s at %v = %v, outside [%v, %v]", r.Quantity, r.Time, r.Value, q.Min, q.Max)
				}
				if _, ok := lo[r.Quantity]; !ok {
					lo[r.Quantity], hi[r.Quantity] = r.Value, r.Value
				}
				lo[r.Quantity], hi[r.Quantity] = min(lo[r.Quantity], r.Value), max(hi[r.Quantity], r.Value)
			}
		}
		for _, q := range d.Quantities() {
			t.Logf("%s %s: %v .. %v", kind, q, lo[q], hi[q])
		}
	}
}

// TestRanges checks each quantity stays within its documented band over a simulated
// year sampled every 7 min 13 s, for a few seeds.
func TestRanges(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated year")
	}
	band := map[string][2]float64{
		"la": {30, 100}, "pm1": {5, 90}, "pm25": {10, 110}, "pm10": {15, 220},
		"so2": {2, 21}, "no2": {15, 80}, "o3": {8, 185}, "co": {0.3, 1.6},
		"water_temperature": {8, 30}, "ph": {6.6, 9.3}, "do": {2, 9}, "codmn": {2, 11},
		"nh3n": {0.1, 1.8}, "tp": {0.03, 0.35}, "conductivity": {300, 900}, "turbidity": {5, 60},
		"temperature": {-5, 38}, "humidity": {20, 100}, "pressure": {1004, 1026},
		"wind_speed": {0, 12}, "wind_direction": {0, 359}, "rain_rate": {0, 30},
	}
	for _, seed := range []int64{1, 2, 3} {
		for kind, chans := range kinds {
			for _, c := range chans {
				b := band[c.quantity]
				lo, hi := math.Inf(1), math.Inf(-1)
				for tm := start; tm.Before(start.AddDate(1, 0, 0)); tm = tm.Add(433 * time.Second) {
					v := Value(kind, seed, "d", c.quantity, tm)
					lo, hi = min(lo, v), max(hi, v)
				}
				if lo < b[0] || hi > b[1] {
					t.Errorf("seed %d: %s ranges over [%v, %v] in a year, want within [%v, %v]", seed, c.quantity, lo, hi, b[0], b[1])
				}
			}
		}
	}
}

func isNight(t time.Time) bool {
	h := t.In(shanghai).Hour()
	return h >= 22 || h < 6
}

func TestNoiseDayNight(t *testing.T) {
	var day, night, nd, nn float64
	for tm := start; tm.Before(start.AddDate(0, 0, 7)); tm = tm.Add(37 * time.Second) {
		v := Value("noise", 5, "n1", "la", tm)
		if isNight(tm) {
			night += v
			nn++
		} else {
			day += v
			nd++
		}
	}
	day, night = day/nd, night/nn
	t.Logf("mean day %.1f dB(A), night %.1f dB(A)", day, night)
	if day < 55 || day > 65 || night < 40 || night > 48 || day-night < 8 {
		t.Errorf("mean day %.1f, night %.1f: want day 55-65, night 40-48", day, night)
	}
}

// TestNightBursts samples a week of nights every second: every night has an Lmax more
// than 15 dB above the class 1 night limit of 45 dB(A), and no burst happens by day.
func TestNightBursts(t *testing.T) {
	const limit = 45
	for _, seed := range []int64{1, 5, 99} {
		for n := range 7 {
			begin := start.AddDate(0, 0, n).Add(22 * time.Hour)
			var lmax float64
			for tm := begin; tm.Before(begin.Add(8 * time.Hour)); tm = tm.Add(time.Second) {
				lmax = max(lmax, Value("noise", seed, "n1", "la", tm))
			}
			if lmax-limit <= 15 {
				t.Errorf("seed %d, night %d: Lmax %.1f, want more than %d", seed, n, lmax, limit+15)
			}
		}
		// Day: nothing louder than the background allows.
		for tm := start.Add(6 * time.Hour); tm.Before(start.Add(22 * time.Hour)); tm = tm.Add(time.Second) {
			if v := Value("noise", seed, "n1", "la", tm); v > 72 {
				t.Errorf("seed %d: day level %.1f at %v", seed, v, tm)
				break
			}
		}
	}
}

// TestBurstShape finds the bursts of one night at millisecond resolution and checks
// their count, length and height.
func TestBurstShape(t *testing.T) {
	begin := start.Add(22 * time.Hour)
	var s state
	type burst struct{ from, to time.Time }
	var bursts []burst
	in := false
	for tm := begin; tm.Before(begin.Add(8 * time.Hour)); tm = tm.Add(100 * time.Millisecond) {
		s = newState(5, "n1", tm)
		b := s.laBurst(s.laBackground()) > 0
		switch {
		case b && !in:
			bursts = append(bursts, burst{from: tm})
		case !b && in:
			bursts[len(bursts)-1].to = tm
		}
		in = b
	}
	if len(bursts) < 2 || len(bursts) > 5 {
		t.Fatalf("%d bursts, want 2-5", len(bursts))
	}
	for _, b := range bursts {
		if d := b.to.Sub(b.from); d < 1900*time.Millisecond || d > 10100*time.Millisecond {
			t.Errorf("burst at %v lasts %v, want 2-10 s", b.from, d)
		}
	}
}

func TestDOCrossesClasses(t *testing.T) {
	limits := []float64{7.5, 6, 5, 3, 2} // GB 3838-2002 Table 1, classes I-V
	for _, seed := range []int64{1, 2, 3, 4} {
		crossed := map[float64]bool{}
		prev := Value("water", seed, "w1", "do", start)
		for tm := start; tm.Before(start.AddDate(0, 1, 0)); tm = tm.Add(10 * time.Minute) {
			v := Value("water", seed, "w1", "do", tm)
			for _, l := range limits {
				if (prev < l) != (v < l) {
					crossed[l] = true
				}
			}
			prev = v
		}
		if len(crossed) < 2 {
			t.Errorf("seed %d: DO crossed %v over a month, want at least two class limits", seed, crossed)
		}
	}
}

func TestPHExcursions(t *testing.T) {
	var above, n int
	days := map[int]bool{}
	for tm := start; tm.Before(start.AddDate(0, 3, 0)); tm = tm.Add(5 * time.Minute) {
		n++
		if Value("water", 1, "w1", "ph", tm) > 9 {
			above++
			days[tm.YearDay()] = true
		}
	}
	if len(days) == 0 || len(days) > 15 || above*100 > n {
		t.Errorf("pH above 9 on %d days (%d of %d samples), want rare excursions", len(days), above, n)
	}
}

func TestRainMostlyDry(t *testing.T) {
	var wet, n int
	for tm := start; tm.Before(start.AddDate(0, 2, 0)); tm = tm.Add(10 * time.Minute) {
		n++
		if Value("weather", 1, "m1", "rain_rate", tm) > 0 {
			wet++
		}
	}
	share := float64(wet) / float64(n)
	t.Logf("raining %.1f%% of the time", 100*share)
	if share < 0.03 || share > 0.25 {
		t.Errorf("raining %.1f%% of the time, want 3-25%%", 100*share)
	}
}

func BenchmarkPoll(b *testing.B) {
	for _, kind := range Kinds() {
		b.Run(kind, func(b *testing.B) {
			now := start
			d, _ := New(Config{Kind: kind, Site: "s", Device: "d", Now: func() time.Time { return now }})
			for b.Loop() {
				now = now.Add(time.Second)
				if _, err := d.Poll(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
