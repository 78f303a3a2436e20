package air

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

const (
	site   = "canal-east-3"
	device = "air-1"
)

func newAgg(t *testing.T, mutate func(*Config)) *Aggregator {
	t.Helper()
	cfg := Config{Site: site, Device: device}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := NewAggregator(cfg)
	if err != nil {
		t.Fatalf("NewAggregator(%+v) = %v", cfg, err)
	}
	return a
}

func raw(at time.Time, quantity string, v float64) reading.Reading {
	return reading.New(at, site, device, quantity, v)
}

// derivedSet indexes derived readings by quantity and window start.
type derivedSet map[string]reading.Reading

func key(quantity string, at time.Time) string { return quantity + "@" + at.UTC().Format(time.RFC3339) }

// collect checks every derived reading against Quantities (the catalog does not know
// them yet) and indexes them; a duplicate is an error.
func collect(t *testing.T, set derivedSet, out []reading.Reading) derivedSet {
	t.Helper()
	if set == nil {
		set = derivedSet{}
	}
	for _, r := range out {
		q, ok := derivedByName[r.Quantity]
		switch {
		case !ok:
			t.Errorf("derived reading %+v: quantity not listed in Quantities()", r)
		case r.Unit != q.Unit:
			t.Errorf("derived reading %+v: unit %q, want %q", r, r.Unit, q.Unit)
		case !q.Plausible(r.Value) || math.IsNaN(r.Value):
			t.Errorf("derived reading %+v: value outside %v..%v", r, q.Min, q.Max)
		}
		if r.Site != site || r.Device != device || r.Time.IsZero() || r.Quality == reading.Bad {
			t.Errorf("derived reading %+v: want site %s, device %s, a time, not bad", r, site, device)
		}
		k := key(r.Quantity, r.Time)
		if _, dup := set[k]; dup {
			t.Errorf("derived reading %s emitted twice", k)
		}
		set[k] = r
	}
	return set
}

// want checks one derived reading's value (within 1e-9) and quality.
func (s derivedSet) want(t *testing.T, quantity string, at time.Time, value float64, q reading.Quality) {
	t.Helper()
	r, ok := s[key(quantity, at)]
	if !ok {
		t.Errorf("no %s for %v", quantity, at)
		return
	}
	if math.Abs(r.Value-value) > 1e-9 || r.Quality != q {
		t.Errorf("%s@%v = %v (%v), want %v (%v)", quantity, at, r.Value, r.Quality, value, q)
	}
}

func (s derivedSet) absent(t *testing.T, quantity string, at time.Time) {
	t.Helper()
	if r, ok := s[key(quantity, at)]; ok {
		t.Errorf("%s@%v = %+v, want none", quantity, at, r)
	}
}

func (s derivedSet) count(quantity string) int {
	n := 0
	for k := range s {
		if strings.HasPrefix(k, quantity+"@") {
			n++
		}
	}
	return n
}

// day0 is the synthetic day, a local (CST) calendar day.
var day0 = time.Date(2026, 6, 1, 0, 0, 0, 0, cst)

// o3At is the synthetic O3 profile: 200 µg/m³ from 10:00 to 18:00, else 60.
func o3At(hour int) float64 {
	if hour >= 10 && hour < 18 {
		return 200
	}
	return 60
}

// feedDay sends one sample a minute of every pollutant through day0, except: no PM2.5
// in hour 03, only 30 minutes of NO2 in hour 05, one Suspect PM10 sample at 07:10.
// Timestamps are in UTC: the Aggregator works in its own zone.
func feedDay(t *testing.T, a *Aggregator) derivedSet {
	t.Helper()
	set := derivedSet{}
	for m := range 24 * 60 {
		at := day0.Add(time.Duration(m) * time.Minute).UTC()
		h := m / 60
		var rs []reading.Reading
		if h != 3 {
			rs = append(rs, raw(at, "pm25", 80))
		}
		pm10 := raw(at, "pm10", 100)
		if h == 7 && m%60 == 10 {
			pm10.Quality = reading.Suspect
		}
		rs = append(rs, pm10, raw(at, "so2", 10), raw(at, "co", 1), raw(at, "o3", o3At(h)))
		if h != 5 || m%60 < 30 {
			rs = append(rs, raw(at, "no2", 40))
		}
		for _, r := range rs {
			collect(t, set, a.Add(r))
		}
	}
	return collect(t, set, a.Tick(day0.Add(24*time.Hour+DefaultLateness)))
}

