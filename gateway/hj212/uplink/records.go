package uplink

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/reading"
)

// Record kinds a station may send besides real-time data, as configured.
const (
	RecordMinute = "minute" // CN 2051, from the _1m series
	RecordHourly = "hourly" // CN 2061, from the _1h series (and water's window means)
	RecordDaily  = "daily"  // CN 2031, from the _1d series and noise's day values
)

// Records lists the record kinds, for validation.
var Records = []string{RecordMinute, RecordHourly, RecordDaily}

// factor is how one quantity goes into a packet.
type factor struct {
	cn       string // 2011, 2051, 2061, 2031
	code     string
	suffix   string // Rtd, Avg, Data, DayData, NightData
	decimals int
	scale    float64
}

// noiseDaily maps noise's day values to their daily-record factor and suffix
// (HJ 212-2017's acoustic daily example: Leq-Data, Ld-DayData, Ln-NightData, Ldn-Data).
var noiseDaily = map[string]struct{ code, suffix string }{
	"laeq_24h": {"Leq", "Data"},
	"ld":       {"Ld", "DayData"},
	"ln":       {"Ln", "NightData"},
	"ldn":      {"Ldn", "Data"},
}

// Classify returns how quantity q goes into a packet of station st: its CN, factor
// code, value suffix, decimals and scale, or ok false when it is not sent (no code, a
// record kind the station does not send, a series without a record kind such as a
// moving 24-h mean or an AQI). The rules are docs/hj212.md's "Quantities".
func (s *Station) classify(q string) (f factor, ok bool) {
	var base, cn string
	switch {
	case noiseDaily[q].code != "":
		base, cn = q, hj212.CNDaily
	case strings.HasSuffix(q, "_1m"):
		base, cn = strings.TrimSuffix(q, "_1m"), hj212.CNMinute
	case strings.HasSuffix(q, "_1h"):
		base, cn = strings.TrimSuffix(q, "_1h"), hj212.CNHourly
	case strings.HasSuffix(q, "_mean"): // water's window means: hourly (docs/hj212.md)
		base, cn = strings.TrimSuffix(q, "_mean"), hj212.CNHourly
	case strings.HasSuffix(q, "_1d"):
		base, cn = strings.TrimSuffix(q, "_1d"), hj212.CNDaily
	default:
		base, cn = q, hj212.CNRealtime
	}
	if cn == hj212.CNRealtime && !s.Realtime || cn != hj212.CNRealtime && !s.records[cn] {
		return f, false
	}
	info, known := hj212.Factors[q]
	if !known {
		info, known = hj212.Factors[base]
	}
	if d, ok := noiseDaily[q]; ok {
		info, known = hj212.FactorInfo{Code: d.code, Decimals: 1}, true
	}
	f = factor{cn: cn, code: info.Code, decimals: info.Decimals, scale: 1}
	o, over := s.Factors[q]
	if !over {
		o, over = s.Factors[base]
	}
	if over {
		if o.Code != "" {
			f.code, known = o.Code, true
		}
		if o.Decimals >= 0 {
			f.decimals = o.Decimals
		}
		if o.Scale != 0 {
			f.scale = o.Scale
		}
	}
	if !known || f.code == "" {
		return f, false
	}
	noise := s.ST == hj212.STAcoustic
	switch {
	case cn == hj212.CNRealtime:
		f.suffix = "Rtd"
	case noiseDaily[q].code != "":
		f.suffix = noiseDaily[q].suffix
	case noise:
		f.suffix = "Data"
	default:
		f.suffix = "Avg"
	}
	return f, true
}

// dataTime is the DataTime of a reading's record in loc: the instant for real-time
// data, the start of the local minute, hour or day for the others (the derived series
// are stamped at their window's start already; truncating keeps a day's noise values,
// stamped at their period's start, in one daily record).
func dataTime(cn string, t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	switch cn {
	case hj212.CNMinute:
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, loc)
	case hj212.CNHourly:
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
	case hj212.CNDaily:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	}
	return t.Truncate(time.Second)
}

// record is one station's values of one CN at one DataTime, as they will be sent.
type record struct {
	station  int
	cn       string
	dataTime time.Time
	bucket   int64 // real-time data: the start of its RtdInterval, Unix ns
	codes    []string
	values   map[string][2]string // code → suffix, value
	flags    map[string]string    // code → flag
	times    map[string]time.Time // real-time data: code → the instant of its value
}

