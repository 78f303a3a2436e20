package air

import (
	"slices"
	"strings"

	"github.com/envgate/envgate/gateway/reading"
)

// Derived quantities the Aggregator emits (see the package doc for when each one is
// emitted). Their Time is the start of the window they describe. Quantities gives their
// catalog entries, which gateway/derive registers (reading.Register).
const (
	// Hourly means (µg/m³, CO mg/m³), emitted when valid (≥ 45 min of data).
	QuantitySO2Hourly  = "so2_1h"
	QuantityNO2Hourly  = "no2_1h"
	QuantityCOHourly   = "co_1h"
	QuantityO3Hourly   = "o3_1h"
	QuantityPM10Hourly = "pm10_1h"
	QuantityPM25Hourly = "pm25_1h"

	// Minutes of data in the hour, 0 to 60: emitted for every closed hour.
	QuantitySO2Minutes  = "so2_minutes_1h"
	QuantityNO2Minutes  = "no2_minutes_1h"
	QuantityCOMinutes   = "co_minutes_1h"
	QuantityO3Minutes   = "o3_minutes_1h"
	QuantityPM10Minutes = "pm10_minutes_1h"
	QuantityPM25Minutes = "pm25_minutes_1h"

	// 24-h moving means, one per hour, when valid (≥ 20 valid hours of the 24).
	QuantitySO2Moving24h  = "so2_24h"
	QuantityNO2Moving24h  = "no2_24h"
	QuantityCOMoving24h   = "co_24h"
	QuantityO3Moving24h   = "o3_24h"
	QuantityPM10Moving24h = "pm10_24h"
	QuantityPM25Moving24h = "pm25_24h"

	// Daily means of the local calendar day, when valid (≥ 20 valid hours).
	QuantitySO2Daily  = "so2_1d"
	QuantityNO2Daily  = "no2_1d"
	QuantityCODaily   = "co_1d"
	QuantityO3Daily   = "o3_1d"
	QuantityPM10Daily = "pm10_1d"
	QuantityPM25Daily = "pm25_1d"

	// Valid hourly means in the day, 0 to 25: emitted for every closed day.
	QuantitySO2Hours  = "so2_hours_1d"
	QuantityNO2Hours  = "no2_hours_1d"
	QuantityCOHours   = "co_hours_1d"
	QuantityO3Hours   = "o3_hours_1d"
	QuantityPM10Hours = "pm10_hours_1d"
	QuantityPM25Hours = "pm25_hours_1d"

	// O3 8-h statistics and the day's largest 1-h mean.
	QuantityO3Moving8h   = "o3_8h"            // 8-h moving mean, when valid (≥ 6 of 8)
	QuantityO3Max8hDaily = "o3_8h_max_1d"     // the day's largest 8-h mean, when valid
	QuantityO3Windows    = "o3_8h_windows_1d" // valid 8-h means among the day's windows
	QuantityO3Max1hDaily = "o3_1h_max_1d"     // the day's largest 1-h mean (HJ 633-2012, US)

	// US method only: CO 8-h statistics, SO2 and NO2 daily largest 1-h means, PM NowCast.
	QuantityCOMoving8h    = "co_8h"
	QuantityCOMax8hDaily  = "co_8h_max_1d"
	QuantityCOWindows     = "co_8h_windows_1d"
	QuantitySO2Max1hDaily = "so2_1h_max_1d"
	QuantityNO2Max1hDaily = "no2_1h_max_1d"
	QuantityPM10NowCast   = "pm10_nowcast_1h"
	QuantityPM25NowCast   = "pm25_nowcast_1h"

	// IAQI of each item of the hourly report (iaqi_<item>_1h) and of the daily report
	// (iaqi_<item>_1d); "o3" is the O3 1-h item, "o3_8h" the 8-h one.
	QuantityIAQISO2Hourly  = "iaqi_so2_1h"
	QuantityIAQINO2Hourly  = "iaqi_no2_1h"
	QuantityIAQICOHourly   = "iaqi_co_1h"
	QuantityIAQIO3Hourly   = "iaqi_o3_1h"
	QuantityIAQIO38hHourly = "iaqi_o3_8h_1h"
	QuantityIAQIPM10Hourly = "iaqi_pm10_1h"
	QuantityIAQIPM25Hourly = "iaqi_pm25_1h"
	QuantityIAQISO2Daily   = "iaqi_so2_1d"
	QuantityIAQINO2Daily   = "iaqi_no2_1d"
	QuantityIAQICODaily    = "iaqi_co_1d"
	QuantityIAQIO3Daily    = "iaqi_o3_1d"
	QuantityIAQIO38hDaily  = "iaqi_o3_8h_1d"
	QuantityIAQIPM10Daily  = "iaqi_pm10_1d"
	QuantityIAQIPM25Daily  = "iaqi_pm25_1d"

	// The reports.
	QuantityAQIHourly     = "aqi_1h"       // hourly (real-time) AQI, when publishable
	QuantityLevelHourly   = "aqi_level_1h" // its level, 1 to 6
	QuantityPrimaryHourly = "primary_1h"   // its primary pollutants, a code (Codes)
	QuantityOverHourly    = "over_1h"      // HJ 633-2012: its over-standard pollutants, a code
	QuantityAQIDaily      = "aqi_1d"       // daily AQI of the local calendar day
	QuantityLevelDaily    = "aqi_level_1d"
	QuantityPrimaryDaily  = "primary_1d"
	QuantityOverDaily     = "over_1d"
	QuantityGoodDay       = "good_day" // 1 if the daily AQI ≤ 100, else 0
)

