package air

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/gateway/window"
)

// Defaults of Config.
const (
	DefaultSample   = time.Minute // each raw sample stands for this much sampling time
	DefaultLateness = time.Minute // how long an hour waits for late samples
)

// maxEmptyHours bounds the empty hours a single jump of the clock closes one by one;
// older ones are skipped without output, so a device clock that leaps years ahead
// cannot flood the pipeline.
const maxEmptyHours = 1000

// maxHistory is the number of closed hours the Aggregator keeps: a day's 8-h windows
// reach back at most 16 h before its midnight, 24-h moving means 24 h.
const maxHistory = 48

// Config configures the Aggregator of one air device.
type Config struct {
	Site, Device string // copied into every derived reading; inputs of other devices are rejected

	// Method is the AQI edition (default HJ 633-2026), what a Chinese IAQI is above
	// the 500 breakpoint [U], and the site's monitoring plan (nil: all six pollutants).
	Method Method

	// Validity holds the GB 3095-2026 Table 4 thresholds and the 8-h windows of a day.
	Validity Validity

	// Reference is the gas reference state for the ppb/ppm the US tables need, and for
	// readings that arrive in ppb or ppm. Zero: GB 3095-2026, 298.15 K, 1013.25 hPa.
	Reference Reference

	// Location is the time zone of the clock hours and calendar days. Nil selects
	// Asia/Shanghai (fixed UTC+8).
	Location *time.Location

	// Sample is the sampling time each raw reading stands for, normally the poll
	// interval: the minutes of data of an hour are the union of [Time, Time+Sample)
	// of its samples. 0 selects 1 min; at most 1 h. A device polled every 5 min needs
	// 5m here, or each of its hours shows 12 minutes and is never valid.
	Sample time.Duration

	// Lateness is how long after an hour ends samples for it are still accepted. The
	// hour's results (and a day's, at midnight) come out then. 0 selects 1 min.
	Lateness time.Duration
}

// Live is the Aggregator's state at an instant, for metrics. Values describe the most
// recently closed hour (and day), so they go away, not stale, when data stop.
type Live struct {
	Time time.Time
	Hour time.Time // start of the most recently closed hour; zero before the first

	AQI     float64          // that hour's aqi_1h; NaN if it had none
	Level   Level            // its level; 0 without an AQI
	Primary Items            // its primary pollutants
	IAQI    map[Item]float64 // that hour's report items with an index

	// Valid means of that hour by pollutant: its 1-h mean, the 24-h moving mean and
	// (O3, CO) the 8-h moving mean ending with it. A pollutant without one is absent.
	Mean1h, Mean24h, Mean8h map[Pollutant]float64

	Day      time.Time // local midnight starting the most recently closed day
	DailyAQI float64   // its aqi_1d; NaN if it had none

	Accepted  int // samples that entered an hour
	Duplicate int // samples of a pollutant and time the hour had already counted: ignored
	Late      int // samples whose hour had closed: ignored
	Rejected  int // readings of another device or quantity, outside the plan, Bad, implausible or in an unknown unit
}

// Aggregator derives the hourly and daily series and AQI reports of one air device (see
// the package doc). It is not safe for concurrent use.
//
// Its clock is the latest sample time of the device (Add) or the latest Tick; an hour
// closes when its end + Lateness is not after the clock, and the day closes with its
// last hour. The first sample or Tick opens the hour containing it, so a start mid-hour
// gives that hour a partial coverage.
type Aggregator struct {
	cfg   Config
	v     Validity
	loc   *time.Location
	emits map[string]bool // the derived quantities of this edition and plan

	clock time.Time
	hours *window.Series[[nPollutants]hourAcc]
	hist  []record // closed hours, contiguous, ascending, at most maxHistory
	live  Live

	ledger *Ledger // the closed days, for the monthly and yearly statistics
}

type record struct {
	start time.Time
	avg   [nPollutants]Average
}

