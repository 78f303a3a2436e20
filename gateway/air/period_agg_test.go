package air

import (
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window/windowtest"
)

// hourly makes Config.Sample 1h: one reading stands for its whole hour.
func hourly(cfg *Config) { cfg.Sample = time.Hour }

var feb1 = time.Date(2026, 2, 1, 0, 0, 0, 0, cst)

// februaryStream is one reading an hour of every pollutant from 1 February 2026 00:00
// CST to 1 March 06:00, constant through each day d:
//
//	PM2.5  none on days 1–3; d µg/m³ on days 4–25; 100 on days 26–28; 5 on 1 March
//	CO     d/10 mg/m³
//	SO2 5, NO2 10, O3 50, PM10 20 µg/m³
func februaryStream() []reading.Reading { return februaryFrom(feb1) }

// februaryFrom is februaryStream from start on.
func februaryFrom(start time.Time) []reading.Reading {
	var rs []reading.Reading
	for t := start; t.Before(feb1.AddDate(0, 1, 0).Add(7 * time.Hour)); t = t.Add(time.Hour) {
		d := t.Day()
		if t.Month() == time.March {
			d = 0
		}
		rs = append(rs, raw(t, "so2", 5), raw(t, "no2", 10), raw(t, "o3", 50), raw(t, "pm10", 20), raw(t, "co", float64(max(d, 1))/10))
		switch {
		case d == 0:
			rs = append(rs, raw(t, "pm25", 5))
		case d >= 4 && d <= 25:
			rs = append(rs, raw(t, "pm25", float64(d)))
		case d >= 26:
			rs = append(rs, raw(t, "pm25", 100))
		}
	}
	return rs
}

// Worked example through the Aggregator, hourly readings over the end of February 2026
// (28 days, a short month); HJ 633-2026. February's statistics come out when its last
// day closes, stamped 1 February 00:00 CST; March, which the input ends in, is not
// emitted, not even at Flush (FlushTime of the last reading closes 1 March only).
//
//	PM2.5: 25 valid daily means (days 4–28) = February's minimum: valid.
//	       sum = (4 + … + 25) + 3·100 = (325 − 6) + 300 = 619;  mean = 619/25 = 24.76
//	CO:    28 daily means 0.1 … 2.8;  k = 1 + 27·0.95 = 26.65, s = 26
//	       P95 = x(26) + (x(27) − x(26))·0.65 = 2.6 + 0.1·0.65 = 2.665 mg/m³
//	O3:    every day's largest 8-h mean is 50: P90 = 50, 28 days
//	AQI:   days 1–3 have no PM2.5, and HJ 633-2026 publishes an AQI with a planned
//	       pollutant missing only above 100: no AQI. Days 4–25: PM2.5 ≤ 25 (IAQI ≤ 36),
//	       CO ≤ 2.5 (IAQI ≤ 63): good. Days 26–28: PM2.5 100, IAQI 100 + 40/55·50 → 137.
//	       good days 22 of 25 days with an AQI: 22/25 = 88.0 %
func TestAggregatorMonthStatistics(t *testing.T) {
	a := newAgg(t, hourly)
	rs := februaryStream()
	var out []reading.Reading
	for _, r := range rs {
		out = append(out, a.Add(r)...)
	}
	out = append(out, a.Tick(a.FlushTime(rs[len(rs)-1].Time))...)
	set := collect(t, nil, out)
	g := reading.Good
	set.want(t, QuantityPM25Monthly, feb1, 24.76, g)
	set.want(t, QuantityPM25DaysMonthly, feb1, 25, g)
	set.want(t, QuantityCOP95Monthly, feb1, 2.665, g)
	set.want(t, QuantityCODaysMonthly, feb1, 28, g)
	set.want(t, QuantityO3P90Monthly, feb1, 50, g)
	set.want(t, QuantityO3DaysMonthly, feb1, 28, g)
	set.want(t, QuantitySO2Monthly, feb1, 5, g)
	set.want(t, QuantityNO2Monthly, feb1, 10, g)
	set.want(t, QuantityPM10DaysMonthly, feb1, 28, g)
	set.want(t, QuantityPM10Monthly, feb1, 20, g)
	set.want(t, QuantityGoodDaysMonthly, feb1, 22, g)
	set.want(t, QuantityAQIDaysMonthly, feb1, 25, g)
	set.want(t, QuantityGoodShareMonthly, feb1, 88, g)
	for k := range set {
		if strings.Contains(k, "_1mo@") && !strings.HasSuffix(k, "@"+feb1.UTC().Format(time.RFC3339)) || strings.Contains(k, "_1y@") {
			t.Errorf("%s emitted: only February has ended", k)
		}
	}
	// The CO P95 is the decimal 2.665 exactly, not merely within 1e-9.
	if r := set[key(QuantityCOP95Monthly, feb1)]; r.Value != 2.665 {
		t.Errorf("co_p95_1mo = %v, want exactly 2.665", r.Value)
	}
}

