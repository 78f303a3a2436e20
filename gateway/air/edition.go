package air

import (
	"fmt"
	"strings"
)

// Edition selects the AQI method: breakpoints, rounding, report contents and the rules
// beyond the tables (docs/standards.md §0, §2). The zero value is the edition in force.
type Edition uint8

// The editions. The names follow the standards' numbers; the configuration keys are
// those of String (docs/standards.md §0 "Implementation rule").
const (
	// HJ633_2026 is HJ 633-2026, in force since 2026-03-01 (docs/standards.md §0): the default.
	HJ633_2026 Edition = iota
	// HJ633_2012 is HJ 633-2012 (试行), for back-calculating historical data.
	HJ633_2012
	// USEPA2024 is the US EPA AQI of EPA-454/B-24-002 (May 2024), the "international mode".
	USEPA2024
)

var editionKeys = [...]string{HJ633_2026: "cn-2026", HJ633_2012: "cn-2012", USEPA2024: "us-2024"}

var editionTitles = [...]string{
	HJ633_2026: "HJ 633-2026",
	HJ633_2012: "HJ 633-2012",
	USEPA2024:  "US EPA AQI (EPA-454/B-24-002, 2024)",
}

// Editions returns every edition, the default first.
func Editions() []Edition { return []Edition{HJ633_2026, HJ633_2012, USEPA2024} }

func (e Edition) valid() bool { return int(e) < len(editionKeys) }

// String returns the configuration key: "cn-2026", "cn-2012" or "us-2024".
func (e Edition) String() string {
	if e.valid() {
		return editionKeys[e]
	}
	return fmt.Sprintf("edition(%d)", uint8(e))
}

// Title returns the edition's document number, for reports and logs.
func (e Edition) Title() string {
	if e.valid() {
		return editionTitles[e]
	}
	return e.String()
}

