package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// scrapeText serves /metrics once and returns the body.
func scrapeText(t *testing.T, m *Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Result().Body)
	return string(body)
}

// countSeries counts the samples of the metric name in a scrape.
func countSeries(text, name string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			n++
		}
	}
	return n
}

// Issue 10: every device name a publisher invents stayed in /metrics for good. A series
// not set for the expiry leaves (both gauges), unless its device is kept; the count and
// the expired total say so.
func TestSeriesExpire(t *testing.T) {
	now := time.Now()
	m := New()
	m.now = func() time.Time { return now }
	m.ExpireSeries(time.Hour, SeriesKeep{Device: func(site, device string) bool { return site == "canal-east" && device == "noise-1" }})
	m.ObserveReading(reading.New(now, "canal-east", "noise-1", "la", 55))
	for i := range 100 {
		m.ObserveReading(reading.New(now, "canal-east", fmt.Sprintf("x%d", i), "pm25", 10))
	}
	if got := countSeries(scrapeText(t, m), "envgate_reading_value"); got != 101 {
		t.Fatalf("before expiry: %d envgate_reading_value series, want 101", got)
	}
	now = now.Add(59 * time.Minute)
	m.ObserveReading(reading.New(now, "canal-east", "x0", "pm25", 11)) // x0 stays fresh
	now = now.Add(2 * time.Minute)
	m.ObserveReading(reading.New(now, "canal-east", "late", "pm25", 12))
	text := scrapeText(t, m)
	for name, want := range map[string]int{"envgate_reading_value": 3, "envgate_reading_timestamp_seconds": 3} {
		if got := countSeries(text, name); got != want {
			t.Errorf("after expiry: %d %s series, want %d (noise-1 kept, x0 and late fresh)", got, name, want)
		}
	}
	for _, want := range []string{"envgate_reading_series 3\n", "envgate_reading_series_expired_total 99\n",
		`device="noise-1"`, `device="x0"`, `device="late"`} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// A scrape alone sheds series once readings stop.
	now = now.Add(2 * time.Hour)
	if got := countSeries(scrapeText(t, m), "envgate_reading_value"); got != 1 {
		t.Errorf("after readings stopped: %d series, want 1 (the kept device)", got)
	}
}

// ExpireSeries(0, ...) keeps every series for good, as before issue 10.
func TestSeriesNoExpiry(t *testing.T) {
	now := time.Now()
	m := New()
	m.now = func() time.Time { return now }
	m.ExpireSeries(0, SeriesKeep{})
	m.ObserveReading(reading.New(now, "s", "d", "la", 50))
	now = now.Add(1000 * time.Hour)
	if got := countSeries(scrapeText(t, m), "envgate_reading_value"); got != 1 {
		t.Errorf("%d series, want 1", got)
	}
}

// Issue 10 review: the kept series were chosen by device name alone, so a configured
// device name at 300 sites a publisher invented stayed for good. Only the pair stays.
func TestSeriesKeepIsPerSite(t *testing.T) {
	now := time.Now()
	m := New()
	m.now = func() time.Time { return now }
	m.ExpireSeries(time.Hour, SeriesKeep{Device: func(site, device string) bool { return site == "canal-east" && device == "mast-1" }})
	m.ObserveReading(reading.New(now, "canal-east", "mast-1", "temperature", 5))
	for i := range 300 {
		m.ObserveReading(reading.New(now, fmt.Sprintf("s%d", i), "mast-1", "temperature", 5))
	}
	now = now.Add(2 * time.Hour)
	text := scrapeText(t, m)
	if got := countSeries(text, "envgate_reading_value"); got != 1 || !strings.Contains(text, `site="canal-east"`) {
		t.Errorf("%d series after expiry, want 1 (mast-1 at canal-east)", got)
	}
}

