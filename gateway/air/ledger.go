package air

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// A Ledger keeps the closed days of one air device for the period statistics (Stats)
// and says when a month or a year has ended. It keeps the days of the latest recorded
// date's year and the year before, nothing older, and remembers which months and years
// it has returned, so none is returned twice. Its state survives a restart through
// MarshalBinary and UnmarshalBinary. It is not safe for concurrent use.
type Ledger struct {
	days   map[Date]Day
	months map[Date]bool // returned months, as their first day
	years  map[int]bool  // returned years
	latest Date          // latest recorded date; zero before the first
	// keep makes Record leave a recorded day alone: while days are derived again from
	// the part of the buffer a restart finds, whose first day is only partly there,
	// the restored ledger's days are the complete ones.
	keep bool
}

// Period is the statistics of an ended month (Month 1 to 12) or year (Month 0).
type Period struct {
	Year  int
	Month time.Month
	Stats Stats
}

// NewLedger returns an empty Ledger.
func NewLedger() *Ledger {
	return &Ledger{days: map[Date]Day{}, months: map[Date]bool{}, years: map[int]bool{}}
}

// Record stores d, replacing any day of the same date (a day derived again after a
// restart or a redelivery changes nothing), and returns the statistics of every month
// and year that has ended by the latest recorded date and was not returned before: a
// month ends with its last day. A month or year is computed from the days the Ledger
// holds, so one that began before the device's data did is returned with the counts
// (Average.N, AQIDays) showing how few days it had. In order: by end, a month before
// its year. A day with an impossible date, or of a year before the year preceding the
// latest, is ignored.
func (l *Ledger) Record(d Day, v Validity) []Period {
	if !d.Date.Valid() || !l.latest.IsZero() && d.Date.Year < l.latest.Year-1 {
		return nil
	}
	if _, ok := l.days[d.Date]; !ok || !l.keep {
		l.days[d.Date] = d
	}
	if l.latest.Before(d.Date) {
		l.latest = d.Date
	}
	var out []Period
	all := l.sortedDays()
	for _, m := range l.pendingMonths() {
		out = append(out, Period{Year: m.Year, Month: m.Month, Stats: MonthStats(m.Year, m.Month, all, v)})
		l.months[m] = true
	}
	for _, y := range l.pendingYears() {
		out = append(out, Period{Year: y, Stats: YearStats(y, all, v)})
		l.years[y] = true
	}
	slices.SortStableFunc(out, func(a, b Period) int {
		ea, eb := a.end(), b.end()
		switch {
		case ea.Before(eb):
			return -1
		case eb.Before(ea):
			return 1
		}
		return 0 // a month is appended before its year
	})
	l.drop()
	return out
}