// ParseEdition parses a configuration key (see String).
func ParseEdition(s string) (Edition, error) {
	for _, e := range Editions() {
		if s == e.String() {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown AQI edition %q (known: %s)", s, strings.Join(editionKeys[:], ", "))
}

// MarshalText implements encoding.TextMarshaler with the configuration key.
func (e Edition) MarshalText() ([]byte, error) {
	if !e.valid() {
		return nil, fmt.Errorf("unknown AQI edition %d", uint8(e))
	}
	return []byte(e.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler (YAML and JSON configuration).
func (e *Edition) UnmarshalText(b []byte) error {
	v, err := ParseEdition(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// Unit returns the unit in which the edition's tables take p's concentration, the unit
// of the concentrations given to IAQI and Report: the catalog units (µg/m³, CO in
// mg/m³, gases at 298.15 K / 1013.25 hPa) for the Chinese editions; ppm (O3, CO), ppb
// (SO2, NO2) and µg/m³ (PM) for the US one (docs/standards.md §2.1, §2.10). Convert and
// Reference.Express translate.
func (e Edition) Unit(p Pollutant) string {
	if e == USEPA2024 {
		switch p {
		case O3, CO:
			return unitPPM
		case SO2, NO2:
			return unitPPB
		}
	}
	return p.Unit()
}

// Pollutant is one of the six pollutants of an AQI report (HJ 633 Table order).
type Pollutant uint8

// The pollutants.
const (
	SO2 Pollutant = iota
	NO2
	CO
	O3
	PM10
	PM25
)

var pollutantInfo = [...]struct {
	name, quantity, unit string
	molar                float64 // g/mol, gases only (docs/standards.md §2.10)
}{
	SO2:  {"SO2", "so2", unitUG, 64.07},
	NO2:  {"NO2", "no2", unitUG, 46.01},
	CO:   {"CO", "co", unitMG, 28.01},
	O3:   {"O3", "o3", unitUG, 48.00},
	PM10: {"PM10", "pm10", unitUG, 0},
	PM25: {"PM2.5", "pm25", unitUG, 0},
}

// Pollutants returns the six pollutants in report order.
func Pollutants() []Pollutant { return []Pollutant{SO2, NO2, CO, O3, PM10, PM25} }

const nPollutants = 6

func (p Pollutant) valid() bool { return p < nPollutants }

// String returns the pollutant's chemical name: "SO2", …, "PM2.5".
func (p Pollutant) String() string {
	if p.valid() {
		return pollutantInfo[p].name
	}
	return fmt.Sprintf("pollutant(%d)", uint8(p))
}

// Quantity returns the catalog name of the pollutant's raw readings: "so2", …, "pm25".
func (p Pollutant) Quantity() string {
	if p.valid() {
		return pollutantInfo[p].quantity
	}
	return ""
}

// Unit returns the catalog (canonical) unit: "ug/m3", CO "mg/m3".
func (p Pollutant) Unit() string {
	if p.valid() {
		return pollutantInfo[p].unit
	}
	return ""
}

// PollutantOf returns the pollutant whose catalog quantity is q ("pm25" → PM25).
func PollutantOf(q string) (Pollutant, bool) {
	for _, p := range Pollutants() {
		if pollutantInfo[p].quantity == q {
			return p, true
		}
	}
	return 0, false
}

// MarshalText implements encoding.TextMarshaler with the catalog name.
func (p Pollutant) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("unknown pollutant %d", uint8(p))
	}
	return []byte(p.Quantity()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler: a catalog name ("pm25").
func (p *Pollutant) UnmarshalText(b []byte) error {
	v, ok := PollutantOf(string(b))
	if !ok {
		return fmt.Errorf("unknown pollutant %q (known: so2, no2, co, o3, pm10, pm25)", b)
	}
	*p = v
	return nil
}

// Averaging is the averaging time of a concentration.
type Averaging uint8

// The averaging times. In an hourly report Avg1h is the hour's mean and Avg8h, Avg24h
// the moving means ending with that hour; in a daily report Avg1h is the day's largest
// hourly mean, Avg8h the day's largest 8-h mean and Avg24h the day's mean.
const (
	Avg1h Averaging = iota
	Avg8h
	Avg24h
	// AvgNowCast is the US NowCast of the hourly means (docs/standards.md §2.10), rated with
	// the 24-h PM breakpoints.
	AvgNowCast
)

var averagingNames = [...]string{Avg1h: "1h", Avg8h: "8h", Avg24h: "24h", AvgNowCast: "nowcast"}

func (a Averaging) valid() bool { return int(a) < len(averagingNames) }

// String returns "1h", "8h", "24h" or "nowcast".
func (a Averaging) String() string {
	if a.valid() {
		return averagingNames[a]
	}
	return fmt.Sprintf("averaging(%d)", uint8(a))
}

// Key names an average: a pollutant over an averaging time.
type Key struct {
	Pollutant Pollutant
	Averaging Averaging
}

// String returns e.g. "pm25/24h".
func (k Key) String() string { return k.Pollutant.Quantity() + "/" + k.Averaging.String() }

// Item is one line of an AQI report, whose IAQI can make it a primary pollutant: a
// pollutant, and for O3 also its averaging time (docs/standards.md §2.6: O3 is named by its
// averaging time). Items are single bits, so a set of them (Items) is a number: the
// code stored by primary_1h and friends.
type Item uint8

// The report items, with their codes.
const (
	ItemSO2   Item = 1 << iota // 1: SO2 (1-h or 24-h, as the report says)
	ItemNO2                    // 2: NO2
	ItemCO                     // 4: CO
	ItemO3_1h                  // 8: O3 by its 1-h mean (the hour's, or the day's largest)
	ItemO3_8h                  // 16: O3 by its 8-h mean (moving, or the day's largest)
	ItemPM10                   // 32: PM10
	ItemPM25                   // 64: PM2.5
)

// AllItems returns every item in code order.
func AllItems() []Item {
	return []Item{ItemSO2, ItemNO2, ItemCO, ItemO3_1h, ItemO3_8h, ItemPM10, ItemPM25}
}

// itemInfo: report name (docs/standards.md §2.6) and the key used in series names.
func (i Item) info() (name, key string, p Pollutant, ok bool) {
	switch i {
	case ItemSO2:
		return "SO2", "so2", SO2, true
	case ItemNO2:
		return "NO2", "no2", NO2, true
	case ItemCO:
		return "CO", "co", CO, true
	case ItemO3_1h:
		return "O3_1h", "o3", O3, true
	case ItemO3_8h:
		return "O3_8h", "o3_8h", O3, true
	case ItemPM10:
		return "PM10", "pm10", PM10, true
	case ItemPM25:
		return "PM2.5", "pm25", PM25, true
	}
	return "", "", 0, false
}

// String returns the report name: "SO2", "NO2", "CO", "O3_1h", "O3_8h", "PM10", "PM2.5".
func (i Item) String() string {
	if n, _, _, ok := i.info(); ok {
		return n
	}
	return fmt.Sprintf("item(%d)", uint8(i))
}

// Pollutant returns the item's pollutant.
func (i Item) Pollutant() Pollutant {
	_, _, p, _ := i.info()
	return p
}

// seriesKey returns the item's part of series names: "so2", …, "o3" (1-h), "o3_8h".
func (i Item) seriesKey() string {
	_, k, _, _ := i.info()
	return k
}

// Items is a set of report items, stored as the sum of their codes (0 to 127).
type Items uint8

// allItemsMask is the union of every item.
const allItemsMask Items = 1<<7 - 1

// Has reports whether i is in s.
func (s Items) Has(i Item) bool { return s&Items(i) != 0 }

// List returns the items of s in code order.
func (s Items) List() []Item {
	var l []Item
	for _, i := range AllItems() {
		if s.Has(i) {
			l = append(l, i)
		}
	}
	return l
}

// String returns the items joined by "+" ("PM2.5+O3_8h"), or "—" for none, as HJ 633
// reports print an absent primary pollutant.
func (s Items) String() string {
	if s == 0 {
		return "—"
	}
	var b strings.Builder
	for _, i := range s.List() {
		if b.Len() > 0 {
			b.WriteByte('+')
		}
		b.WriteString(i.String())
	}
	if s&^allItemsMask != 0 {
		fmt.Fprintf(&b, "+?%d", uint8(s&^allItemsMask))
	}
	return b.String()
}

// ItemsOf decodes a stored code (the value of primary_1h, over_1d, …). It reports false
// for a value that is not a whole number from 0 to 127.
func ItemsOf(code float64) (Items, bool) {
	if !(code >= 0 && code <= float64(allItemsMask)) || code != float64(int(code)) {
		return 0, false
	}
	return Items(code), true
}

// A Code is one entry of the code → item table of primary_* and over_* series.
type Code struct {
	Value int    // the stored value
	Name  string // Items(Value).String()
}

// Codes returns the value mappings a dashboard needs for primary_* and over_*: 0 (none,
// "—") and the code of each item. A tie (several primary pollutants) stores the sum of
// their codes, e.g. 64+16 = 80 for "PM2.5+O3_8h"; Items.String names any sum.
func Codes() []Code {
	c := []Code{{0, Items(0).String()}}
	for _, i := range AllItems() {
		c = append(c, Code{int(i), i.String()})
	}
	return c
}

// Kind is the kind of AQI report.
type Kind uint8

// The reports of HJ 633 (docs/standards.md §2.4).
const (
	Hourly Kind = iota // 实时报: one per clock hour
	Daily              // 日报: one per local calendar day
)

// String returns "hourly" or "daily".
func (k Kind) String() string {
	switch k {
	case Hourly:
		return "hourly"
	case Daily:
		return "daily"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}
