// Package hj212src is the HJ 212-2017 analyzer source: it listens on TCP (or reads a
// serial port) for the packets analyzers and data loggers send, checks each packet's
// length and CRC, answers as the standard asks (CN 9014 once the readings are durable),
// and turns each factor of a data upload into a reading with a quality from its flag.
//
// Unlike the other drivers, which import gateway/reading only, it also imports
// gateway/hj212: the packet codec, which is pure (the standard library and gateway/reading) and shared
// with the uplink and the `envgate hj212` tool, so that all three read the standard
// the same way. docs/hj212.md, "Analyzer source", documents the choices made here.
package hj212src

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/hj212"
	"github.com/envgate/envgate/gateway/reading"
)

// Station is one analyzer or data logger, known by its MN.
type Station struct {
	MN     string
	Site   string
	Device string
	// Factors maps a factor code to its reading. A code listed here overrides the
	// default mapping (DefaultFactor); minute and hourly records (CN 2051, 2061) give
	// readings only for codes listed here.
	Factors map[string]Factor
}

// Factor maps one factor code to a catalog quantity; the packet's value times Scale is
// the reading's value in the quantity's canonical unit.
type Factor struct {
	Quantity string
	Scale    float64 // 0 means 1
}

// Reasons a packet or value is rejected, also the keys of Stats.Rejected.
const (
	ReasonCRC       = "crc"        // CRC field does not match the data segment
	ReasonLength    = "length"     // length field does not match the data segment
	ReasonField     = "field"      // malformed frame, data segment or CP
	ReasonGarbage   = "garbage"    // a line without "##", or no CR LF within hj212.MaxFrame bytes
	ReasonUnknownMN = "unknown_mn" // MN of no configured station
	ReasonPassword  = "password"   // PW differs from the configured one
	ReasonTime      = "time"       // DataTime implausible
)

// ConvertError is a data upload that gives no readings: Reason is one of the Reason
// constants.
type ConvertError struct {
	Reason string
	Err    error
}

func (e *ConvertError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *ConvertError) Unwrap() error { return e.Err }

// Skipped is one factor value of a good packet that gave no reading: no mapping, no
// number, out of the quantity's plausible range.
type Skipped struct {
	Code   string
	Reason string
}

// Flagged is a reading's raw data flag (HJ 212-2017 Table 8) when it was not N: the
// reading model has only good, suspect and bad, so the letter goes to the log and
// metrics until data-quality screening (issue 17) gives readings a flag code.
type Flagged struct {
	Quantity string
	Flag     string
}

// Result is what Convert makes of one data upload.
type Result struct {
	Readings []reading.Reading
	Skipped  []Skipped
	Flagged  []Flagged
}

// Convert turns one data upload of st into readings: real-time data (CN 2011: suffix
// Rtd, default mapping) and minute and hourly data (2051, 2061: suffix Avg, or Data for
// noise codes; configured codes only). Other commands (daily data, running status, time
// requests) give no readings; they are still answered when they ask to be. loc is the station's time zone
// (DataTime is local time); now is the gateway's clock, the upper bound of DataTime
// (skipped when now is zero: the clock is not trustworthy). It is pure. A CP that
// cannot be read or an implausible DataTime is a *ConvertError and gives no readings;
// a single value that cannot be used is Skipped and the others are kept.
func Convert(p hj212.Packet, st Station, loc *time.Location, now time.Time) (Result, error) {
	var res Result
	minuteOrHour := p.CN == hj212.CNMinute || p.CN == hj212.CNHourly
	if p.CN != hj212.CNRealtime && !minuteOrHour {
		return res, nil
	}
	rec, err := hj212.ParseRecord(p.CP, loc)
	if err != nil {
		return res, &ConvertError{ReasonField, err}
	}
	t := rec.DataTime
	if err := reading.CheckPayloadTime(t, now); err != nil {
		return res, &ConvertError{ReasonTime, fmt.Errorf("DataTime %w", err)}
	}
	for _, f := range rec.Factors {
		m, ok := st.Factors[f.Code]
		if !ok && !minuteOrHour {
			m, ok = DefaultFactor(f.Code)
		}
		if !ok {
			res.Skipped = append(res.Skipped, Skipped{f.Code, "unmapped"})
			continue
		}
		var text string
		if minuteOrHour {
			if text, ok = f.Value("Avg"); !ok {
				text, ok = f.Value("Data")
			}
		} else {
			text, ok = f.Value("Rtd")
		}
		if !ok {
			res.Skipped = append(res.Skipped, Skipped{f.Code, "no_value"})
			continue
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(text, "xXpP_") {
			res.Skipped = append(res.Skipped, Skipped{f.Code, "number"})
			continue
		}
		if m.Scale != 0 {
			v *= m.Scale
		}
		q, ok := reading.Lookup(m.Quantity)
		if !ok {
			res.Skipped = append(res.Skipped, Skipped{f.Code, "quantity"})
			continue
		}
		if !q.Plausible(v) {
			res.Skipped = append(res.Skipped, Skipped{f.Code, "range"})
			continue
		}
		r := reading.New(t, st.Site, st.Device, m.Quantity, v)
		if flag, ok := f.Value("Flag"); ok && flag != hj212.DataNormal {
			// T (over range) and every invalid flag (F, M, S, D, C, B, or an unknown
			// letter) are suspect: stored, marked, the letter logged (issue 17).
			r.Quality = reading.Suspect
			res.Flagged = append(res.Flagged, Flagged{m.Quantity, flag})
		}
		if err := r.Validate(); err != nil {
			res.Skipped = append(res.Skipped, Skipped{f.Code, "invalid"})
			continue
		}
		res.Readings = append(res.Readings, r)
	}
	return res, nil
}

// defaults is the reverse of hj212.Factors for the codes one quantity owns, with the
// scale from the table's unit to the catalog's, plus input aliases.
var defaults = func() map[string]Factor {
	count := map[string]int{}
	for _, fi := range hj212.Factors {
		count[fi.Code]++
	}
	m := map[string]Factor{}
	for name, fi := range hj212.Factors {
		if count[fi.Code] != 1 {
			continue
		}
		q, ok := reading.Lookup(name)
		if !ok {
			continue // a derived quantity (l10_1h, ld, ...): not a raw reading
		}
		m[fi.Code] = Factor{Quantity: name, Scale: unitScale(fi.Unit, q.Unit)}
	}
	// Leq in real-time data is the meter's own equivalent level (HJ 212-2017 Table B.3);
	// several derived quantities share the code on output.
	m["Leq"] = Factor{Quantity: "laeq", Scale: 1}
	// Ozone's code is not in the 2017 tables; one public sample sends "O3"
	// (docs/standards.md §4.8): accept it on input.
	m["O3"] = m[hj212.Factors["o3"].Code]
	return m
}()

// DefaultFactor returns the default mapping of a factor code: the quantity whose
// default code it is in hj212.Factors (when only one quantity has it), Leq → laeq and
// the alias O3 → o3; Scale converts the standard table's unit to the catalog's
// (mg/m3 → ug/m3 for SO2 and NO2, kPa → hPa for pressure).
func DefaultFactor(code string) (Factor, bool) {
	f, ok := defaults[code]
	return f, ok
}

// unitScale is the factor from a unit of the standard's tables to a catalog unit.
func unitScale(from, to string) float64 {
	switch {
	case from == "mg/m3" && to == "ug/m3":
		return 1000
	case from == "kPa" && to == "hPa":
		return 10
	}
	return 1
}