// end returns the last date of p.
func (p Period) end() Date {
	if p.Month == 0 {
		return Date{p.Year, time.December, 31}
	}
	return Date{p.Year, p.Month, daysIn(p.Year, p.Month)}
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

func (l *Ledger) sortedDays() []Day {
	days := make([]Day, 0, len(l.days))
	for _, d := range l.days {
		days = append(days, d)
	}
	slices.SortFunc(days, func(a, b Day) int { return cmpDate(a.Date, b.Date) })
	return days
}

func cmpDate(a, b Date) int {
	switch {
	case a.Before(b):
		return -1
	case b.Before(a):
		return 1
	}
	return 0
}

// pendingMonths returns, ascending, the months with a recorded day that have ended by
// the latest date and were not returned yet.
func (l *Ledger) pendingMonths() []Date {
	seen := map[Date]bool{}
	var ms []Date
	for d := range l.days {
		m := Date{d.Year, d.Month, 1}
		if seen[m] || l.months[m] {
			continue
		}
		seen[m] = true
		if end := (Date{m.Year, m.Month, daysIn(m.Year, m.Month)}); !l.latest.Before(end) {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, cmpDate)
	return ms
}

// pendingYears is pendingMonths for years.
func (l *Ledger) pendingYears() []int {
	var ys []int
	for d := range l.days {
		if !l.years[d.Year] && !slices.Contains(ys, d.Year) && !l.latest.Before(Date{d.Year, time.December, 31}) {
			ys = append(ys, d.Year)
		}
	}
	slices.Sort(ys)
	return ys
}

// drop forgets the days and returned periods of the years before the one preceding
// the latest date.
func (l *Ledger) drop() {
	oldest := l.latest.Year - 1
	for d := range l.days {
		if d.Year < oldest {
			delete(l.days, d)
		}
	}
	for m := range l.months {
		if m.Year < oldest {
			delete(l.months, m)
		}
	}
	for y := range l.years {
		if y < oldest {
			delete(l.years, y)
		}
	}
}

// Days returns the recorded days, ascending by date.
func (l *Ledger) Days() []Day { return l.sortedDays() }

// ErrCorruptLedger is wrapped by the error of UnmarshalBinary for state it cannot use.
var ErrCorruptLedger = errors.New("corrupt air ledger")

// The binary form of a Ledger, version 1, little-endian:
//
//	"EGAL" 0x01
//	uvarint n, then n days ascending by date, each:
//	    uvarint year, byte month, byte day,
//	    uint16 present (bit p: Mean[p], bit 6: O3Max8h, bit 7: AQI), uint16 suspect (⊆ present),
//	    a float64 (IEEE 754 bits) for each present figure in bit order
//	uvarint n, then n returned months ascending: uvarint year, byte month
//	uvarint n, then n returned years ascending: uvarint year
//
// Returned months and years lie in the two years the days may span.
const (
	ledgerMagic   = "EGAL"
	ledgerVersion = 1
	// maxLedgerDays bounds the days of a decoded Ledger: two years.
	maxLedgerDays = 2 * 366
	nFigures      = nPollutants + 2 // the means, O3Max8h, AQI
)

// MarshalBinary encodes the Ledger (encoding.BinaryMarshaler); the error is always nil.
func (l *Ledger) MarshalBinary() ([]byte, error) {
	b := append([]byte(ledgerMagic), ledgerVersion)
	days := l.sortedDays()
	b = binary.AppendUvarint(b, uint64(len(days)))
	for _, d := range days {
		b = binary.AppendUvarint(b, uint64(d.Date.Year))
		b = append(b, byte(d.Date.Month), byte(d.Date.Day))
		figs := d.figures()
		var present uint16
		for i, f := range figs {
			if isFinite(f) {
				present |= 1 << i
			}
		}
		b = binary.LittleEndian.AppendUint16(b, present)
		b = binary.LittleEndian.AppendUint16(b, d.Suspect&present)
		for i, f := range figs {
			if present&(1<<i) != 0 {
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
			}
		}
	}
	var months []Date
	for m := range l.months {
		months = append(months, m)
	}
	slices.SortFunc(months, cmpDate)
	b = binary.AppendUvarint(b, uint64(len(months)))
	for _, m := range months {
		b = binary.AppendUvarint(b, uint64(m.Year))
		b = append(b, byte(m.Month))
	}
	var years []int
	for y := range l.years {
		years = append(years, y)
	}
	slices.Sort(years)
	b = binary.AppendUvarint(b, uint64(len(years)))
	for _, y := range years {
		b = binary.AppendUvarint(b, uint64(y))
	}
	return b, nil
}

// figures returns the Day's figures in the bit order of the binary form.
func (d Day) figures() [nFigures]float64 {
	var f [nFigures]float64
	copy(f[:], d.Mean[:])
	f[nPollutants], f[nPollutants+1] = d.O3Max8h, d.AQI
	return f
}

// UnmarshalBinary replaces the Ledger's state with the decoded b
// (encoding.BinaryUnmarshaler). An error wraps ErrCorruptLedger, says at which byte
// what is wrong, and leaves the Ledger unchanged.
func (l *Ledger) UnmarshalBinary(b []byte) error {
	n, err := decodeLedger(b)
	if err != nil {
		return err
	}
	*l = *n
	return nil
}

// ledgerReader reads the binary form, remembering the first problem.
type ledgerReader struct {
	b   []byte
	off int
	err error
}

func (r *ledgerReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", ErrCorruptLedger, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *ledgerReader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("%s: truncated or overlong number", what)
		return 0
	}
	if v > max {
		r.fail("%s: %d is more than %d", what, v, max)
		return 0
	}
	r.off += n
	return v
}

func (r *ledgerReader) bytes(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b)-r.off < n {
		r.fail("%s: truncated", what)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *ledgerReader) date(what string, withDay bool) Date {
	at := r.off
	d := Date{Year: int(r.uvarint(what+" year", 9999))}
	n := 1
	if withDay {
		n = 2
	}
	p := r.bytes(what+" date", n)
	if r.err != nil {
		return Date{}
	}
	d.Month, d.Day = time.Month(p[0]), 1
	if withDay {
		d.Day = int(p[1])
	}
	if !d.Valid() {
		r.off = at
		r.fail("%s: %04d-%02d-%02d is not a date", what, d.Year, int(d.Month), d.Day)
	}
	return d
}

func decodeLedger(b []byte) (*Ledger, error) {
	r := &ledgerReader{b: b}
	if h := r.bytes("header", len(ledgerMagic)+1); r.err == nil {
		if string(h[:len(ledgerMagic)]) != ledgerMagic {
			r.off = 0
			r.fail("not an air ledger (header %q, want %q)", h[:len(ledgerMagic)], ledgerMagic)
		} else if h[len(ledgerMagic)] != ledgerVersion {
			r.off = len(ledgerMagic)
			r.fail("version %d, this gateway reads %d", h[len(ledgerMagic)], ledgerVersion)
		}
	}
	l := NewLedger()
	nd := r.uvarint("number of days", maxLedgerDays)
	firstAt, first := r.off, Date{}
	for i := range int(nd) {
		what := fmt.Sprintf("day %d", i+1)
		at := r.off
		d := NoDay(r.date(what, true))
		if r.err == nil && !l.latest.Before(d.Date) {
			r.off = at
			r.fail("%s: %v does not follow %v", what, d.Date, l.latest)
		}
		flags := r.bytes(what+" flags", 4)
		if r.err != nil {
			break
		}
		present, suspect := binary.LittleEndian.Uint16(flags), binary.LittleEndian.Uint16(flags[2:])
		if present>>nFigures != 0 || suspect&^present != 0 {
			r.off -= 4
			r.fail("%s: flags %#04x %#04x name figures it does not have", what, present, suspect)
			break
		}
		var figs [nFigures]float64
		for j := range figs {
			figs[j] = math.NaN()
			if present&(1<<j) == 0 {
				continue
			}
			p := r.bytes(what+" figure", 8)
			if r.err != nil {
				break
			}
			f := math.Float64frombits(binary.LittleEndian.Uint64(p))
			if !isFinite(f) || f < 0 {
				r.off -= 8
				r.fail("%s: figure %d is %v, not a finite value ≥ 0", what, j, f)
				break
			}
			figs[j] = f
		}
		if r.err != nil {
			break
		}
		copy(d.Mean[:], figs[:nPollutants])
		d.O3Max8h, d.AQI, d.Suspect = figs[nPollutants], figs[nPollutants+1], suspect
		l.days[d.Date] = d
		l.latest = d.Date
		if i == 0 {
			first = d.Date
		}
	}
	if r.err == nil && !first.IsZero() && first.Year < l.latest.Year-1 {
		r.off = firstAt
		r.fail("day 1: %v is more than a year before the last day %v", first, l.latest)
	}
	inRange := func(what string, y int, at int) {
		if r.err == nil && (l.latest.IsZero() || y < l.latest.Year-1 || y > l.latest.Year) {
			r.off = at
			r.fail("%s: %d is outside the years of the days", what, y)
		}
	}
	nm := r.uvarint("number of months", 24)
	var prev Date
	for i := range int(nm) {
		what := fmt.Sprintf("month %d", i+1)
		at := r.off
		m := r.date(what, false)
		inRange(what, m.Year, at)
		if r.err == nil && i > 0 && !prev.Before(m) {
			r.off = at
			r.fail("%s: %04d-%02d does not follow %04d-%02d", what, m.Year, int(m.Month), prev.Year, int(prev.Month))
		}
		l.months[m], prev = true, m
	}
	ny := r.uvarint("number of years", 2)
	prevYear := 0
	for i := range int(ny) {
		at := r.off
		y := int(r.uvarint("year", 9999))
		inRange(fmt.Sprintf("year %d", i+1), y, at)
		if r.err == nil && y <= prevYear {
			r.off = at
			r.fail("year %d: %d does not follow %d", i+1, y, prevYear)
		}
		l.years[y], prevYear = true, y
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d bytes after the end", len(b)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return l, nil
}
