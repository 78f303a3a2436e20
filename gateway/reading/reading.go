// Package reading defines the value every part of envgate passes around: one measured
// (or derived) quantity at one site, from one device, at one instant.
//
// It imports only the standard library so that drivers, the gateway and the tools can
// all depend on it. The canonical quantity names, their units and their InfluxDB
// measurement are fixed here and documented in docs/data-model.md.
package reading

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode"
)

// Quality says how far a reading can be trusted.
type Quality uint8

const (
	// Good is a plausible reading from a healthy device.
	Good Quality = iota
	// Suspect is plausible but flagged (sensor warming up, outside its rated range,
	// derived from too little data). It is stored with a quality field.
	Suspect
	// Bad is physically impossible or known wrong. It is counted and never stored as a value.
	Bad
)

// String returns "good", "suspect" or "bad".
func (q Quality) String() string {
	switch q {
	case Good:
		return "good"
	case Suspect:
		return "suspect"
	case Bad:
		return "bad"
	}
	return fmt.Sprintf("quality(%d)", uint8(q))
}

// Reason says why data-quality screening (gateway/screen) flagged a reading. A reading
// with a Reason is Suspect, stored with its raw value, and left out of the derivations
// (docs/data-model.md, "Data-quality screening"). The numbers are stored in the buffer:
// never renumber them.
type Reason uint8

const (
	NoReason  Reason = iota // not flagged
	Range                   // outside the quantity's plausible range or the channel's limits
	Flatline                // no change beyond the sensor's resolution for too long
	Spike                   // a jump the next samples went back from
	Drift                   // too far from its reference (a co-located sensor or a check value)
	maxReason = Drift
)

var reasonNames = [...]string{NoReason: "", Range: "range", Flatline: "flatline", Spike: "spike", Drift: "drift"}

// String returns the reason's name ("flatline"), "" for NoReason.
func (r Reason) String() string {
	if r <= maxReason {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Reasons lists the reasons a reading can be flagged with, in code order.
func Reasons() []Reason { return []Reason{Range, Flatline, Spike, Drift} }

// ParseReason reads a reason's name; "" is NoReason.
func ParseReason(s string) (Reason, error) {
	for i, n := range reasonNames {
		if n == s {
			return Reason(i), nil
		}
	}
	return NoReason, fmt.Errorf("unknown reason %q (want range, flatline, spike or drift)", s)
}

// Reading is one value of one quantity at one site, from one device, at one instant.
type Reading struct {
	Time     time.Time // when the value was acquired (not when it was sent)
	Site     string    // where it was measured, e.g. "canal-east-3"
	Device   string    // which device measured it, unique within the gateway
	Quantity string    // canonical name from the catalog, e.g. "pm25"
	Value    float64   // in the canonical unit of Quantity
	Unit     string    // the canonical unit of Quantity, e.g. "ug/m3"
	Quality  Quality
	Reason   Reason // why screening flagged it; NoReason unless Quality is Suspect
}

// New returns a Good reading of a catalog quantity, with its canonical unit filled in.
// It does not validate; call Validate before the reading leaves its driver.
func New(t time.Time, site, device, quantity string, value float64) Reading {
	q, _ := Lookup(quantity)
	return Reading{Time: t, Site: site, Device: device, Quantity: quantity, Value: value, Unit: q.Unit}
}

// Validate reports why r cannot be stored: an unknown quantity, a unit other than the
// canonical one, a missing or malformed site or device, a zero time or a value that is
// not a finite number. A value outside the quantity's plausible range is not an error
// here; see Quantity.Plausible.
func (r Reading) Validate() error {
	var errs []error
	q, ok := Lookup(r.Quantity)
	if !ok {
		errs = append(errs, fmt.Errorf("unknown quantity %q", r.Quantity))
	} else if r.Unit != q.Unit {
		errs = append(errs, fmt.Errorf("quantity %s: unit %q, want %q", r.Quantity, r.Unit, q.Unit))
	}
	if err := CheckName(r.Site); err != nil {
		errs = append(errs, fmt.Errorf("site: %w", err))
	}
	if err := CheckName(r.Device); err != nil {
		errs = append(errs, fmt.Errorf("device: %w", err))
	}
	if r.Time.IsZero() {
		errs = append(errs, errors.New("time is zero"))
	} else if r.Time.Before(MinTime) || !r.Time.Before(MaxTime) {
		errs = append(errs, fmt.Errorf("time %s outside %s to %s", r.Time.UTC().Format(time.RFC3339Nano),
			MinTime.Format(time.DateOnly), MaxTime.Format(time.DateOnly)))
	}
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		errs = append(errs, fmt.Errorf("value %v is not a finite number", r.Value))
	}
	if r.Quality > Bad {
		errs = append(errs, fmt.Errorf("unknown quality %d", r.Quality))
	}
	if r.Reason > maxReason {
		errs = append(errs, fmt.Errorf("unknown reason %d", r.Reason))
	} else if r.Reason != NoReason && r.Quality == Good {
		errs = append(errs, fmt.Errorf("reason %s on a good reading", r.Reason))
	}
	return errors.Join(errs...)
}

// MinTime and MaxTime bound a reading's time. Outside them a clock is wrong, and beyond
// 2262-04-11 Unix nanoseconds (InfluxDB's timestamps, the buffer's record) overflow.
var (
	MinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// MaxNameLen bounds site, device and gateway names (they become InfluxDB tag values).
const MaxNameLen = 64

// CheckName reports whether s can be a site, device or gateway name: 1 to MaxNameLen
// characters, letters (any script), digits, '-', '_' and '.'.
func CheckName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("longer than %d bytes", MaxNameLen)
	}
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = asciiName[s[i]]
	}
	if ascii {
		return nil // every byte an ASCII letter, digit, '-', '_' or '.'
	}
	for _, c := range s {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("character %q not allowed (letters, digits, '-', '_', '.')", c)
		}
	}
	return nil
}

// asciiName marks the ASCII bytes CheckName allows: the common names take one table
// lookup a byte (every reading is checked at least twice, by its source and the writer).
var asciiName = func() (t [256]bool) {
	for c := range 128 {
		r := rune(c)
		t[c] = unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.'
	}
	return t
}()

// ChinaStandardTime is Asia/Shanghai: UTC+8 without daylight saving since 1991, as a
// fixed zone so that it needs no tzdata on the box. It is the default zone of every
// clock-aligned window (minutes, hours, day/night periods, days).
var ChinaStandardTime = time.FixedZone("CST", 8*60*60)
