// Package air is the air-quality maths of envgate: validity-checked averages
// (GB 3095-2026), the AQI of HJ 633-2026, HJ 633-2012 and the US EPA (2024) as pure
// functions, unit conversion at the edge, and an Aggregator that turns one air device's
// raw pm25, pm10, so2, no2, o3 and co readings into hourly and daily series and AQI
// reports.
//
// Section references (§2.x) are to the project's domain reference, docs/standards.md; [T],
// [S] and [U] are its confidence tags, and every [U] fact is configuration here.
//
// # Editions
//
// Edition selects the method: HJ633_2026 (the zero value, "cn-2026", in force since
// 2026-03-01), HJ633_2012 ("cn-2012", for historical data) and USEPA2024 ("us-2024").
// IAQI rates one concentration, Report a whole hourly or daily report. The Chinese
// editions take µg/m³ (CO mg/m³), the US one ppm for O3 and CO, ppb for SO2 and NO2,
// µg/m³ for PM (Edition.Unit).
//
//	step                  HJ 633-2026                    HJ 633-2012          US EPA 2024
//	concentration         GB/T 8170 to an integer,       as is                truncated: O3 ppm 3 decimals,
//	                      CO to 1 decimal (§4.2.2/4.2.3)                      PM2.5, CO 1, PM10, SO2, NO2 0
//	formula               linear between breakpoints, exact rational arithmetic (§2.2)
//	index rounding        ceiling (全部向上进位取整数)     ceiling              nearest, .5 up
//	SO2 1-h above table   IAQI 200 (> 800 µg/m³)         use the 24-h mean    ≥ 305 ppb: use the 24-h mean;
//	                                                                          24-h < 305 ppb → 200
//	O3 8-h above table    IAQI 300 (> 800 µg/m³)         use the 1-h item     > 0.200 ppm: use the 1-h item
//	above the 500 point   Method.AboveTop: 500 (default) or extrapolate [U]   the 301–500 segment extended
//	over-standard items   —                              IAQI > 100           —
//	AQI with data missing published only if > 100 (§5.3) from what there is  from what there is
//
// Index.BeyondScale marks every value set by a rule above a table.
//
// # Reports
//
// A report has items, each a pollutant at an averaging time (O3 has two, named by it:
// O3_1h and O3_8h, §2.6), each reading one key of Concentrations. In an hourly report
// "1h" is the hour's mean and "8h", "24h" the moving means ending with the hour; in a
// daily report "1h" is the day's largest 1-h mean, "8h" the day's largest 8-h mean and
// "24h" the daily mean (§2.4, §2.10):
//
//	item    2026 hourly  2026 daily  2012 hourly  2012 daily  US hourly     US daily
//	SO2     1h           24h         1h (→24h)    24h         1h (→24h)     1h max (→24h)
//	NO2     1h           24h         1h           24h         1h            1h max
//	CO      1h           24h         1h           24h         8h            8h max
//	O3_1h   1h           —           1h           1h max      1h if ≥ 0.125 ppm (optional)
//	O3_8h   —            8h max      8h           8h max      8h            8h max
//	PM10    1h (24-h columns)  24h   24h          24h         NowCast       24h
//	PM2.5   1h (24-h columns)  24h   24h          24h         NowCast       24h
//
// AQI is the largest IAQI; the primary pollutants are the items at the AQI when it is
// above 50, all of them on a tie; the level (1–6), Chinese and English category and
// colour come from Level.Category (the US purple is 143,63,151, China's 153,0,76).
// Method.Plan is the site's monitoring plan: items of other pollutants are "/", neither
// rated nor missing.
//
// Item codes, for the numeric primary_* and over_* series (a Reading value is a
// float64): the sum of the codes of the items, 0 for none. Codes lists them and
// Items.String names any sum:
//
//	code  item
//	0     — (none: AQI ≤ 50)
//	1     SO2
//	2     NO2
//	4     CO
//	8     O3_1h
//	16    O3_8h
//	32    PM10
//	64    PM2.5     (a tie of PM2.5 and O3_8h is 80)
//
// # Validity
//
// GB 3095-2026 Table 4 [T] (§2.8), the defaults of Validity: a 1-h mean needs 45 min of
// sampling in its hour (Table 4 has no 1-h row for PM; the same rule is applied), a
// daily mean 20 valid hourly means of its local calendar day (also applied to 24-h
// moving means and a day's largest 1-h mean), an 8-h mean 6 of its 8 hourly means.
// Means are arithmetic means of the valid values. [U], configurable: a day's largest
// 8-h mean is taken over the windows starting 00:00 to 16:00 local time (ending 08:00
// to 24:00) and needs 14 valid 8-h means among them (HJ 663-2013 as commonly cited; not
// read).
//
// The minutes of sampling of an hour are the union of [Time, Time+Config.Sample) of its
// samples, counted in whole seconds, so Config.Sample must be the poll interval.
//
// Insufficient data means no value: a mean, NowCast, IAQI or AQI that is not valid is
// not emitted, never emitted as a guess. It is flagged explicitly by count series that
// are emitted for every closed window whatever the data: <p>_minutes_1h (minutes of
// data in the hour), <p>_hours_1d (valid hourly means of the day) and <p>_8h_windows_1d
// (valid 8-h means among the day's windows). So "pm25_1h missing, pm25_minutes_1h = 30"
// reads "30 minutes of data: not a valid hour", and a missing count means the gateway
// did not run. Quality is a separate axis: a derived reading is Suspect when a Suspect
// raw reading went into it (through every mean and index built on it), else Good.
// Means are exact: the samples are summed as their shortest decimals (what the sensor
// sent) in integers, and the mean is rounded by GB/T 8170 to MeanDigits (15)
// significant digits, the most a float64 holds exactly, so a day of CO 4.45 has the
// daily mean 4.45 and not 4.450000000000002 (which HJ 633-2026 would round to 4.5,
// IAQI 103 instead of 102). The NowCast is exact rational arithmetic, rounded alike.
// Beyond that only the AQI computation rounds, as each edition requires.
//
// # Derived quantities
//
// The Aggregator emits these readings (Quantities gives their catalog entries, Domain
// air). Time is the start of the window: the clock hour, the local midnight of the day,
// the first hour of a moving window (HJ 663 labels 8-h values by their end; the data
// model labels by the start, so o3_8h at 10:00 covers 10:00–18:00). Hourly reports and
// NowCasts are stamped with the start of their hour. <p> is so2, no2, co, o3, pm10,
// pm25 (those of the plan); <item> is so2, no2, co, o3 (the O3_1h item), o3_8h, pm10,
// pm25.
//
//	name               unit        per                    editions  meaning
//	<p>_minutes_1h     min         clock hour, always     all       minutes of sampling in the hour
//	<p>_1h             ug/m3¹      clock hour             all       1-h mean, if ≥ 45 min
//	<p>_24h            ug/m3¹      clock hour             all       24-h moving mean of the 24 hours from Time, if ≥ 20 valid
//	o3_8h              ug/m3       clock hour             all       8-h moving mean of the 8 hours from Time, if ≥ 6 valid
//	co_8h              mg/m3       clock hour             US        the same for CO
//	pm25_nowcast_1h    ug/m3       clock hour             US        NowCast of the 12 hours up to the hour's end (PM10 too)
//	iaqi_<item>_1h     1           clock hour             all²      IAQI of the item in the hourly report
//	aqi_1h             1           clock hour             all       hourly AQI, if publishable
//	aqi_level_1h       1           clock hour             all       its level 1–6
//	primary_1h         1           clock hour             all       its primary pollutants, code
//	over_1h            1           clock hour             2012      its over-standard pollutants, code
//	<p>_hours_1d       h           local day, always      all       valid hourly means of the day
//	<p>_1d             ug/m3¹      local day              all       daily mean, if ≥ 20 valid hours
//	o3_1h_max_1d       ug/m3       local day              2012, US  largest 1-h mean, if ≥ 20 valid hours
//	so2_1h_max_1d      ug/m3       local day              US        the same for SO2 (and no2_1h_max_1d)
//	o3_8h_windows_1d   1           local day, always      all       valid 8-h means among the day's windows
//	o3_8h_max_1d       ug/m3       local day              all       largest 8-h mean, if ≥ 14 valid windows
//	co_8h_windows_1d   1           local day, always      US        the same for CO (and co_8h_max_1d)
//	iaqi_<item>_1d     1           local day              all²      IAQI of the item in the daily report
//	aqi_1d             1           local day              all       daily AQI, if publishable
//	aqi_level_1d       1           local day              all       its level 1–6
//	primary_1d         1           local day              all       its primary pollutants, code
//	over_1d            1           local day              2012      its over-standard pollutants, code
//	good_day           1           local day              all       1 if aqi_1d ≤ 100, else 0; only with aqi_1d
//	<m>_1mo            ug/m3       local month            all       mean of the valid daily means, if ≥ 27 (Feb 25) [U]
//	co_p95_1mo         mg/m3       local month            all       95th percentile of the valid CO daily means, same rule
//	o3_8h_p90_1mo      ug/m3       local month            all       90th percentile of the valid o3_8h_max_1d, same rule
//	<p>_days_1mo       d           local month, always    all       valid daily means (o3_8h_days_1mo: o3_8h_max_1d)
//	good_days_1mo      d           local month, always    all       days with aqi_1d ≤ 100
//	aqi_days_1mo       d           local month, always    all       days with an aqi_1d
//	good_share_1mo     %           local month            all       good_days / aqi_days × 100, 1 decimal; if aqi_days > 0
//	..._1y                         local year             all       the same over the year; means and percentiles
//	                                                                need 324 valid days and each month's minimum
//
// ¹ CO in mg/m3. ² Only the items of the edition's report (table above). Series of the
// US method carry µg/m³ like the others; only the index computation converts to
// ppm/ppb.
//
// # Monthly and yearly statistics
//
// HJ 663 evaluates a site by month and year (§2.8, §2.9, §2.9a): the mean of the valid
// daily means of SO2, NO2, PM10 and PM2.5 (<m> above), the 95th percentile of the CO
// daily means, the 90th percentile of the O3 daily largest 8-h means, and the good days
// (daily AQI ≤ 100) with their share of the days that have a daily AQI. MonthStats and
// YearStats compute them from Day records, the valid daily figures of each closed day;
// Percentile interpolates (§2.9a, unlike the noise percentiles) and GoodShare rounds to
// one decimal by GB/T 8170, both exactly; means are exact like the others.
//
// Validity (Validity.MinDaysMonth, MinDaysFebruary, MinDaysYear): a month needs 27 valid
// daily values (25 in February) [U]; a year 324 and each month's minimum (GB 3095-2026
// Table 4 for the annual means; applied to the percentiles too [U]). A mean or percentile
// without them is not emitted; the counts (<p>_days_*, aqi_days_*) always are. The share
// needs only one day with an AQI (bulletins publish the share of any period; aqi_days
// says what it rests on).
//
// The Aggregator records every closed day in a Ledger (recording a date again replaces
// it) and emits a month's statistics when the month's last day closes, stamped with its
// first local midnight, and the year's after December's, stamped 1 January 00:00. Each
// month and year is emitted once: the Ledger remembers them. A month the data ends in
// is not emitted (a replay ending mid-month gives no partial month); a month that began
// before the data is emitted with counts showing its few days. The Ledger keeps the days
// of the latest year and the year before. Aggregator.Ledger and RestoreLedger save and
// restore it (a versioned binary form; a corrupt one is refused with ErrCorruptLedger
// naming the byte), so a restart mid-month loses no day.
//
// # Unit conversion
//
// Every raw reading is converted once, at the edge, to the catalog unit: µg/m³ for
// particulates and gases, mg/m³ for CO, gases at the GB 3095-2026 reference state
// 298.15 K and 1013.25 hPa [T] (§2.1). Convert accepts the catalog unit, mg/m³ ↔ µg/m³
// (×1000), and for gases ppb and ppm:
//
//	µg/m³ = ppb · M / Vm      mg/m³ = ppm · M / Vm      Vm = R·T/p = 24.4654 L/mol
//
// with M = 64.07 (SO2), 46.01 (NO2), 48.00 (O3), 28.01 (CO) g/mol (§2.10) and R =
// 8.314462618 J/(mol·K). So 1 ppb SO2 = 2.619 µg/m³, NO2 1.881, O3 1.962, and 1 ppm CO
// = 1.145 mg/m³. (The common 24.45 L/mol is the same state rounded; the difference is
// 0.06 %.) Reference makes the state configurable (GB 3095-2012 before 2018 used
// 273.15 K) and Express converts the other way, as the US tables need. An unknown unit
// is an error that names it and the units known for the quantity.
//
// Conversions are exact: the value as its shortest decimal times the factor as the
// fraction of the decimal constants (M·p/(R·T)), giving the float64 nearest the exact
// product. Express divides exactly and rounds to ConcentrationDigits (12) significant
// digits, and IAQI reads any concentration to 12 significant digits before its rounding
// or truncation: a conversion there and back is off by a few 1e-16, so 200 ppb of SO2,
// converted at the edge to 523.76… µg/m³, is 200 ppb again, not 199.99999999999997
// (truncated to 199 by the US method). No analyser resolves 12 digits.
package air