// NewAggregator checks cfg, fills in its defaults and returns an Aggregator. The error
// lists every problem, each with its field.
func NewAggregator(cfg Config) (*Aggregator, error) {
	var errs []error
	if err := reading.CheckName(cfg.Site); err != nil {
		errs = append(errs, fmt.Errorf("site: %w", err))
	}
	if err := reading.CheckName(cfg.Device); err != nil {
		errs = append(errs, fmt.Errorf("device: %w", err))
	}
	if err := cfg.Method.Validate(); err != nil {
		errs = append(errs, prefix("method", err))
	}
	if err := cfg.Validity.Validate(); err != nil {
		errs = append(errs, prefix("validity", err))
	}
	if err := cfg.Reference.Validate(); err != nil {
		errs = append(errs, prefix("reference", err))
	}
	if cfg.Sample < 0 || cfg.Sample > time.Hour {
		errs = append(errs, fmt.Errorf("sample: %v is not within 0 to 1h", cfg.Sample))
	}
	if cfg.Lateness < 0 {
		errs = append(errs, fmt.Errorf("lateness: %v must not be negative", cfg.Lateness))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Sample == 0 {
		cfg.Sample = DefaultSample
	}
	if cfg.Lateness == 0 {
		cfg.Lateness = DefaultLateness
	}
	if cfg.Location == nil {
		cfg.Location = reading.ChinaStandardTime
	}
	cfg.Method.Plan = planOf(cfg.Method)
	a := &Aggregator{cfg: cfg, v: cfg.Validity.norm(), loc: cfg.Location, emits: emitted(cfg.Method), ledger: NewLedger()}
	a.live = Live{AQI: math.NaN(), DailyAQI: math.NaN()}
	// Hours are contiguous in absolute time (whole-hour zone offsets keep them on the
	// local clock).
	a.hours = window.New(window.Config[[nPollutants]hourAcc]{
		Start:    a.align,
		End:      func(start time.Time) time.Time { return start.Add(time.Hour) },
		Lateness: cfg.Lateness,
		MaxEmpty: maxEmptyHours,
	})
	return a, nil
}

// prefix puts a field path before each of the joined errors of err.
func prefix(path string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s.%w", path, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s.%w", path, err)
}

// planOf returns the plan in report order, all six for nil.
func planOf(m Method) []Pollutant {
	var plan []Pollutant
	for _, p := range Pollutants() {
		if m.planned(p) {
			plan = append(plan, p)
		}
	}
	return plan
}

// emitted returns the names of the derived quantities the Aggregator emits with m.
func emitted(m Method) map[string]bool {
	e := map[string]bool{}
	us := m.Edition == USEPA2024
	for _, p := range planOf(m) {
		n := byPollutant[p]
		for _, name := range []string{n.hourly, n.minutes, n.moving24, n.daily, n.hours} {
			e[name] = true
		}
		switch p {
		case O3:
			e[n.moving8], e[n.max8], e[n.windows] = true, true, true
			e[n.max1] = m.Edition != HJ633_2026
		case CO:
			e[n.moving8], e[n.max8], e[n.windows] = us, us, us
		case SO2, NO2:
			e[n.max1] = us
		case PM10, PM25:
			e[n.nowcast] = us
		}
	}
	for _, k := range []Kind{Hourly, Daily} {
		for _, item := range ReportItems(m.Edition, k) {
			if m.planned(item.Pollutant()) {
				e[iaqiName(item, k)] = true
			}
		}
		n := reportNames[k]
		e[n[0]], e[n[1]], e[n[2]] = true, true, true
		e[n[3]] = m.Edition == HJ633_2012
	}
	e[QuantityGoodDay] = true
	for _, n := range periodNames {
		for _, p := range planOf(m) {
			e[n.mean[p]], e[n.days[p]] = true, true
		}
		e[n.coP95], e[n.o3P90] = m.planned(CO), m.planned(O3)
		e[n.good], e[n.aqiDays], e[n.goodShare] = true, true, true
	}
	delete(e, "")
	for name, on := range e {
		if !on {
			delete(e, name)
		}
	}
	return e
}

