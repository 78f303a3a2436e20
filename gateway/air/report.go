package air

import (
	"errors"
	"fmt"
	"math"
)

// Concentrations are the averages a report is computed from, in the units of the
// edition's tables (Edition.Unit). A key that is absent is a missing or invalid average
// ("NA"). Which key each report item reads is listed in the package doc.
type Concentrations map[Key]float64

// Result is one AQI report.
type Result struct {
	Edition Edition
	Kind    Kind
	IAQI    map[Item]Index // the items with an index
	// Missing are the items of the plan without an index for want of data ("NA").
	// An item rated through another (US O3 8-h above 0.200 ppm → the 1-h item), and
	// the US 1-h O3 item below 0.125 ppm, are not missing.
	Missing  Items
	AQI      int   // the largest IAQI; 0 without any
	Level    Level // LevelOf(AQI); 0 without any IAQI
	Primary  Items // AQI > 50: the items whose IAQI is the AQI (ties: all of them)
	Over     Items // HJ 633-2012 only: items with IAQI > 100 (超标污染物)
	Complete bool  // nothing is missing
	// Published says whether the AQI may be published. HJ 633-2026 §5.3: if a
	// pollutant is missing, publish the AQI only if it is > 100, else NA. The 2012 and
	// US methods state no such rule: their AQI is published from what there is.
	Published bool
}

// Values returns the IAQI values by item.
func (r Result) Values() map[Item]int {
	m := make(map[Item]int, len(r.IAQI))
	for i, x := range r.IAQI {
		m[i] = x.Value
	}
	return m
}

// line is one item of a report and the average it reads.
type line struct {
	item     Item
	key      Key
	optional bool // may be absent without being missing (US 1-h O3)
}

// lines returns the items of a report (docs/standards.md §2.4, §2.10).
func lines(e Edition, k Kind) []line {
	// day is what the Chinese editions rate SO2, NO2, CO (and 2026 PM) by: the hour's
	// mean in the hourly report, the daily mean in the daily one.
	day := Avg1h
	if k == Daily {
		day = Avg24h
	}
	switch e {
	case HJ633_2026:
		l := []line{
			{ItemSO2, Key{SO2, day}, false},
			{ItemNO2, Key{NO2, day}, false},
			{ItemCO, Key{CO, day}, false},
			{ItemO3_1h, Key{O3, Avg1h}, false},
			{ItemPM10, Key{PM10, day}, false},
			{ItemPM25, Key{PM25, day}, false},
		}
		if k == Daily { // the daily report rates O3 by its daily max 8-h mean only
			l[3] = line{ItemO3_8h, Key{O3, Avg8h}, false}
		}
		return l
	case HJ633_2012:
		return []line{
			{ItemSO2, Key{SO2, day}, false},
			{ItemNO2, Key{NO2, day}, false},
			{ItemCO, Key{CO, day}, false},
			{ItemO3_1h, Key{O3, Avg1h}, false},
			{ItemO3_8h, Key{O3, Avg8h}, false},
			// real-time: PM by the 24-h moving means; their 1-h means carry no IAQI
			{ItemPM10, Key{PM10, Avg24h}, false},
			{ItemPM25, Key{PM25, Avg24h}, false},
		}
	case USEPA2024:
		pm := AvgNowCast
		if k == Daily {
			pm = Avg24h
		}
		return []line{
			{ItemSO2, Key{SO2, Avg1h}, false},
			{ItemNO2, Key{NO2, Avg1h}, false},
			{ItemCO, Key{CO, Avg8h}, false},
			{ItemO3_1h, Key{O3, Avg1h}, true},
			{ItemO3_8h, Key{O3, Avg8h}, false},
			{ItemPM10, Key{PM10, pm}, false},
			{ItemPM25, Key{PM25, pm}, false},
		}
	}
	return nil
}

// ReportItems returns the items of edition e's report of kind k, in code order.
func ReportItems(e Edition, k Kind) []Item {
	var items []Item
	for _, l := range lines(e, k) {
		items = append(items, l.item)
	}
	return items
}

