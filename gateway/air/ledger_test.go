package air

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func periodNamesOf(ps []Period) string {
	var s []string
	for _, p := range ps {
		if p.Month == 0 {
			s = append(s, fmt.Sprint(p.Year))
		} else {
			s = append(s, fmt.Sprintf("%d-%02d", p.Year, int(p.Month)))
		}
	}
	return strings.Join(s, " ")
}

// pmDay is a Day of date d with a PM2.5 daily mean and a daily AQI.
func pmDay(y int, m time.Month, d int, pm25, aqi float64) Day {
	day := NoDay(Date{y, m, d})
	day.Mean[PM25], day.AQI = pm25, aqi
	return day
}

// A month is returned when its last day is recorded, once: recording that day again
// (a redelivery, a day derived again after a restart) replaces the day and returns
// nothing. A year comes after its December.
func TestLedgerEmitsEachPeriodOnce(t *testing.T) {
	l := NewLedger()
	record := func(d Day, want string) {
		t.Helper()
		if got := periodNamesOf(l.Record(d, Validity{})); got != want {
			t.Errorf("Record(%v) returned %q, want %q", d.Date, got, want)
		}
	}
	for i := 1; i < 31; i++ {
		record(pmDay(2026, time.December, i, 10, 30), "")
	}
	record(pmDay(2026, time.December, 31, 10, 30), "2026-12 2026")
	record(pmDay(2026, time.December, 31, 20, 30), "")
	record(pmDay(2027, time.January, 1, 10, 30), "")
	record(pmDay(2026, time.December, 15, 10, 30), "")
	if n := len(l.Days()); n != 32 {
		t.Errorf("%d days kept, want 32", n)
	}
}

// June ends with June 30, and its statistics are those of its days.
func TestLedgerMonthEndsWithItsLastDay(t *testing.T) {
	l := NewLedger()
	var got []Period
	for i := 1; i <= 30; i++ {
		got = append(got, l.Record(pmDay(2026, time.June, i, float64(i), 50), Validity{})...)
	}
	if len(got) != 1 || got[0].Year != 2026 || got[0].Month != time.June {
		t.Fatalf("June: got %q, want 2026-06", periodNamesOf(got))
	}
	// Σ 1..30 = 465, / 30 = 15.5
	wantAvg(t, "June PM2.5", got[0].Stats.Mean[PM25], 15.5, 30, true)
}

// A month whose last day the Aggregator never closed (its clock jumped more than
// maxEmptyHours) is returned with the first later day; a month without any day is not
// returned at all.
func TestLedgerMonthEndedByLaterDay(t *testing.T) {
	l := NewLedger()
	l.Record(pmDay(2026, time.January, 15, 10, 30), Validity{})
	if got := periodNamesOf(l.Record(pmDay(2026, time.March, 3, 10, 30), Validity{})); got != "2026-01" {
		t.Errorf("a day in March returned %q, want 2026-01", got)
	}
}

// The Ledger keeps the latest date's year and the year before: older days are dropped
// and a day that old is ignored.
func TestLedgerRetention(t *testing.T) {
	l := NewLedger()
	l.Record(pmDay(2024, time.May, 1, 10, 30), Validity{})
	if got := periodNamesOf(l.Record(pmDay(2025, time.May, 1, 10, 30), Validity{})); got != "2024-05 2024" {
		t.Errorf("a day of 2025 returned %q", got)
	}
	if got := periodNamesOf(l.Record(pmDay(2026, time.May, 1, 10, 30), Validity{})); got != "2025-05 2025" {
		t.Errorf("jump to 2026 returned %q", got)
	}
	if got := l.Record(pmDay(2024, time.December, 31, 10, 30), Validity{}); got != nil {
		t.Errorf("a day of 2024 in 2026 returned %v, want nothing", got)
	}
	days := l.Days()
	if len(days) != 2 || days[0].Date != (Date{2025, time.May, 1}) {
		t.Errorf("kept %v, want 2025-05-01 and 2026-05-01", days)
	}
	b, _ := l.MarshalBinary()
	if _, err := decodeLedger(b); err != nil {
		t.Errorf("the state after dropping does not decode: %v", err)
	}
}

// The binary form round-trips, and a restored Ledger does not return a month again.
func TestLedgerMarshalRoundTrip(t *testing.T) {
	l := NewLedger()
	for i := 1; i <= 31; i++ {
		d := pmDay(2026, time.January, i, 10.1*float64(i), float64(i*3))
		d.Mean[CO], d.O3Max8h = 0.1*float64(i), 100
		if i%7 == 0 {
			d.Suspect = 1<<PM25 | SuspectAQI
			d.AQI = math.NaN()
			d.Suspect &^= SuspectAQI
		}
		l.Record(d, Validity{})
	}
	l.Record(pmDay(2026, time.February, 1, 5, 20), Validity{})
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var r Ledger
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary(MarshalBinary()) = %v", err)
	}
	b2, _ := r.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Errorf("round trip changed the state:\n%x\n%x", b, b2)
	}
	if got := fmt.Sprint(r.Days()); got != fmt.Sprint(l.Days()) {
		t.Errorf("restored days %s, want %s", got, fmt.Sprint(l.Days()))
	}
	if got := r.Record(pmDay(2026, time.January, 31, 10, 30), Validity{}); got != nil {
		t.Errorf("restored ledger returned January again: %q", periodNamesOf(got))
	}
	var empty Ledger
	if err := empty.UnmarshalBinary(must2(NewLedger().MarshalBinary())); err != nil || len(empty.Days()) != 0 {
		t.Errorf("empty round trip: %v, %d days", err, len(empty.Days()))
	}
}