// Add consumes one reading and returns the derived readings of the hours (and days) it
// closed: those whose end + Lateness is not after r.Time.
//
// It takes so2, no2, co, o3, pm10 and pm25 of its own site and device for the
// pollutants of the plan. The value is converted to the catalog unit first (Convert:
// a reading in ppb, ppm or mg/m³ is accepted; one in an unknown unit is rejected), then
// checked against the catalog's plausible range. Readings of other devices or
// quantities, with Quality Bad, or implausible are rejected; a Suspect one is used and
// makes what it enters Suspect. A sample whose hour has closed is counted as late and
// ignored; so is one of a pollutant and time the hour has already counted (a
// redelivery, Live.Duplicate), so feeding readings again gives the same results.
func (a *Aggregator) Add(r reading.Reading) []reading.Reading {
	p, ok := PollutantOf(r.Quantity)
	if !ok || r.Site != a.cfg.Site || r.Device != a.cfg.Device || r.Quality >= reading.Bad ||
		r.Time.IsZero() || !a.cfg.Method.planned(p) {
		a.live.Rejected++
		return nil
	}
	v, err := a.cfg.Reference.Convert(r.Quantity, r.Value, r.Unit)
	if q, _ := reading.Lookup(r.Quantity); err != nil || !q.Plausible(v) {
		a.live.Rejected++
		return nil
	}
	t := r.Time.In(a.loc)
	if !a.hours.Started() {
		a.start(t)
	}
	var out []reading.Reading
	if t.After(a.clock) {
		out = a.advance(t)
	}
	w := a.hours.Find(t)
	switch {
	case w == nil:
		a.live.Late++
		return out
	case !w.Once(window.KeyOf(r)):
		a.live.Duplicate++
		return out
	}
	w.Data[p].add(w.Start, a.cfg.Sample, Sample{Time: t, Value: v, Suspect: r.Quality == reading.Suspect})
	a.live.Accepted++
	return out
}

// Tick moves the clock to now (if later) and returns the derived readings of the hours
// and days that closed. The first Tick opens the hour if no sample has, so a device that
// never reports still shows 0 minutes of data.
func (a *Aggregator) Tick(now time.Time) []reading.Reading {
	now = now.In(a.loc)
	if !a.hours.Started() {
		a.start(now)
	}
	if now.After(a.clock) {
		return a.advance(now)
	}
	return nil
}

// Now reports the live state at now without changing anything (maps are copies).
func (a *Aggregator) Now(now time.Time) Live {
	l := a.live
	l.Time = now.In(a.loc)
	l.IAQI = maps.Clone(l.IAQI)
	l.Mean1h, l.Mean24h, l.Mean8h = maps.Clone(l.Mean1h), maps.Clone(l.Mean24h), maps.Clone(l.Mean8h)
	return l
}

// align returns the start of the local clock hour containing t.
func (a *Aggregator) align(t time.Time) time.Time {
	t = t.In(a.loc)
	_, off := t.Zone()
	shift := time.Duration(off) * time.Second
	return t.Add(shift).Truncate(time.Hour).Add(-shift)
}

// midnight returns the local midnight starting the day containing t, plus days.
func (a *Aggregator) midnight(t time.Time, days int) time.Time {
	y, m, d := t.In(a.loc).Date()
	return time.Date(y, m, d+days, 0, 0, 0, 0, a.loc)
}

func (a *Aggregator) start(t time.Time) {
	a.clock = t
	a.hours.Begin(t)
}

// Config returns the Aggregator's configuration with its defaults filled in.
func (a *Aggregator) Config() Config { return a.cfg }

// FlushTime returns the clock time at which every window containing t has closed: the
// next local midnight (the day's results come out with its last hour) plus the
// lateness. Tick(FlushTime(t)) ends a recording whose last sample is at t.
func (a *Aggregator) FlushTime(t time.Time) time.Time {
	y, m, d := t.In(a.loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, a.loc).Add(a.cfg.Lateness)
}