// The ledger survives a restart: the state saved after 14 February closed, restored into
// a new Aggregator that receives the rest, gives the same February statistics as an
// uninterrupted run; and a restored ledger with February already emitted does not emit
// it again when the last days are derived once more.
func TestAggregatorLedgerRestart(t *testing.T) {
	rs := februaryStream()
	monthly := func(out []reading.Reading) string {
		var keep []reading.Reading
		for _, r := range out {
			if strings.HasSuffix(r.Quantity, "_1mo") {
				keep = append(keep, r)
			}
		}
		return windowtest.Format(keep)
	}
	want := monthly(feed(newAgg(t, hourly), rs))
	if want == "" {
		t.Fatal("the uninterrupted run emitted no monthly statistics")
	}

	split := feb1.AddDate(0, 0, 14) // 15 February 00:00
	first := newAgg(t, hourly)
	var before, after []reading.Reading
	for _, r := range rs {
		if r.Time.Before(split) {
			before = append(before, r)
		} else {
			after = append(after, r)
		}
	}
	feed(first, append(before, after[0])) // the first reading after the split closes the 14th
	saved := first.Ledger()

	second := newAgg(t, hourly)
	if err := second.RestoreLedger(saved); err != nil {
		t.Fatalf("RestoreLedger(Ledger()) = %v", err)
	}
	if got := monthly(feed(second, after)); got != want {
		t.Errorf("after a restart:\n%s\nwant:\n%s", got, want)
	}

	third := newAgg(t, hourly)
	if err := third.RestoreLedger(second.Ledger()); err != nil {
		t.Fatal(err)
	}
	if got := monthly(feed(third, after)); got != "" {
		t.Errorf("February emitted again after restoring a ledger that had emitted it:\n%s", got)
	}
	if err := third.RestoreLedger([]byte("EGAL\x07")); err == nil || !strings.Contains(err.Error(), "version 7") {
		t.Errorf("RestoreLedger(version 7) = %v", err)
	}
}

// feed adds rs to a and ticks it at the flush time of the last one.
func feed(a *Aggregator, rs []reading.Reading) []reading.Reading {
	var out []reading.Reading
	for _, r := range rs {
		out = append(out, a.Add(r)...)
	}
	return append(out, a.Tick(a.FlushTime(rs[len(rs)-1].Time))...)
}

// A whole year of hourly PM2.5 (plan: PM2.5 only) through the Aggregator: 2026, every
// hour at 10·m µg/m³ in month m (the worked example of TestYearStatsMean): the yearly
// mean 65.2602739726027, 365 valid days, emitted once when 31 December closes, stamped
// 1 January 00:00 CST, after December's statistics; each month's mean is 10·m.
func TestAggregatorYearStatistics(t *testing.T) {
	if testing.Short() {
		t.Skip("a year of hourly readings")
	}
	a := newAgg(t, func(cfg *Config) { hourly(cfg); cfg.Method.Plan = []Pollutant{PM25} })
	jan1 := time.Date(2026, 1, 1, 0, 0, 0, 0, cst)
	var out []reading.Reading
	for at := jan1; at.Year() == 2026; at = at.Add(time.Hour) {
		out = append(out, a.Add(raw(at, "pm25", 10*float64(at.Month())))...)
	}
	out = append(out, a.Tick(a.FlushTime(jan1.AddDate(1, 0, 0).Add(-time.Hour)))...)
	set := collect(t, nil, out)
	set.want(t, QuantityPM25Yearly, jan1, 65.2602739726027, reading.Good)
	set.want(t, QuantityPM25DaysYearly, jan1, 365, reading.Good)
	set.want(t, QuantityAQIDaysYearly, jan1, 365, reading.Good)
	for m := time.January; m <= time.December; m++ {
		set.want(t, QuantityPM25Monthly, time.Date(2026, m, 1, 0, 0, 0, 0, cst), 10*float64(m), reading.Good)
	}
	if n := set.count(QuantityPM25Yearly); n != 1 {
		t.Errorf("%d yearly means, want 1", n)
	}
	// good days: PM2.5 ≤ 60 (IAQI ≤ 100) in January to June: 181 days; 181/365 = 49.589… → 49.6 %
	set.want(t, QuantityGoodDaysYearly, jan1, 181, reading.Good)
	set.want(t, QuantityGoodShareYearly, jan1, 49.6, reading.Good)
	if last := out[len(out)-1]; last.Quantity != QuantityGoodShareYearly {
		t.Errorf("last derived reading %s, want the year's share after December's statistics", last.Quantity)
	}
}