// FromLedger reports whether q is a period statistic (a _1mo or _1y quantity): computed
// from the Ledger's closed days, not from the samples of an open window.
func FromLedger(q string) bool {
	_, ok := derivedByName[q]
	return ok && (strings.HasSuffix(q, "_1mo") || strings.HasSuffix(q, "_1y"))
}

// Period statistics (HJ 663, docs/standards.md §2.8–§2.9a), of the local calendar month
// (_1mo, Time its first instant) and year (_1y, Time 1 January 00:00), emitted when the
// period's last day closes (Ledger). Means and percentiles are emitted when valid; the
// day counts always.
const (
	// Means of the valid daily means (µg/m³), if the period has enough of them.
	QuantitySO2Monthly  = "so2_1mo"
	QuantityNO2Monthly  = "no2_1mo"
	QuantityPM10Monthly = "pm10_1mo"
	QuantityPM25Monthly = "pm25_1mo"
	QuantitySO2Yearly   = "so2_1y"
	QuantityNO2Yearly   = "no2_1y"
	QuantityPM10Yearly  = "pm10_1y"
	QuantityPM25Yearly  = "pm25_1y"

	// Percentiles: CO of the daily means (mg/m³), O3 of the daily largest 8-h means.
	QuantityCOP95Monthly = "co_p95_1mo"
	QuantityO3P90Monthly = "o3_8h_p90_1mo"
	QuantityCOP95Yearly  = "co_p95_1y"
	QuantityO3P90Yearly  = "o3_8h_p90_1y"

	// Valid daily values in the period (o3_8h: daily largest 8-h means): always.
	QuantitySO2DaysMonthly  = "so2_days_1mo"
	QuantityNO2DaysMonthly  = "no2_days_1mo"
	QuantityCODaysMonthly   = "co_days_1mo"
	QuantityO3DaysMonthly   = "o3_8h_days_1mo"
	QuantityPM10DaysMonthly = "pm10_days_1mo"
	QuantityPM25DaysMonthly = "pm25_days_1mo"
	QuantitySO2DaysYearly   = "so2_days_1y"
	QuantityNO2DaysYearly   = "no2_days_1y"
	QuantityCODaysYearly    = "co_days_1y"
	QuantityO3DaysYearly    = "o3_8h_days_1y"
	QuantityPM10DaysYearly  = "pm10_days_1y"
	QuantityPM25DaysYearly  = "pm25_days_1y"

	// Good days (daily AQI ≤ 100) and days with a daily AQI: always; the share of good
	// days in percent, one decimal (GB/T 8170), when there is a day with a daily AQI.
	QuantityGoodDaysMonthly  = "good_days_1mo"
	QuantityAQIDaysMonthly   = "aqi_days_1mo"
	QuantityGoodShareMonthly = "good_share_1mo"
	QuantityGoodDaysYearly   = "good_days_1y"
	QuantityAQIDaysYearly    = "aqi_days_1y"
	QuantityGoodShareYearly  = "good_share_1y"
)

