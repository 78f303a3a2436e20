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
	m.ExpireSeries(time.Hour, func(device string) bool { return device == "noise-1" })
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

// ExpireSeries(0, nil) keeps every series for good, as before issue 10.
func TestSeriesNoExpiry(t *testing.T) {
	now := time.Now()
	m := New()
	m.now = func() time.Time { return now }
	m.ExpireSeries(0, nil)
	m.ObserveReading(reading.New(now, "s", "d", "la", 50))
	now = now.Add(1000 * time.Hour)
	if got := countSeries(scrapeText(t, m), "envgate_reading_value"); got != 1 {
		t.Errorf("%d series, want 1", got)
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