func TestAggregatorSyntheticDay(t *testing.T) {
	a := newAgg(t, nil)
	set := feedDay(t, a)
	good, suspect := reading.Good, reading.Suspect
	hour := func(h int) time.Time { return day0.Add(time.Duration(h) * time.Hour) }

	// Hourly means and their minutes; invalid hours have no mean.
	set.want(t, QuantityPM25Hourly, hour(0), 80, good)
	set.want(t, QuantityPM25Minutes, hour(0), 60, good)
	set.absent(t, QuantityPM25Hourly, hour(3))
	set.want(t, QuantityPM25Minutes, hour(3), 0, good)
	set.absent(t, QuantityNO2Hourly, hour(5))
	set.want(t, QuantityNO2Minutes, hour(5), 30, good)
	set.want(t, QuantityPM10Hourly, hour(7), 100, suspect)
	set.want(t, QuantityPM10Hourly, hour(6), 100, good)
	set.want(t, QuantityO3Hourly, hour(12), 200, good)
	set.want(t, QuantityCOHourly, hour(12), 1, good)
	for _, q := range []string{QuantityPM25Minutes, QuantityNO2Minutes, QuantityO3Minutes} {
		if n := set.count(q); n != 24 {
			t.Errorf("%d %s, want 24 (one per closed hour)", n, q)
		}
	}

	// 24-h moving means: valid once 20 hours of the 24 are; the first when hour 19
	// closes (hours 00–19), stamped at the window start, 20:00 the day before.
	set.absent(t, QuantitySO2Moving24h, hour(19-24))
	set.want(t, QuantitySO2Moving24h, hour(20-24), 10, good)
	set.want(t, QuantityPM25Moving24h, hour(21-24), 80, good) // 00–20 without 03: 20 valid
	set.absent(t, QuantityPM25Moving24h, hour(20-24))
	set.want(t, QuantityPM10Moving24h, hour(0), 100, suspect) // contains 07:00
	// O3 8-h moving means, stamped at their start: the window 10:00–18:00 is all 200.
	set.want(t, QuantityO3Moving8h, hour(10), 200, good)
	set.want(t, QuantityO3Moving8h, hour(16), (2*200+6*60)/8.0, good)
	set.want(t, QuantityO3Moving8h, hour(-2), 60, good) // 6 valid hours 00–05 of 22–05
	set.absent(t, QuantityO3Moving8h, hour(-3))         // 5 valid of 21–04
	set.absent(t, QuantityCOMoving8h, hour(10))         // US only

	// Hourly reports (HJ 633-2026): PM2.5 1-h 80 via the daily column → 119.
	set.want(t, QuantityIAQIPM25Hourly, hour(0), 119, good)
	set.want(t, QuantityIAQIO3Hourly, hour(12), 100, good) // O3 1-h 200
	set.want(t, QuantityIAQISO2Hourly, hour(12), 4, good)  // 10/150·50 = 3.3
	set.want(t, QuantityAQIHourly, hour(12), 119, good)
	set.want(t, QuantityLevelHourly, hour(12), 3, good)
	set.want(t, QuantityPrimaryHourly, hour(12), float64(ItemPM25), good)
	set.want(t, QuantityAQIHourly, hour(7), 119, suspect) // the PM10 IAQI is Suspect
	// Hour 05: NO2 invalid, AQI 119 > 100 → published (§5.3).
	set.want(t, QuantityAQIHourly, hour(5), 119, good)
	set.absent(t, QuantityIAQINO2Hourly, hour(5))
	// Hour 03: PM2.5 missing and AQI 86 ≤ 100 → NA; the other IAQIs are published.
	set.absent(t, QuantityAQIHourly, hour(3))
	set.absent(t, QuantityLevelHourly, hour(3))
	set.want(t, QuantityIAQIPM10Hourly, hour(3), 86, good) // 50 + 50/70·50 = 85.7
	if n := set.count(QuantityAQIHourly); n != 23 {
		t.Errorf("%d aqi_1h, want 23", n)
	}
	set.absent(t, QuantityIAQIO38hHourly, hour(12)) // not an item of the 2026 hourly report
	set.absent(t, QuantityOverHourly, hour(12))     // 2012 only

	// The day.
	set.want(t, QuantityPM25Daily, day0, 80, good)
	set.want(t, QuantityPM25Hours, day0, 23, good)
	set.want(t, QuantityNO2Hours, day0, 23, good)
	set.want(t, QuantityPM10Daily, day0, 100, suspect)
	set.want(t, QuantityO3Daily, day0, (8*200+16*60)/24.0, good)
	set.want(t, QuantityO3Windows, day0, 17, good)
	set.want(t, QuantityO3Max8hDaily, day0, 200, good)
	set.absent(t, QuantityO3Max1hDaily, day0)           // not used by HJ 633-2026
	set.want(t, QuantityIAQIO38hDaily, day0, 137, good) // 100 + 50/55·40 = 136.4
	set.want(t, QuantityIAQIPM25Daily, day0, 119, good)
	set.want(t, QuantityIAQIPM10Daily, day0, 86, suspect)
	set.absent(t, QuantityIAQIO3Daily, day0)
	set.want(t, QuantityAQIDaily, day0, 137, suspect)
	set.want(t, QuantityLevelDaily, day0, 3, suspect)
	set.want(t, QuantityPrimaryDaily, day0, float64(ItemO3_8h), suspect)
	set.want(t, QuantityGoodDay, day0, 0, suspect)

	// The day is the local (CST) calendar day: its readings are stamped 16:00 UTC.
	if r := set[key(QuantityAQIDaily, day0)]; !r.Time.Equal(time.Date(2026, 5, 31, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("aqi_1d time %v, want local midnight", r.Time)
	}

	// Live: the last closed hour (23:00) and day.
	l := a.Now(day0.Add(24*time.Hour + 2*time.Minute))
	if !l.Hour.Equal(hour(23)) || l.AQI != 119 || l.Level != 3 || l.Primary != Items(ItemPM25) ||
		l.IAQI[ItemO3_1h] != 19 || l.Mean1h[O3] != 60 || l.Mean24h[PM25] != 80 ||
		l.Mean8h[O3] != (2*200+6*60)/8.0 || !l.Day.Equal(day0) || l.DailyAQI != 137 {
		t.Errorf("Now = %+v", l)
	}
	if l.Accepted != 24*60*6-60-30 || l.Late != 0 || l.Rejected != 0 {
		t.Errorf("Now counters = %d accepted, %d late, %d rejected", l.Accepted, l.Late, l.Rejected)
	}
	l.Mean24h[PM25] = -1 // a copy
	if a.Now(day0).Mean24h[PM25] != 80 {
		t.Errorf("Now returned the Aggregator's own map")
	}
}

func TestAggregatorEditions(t *testing.T) {
	day := func(h int) time.Time { return day0.Add(time.Duration(h) * time.Hour) }

	a := newAgg(t, func(c *Config) { c.Method.Edition = HJ633_2012 })
	set := feedDay(t, a)
	// Daily: O3_1h max 200 → 100, O3_8h 200 → 137, PM2.5 80 → 107 (75–115).
	set.want(t, QuantityO3Max1hDaily, day0, 200, reading.Good)
	set.want(t, QuantityIAQIO3Daily, day0, 100, reading.Good)
	set.want(t, QuantityIAQIO38hDaily, day0, 137, reading.Good)
	set.want(t, QuantityIAQIPM25Daily, day0, 107, reading.Good)
	set.want(t, QuantityAQIDaily, day0, 137, reading.Suspect)
	set.want(t, QuantityOverDaily, day0, float64(ItemO3_8h|ItemPM25), reading.Suspect)
	// Hourly: PM by the 24-h moving mean, none before 20 valid hours; 2012 publishes
	// from what there is. At 12:00 O3 1-h 200 → 100; O3 8-h (05–13) 112.5 → 61; at
	// 05:00 the 8-h mean of 22–06 has 6 valid hours of 60 → 30.
	set.absent(t, QuantityIAQIPM25Hourly, day(12))
	set.want(t, QuantityIAQIO38hHourly, day(12), 61, reading.Good)
	set.want(t, QuantityIAQIO38hHourly, day(5), 30, reading.Good)
	set.absent(t, QuantityIAQIO38hHourly, day(4))
	set.want(t, QuantityAQIHourly, day(12), 100, reading.Good)
	set.want(t, QuantityPrimaryHourly, day(12), float64(ItemO3_1h), reading.Good)
	set.want(t, QuantityIAQIPM25Hourly, day(20), 107, reading.Good)

	a = newAgg(t, func(c *Config) { c.Method.Edition = USEPA2024 })
	set = feedDay(t, a)
	// Daily PM2.5 80 µg/m³ → 151 + 49/69.9·24.5 = 168.2 → 168. O3 daily max 8-h
	// 200 µg/m³ = 0.10194 ppm → 0.101 → 151 + 49/0.019·0.015 = 189.7 → 190.
	set.want(t, QuantityIAQIPM25Daily, day0, 168, reading.Good)
	set.want(t, QuantityIAQIO38hDaily, day0, 190, reading.Good)
	set.want(t, QuantityAQIDaily, day0, 190, reading.Suspect)
	set.want(t, QuantityCOMax8hDaily, day0, 1, reading.Good)
	set.want(t, QuantitySO2Max1hDaily, day0, 10, reading.Good)
	// Hourly: PM by NowCast (constant 80 → 80 → 168), CO by the 8-h mean.
	set.want(t, QuantityPM25NowCast, day(1), 80, reading.Good)
	set.absent(t, QuantityPM25NowCast, day(0)) // 1 of the last 3 hours
	set.want(t, QuantityIAQIPM25Hourly, day(12), 168, reading.Good)
	set.want(t, QuantityCOMoving8h, day(0), 1, reading.Good)
	set.absent(t, QuantityIAQICOHourly, day(3))                // 8-h CO needs 6 hours
	set.want(t, QuantityIAQICOHourly, day(5), 9, reading.Good) // 1 mg/m³ = 0.8735 ppm → 0.8 → 9.09 → 9
}

func TestAggregatorTickClosesEmptyHours(t *testing.T) {
	a := newAgg(t, nil)
	t0 := day0.Add(21 * time.Hour)
	if out := a.Tick(t0); len(out) != 0 {
		t.Errorf("first Tick = %v, want nothing", out)
	}
	set := collect(t, nil, a.Tick(t0.Add(3*time.Hour+DefaultLateness)))
	// Three empty hours (21, 22, 23) and the empty day: only the counts.
	for _, p := range Pollutants() {
		if n := set.count(byPollutant[p].minutes); n != 3 {
			t.Errorf("%d %s, want 3", n, byPollutant[p].minutes)
		}
		set.want(t, byPollutant[p].hours, day0, 0, reading.Good)
	}
	set.want(t, QuantityO3Windows, day0, 0, reading.Good)
	if len(set) != 6*3+6+1 {
		t.Errorf("%d derived readings from empty hours, want 25: %v", len(set), set)
	}
	if l := a.Now(t0); !math.IsNaN(l.AQI) || !math.IsNaN(l.DailyAQI) || len(l.IAQI) != 0 || l.Level != 0 {
		t.Errorf("Now after empty hours = %+v, want NaN AQIs", l)
	}
}

func TestAggregatorLateAndRejected(t *testing.T) {
	a := newAgg(t, func(c *Config) { c.Method.Plan = []Pollutant{PM25, PM10} })
	t0 := day0.Add(10 * time.Hour)
	a.Add(raw(t0, "pm25", 30))
	a.Add(raw(t0.Add(time.Hour+DefaultLateness), "pm25", 30)) // closes 10:00
	a.Add(raw(t0.Add(30*time.Minute), "pm25", 30))            // late
	a.Add(raw(t0.Add(time.Hour+30*time.Second), "pm25", 30))  // 11:00 still open
	bad := raw(t0.Add(time.Hour), "pm25", 30)
	bad.Quality = reading.Bad
	other := raw(t0.Add(time.Hour), "pm25", 30)
	other.Device = "air-2"
	ppb := raw(t0.Add(time.Hour), "pm25", 30)
	ppb.Unit = "ppb"
	for _, r := range []reading.Reading{
		bad, other, ppb, raw(t0.Add(time.Hour), "pm25", -1), raw(t0.Add(time.Hour), "pm25", math.NaN()),
		raw(time.Time{}, "pm25", 1), raw(t0.Add(time.Hour), "o3", 50) /* outside the plan */, raw(t0.Add(time.Hour), "temperature", 20),
	} {
		if out := a.Add(r); len(out) != 0 {
			t.Errorf("Add(%+v) = %v", r, out)
		}
	}
	// A gas in ppb is converted on the way in.
	b := newAgg(t, nil)
	so2 := raw(t0, "so2", 100)
	so2.Unit = "ppb"
	b.Add(so2)
	set := collect(t, nil, b.Tick(t0.Add(time.Hour+DefaultLateness)))
	if set.count(QuantitySO2Minutes) != 1 || b.Now(t0).Accepted != 1 {
		t.Errorf("so2 in ppb not accepted: %v", set)
	}
	l := a.Now(t0)
	if l.Accepted != 3 || l.Late != 1 || l.Rejected != 8 {
		t.Errorf("Now = %+v, want 3 accepted, 1 late, 8 rejected", l)
	}
}

// The plan limits the series: a PM-only box emits no gas series, and its AQI is complete.
func TestAggregatorPlan(t *testing.T) {
	a := newAgg(t, func(c *Config) { c.Method.Plan = []Pollutant{PM25} })
	t0 := day0.Add(10 * time.Hour)
	var out []reading.Reading
	for m := range 60 {
		out = append(out, a.Add(raw(t0.Add(time.Duration(m)*time.Minute), "pm25", 20))...)
	}
	set := collect(t, nil, append(out, a.Tick(t0.Add(time.Hour+DefaultLateness))...))
	set.want(t, QuantityAQIHourly, t0, 29, reading.Good) // 50/35·20 = 28.6
	set.want(t, QuantityPrimaryHourly, t0, 0, reading.Good)
	for name := range set {
		if !strings.HasPrefix(name, "pm25") && !strings.HasPrefix(name, "iaqi_pm25") && !strings.HasPrefix(name, "aqi") && !strings.HasPrefix(name, "primary") {
			t.Errorf("PM2.5-only plan emitted %s", name)
		}
	}
}

// The day's 8-h windows are configurable: 24 windows ending 01:00…24:00.
func TestAggregatorWindowsConfigurable(t *testing.T) {
	a := newAgg(t, func(c *Config) {
		c.Validity = Validity{DayFirst8h: -7 * time.Hour, DayLast8h: 16 * time.Hour, MinWindows: 17}
	})
	set := feedDay(t, a)
	// Windows starting before midnight reach into hours that were never fed: 19 valid
	// (starting 22:00 the day before, when 6 of 8 hours exist, up to 16:00).
	set.want(t, QuantityO3Windows, day0, 19, reading.Good)
	set.want(t, QuantityO3Max8hDaily, day0, 200, reading.Good)
}

func TestNewAggregatorErrors(t *testing.T) {
	_, err := NewAggregator(Config{
		Site: "", Device: "a b", Method: Method{Edition: 7, AboveTop: 9, Plan: []Pollutant{PM25, PM25, 8}},
		Validity: Validity{Min8h: 9}, Reference: Reference{Pressure: -1}, Sample: 2 * time.Hour, Lateness: -1,
	})
	for _, w := range []string{
		"site: must not be empty", "device: character ' '", "method.edition: unknown edition 7",
		"method.above_top: unknown choice 9", "method.plan[1]: pm25 listed twice", "method.plan[2]: unknown pollutant 8",
		"validity.min_8h: 9", "reference.pressure: -1", "sample: 2h0m0s", "lateness: -1ns",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("NewAggregator(bad config) = %v, want error containing %q", err, w)
		}
	}
	if _, err := NewAggregator(Config{Site: "s", Device: "d", Method: Method{Plan: []Pollutant{}}}); err == nil {
		t.Errorf("NewAggregator(empty plan) = nil, want error")
	}
}