// periodNames names the series of a period: index 0 the month, 1 the year.
var periodNames = [2]struct {
	mean, days               [nPollutants]string // mean: "" where not defined
	coP95, o3P90             string
	good, aqiDays, goodShare string
}{
	{
		mean: [nPollutants]string{SO2: QuantitySO2Monthly, NO2: QuantityNO2Monthly, PM10: QuantityPM10Monthly, PM25: QuantityPM25Monthly},
		days: [nPollutants]string{SO2: QuantitySO2DaysMonthly, NO2: QuantityNO2DaysMonthly, CO: QuantityCODaysMonthly,
			O3: QuantityO3DaysMonthly, PM10: QuantityPM10DaysMonthly, PM25: QuantityPM25DaysMonthly},
		coP95: QuantityCOP95Monthly, o3P90: QuantityO3P90Monthly,
		good: QuantityGoodDaysMonthly, aqiDays: QuantityAQIDaysMonthly, goodShare: QuantityGoodShareMonthly,
	},
	{
		mean: [nPollutants]string{SO2: QuantitySO2Yearly, NO2: QuantityNO2Yearly, PM10: QuantityPM10Yearly, PM25: QuantityPM25Yearly},
		days: [nPollutants]string{SO2: QuantitySO2DaysYearly, NO2: QuantityNO2DaysYearly, CO: QuantityCODaysYearly,
			O3: QuantityO3DaysYearly, PM10: QuantityPM10DaysYearly, PM25: QuantityPM25DaysYearly},
		coP95: QuantityCOP95Yearly, o3P90: QuantityO3P90Yearly,
		good: QuantityGoodDaysYearly, aqiDays: QuantityAQIDaysYearly, goodShare: QuantityGoodShareYearly,
	},
}

// Units of the derived quantities that are not concentrations (ASCII, like the catalog).
const (
	unitMinutes = "min"
	unitHours   = "h"
	unitOne     = "1"
	unitDays    = "d"
	unitPercent = "%"
)

// byPollutant names the per-pollutant series.
var byPollutant = [nPollutants]struct {
	hourly, minutes, moving24, daily, hours string
	moving8, max8, windows, max1            string // "" where not defined
	nowcast                                 string
}{
	SO2:  {QuantitySO2Hourly, QuantitySO2Minutes, QuantitySO2Moving24h, QuantitySO2Daily, QuantitySO2Hours, "", "", "", QuantitySO2Max1hDaily, ""},
	NO2:  {QuantityNO2Hourly, QuantityNO2Minutes, QuantityNO2Moving24h, QuantityNO2Daily, QuantityNO2Hours, "", "", "", QuantityNO2Max1hDaily, ""},
	CO:   {QuantityCOHourly, QuantityCOMinutes, QuantityCOMoving24h, QuantityCODaily, QuantityCOHours, QuantityCOMoving8h, QuantityCOMax8hDaily, QuantityCOWindows, "", ""},
	O3:   {QuantityO3Hourly, QuantityO3Minutes, QuantityO3Moving24h, QuantityO3Daily, QuantityO3Hours, QuantityO3Moving8h, QuantityO3Max8hDaily, QuantityO3Windows, QuantityO3Max1hDaily, ""},
	PM10: {QuantityPM10Hourly, QuantityPM10Minutes, QuantityPM10Moving24h, QuantityPM10Daily, QuantityPM10Hours, "", "", "", "", QuantityPM10NowCast},
	PM25: {QuantityPM25Hourly, QuantityPM25Minutes, QuantityPM25Moving24h, QuantityPM25Daily, QuantityPM25Hours, "", "", "", "", QuantityPM25NowCast},
}

// iaqiName returns the series of item's IAQI in a report of kind k.
func iaqiName(item Item, k Kind) string {
	suffix := "_1h"
	if k == Daily {
		suffix = "_1d"
	}
	return "iaqi_" + item.seriesKey() + suffix
}

// reportNames names the report series by kind: AQI, level, primary, over-standard.
var reportNames = [2][4]string{
	Hourly: {QuantityAQIHourly, QuantityLevelHourly, QuantityPrimaryHourly, QuantityOverHourly},
	Daily:  {QuantityAQIDaily, QuantityLevelDaily, QuantityPrimaryDaily, QuantityOverDaily},
}