// advance moves the clock to t: it closes, in order, every hour with end + Lateness ≤ t,
// including the empty ones a gap skipped (at most maxEmptyHours of those), then opens
// the hours up to t.
func (a *Aggregator) advance(t time.Time) []reading.Reading {
	a.clock = t
	var out []reading.Reading
	a.hours.Advance(t, func(w *window.Window[[nPollutants]hourAcc]) { out = a.closeHour(w, out) })
	return out
}

// rec returns the closed hour starting at t, or nil.
func (a *Aggregator) rec(t time.Time) *record {
	if len(a.hist) == 0 {
		return nil
	}
	d := t.Sub(a.hist[0].start)
	if d < 0 || d%time.Hour != 0 {
		return nil
	}
	if i := int(d / time.Hour); i < len(a.hist) {
		return &a.hist[i]
	}
	return nil
}

// span returns p's hourly means of the hours starting in [from, to), missing ones as none.
func (a *Aggregator) span(p Pollutant, from, to time.Time) []Average {
	var s []Average
	for t := from; t.Before(to); t = t.Add(time.Hour) {
		if r := a.rec(t); r != nil {
			s = append(s, r.avg[p])
		} else {
			s = append(s, none)
		}
	}
	return s
}

// inputs collects the valid averages of a report in the edition's units, and whether
// each is Suspect.
type inputs struct {
	a       *Aggregator
	conc    Concentrations
	suspect map[Key]bool
}

func (a *Aggregator) newInputs() inputs {
	return inputs{a: a, conc: Concentrations{}, suspect: map[Key]bool{}}
}

func (in inputs) put(k Key, avg Average) {
	if !avg.Valid {
		return
	}
	v := avg.Value
	if u := in.a.cfg.Method.Edition.Unit(k.Pollutant); u != k.Pollutant.Unit() {
		var err error
		if v, err = in.a.cfg.Reference.Express(k.Pollutant.Quantity(), v, u); err != nil {
			return // cannot happen: a valid mean of plausible values
		}
	}
	in.conc[k] = v
	in.suspect[k] = avg.Suspect
}

func (a *Aggregator) closeHour(w *window.Window[[nPollutants]hourAcc], out []reading.Reading) []reading.Reading {
	rec := record{start: w.Start}
	for p := range rec.avg {
		rec.avg[p] = w.Data[p].average(a.v)
	}
	if n := len(a.hist); n > 0 && !a.hist[n-1].start.Add(time.Hour).Equal(rec.start) {
		a.hist = a.hist[:0] // a jump skipped hours: the history is long past
	}
	a.hist = append(a.hist, rec)
	if len(a.hist) > maxHistory {
		a.hist = append(a.hist[:0], a.hist[len(a.hist)-maxHistory:]...)
	}

	l := &a.live
	l.Hour = w.Start
	l.Mean1h, l.Mean24h, l.Mean8h = map[Pollutant]float64{}, map[Pollutant]float64{}, map[Pollutant]float64{}
	in := a.newInputs()
	for _, p := range a.cfg.Method.Plan {
		n, h := byPollutant[p], rec.avg[p]
		out = a.emit(out, w.Start, n.minutes, h.N, reading.Good)
		out = a.emitAvg(out, w.Start, n.hourly, h)
		in.put(Key{p, Avg1h}, h)
		if h.Valid {
			l.Mean1h[p] = h.Value
		}

		from := w.End.Add(-24 * time.Hour)
		d := a.v.Day(a.span(p, from, w.End))
		out = a.emitAvg(out, from, n.moving24, d)
		in.put(Key{p, Avg24h}, d)
		if d.Valid {
			l.Mean24h[p] = d.Value
		}

		if n.moving8 != "" {
			from := w.End.Add(-8 * time.Hour)
			e := a.v.EightHour(a.span(p, from, w.End))
			out = a.emitAvg(out, from, n.moving8, e)
			in.put(Key{p, Avg8h}, e)
			if e.Valid {
				l.Mean8h[p] = e.Value
			}
		}
		if n.nowcast != "" && a.cfg.Method.Edition == USEPA2024 {
			hours := a.span(p, w.End.Add(-12*time.Hour), w.End)
			for i, j := 0, len(hours)-1; i < j; i, j = i+1, j-1 { // most recent first
				hours[i], hours[j] = hours[j], hours[i]
			}
			nc := NowCast(hours)
			out = a.emitAvg(out, w.Start, n.nowcast, nc)
			in.put(Key{p, AvgNowCast}, nc)
		}
	}
	res := a.cfg.Method.Report(Hourly, in.conc)
	out = a.emitReport(out, w.Start, res, in)
	l.AQI, l.Level, l.Primary, l.IAQI = math.NaN(), 0, 0, map[Item]float64{}
	for item, idx := range res.IAQI {
		l.IAQI[item] = float64(idx.Value)
	}
	if res.Published {
		l.AQI, l.Level, l.Primary = float64(res.AQI), res.Level, res.Primary
	}

	if day := a.midnight(w.Start, 0); !w.End.Before(a.midnight(w.Start, 1)) {
		out = a.closeDay(day, a.midnight(w.Start, 1), out)
	}
	return out
}