// build turns a batch into records, in the order their first reading comes in the
// batch. Readings of no station, or of a quantity a station does not send, are left
// out. Real-time data is one record per station and RtdInterval: the latest value of
// each factor, DataTime the latest of their instants; a factor already sent for its
// interval (rtdSent: per station, code → the last interval sent) is skipped, so a
// factor that comes in a later batch of an interval goes out in a packet of its own.
// With rtd nil (history requests) real-time data is left out. only ≥ 0 keeps one station's records. skipped counts readings that matched a station but cannot be
// sent (NaN, Quality Bad).
func (s *Sink) build(batch []reading.Reading, rtdSent []map[string]int64, rtd []time.Duration, only int) (recs []*record, skipped int) {
	type key struct {
		station int
		cn      string
		t       int64
	}
	index := map[key]*record{}
	for _, r := range batch {
		for si := range s.cfg.Stations {
			st := &s.cfg.Stations[si]
			if only >= 0 && si != only || !st.matches(r) {
				continue
			}
			f, ok := st.classify(r.Quantity)
			if !ok || f.cn == hj212.CNRealtime && rtd == nil {
				continue
			}
			v := r.Value * f.scale
			if r.Quality == reading.Bad || math.IsNaN(v) || math.IsInf(v, 0) {
				skipped++
				continue
			}
			dt := dataTime(f.cn, r.Time, s.cfg.Location)
			k := key{si, f.cn, dt.UnixNano()}
			var bucket int64
			if f.cn == hj212.CNRealtime {
				bucket = floorDiv(r.Time.UnixNano(), int64(rtd[si])) * int64(rtd[si]) // its start, comparable across intervals
				if sent, ok := rtdSent[si][f.code]; ok && bucket <= sent {
					continue
				}
				k.t = bucket
			}
			rec := index[k]
			if rec == nil {
				rec = &record{station: si, cn: f.cn, dataTime: dt, bucket: bucket,
					values: map[string][2]string{}, flags: map[string]string{}, times: map[string]time.Time{}}
				index[k] = rec
				recs = append(recs, rec)
			}
			if f.cn == hj212.CNRealtime {
				if last, seen := rec.times[f.code]; seen && dt.Before(last) {
					continue // an older value of the factor in the bucket: the latest wins
				}
				rec.times[f.code] = dt
				rec.dataTime = newest(rec.times)
			}
			if _, seen := rec.values[f.code]; !seen {
				rec.codes = append(rec.codes, f.code)
			}
			rec.values[f.code] = [2]string{f.suffix, hj212.FormatValue(v, f.decimals)}
			rec.flags[f.code] = s.flag(r)
		}
	}
	return recs, skipped
}

// newest returns the latest of times.
func newest(times map[string]time.Time) time.Time {
	var t time.Time
	for _, x := range times {
		if x.After(t) {
			t = x
		}
	}
	return t
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// flag is the data flag of r: the hook's (maintenance, calibration) if it has one for
// r's device and time, else N for a good reading and SuspectFlag for a suspect one.
func (s *Sink) flag(r reading.Reading) string {
	if h := s.flagHook.Load(); h != nil {
		if f, ok := (*h)(r.Device, r.Time); ok {
			return f
		}
	}
	if r.Quality == reading.Suspect {
		return s.cfg.SuspectFlag
	}
	return hj212.DataNormal
}

// packets builds the packets of rec: split when its data segment would exceed
// hj212.MaxSegment, every part sharing qn.
func (s *Sink) packets(rec *record, qn string) ([]hj212.Packet, error) {
	st := &s.cfg.Stations[rec.station]
	head := hj212.Packet{QN: qn, ST: st.ST, CN: rec.cn, PW: st.PW, MN: st.MN, Flag: s.flagBits()}
	common := []string{hj212.Group(hj212.Field{Name: "DataTime", Value: rec.dataTime.In(s.cfg.Location).Format(hj212.TimeLayout)})}
	groups := make([]string, 0, len(rec.codes))
	for _, c := range rec.codes {
		v := rec.values[c]
		groups = append(groups, hj212.FactorGroup(c, hj212.Field{Name: v[0], Value: v[1]}, hj212.Field{Name: "Flag", Value: rec.flags[c]}))
	}
	return hj212.Split(head, common, groups)
}

// flagBits is the Flag of the data uploads: version 2017, and bit A when answers are on.
func (s *Sink) flagBits() int {
	if s.cfg.Ack {
		return hj212.Version2017 | hj212.FlagAck
	}
	return hj212.Version2017
}

// matches reports whether r belongs to the station: its site, or one of its devices.
func (st *Station) matches(r reading.Reading) bool {
	if len(st.Devices) > 0 {
		for _, d := range st.Devices {
			if d == r.Device {
				return true
			}
		}
		return false
	}
	return st.Site == r.Site
}

// qnSource hands out QNs: the time of the gateway's clock in the platform's zone, made
// unique by moving a QN that would repeat or go back to 1 ms after the last one.
type qnSource struct {
	last time.Time
}

func (q *qnSource) next(now time.Time, loc *time.Location) string {
	now = now.Truncate(time.Millisecond)
	if !now.After(q.last) {
		now = q.last.Add(time.Millisecond)
	}
	q.last = now
	return hj212.FormatQN(now, loc)
}

// contentKey identifies a packet without its QN: a packet answered once is not sent
// again when the batch is retried.
func contentKey(p hj212.Packet) string {
	return p.ST + "|" + p.CN + "|" + p.MN + "|" + strconv.Itoa(p.PNUM) + "|" + strconv.Itoa(p.PNO) + "|" + p.CP
}

// recordKey identifies a record without its QN: station, CN, DataTime and content. A
// record whose packets were not all answered keeps its QN under this key.
func (s *Sink) recordKey(rec *record) string {
	var b strings.Builder
	b.WriteString(s.cfg.Stations[rec.station].MN + "|" + rec.cn + "|" + strconv.FormatInt(rec.dataTime.UnixNano(), 10))
	for _, c := range rec.codes {
		v := rec.values[c]
		b.WriteString("|" + c + "-" + v[0] + "=" + v[1] + "," + rec.flags[c])
	}
	return b.String()
}