// Report computes edition e's report of kind k from c with the default choices; see
// Method.Report.
func Report(e Edition, k Kind, c Concentrations) Result {
	return Method{Edition: e}.Report(k, c)
}

// Report computes the report of kind k from c: each item's index (following the
// edition's substitutions, see IAQI), the AQI (the largest index, docs/standards.md §2.2), its
// level, the primary pollutants, the over-standard ones (HJ 633-2012) and whether the
// AQI may be published. Items of pollutants outside m.Plan are skipped.
func (m Method) Report(k Kind, c Concentrations) Result {
	r := Result{Edition: m.Edition, Kind: k, IAQI: map[Item]Index{}}
	ls := lines(m.Edition, k)
	has := func(key Key) (Item, bool) {
		for _, l := range ls {
			if l.key == key {
				return l.item, true
			}
		}
		return 0, false
	}
	// deferred: items rated through another item of the report, checked at the end.
	deferred := map[Item]Item{}
	for _, l := range ls {
		if !m.planned(l.key.Pollutant) {
			continue
		}
		v, ok := c[l.key]
		if !ok {
			if !l.optional {
				r.Missing |= Items(l.item)
			}
			continue
		}
		idx, err := m.IAQI(l.key.Pollutant, l.key.Averaging, v)
		var use *UseError
		switch {
		case err == nil:
			r.IAQI[l.item] = idx
		case errors.As(err, &use):
			to := Key{l.key.Pollutant, use.Use}
			if other, ok := has(to); ok {
				deferred[l.item] = other
				continue
			}
			v2, ok := c[to]
			if !ok {
				r.Missing |= Items(l.item)
				continue
			}
			idx2, err := m.IAQI(to.Pollutant, to.Averaging, v2)
			if err != nil {
				r.Missing |= Items(l.item)
				continue
			}
			idx2.BeyondScale = true // the given average was beyond its column
			r.IAQI[l.item] = idx2
		case errors.Is(err, ErrNotDefined) && l.optional:
		default:
			r.Missing |= Items(l.item)
		}
	}
	for from, to := range deferred {
		if _, ok := r.IAQI[to]; !ok {
			r.Missing |= Items(from)
		}
	}
	values := r.Values()
	r.AQI, _ = AQI(values)
	if len(values) > 0 {
		r.Level = LevelOf(r.AQI)
	}
	r.Primary = Primary(values)
	r.Over = OverStandard(m.Edition, values)
	r.Complete = r.Missing == 0
	switch {
	case len(values) == 0:
	case m.Edition == HJ633_2026:
		r.Published = r.Complete || r.AQI > 100
	default:
		r.Published = true
	}
	return r
}

// AQI returns the largest IAQI (docs/standards.md §2.2: AQI = max IAQI_P), false if there is none.
func AQI(iaqi map[Item]int) (int, bool) {
	aqi, ok := 0, false
	for _, v := range iaqi {
		if !ok || v > aqi {
			aqi, ok = v, true
		}
	}
	return aqi, ok
}

// Primary returns the primary pollutants (首要污染物, docs/standards.md §2.6, both editions and
// the US "responsible pollutant"): none when the AQI is 50 or less, else every item
// whose IAQI equals the AQI.
func Primary(iaqi map[Item]int) Items {
	aqi, ok := AQI(iaqi)
	if !ok || aqi <= 50 {
		return 0
	}
	var s Items
	for i, v := range iaqi {
		if v == aqi {
			s |= Items(i)
		}
	}
	return s
}

// OverStandard returns the over-standard pollutants (超标污染物) of HJ 633-2012: every
// item with IAQI > 100. HJ 633-2026 removed the notion and the US method never had it:
// for them it returns none (docs/standards.md §2.6).
func OverStandard(e Edition, iaqi map[Item]int) Items {
	if e != HJ633_2012 {
		return 0
	}
	var s Items
	for i, v := range iaqi {
		if v > 100 {
			s |= Items(i)
		}
	}
	return s
}

