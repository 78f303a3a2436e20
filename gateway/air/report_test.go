package air

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLevelsAndCategories(t *testing.T) {
	for _, c := range []struct {
		aqi  int
		want Level
	}{
		{-1, 0}, {0, 1}, {1, 1}, {50, 1}, {51, 2}, {100, 2}, {101, 3}, {150, 3}, {151, 4},
		{200, 4}, {201, 5}, {300, 5}, {301, 6}, {500, 6}, {900, 6},
	} {
		if got := LevelOf(c.aqi); got != c.want {
			t.Errorf("LevelOf(%d) = %d, want %d", c.aqi, got, c.want)
		}
	}
	cn := []struct{ grade, zh, en, hex, colour string }{
		{"一级", "优", "Excellent", "#00E400", "绿"},
		{"二级", "良", "Good", "#FFFF00", "黄"},
		{"三级", "轻度污染", "Lightly polluted", "#FF7E00", "橙"},
		{"四级", "中度污染", "Moderately polluted", "#FF0000", "红"},
		{"五级", "重度污染", "Heavily polluted", "#99004C", "紫"},
		{"六级", "严重污染", "Severely polluted", "#7E0023", "褐红"},
	}
	us := []struct{ en, hex string }{
		{"Good", "#00E400"}, {"Moderate", "#FFFF00"}, {"Unhealthy for Sensitive Groups", "#FF7E00"},
		{"Unhealthy", "#FF0000"}, {"Very Unhealthy", "#8F3F97"}, {"Hazardous", "#7E0023"},
	}
	for l := Level(1); l <= 6; l++ {
		for _, e := range []Edition{HJ633_2026, HJ633_2012} {
			c, w := l.Category(e), cn[l-1]
			if c.Level != l || c.Grade != w.grade || c.Chinese != w.zh || c.English != w.en || c.Colour.Hex() != w.hex || c.Colour.Chinese != w.colour {
				t.Errorf("Level(%d).Category(%s) = %+v, want %+v", l, e, c, w)
			}
		}
		if c, w := l.Category(USEPA2024), us[l-1]; c.Level != l || c.English != w.en || c.Colour.Hex() != w.hex || c.Chinese != "" {
			t.Errorf("Level(%d).Category(us) = %+v, want %+v", l, c, w)
		}
	}
	if c := Level(0).Category(HJ633_2026); c != (Category{}) {
		t.Errorf("Level(0).Category = %+v, want zero", c)
	}
}

func TestPrimaryAndOver(t *testing.T) {
	for _, c := range []struct {
		iaqi    map[Item]int
		aqi     int
		primary Items
		over    Items // 2012
	}{
		{map[Item]int{}, 0, 0, 0},
		{map[Item]int{ItemPM25: 50, ItemO3_1h: 20}, 50, 0, 0}, // AQI ≤ 50: no primary
		{map[Item]int{ItemPM25: 51, ItemO3_1h: 20}, 51, Items(ItemPM25), 0},
		{map[Item]int{ItemPM25: 119, ItemO3_8h: 119, ItemNO2: 101}, 119, Items(ItemPM25 | ItemO3_8h), Items(ItemPM25 | ItemO3_8h | ItemNO2)},
		{map[Item]int{ItemSO2: 100, ItemPM10: 99}, 100, Items(ItemSO2), 0}, // 100 is not over
	} {
		aqi, _ := AQI(c.iaqi)
		if p := Primary(c.iaqi); aqi != c.aqi || p != c.primary {
			t.Errorf("AQI, Primary(%v) = %d, %v; want %d, %v", c.iaqi, aqi, p, c.aqi, c.primary)
		}
		if o := OverStandard(HJ633_2012, c.iaqi); o != c.over {
			t.Errorf("OverStandard(2012, %v) = %v, want %v", c.iaqi, o, c.over)
		}
		if o := OverStandard(HJ633_2026, c.iaqi) | OverStandard(USEPA2024, c.iaqi); o != 0 {
			t.Errorf("OverStandard(2026 or US, %v) = %v, want none (removed in 2026)", c.iaqi, o)
		}
	}
	if _, ok := AQI(nil); ok {
		t.Errorf("AQI(nil) ok, want false")
	}
}

