package derive

import (
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/air"
	"github.com/envgate/envgate/gateway/reading"
)

// A recorded month of hourly readings replayed (ForReplay, Flush at the end as
// `envgate replay` does) gives the month's statistics, stamped with its first local
// midnight, as readings the catalog knows; a month the input ends in is not emitted.
//
// February 2026 (28 days) and 1–10 March, every hour: SO2 5, NO2 10, O3 50, PM10 20 µg/m³,
// CO 0.5 mg/m³, and PM2.5 30 µg/m³ in February, 80 in March. Every day is valid with a
// daily AQI of 43 (PM2.5 30: 30/35·50 = 42.9 → 43), good: 28 good days of 28, 100.0 %;
// the PM2.5 mean is 30.
func TestReplayMonthStatistics(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	s, err := New(Monitors{Air: []Air{{Config: air.Config{Site: "canal", Device: "aq-1", Sample: time.Hour, Location: cst}}}})
	if err != nil {
		t.Fatal(err)
	}
	s.ForReplay()
	feb1 := time.Date(2026, 2, 1, 0, 0, 0, 0, cst)
	mar1 := feb1.AddDate(0, 1, 0)
	var out []reading.Reading
	var last time.Time
	for at := feb1; at.Before(mar1.AddDate(0, 0, 10)); at = at.Add(time.Hour) {
		pm25 := 30.0
		if !at.Before(mar1) {
			pm25 = 80
		}
		for q, v := range map[string]float64{"so2": 5, "no2": 10, "o3": 50, "pm10": 20, "co": 0.5, "pm25": pm25} {
			out = s.Add(out, reading.New(at.UTC(), "canal", "aq-1", q, v))
		}
		last = at
	}
	out = s.Flush(out, last)
	got := map[string]reading.Reading{}
	for _, r := range out {
		if err := r.Validate(); err != nil {
			t.Errorf("derived reading %+v does not validate: %v", r, err)
		}
		if len(r.Quantity) > 4 && (r.Quantity[len(r.Quantity)-4:] == "_1mo" || r.Quantity[len(r.Quantity)-3:] == "_1y") {
			if !r.Time.Equal(feb1) {
				t.Errorf("%s at %v: only February has ended", r.Quantity, r.Time)
			}
			got[r.Quantity] = r
		}
	}
	for q, want := range map[string]float64{
		air.QuantityPM25Monthly: 30, air.QuantityPM25DaysMonthly: 28, air.QuantityCOP95Monthly: 0.5,
		air.QuantityO3P90Monthly: 50, air.QuantityGoodDaysMonthly: 28, air.QuantityAQIDaysMonthly: 28,
		air.QuantityGoodShareMonthly: 100,
	} {
		if r, ok := got[q]; !ok || r.Value != want {
			t.Errorf("%s = %+v (present %v), want %v", q, r, ok, want)
		}
	}
}