// Level is an AQI level (级别), 1 (best) to 6; 0 means no AQI.
type Level uint8

// LevelOf returns the level of an AQI (docs/standards.md §2.5, the same bands in the US
// method): 0–50 → 1, 51–100 → 2, 101–150 → 3, 151–200 → 4, 201–300 → 5, above → 6.
// HJ 633-2026 writes the first band 1–50; an AQI of 0 (all concentrations round to 0)
// is level 1 there too. A negative AQI has level 0.
func LevelOf(aqi int) Level {
	switch {
	case aqi < 0:
		return 0
	case aqi <= 50:
		return 1
	case aqi <= 100:
		return 2
	case aqi <= 150:
		return 3
	case aqi <= 200:
		return 4
	case aqi <= 300:
		return 5
	}
	return 6
}

// Colour is a category colour.
type Colour struct {
	Name    string // English name: "green", …
	Chinese string // Chinese name (China only): "绿", …
	R, G, B uint8
}

// Hex returns the colour as "#RRGGBB", for Grafana.
func (c Colour) Hex() string { return fmt.Sprintf("#%02X%02X%02X", c.R, c.G, c.B) }

// Category is what a level is called and shown as.
type Category struct {
	Level   Level
	Grade   string // Chinese level name (China only): "一级", …
	Chinese string // category (China only): "优", …
	English string // China: the usual rendering (not in HJ 633); US: the official name
	Colour  Colour
}

var cnCategories = [...]Category{
	{1, "一级", "优", "Excellent", Colour{"green", "绿", 0, 228, 0}},
	{2, "二级", "良", "Good", Colour{"yellow", "黄", 255, 255, 0}},
	{3, "三级", "轻度污染", "Lightly polluted", Colour{"orange", "橙", 255, 126, 0}},
	{4, "四级", "中度污染", "Moderately polluted", Colour{"red", "红", 255, 0, 0}},
	{5, "五级", "重度污染", "Heavily polluted", Colour{"purple", "紫", 153, 0, 76}},
	{6, "六级", "严重污染", "Severely polluted", Colour{"maroon", "褐红", 126, 0, 35}},
}

var usCategories = [...]Category{
	{1, "", "", "Good", Colour{"green", "", 0, 228, 0}},
	{2, "", "", "Moderate", Colour{"yellow", "", 255, 255, 0}},
	{3, "", "", "Unhealthy for Sensitive Groups", Colour{"orange", "", 255, 126, 0}},
	{4, "", "", "Unhealthy", Colour{"red", "", 255, 0, 0}},
	{5, "", "", "Very Unhealthy", Colour{"purple", "", 143, 63, 151}},
	{6, "", "", "Hazardous", Colour{"maroon", "", 126, 0, 35}},
}

// Category returns level l's names and colour in edition e (docs/standards.md §2.5 [T] for
// China, §2.10 for the US, whose purple differs). Level 0 gives the zero Category.
func (l Level) Category(e Edition) Category {
	if l < 1 || l > 6 {
		return Category{}
	}
	if e == USEPA2024 {
		return usCategories[l-1]
	}
	return cnCategories[l-1]
}

// GoodDay reports whether a day with daily AQI aqi is a good day (优良天, levels 1 and 2:
// AQI ≤ 100, docs/standards.md §2.9).
func GoodDay(aqi int) bool { return aqi <= 100 }

// GoodDayShare returns the share of good days (优良天数比例, docs/standards.md §2.9) among daily
// AQIs, in percent: days with AQI ≤ 100 over days with a valid daily AQI. NaN entries
// (days without a valid daily AQI) count in neither; without any valid day the share
// is NaN. Display it with RoundHalfEven(share, 1).
func GoodDayShare(daily []float64) (percent float64, good, valid int) {
	for _, a := range daily {
		if math.IsNaN(a) {
			continue
		}
		valid++
		if a <= 100 {
			good++
		}
	}
	if valid == 0 {
		return math.NaN(), 0, 0
	}
	return 100 * float64(good) / float64(valid), good, valid
}