// derived is the catalog entries of the derived quantities, in emission order.
var derived = func() []reading.Quantity {
	var d []reading.Quantity
	add := func(name, unit string, min, max float64, doc string) {
		d = append(d, reading.Quantity{Name: name, Unit: unit, Domain: reading.Air, Min: min, Max: max, Doc: doc})
	}
	for _, p := range Pollutants() {
		n, raw := byPollutant[p], p.Quantity()
		c, _ := reading.Lookup(raw) // the ranges of the raw readings bound their means
		add(n.hourly, c.Unit, c.Min, c.Max, p.String()+" 1-h mean of a clock hour (GB 3095-2026 §3.7), if valid")
		add(n.minutes, unitMinutes, 0, 60, "minutes of "+p.String()+" sampling in the clock hour (GB 3095-2026 Table 4: 45 for a valid 1-h mean)")
		add(n.moving24, c.Unit, c.Min, c.Max, p.String()+" 24-h moving mean of the 24 hourly means from Time, if valid")
		add(n.daily, c.Unit, c.Min, c.Max, p.String()+" daily mean of the local calendar day (GB 3095-2026 §3.10), if valid")
		add(n.hours, unitHours, 0, 25, "valid "+p.String()+" hourly means in the local calendar day (GB 3095-2026 Table 4: 20 for a valid daily mean)")
	}
	for _, p := range []Pollutant{O3, CO} {
		n, c := byPollutant[p], must(reading.Lookup(p.Quantity()))
		add(n.moving8, c.Unit, c.Min, c.Max, p.String()+" 8-h moving mean of the 8 hourly means from Time (GB 3095-2026 §3.8), if valid")
		add(n.max8, c.Unit, c.Min, c.Max, p.String()+" largest 8-h mean of the local day's windows (GB 3095-2026 §3.9), if valid")
		add(n.windows, unitOne, 0, 24, "valid "+p.String()+" 8-h means among the local day's windows")
	}
	for _, p := range []Pollutant{O3, SO2, NO2} {
		c := must(reading.Lookup(p.Quantity()))
		add(byPollutant[p].max1, c.Unit, c.Min, c.Max, p.String()+" largest valid 1-h mean of the local day")
	}
	for _, p := range []Pollutant{PM10, PM25} {
		c := must(reading.Lookup(p.Quantity()))
		add(byPollutant[p].nowcast, c.Unit, c.Min, c.Max, p.String()+" US NowCast of the 12 hourly means up to the end of the hour")
	}
	for _, k := range []Kind{Hourly, Daily} {
		for _, item := range AllItems() {
			add(iaqiName(item, k), unitOne, 0, 10000, "individual AQI of "+item.String()+" in the "+k.String()+" report")
		}
	}
	for _, k := range []Kind{Hourly, Daily} {
		n := reportNames[k]
		add(n[0], unitOne, 0, 10000, k.String()+" AQI (largest IAQI), when publishable")
		add(n[1], unitOne, 1, 6, k.String()+" AQI level, 1 to 6")
		add(n[2], unitOne, 0, 127, k.String()+" primary pollutants: sum of item codes, 0 none (air.Codes)")
		add(n[3], unitOne, 0, 127, k.String()+" over-standard pollutants (HJ 633-2012, IAQI > 100): sum of item codes")
	}
	add(QuantityGoodDay, unitOne, 0, 1, "1 if the daily AQI is 100 or less (优良天), else 0")
	for i, per := range []struct{ name, rule string }{
		{"month", "27 valid daily values, 25 in February [U]"},
		{"year", "324 valid daily values and the monthly minimum in each month"},
	} {
		n, most := periodNames[i], float64(31)
		if i == 1 {
			most = 366
		}
		for _, p := range meanPollutants {
			c := must(reading.Lookup(p.Quantity()))
			add(n.mean[p], c.Unit, c.Min, c.Max, p.String()+" mean of the valid daily means of the local "+per.name+" (HJ 663), if "+per.rule)
		}
		co, o3 := must(reading.Lookup(CO.Quantity())), must(reading.Lookup(O3.Quantity()))
		add(n.coP95, co.Unit, co.Min, co.Max, "CO 95th percentile of the valid daily means of the local "+per.name+" (HJ 663), if "+per.rule)
		add(n.o3P90, o3.Unit, o3.Min, o3.Max, "O3 90th percentile of the valid daily largest 8-h means of the local "+per.name+" (HJ 663), if "+per.rule)
		for _, p := range Pollutants() {
			what := "valid " + p.String() + " daily means"
			if p == O3 {
				what = "valid O3 daily largest 8-h means"
			}
			add(n.days[p], unitDays, 0, most, what+" in the local "+per.name)
		}
		add(n.good, unitDays, 0, most, "days of the local "+per.name+" with a daily AQI of 100 or less (优良天数)")
		add(n.aqiDays, unitDays, 0, most, "days of the local "+per.name+" with a daily AQI (有效监测天数)")
		add(n.goodShare, unitPercent, 0, 100, "share of good days among the days with a daily AQI of the local "+per.name+", percent with one decimal (优良天数比例)")
	}
	return d
}()

func must(q reading.Quantity, ok bool) reading.Quantity {
	if !ok {
		panic("air: input quantity missing from the reading catalog")
	}
	return q
}

var derivedByName = func() map[string]reading.Quantity {
	m := make(map[string]reading.Quantity, len(derived))
	for _, q := range derived {
		m[q.Name] = q
	}
	return m
}()

// Quantities returns the catalog entries of the quantities the Aggregator derives, for
// the integrator to add to gateway/reading (Domain reading.Air). Ranges are "impossible
// beyond", like the catalog's: means share their raw quantity's range; indices stop at
// 10000, above what the catalog's largest concentrations give even extrapolated.
func Quantities() []reading.Quantity { return slices.Clone(derived) }