func must2(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// ledgerSample is a small valid state: two days, the first with every figure, a
// returned month and year.
func ledgerSample() []byte {
	l := NewLedger()
	d := NoDay(Date{2026, time.December, 31})
	d.Mean = [nPollutants]float64{1, 2, 0.5, 4, 5, 6}
	d.O3Max8h, d.AQI, d.Suspect = 150, 75, 1<<PM10|SuspectAQI
	l.Record(d, Validity{})
	l.Record(pmDay(2027, time.January, 2, 3.5, 10), Validity{})
	return must2(l.MarshalBinary())
}

// twoDays encodes a state of two days (with a PM2.5 mean and an AQI) as they are.
func twoDays(a, b Date) []byte {
	enc := func(d Date) []byte {
		l := NewLedger()
		l.Record(pmDay(d.Year, d.Month, d.Day, 1, 1), Validity{})
		e := must2(l.MarshalBinary())
		return e[6 : len(e)-2] // the day, without the header, the count and the empty lists
	}
	out := append([]byte("EGAL\x01\x02"), enc(a)...)
	return append(append(out, enc(b)...), 0, 0)
}

// A corrupt state is refused with an error naming the byte and the problem, wrapping
// ErrCorruptLedger, and the Ledger keeps its state.
func TestLedgerCorrupt(t *testing.T) {
	good := ledgerSample()
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "at byte 0: header: truncated"},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), `at byte 0: not an air ledger`},
		{"version", mod(func(b []byte) []byte { b[4] = 9; return b }), "at byte 4: version 9, this gateway reads 1"},
		{"month 13", mod(func(b []byte) []byte { b[8] = 13; return b }), "at byte 6: day 1: 2026-13-31 is not a date"},
		{"truncated", good[:len(good)-3], "truncated"},
		{"trailing", append(bytes.Clone(good), 0), "1 bytes after the end"},
		{"unknown flag", mod(func(b []byte) []byte { b[11] = 0x80; return b }), "day 1: flags"},
		{"NaN figure", mod(func(b []byte) []byte {
			copy(b[14:22], []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f})
			return b
		}), "at byte 14: day 1: figure 0 is NaN"},
		{"same day twice", twoDays(Date{2026, time.March, 2}, Date{2026, time.March, 2}), "day 2: 2026-03-02 does not follow 2026-03-02"},
		{"three years", twoDays(Date{2024, time.March, 2}, Date{2026, time.March, 2}), "at byte 6: day 1: 2024-03-02 is more than a year before the last day 2026-03-02"},
	} {
		l := NewLedger()
		l.Record(pmDay(2020, time.May, 5, 1, 1), Validity{})
		err := l.UnmarshalBinary(c.b)
		if !errors.Is(err, ErrCorruptLedger) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: UnmarshalBinary = %v, want ErrCorruptLedger with %q", c.name, err, c.want)
		}
		if days := l.Days(); len(days) != 1 || days[0].Date.Year != 2020 {
			t.Errorf("%s: a refused state changed the Ledger: %v", c.name, days)
		}
	}
}

// FuzzLedger: UnmarshalBinary never panics; what it accepts marshals to a form that
// decodes to the same state (re-encoding is stable), with at most two years of days.
func FuzzLedger(f *testing.F) {
	f.Add(ledgerSample())
	f.Add(must2(NewLedger().MarshalBinary()))
	f.Add([]byte("EGAL\x01"))
	f.Add([]byte("EGAL\x01\x01\xea\x0f\x0c\x1f\xff\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Ledger
		if err := l.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrCorruptLedger) {
				t.Fatalf("UnmarshalBinary(%x) = %v, not ErrCorruptLedger", b, err)
			}
			return
		}
		days := l.Days()
		if len(days) > maxLedgerDays || len(days) > 0 && days[len(days)-1].Date.Year-days[0].Date.Year > 1 {
			t.Fatalf("UnmarshalBinary(%x) accepted %d days over more than two years", b, len(days))
		}
		e1 := must2(l.MarshalBinary())
		var r Ledger
		if err := r.UnmarshalBinary(e1); err != nil {
			t.Fatalf("re-encoding of %x does not decode: %v", b, err)
		}
		if e2 := must2(r.MarshalBinary()); !bytes.Equal(e1, e2) {
			t.Fatalf("re-encoding is not stable:\n%x\n%x", e1, e2)
		}
	})
}