// closeDay emits the daily series of the local day [day, end).
func (a *Aggregator) closeDay(day, end time.Time, out []reading.Reading) []reading.Reading {
	in := a.newInputs()
	rec := NoDay(DateOf(day))
	for _, p := range a.cfg.Method.Plan {
		n := byPollutant[p]
		hours := a.span(p, day, end)
		d := a.v.Day(hours)
		out = a.emit(out, day, n.hours, d.N, reading.Good)
		out = a.emitAvg(out, day, n.daily, d)
		in.put(Key{p, Avg24h}, d)
		if d.Valid {
			rec.Mean[p] = d.Value
			rec.Suspect |= suspectBit(d.Suspect, 1<<p)
		}

		m := a.v.MaxHour(hours)
		if n.max1 != "" {
			out = a.emitAvg(out, day, n.max1, m)
		}
		in.put(Key{p, Avg1h}, m)

		if n.moving8 != "" {
			y, mo, dd := day.Date()
			var windows []Average
			for off := a.v.DayFirst8h; off <= a.v.DayLast8h; off += time.Hour {
				ws := time.Date(y, mo, dd, int(off/time.Hour), 0, 0, 0, a.loc)
				windows = append(windows, a.v.EightHour(a.span(p, ws, ws.Add(8*time.Hour))))
			}
			m8 := a.v.MaxEightHour(windows)
			out = a.emit(out, day, n.windows, m8.N, reading.Good)
			out = a.emitAvg(out, day, n.max8, m8)
			in.put(Key{p, Avg8h}, m8)
			if p == O3 && m8.Valid {
				rec.O3Max8h = m8.Value
				rec.Suspect |= suspectBit(m8.Suspect, SuspectO3Max8h)
			}
		}
	}
	res := a.cfg.Method.Report(Daily, in.conc)
	out = a.emitReport(out, day, res, in)
	a.live.Day, a.live.DailyAQI = day, math.NaN()
	if res.Published {
		a.live.DailyAQI = float64(res.AQI)
		good := 0.0
		if GoodDay(res.AQI) {
			good = 1
		}
		out = a.emit(out, day, QuantityGoodDay, good, a.reportQuality(res, in))
		rec.AQI = float64(res.AQI)
		rec.Suspect |= suspectBit(a.reportQuality(res, in) == reading.Suspect, SuspectAQI)
	}
	for _, per := range a.ledger.Record(rec, a.v) {
		out = a.emitPeriod(out, per)
	}
	return out
}

func suspectBit(suspect bool, bit uint16) uint16 {
	if suspect {
		return bit
	}
	return 0
}