func TestCodes(t *testing.T) {
	want := []Code{{0, "—"}, {1, "SO2"}, {2, "NO2"}, {4, "CO"}, {8, "O3_1h"}, {16, "O3_8h"}, {32, "PM10"}, {64, "PM2.5"}}
	got := Codes()
	if len(got) != len(want) {
		t.Fatalf("Codes() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Codes()[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if s := Items(ItemPM25 | ItemO3_8h).String(); s != "O3_8h+PM2.5" {
		t.Errorf("Items(80).String() = %q", s)
	}
	for _, c := range []struct {
		v  float64
		ok bool
	}{{0, true}, {80, true}, {127, true}, {128, false}, {-1, false}, {1.5, false}, {math.NaN(), false}} {
		if s, ok := ItemsOf(c.v); ok != c.ok || (ok && float64(s) != c.v) {
			t.Errorf("ItemsOf(%v) = %v, %v; want ok %v", c.v, s, ok, c.ok)
		}
	}
}

func TestGoodDays(t *testing.T) {
	if !GoodDay(100) || GoodDay(101) || !GoodDay(0) {
		t.Errorf("GoodDay(100, 101, 0) = %v %v %v, want true false true", GoodDay(100), GoodDay(101), GoodDay(0))
	}
	// The bulletin example of docs/standards.md §2.9: 86 good of 91 valid days = 94.5 %.
	var days []float64
	for i := range 91 {
		aqi := 60.0
		if i < 5 {
			aqi = 101 + float64(i)
		}
		days = append(days, aqi)
	}
	days = append(days, math.NaN(), math.NaN()) // two days without a valid AQI: excluded
	share, good, valid := GoodDayShare(days)
	if good != 86 || valid != 91 || RoundHalfEven(share, 1) != 94.5 {
		t.Errorf("GoodDayShare = %v (%d of %d), want 94.5 %% (86 of 91)", share, good, valid)
	}
	if s, g, v := GoodDayShare([]float64{math.NaN()}); !math.IsNaN(s) || g != 0 || v != 0 {
		t.Errorf("GoodDayShare(no valid day) = %v, %d, %d; want NaN", s, g, v)
	}
}

func TestRoundHalfEven(t *testing.T) {
	for _, c := range []struct {
		x    float64
		d    int
		want float64
	}{
		{57.45, 1, 57.4}, {57.35, 1, 57.4}, {12.25, 1, 12.2}, {12.35, 1, 12.4}, {1.0501, 1, 1.1},
		{1.0499, 1, 1.0}, {2.5, 0, 2}, {3.5, 0, 4}, {-2.5, 0, -2}, {-57.45, 1, -57.4}, {-0.04, 1, 0},
		{0.05, 1, 0}, {0.15, 1, 0.2}, {999.96, 1, 1000}, {1250, -2, 1200}, {1350, -2, 1400},
		{94.505494505494505, 1, 94.5}, {34.5, 0, 34}, {0, 1, 0}, {1e300, 1, 1e300}, {5e-324, 1, 0},
	} {
		if got := RoundHalfEven(c.x, c.d); got != c.want || math.Signbit(got) != math.Signbit(c.want) {
			t.Errorf("RoundHalfEven(%v, %d) = %v, want %v", c.x, c.d, got, c.want)
		}
	}
	if got := RoundHalfEven(math.NaN(), 1); !math.IsNaN(got) {
		t.Errorf("RoundHalfEven(NaN) = %v", got)
	}
}

func TestReport(t *testing.T) {
	all26 := Concentrations{
		{SO2, Avg1h}: 10, {NO2, Avg1h}: 30, {CO, Avg1h}: 0.6, {O3, Avg1h}: 170, {PM10, Avg1h}: 80, {PM25, Avg1h}: 80,
	}
	r := Report(HJ633_2026, Hourly, all26)
	// PM2.5 1-h 80 via the daily column: 119; O3 1-h 170: 50/40·10+50 = 62.5 → 63;
	// PM10 80: 50/70·30+50 = 71.4 → 72.
	if r.AQI != 119 || r.Level != 3 || r.Primary != Items(ItemPM25) || !r.Complete || !r.Published ||
		r.IAQI[ItemO3_1h].Value != 63 || r.IAQI[ItemPM10].Value != 72 || len(r.IAQI) != 6 {
		t.Errorf("2026 hourly report = %+v", r)
	}
	// §5.3: a pollutant missing and AQI ≤ 100 → NA; > 100 → published.
	low := Concentrations{{SO2, Avg1h}: 10, {NO2, Avg1h}: 30, {CO, Avg1h}: 0.6, {O3, Avg1h}: 50, {PM10, Avg1h}: 40}
	if r := Report(HJ633_2026, Hourly, low); r.Published || r.Complete || r.Missing != Items(ItemPM25) || r.AQI != 40 {
		t.Errorf("2026 hourly report without PM2.5, AQI ≤ 100 = %+v, want unpublished, PM2.5 missing", r)
	}
	low[Key{O3, Avg1h}] = 210
	if r := Report(HJ633_2026, Hourly, low); !r.Published || r.Complete || r.AQI != 105 {
		t.Errorf("2026 hourly report without PM2.5, AQI > 100 = %+v, want published 105", r)
	}
	// The plan: a pollutant outside it is "/", not missing.
	m := Method{Edition: HJ633_2026, Plan: []Pollutant{PM25, PM10}}
	if r := m.Report(Hourly, Concentrations{{PM25, Avg1h}: 20, {PM10, Avg1h}: 40, {O3, Avg1h}: 900}); !r.Complete || !r.Published || r.AQI != 40 || len(r.IAQI) != 2 {
		t.Errorf("PM-only plan report = %+v, want complete, AQI 40 from PM10 only", r)
	}
	// 2012 and US publish from what there is.
	if r := Report(HJ633_2012, Daily, Concentrations{{PM25, Avg24h}: 20}); !r.Published || r.Complete {
		t.Errorf("2012 partial report = %+v, want published, incomplete", r)
	}

	// 2026 daily: O3 by the day's largest 8-h mean, > 800 → 300.
	day26 := Concentrations{{SO2, Avg24h}: 10, {NO2, Avg24h}: 30, {CO, Avg24h}: 0.6, {O3, Avg8h}: 850, {O3, Avg1h}: 1200, {PM10, Avg24h}: 80, {PM25, Avg24h}: 30}
	r = Report(HJ633_2026, Daily, day26)
	if r.AQI != 300 || r.Primary != Items(ItemO3_8h) || !r.IAQI[ItemO3_8h].BeyondScale || len(r.IAQI) != 6 {
		t.Errorf("2026 daily report = %+v, want AQI 300 from O3_8h", r)
	}
	// 2012 daily: O3 8-h > 800 has no IAQI, the 1-h item rates O3; not missing.
	day12 := Concentrations{{SO2, Avg24h}: 10, {NO2, Avg24h}: 30, {CO, Avg24h}: 0.6, {O3, Avg8h}: 850, {O3, Avg1h}: 1000, {PM10, Avg24h}: 80, {PM25, Avg24h}: 80}
	r = Report(HJ633_2012, Daily, day12)
	if _, ok := r.IAQI[ItemO3_8h]; ok || r.AQI != 400 || r.Primary != Items(ItemO3_1h) || !r.Complete ||
		r.Over != Items(ItemO3_1h|ItemPM25) {
		t.Errorf("2012 daily report = %+v, want AQI 400 from O3_1h, over O3_1h+PM2.5", r)
	}
	delete(day12, Key{O3, Avg1h})
	if r := Report(HJ633_2012, Daily, day12); r.Missing != Items(ItemO3_1h|ItemO3_8h) {
		t.Errorf("2012 daily report without O3 1-h: missing %v, want O3_1h+O3_8h", r.Missing)
	}
	// 2012 hourly: SO2 1-h > 800 without a 24-h mean is missing.
	if r := Report(HJ633_2012, Hourly, Concentrations{{SO2, Avg1h}: 900}); r.Missing&Items(ItemSO2) == 0 {
		t.Errorf("2012 hourly SO2 900 without 24-h: missing %v, want SO2", r.Missing)
	}

	// US hourly: the 1-h O3 item is optional below 0.125 ppm; CO by 8-h; PM by NowCast.
	usHour := Concentrations{{SO2, Avg1h}: 10, {NO2, Avg1h}: 20, {CO, Avg8h}: 0.5, {O3, Avg1h}: 0.06,
		{O3, Avg8h}: 0.05, {PM10, AvgNowCast}: 30, {PM25, AvgNowCast}: 35.9}
	r = Report(USEPA2024, Hourly, usHour)
	if r.AQI != 102 || !r.Complete || r.Primary != Items(ItemPM25) || len(r.IAQI) != 6 {
		t.Errorf("US hourly report = %+v, want AQI 102 from PM2.5, complete", r)
	}
	// SO2 1-h ≥ 305 ppb with a 24-h mean below 305: 200.
	usHour[Key{SO2, Avg1h}] = 400
	usHour[Key{SO2, Avg24h}] = 100
	if r := Report(USEPA2024, Hourly, usHour); r.IAQI[ItemSO2].Value != 200 || r.IAQI[ItemSO2].Key != (Key{SO2, Avg24h}) {
		t.Errorf("US SO2 1-h 400, 24-h 100: %+v, want 200 from so2/24h", r.IAQI[ItemSO2])
	}
	// O3 8-h above 0.200 → the 1-h index; with the 1-h below 0.125 O3 has none: missing.
	usHour[Key{O3, Avg8h}] = 0.25
	usHour[Key{O3, Avg1h}] = 0.3
	if r := Report(USEPA2024, Hourly, usHour); r.Primary != Items(ItemO3_1h) || r.AQI != 248 {
		// 0.3 ppm: 201 + 99/0.199·0.095 = 248.26 → 248
		t.Errorf("US O3 8-h 0.25, 1-h 0.3: %+v, want AQI 248 from O3_1h", r)
	}
	usHour[Key{O3, Avg1h}] = 0.1
	if r := Report(USEPA2024, Hourly, usHour); r.Missing != Items(ItemO3_8h) {
		t.Errorf("US O3 8-h 0.25, 1-h 0.1: missing %v, want O3_8h", r.Missing)
	}
}

// Properties over random reports: AQI = max IAQI, level monotonic in AQI, primary
// pollutants are exactly the items at the AQI when it is above 50.
func TestReportProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3095, 2026))
	for range 3000 {
		e := Editions()[r.IntN(3)]
		k := Kind(r.IntN(2))
		c := Concentrations{}
		for _, l := range lines(e, k) {
			if r.IntN(8) > 0 {
				c[l.key] = randomConcentration(r, e, l.key.Pollutant)
			}
			if r.IntN(2) == 0 { // substitution targets
				c[Key{l.key.Pollutant, Avg24h}] = randomConcentration(r, e, l.key.Pollutant)
			}
		}
		res := Report(e, k, c)
		max := -1
		for _, idx := range res.IAQI {
			max = maxInt(max, idx.Value)
		}
		if len(res.IAQI) > 0 && (res.AQI != max || res.Level != LevelOf(max)) {
			t.Fatalf("%s %s report of %v: AQI %d level %d, max IAQI %d", e, k, c, res.AQI, res.Level, max)
		}
		for item, idx := range res.IAQI {
			if want := res.AQI > 50 && idx.Value == res.AQI; res.Primary.Has(item) != want {
				t.Fatalf("%s %s report of %v: primary %v, item %s at %d", e, k, c, res.Primary, item, idx.Value)
			}
			if res.Missing.Has(item) {
				t.Fatalf("%s %s: item %s both rated and missing", e, k, item)
			}
		}
		if e == HJ633_2026 && res.Published != (len(res.IAQI) > 0 && (res.Complete || res.AQI > 100)) {
			t.Fatalf("2026 %s report %+v: published %v", k, res, res.Published)
		}
	}
	for a := range 700 {
		if LevelOf(a) > LevelOf(a+1) || LevelOf(a) < 1 || LevelOf(a) > 6 {
			t.Fatalf("LevelOf(%d) = %d, LevelOf(%d) = %d", a, LevelOf(a), a+1, LevelOf(a+1))
		}
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func TestReportItems(t *testing.T) {
	for _, c := range []struct {
		e    Edition
		k    Kind
		want Items
	}{
		{HJ633_2026, Hourly, allItemsMask &^ Items(ItemO3_8h)},
		{HJ633_2026, Daily, allItemsMask &^ Items(ItemO3_1h)},
		{HJ633_2012, Hourly, allItemsMask},
		{HJ633_2012, Daily, allItemsMask},
		{USEPA2024, Hourly, allItemsMask},
		{USEPA2024, Daily, allItemsMask},
	} {
		var got Items
		for _, i := range ReportItems(c.e, c.k) {
			got |= Items(i)
		}
		if got != c.want {
			t.Errorf("ReportItems(%s, %s) = %v, want %v", c.e, c.k, got, c.want)
		}
	}
}