func TestQuantities(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range Quantities() {
		if seen[q.Name] {
			t.Errorf("quantity %q listed twice", q.Name)
		}
		seen[q.Name] = true
		if q.Name != strings.ToLower(q.Name) || strings.ContainsAny(q.Name, " .-") || strings.HasSuffix(q.Name, "_quality") {
			t.Errorf("quantity %q: not a catalog field key", q.Name)
		}
		if q.Min >= q.Max || q.Unit == "" || q.Doc == "" || q.Domain != reading.Air {
			t.Errorf("quantity %+v: incomplete entry", q)
		}
		if _, ok := reading.Lookup(q.Name); ok {
			if c, _ := reading.Lookup(q.Name); c.Unit != q.Unit {
				t.Errorf("quantity %q: catalog unit %q, ours %q", q.Name, c.Unit, q.Unit)
			}
		}
	}
	// 64 hourly and daily, 2 × 15 monthly and yearly: 4 means, 2 percentiles, 6 day
	// counts, good days, days with an AQI, the share.
	if len(seen) != 94 {
		t.Errorf("%d derived quantities, want 94", len(seen))
	}
	// Every name an edition can emit is listed, and every listed name is emitted by some edition.
	used := map[string]bool{}
	for _, e := range Editions() {
		for name := range emitted(Method{Edition: e}) {
			if !seen[name] {
				t.Errorf("%s emits %q, not in Quantities()", e, name)
			}
			used[name] = true
		}
	}
	for name := range seen {
		if !used[name] {
			t.Errorf("%q is listed but no edition emits it", name)
		}
	}
	for _, p := range Pollutants() {
		if _, ok := reading.Lookup(p.Quantity()); !ok {
			t.Errorf("input quantity %q is not in the catalog", p.Quantity())
		}
	}
	// The doc's table names what emitted() emits.
	want := map[Edition]int{HJ633_2026: 52 + 30, HJ633_2012: 57 + 30, USEPA2024: 62 + 30}
	for e, n := range want {
		if got := len(emitted(Method{Edition: e})); got != n {
			t.Errorf("%s emits %d quantities, want %d", e, got, n)
		}
	}
}