// Issue 10 review: a water analyser named by a topic template expired, and with it
// WaterParamSensorStale. The newest series of each averaged parameter at a water site
// stays; older ones of the same site and parameter, and other quantities, expire.
func TestSeriesKeepLatestWaterParameter(t *testing.T) {
	now := time.Now()
	m := New()
	m.now = func() time.Time { return now }
	m.ExpireSeries(time.Hour, SeriesKeep{Latest: func(site, q string) bool { return site == "river-in" && (q == "ph" || q == "do") }})
	for i := range 50 {
		m.ObserveReading(reading.New(now, "river-in", fmt.Sprintf("a%d", i), "ph", 7))
		now = now.Add(time.Second)
	}
	m.ObserveReading(reading.New(now, "river-in", "a0", "do", 8))
	m.ObserveReading(reading.New(now, "river-in", "a0", "temperature", 8))
	m.ObserveReading(reading.New(now, "elsewhere", "a0", "ph", 7))
	now = now.Add(30 * 24 * time.Hour)
	text := scrapeText(t, m)
	for _, want := range []string{`envgate_reading_timestamp_seconds{device="a49",quantity="ph",site="river-in"}`,
		`envgate_reading_timestamp_seconds{device="a0",quantity="do",site="river-in"}`} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if got := countSeries(text, "envgate_reading_value"); got != 2 {
		t.Errorf("%d series after a month, want 2 (newest ph and do at river-in)", got)
	}
}

// Issue 10 review: envgate_readings_invalid_total{device} never expired, so a publisher
// inventing device names with bad readings grew it without bound. Its series expire
// like latest-value series, except those of the device names kept.
func TestInvalidCountsExpire(t *testing.T) {
	now := time.Now()
	m := New()
	m.now = func() time.Time { return now }
	m.ExpireSeries(time.Hour, SeriesKeep{Name: func(device string) bool { return device == "air-1" }})
	m.CountInvalid("air-1", "invalid")
	for i := range 500 {
		m.CountInvalid(fmt.Sprintf("x%d", i), "reserved")
	}
	if got := countSeries(scrapeText(t, m), "envgate_readings_invalid_total"); got != 501 {
		t.Fatalf("%d invalid series, want 501", got)
	}
	now = now.Add(2 * time.Hour)
	if got := countSeries(scrapeText(t, m), "envgate_readings_invalid_total"); got != 1 {
		t.Errorf("%d invalid series after expiry, want 1 (air-1)", got)
	}
}

// BenchmarkObserveReading measures the cost of a latest-value update with expiry
// tracking, over 1000 series.
func BenchmarkObserveReading(b *testing.B) {
	m := New()
	rs := make([]reading.Reading, 1000)
	for i := range rs {
		rs[i] = reading.New(time.Now(), "s", fmt.Sprintf("d%d", i), "la", 50)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.ObserveReading(rs[i%len(rs)])
	}
}

// Issue 14: a series' gauges are kept with it, so that a reading does not hash its labels
// again. A series that expired and comes back, or whose unit changes, must get gauges
// that are in the exposition, not the removed ones.
func TestSeriesGaugesAfterExpiryAndUnitChange(t *testing.T) {
	now := time.Now()
	m := New()
	m.now = func() time.Time { return now }
	m.ExpireSeries(time.Hour, SeriesKeep{})
	m.ObserveReading(reading.New(now, "canal-east", "air-1", "pm25", 10))
	now = now.Add(2 * time.Hour)
	if got := countSeries(scrapeText(t, m), "envgate_reading_value"); got != 0 {
		t.Fatalf("after the expiry: %d series, want 0", got)
	}
	m.ObserveReading(reading.New(now, "canal-east", "air-1", "pm25", 17))
	text := scrapeText(t, m)
	if want := `envgate_reading_value{device="air-1",quantity="pm25",site="canal-east",unit="ug/m3"} 17`; !strings.Contains(text, want) {
		t.Fatalf("after the series came back, the scrape lacks %q:\n%s", want, text)
	}
	r := reading.New(now, "canal-east", "air-1", "pm25", 23)
	r.Unit = "mg/m3"
	m.ObserveReading(r)
	m.ObserveReading(reading.New(now, "canal-east", "air-1", "pm25", 29))
	text = scrapeText(t, m)
	if got := countSeries(text, "envgate_reading_value"); got != 1 {
		t.Fatalf("after two unit changes: %d series, want 1:\n%s", got, text)
	}
	if want := `envgate_reading_value{device="air-1",quantity="pm25",site="canal-east",unit="ug/m3"} 29`; !strings.Contains(text, want) {
		t.Fatalf("after two unit changes, the scrape lacks %q:\n%s", want, text)
	}
	if want := `envgate_reading_timestamp_seconds{device="air-1",quantity="pm25",site="canal-east"}`; countSeries(text, "envgate_reading_timestamp_seconds") != 1 || !strings.Contains(text, want) {
		t.Fatalf("the scrape lacks one %q:\n%s", want, text)
	}
}