// emitPeriod emits the statistics of an ended month or year, stamped with its first
// instant in the local time zone.
func (a *Aggregator) emitPeriod(out []reading.Reading, per Period) []reading.Reading {
	n, t := periodNames[0], time.Date(per.Year, per.Month, 1, 0, 0, 0, 0, a.loc)
	if per.Month == 0 {
		n, t = periodNames[1], time.Date(per.Year, time.January, 1, 0, 0, 0, 0, a.loc)
	}
	s := per.Stats
	for _, p := range a.cfg.Method.Plan {
		switch p {
		case CO:
			out = a.emit(out, t, n.days[p], s.COP95.N, reading.Good)
			out = a.emitAvg(out, t, n.coP95, s.COP95)
		case O3:
			out = a.emit(out, t, n.days[p], s.O3P90.N, reading.Good)
			out = a.emitAvg(out, t, n.o3P90, s.O3P90)
		default:
			out = a.emit(out, t, n.days[p], s.Mean[p].N, reading.Good)
			out = a.emitAvg(out, t, n.mean[p], s.Mean[p])
		}
	}
	out = a.emit(out, t, n.good, float64(s.GoodDays), quality(s.Suspect))
	out = a.emit(out, t, n.aqiDays, float64(s.AQIDays), reading.Good)
	return a.emitAvg(out, t, n.goodShare, s.GoodShare)
}

// Ledger returns the state of the monthly and yearly statistics (Ledger.MarshalBinary):
// the closed days of this year and the last, and the months and years already
// emitted. Save it with the rest of the gateway's state and hand it to RestoreLedger
// after a restart, so that a month spanning the restart is complete and is emitted
// once.
func (a *Aggregator) Ledger() []byte {
	b, _ := a.ledger.MarshalBinary()
	return b
}

// RestoreLedger replaces the state of the monthly and yearly statistics with b, from
// Ledger. Days closed since (derived again from the buffer after the restart) replace
// the restored ones of the same date. An error wraps ErrCorruptLedger, says what is
// wrong at which byte, and leaves the state unchanged.
func (a *Aggregator) RestoreLedger(b []byte) error {
	return a.ledger.UnmarshalBinary(b)
}

// KeepRecordedDays, while on, makes the ledger keep the days it holds when the same
// date closes again: gateway/derive turns it on while it rebuilds the windows from the
// buffer after a restart (RestoreLedger first), since the buffer holds only the end of
// the oldest day it re-derives.
func (a *Aggregator) KeepRecordedDays(on bool) { a.ledger.keep = on }

// reportQuality is Suspect if any index of res comes from a Suspect average.
func (a *Aggregator) reportQuality(res Result, in inputs) reading.Quality {
	for _, idx := range res.IAQI {
		if in.suspect[idx.Key] {
			return reading.Suspect
		}
	}
	return reading.Good
}

func (a *Aggregator) emitReport(out []reading.Reading, t time.Time, res Result, in inputs) []reading.Reading {
	for _, item := range ReportItems(res.Edition, res.Kind) {
		if idx, ok := res.IAQI[item]; ok {
			out = a.emit(out, t, iaqiName(item, res.Kind), float64(idx.Value), quality(in.suspect[idx.Key]))
		}
	}
	if !res.Published {
		return out
	}
	q := a.reportQuality(res, in)
	n := reportNames[res.Kind]
	out = a.emit(out, t, n[0], float64(res.AQI), q)
	out = a.emit(out, t, n[1], float64(res.Level), q)
	out = a.emit(out, t, n[2], float64(res.Primary), q)
	return a.emit(out, t, n[3], float64(res.Over), q)
}

func quality(suspect bool) reading.Quality {
	if suspect {
		return reading.Suspect
	}
	return reading.Good
}

// emitAvg emits a valid average; an invalid one is not emitted (its count series says why).
func (a *Aggregator) emitAvg(out []reading.Reading, t time.Time, name string, avg Average) []reading.Reading {
	if !avg.Valid {
		return out
	}
	return a.emit(out, t, name, avg.Value, quality(avg.Suspect))
}

func (a *Aggregator) emit(out []reading.Reading, t time.Time, name string, v float64, q reading.Quality) []reading.Reading {
	if !a.emits[name] {
		return out
	}
	return append(out, reading.Reading{
		Time:     t,
		Site:     a.cfg.Site,
		Device:   a.cfg.Device,
		Quantity: name,
		Value:    v,
		Unit:     derivedByName[name].Unit,
		Quality:  q,
	})
}
