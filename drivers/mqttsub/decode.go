package mqttsub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/envgate/envgate/internal/clock"
)

// The kinds of DecodeError, also the keys of Stats.ErrorsByKind.
const (
	KindJSON         = "json"         // payload is not JSON, or a field is missing or not a number
	KindNumber       = "number"       // payload is not a plain number
	KindLineProtocol = "lineprotocol" // payload is not valid line protocol, or a field is not numeric
	KindTopic        = "topic"        // topic matches no subscription or template, or names an invalid site or device
	KindOversize     = "oversize"     // payload longer than Config.MaxPayload
	KindRange        = "range"        // value not finite or outside its quantity's plausible range
	KindQuantity     = "quantity"     // quantity (from the topic or a line-protocol field) not in the catalog
	KindTime         = "time"         // timestamp missing, unparsable or implausible
	KindReserved     = "reserved"     // names the gateway's own device or a health quantity (reading.Reserved)
	KindUnlisted     = "unlisted"     // site or device not in the subscription's sites or devices
	KindDeviceLimit  = "device_limit" // a new device beyond the subscription's max_devices (never from Decode)
	KindConfig       = "config"       // Decode was given an invalid Subscription (never seen by Run)
)

// DecodeError says why a message is malformed. Kind is one of the Kind constants.
type DecodeError struct {
	Kind string
	Err  error
}

func (e *DecodeError) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

func malformed(kind, format string, args ...any) error {
	return &DecodeError{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// Decode turns one MQTT message into readings. It is pure: the same arguments give the
// same result, and every reading it returns passes reading.Validate and its quantity's
// plausible range. A message that cannot be decoded completely gives no readings and a
// *DecodeError; no partial result is returned, as one bad value usually means the whole
// payload was misread.
//
// The topic must match sub.Template (or sub.Topic when Template is empty). arrival is
// the time the message reached the gateway; it stamps the readings when the payload
// carries no time. Decode validates sub on every call; Run uses the subscriptions that
// New compiled once.
func Decode(sub Subscription, topic string, payload []byte, arrival time.Time) ([]reading.Reading, error) {
	p, errs := compile(sub, "", DefaultDeviceExpiry)
	if len(errs) > 0 {
		return nil, &DecodeError{Kind: KindConfig, Err: errors.Join(errs...)}
	}
	return p.decode(topic, payload, arrival)
}

// decode is Decode with a compiled subscription.
func (p *plan) decode(topic string, payload []byte, arrival time.Time) ([]reading.Reading, error) {
	ids, err := p.match(topic)
	if err != nil {
		return nil, err
	}
	arrival = arrival.UTC()
	var rs []reading.Reading
	switch p.format {
	case FormatNumber:
		rs, err = p.decodeNumber(ids, payload, arrival)
	case FormatLineProtocol:
		rs, err = p.decodeLineProtocol(ids, payload, arrival)
	default:
		rs, err = p.decodeJSON(ids, payload, arrival)
	}
	if err != nil {
		return nil, err
	}
	// Every check above is explicit; this is the last guard of Decode's contract.
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return nil, malformed(KindRange, "%s: %w", r.Quantity, err)
		}
	}
	if err := p.checkNames(rs); err != nil {
		return nil, err
	}
	return rs, nil
}

// topicIDs are the site, device and quantity a topic names (or the fixed ones).
type topicIDs struct{ site, device, quantity string }

// match applies the template to the topic.
func (p *plan) match(topic string) (topicIDs, error) {
	ids := topicIDs{site: p.site, device: p.device, quantity: p.quantity}
	// The topic's levels one by one (as strings.Split would give them, without its
	// slice): more says whether a level is left in rest.
	rest, more := topic, true
	for i, t := range p.template {
		if t == "#" {
			break
		}
		if !more {
			return ids, malformed(KindTopic, "topic %q has fewer levels than template %q", topic, p.templateText)
		}
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		switch t {
		case "+":
		case "{site}":
			ids.site = seg
		case "{device}":
			ids.device = seg
		case "{quantity}":
			ids.quantity = seg
		default:
			if seg != t {
				return ids, malformed(KindTopic, "topic %q does not match template %q: level %d is %q, want %q", topic, p.templateText, i+1, seg, t)
			}
		}
	}
	if n := len(p.template); (n == 0 || p.template[n-1] != "#") && more {
		return ids, malformed(KindTopic, "topic %q has more levels than template %q", topic, p.templateText)
	}
	if p.hasSite {
		if err := reading.CheckName(ids.site); err != nil {
			return ids, malformed(KindTopic, "topic %q: site %q: %w", topic, ids.site, err)
		}
	}
	if p.hasDevice {
		if err := reading.CheckName(ids.device); err != nil {
			return ids, malformed(KindTopic, "topic %q: device %q: %w", topic, ids.device, err)
		}
	}
	if p.hasQuantity {
		if _, ok := reading.Lookup(ids.quantity); !ok {
			return ids, malformed(KindQuantity, "topic %q: %q is not a catalog quantity", topic, ids.quantity)
		}
	}
	return ids, nil
}

// newReading checks v against the quantity's catalog range and builds the reading.
func newReading(t time.Time, site, device, quantity string, v float64) (reading.Reading, error) {
	q, ok := reading.Lookup(quantity)
	if !ok {
		return reading.Reading{}, malformed(KindQuantity, "%q is not a catalog quantity", quantity)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return reading.Reading{}, malformed(KindRange, "%s: value %v is not a finite number", quantity, v)
	}
	if !q.Plausible(v) {
		return reading.Reading{}, malformed(KindRange, "%s: value %v outside the plausible range %v..%v %s", quantity, v, q.Min, q.Max, q.Unit)
	}
	return reading.New(t, site, device, quantity, v), nil
}

// checkTime applies reading's plausibility window to a timestamp read from a payload;
// the upper bound is skipped while the gateway's own clock is implausible.
func checkTime(t, arrival time.Time) error {
	if !clock.Plausible(arrival) {
		arrival = time.Time{}
	}
	if err := reading.CheckPayloadTime(t, arrival); err != nil {
		return malformed(KindTime, "timestamp %w", err)
	}
	return nil
}

// arrivalTime is the stamp of readings whose payload has no time.
func arrivalTime(arrival time.Time) (time.Time, error) {
	if arrival.IsZero() {
		return time.Time{}, malformed(KindTime, "no timestamp in the payload and no arrival time")
	}
	return arrival, nil
}

// ---- number ----

func (p *plan) decodeNumber(ids topicIDs, payload []byte, arrival time.Time) ([]reading.Reading, error) {
	s := strings.TrimSpace(string(payload))
	if !isDecimal(s) {
		return nil, malformed(KindNumber, "payload %q is not a number", truncate(s, 40))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil { // only a value out of float64 range gets here
		return nil, malformed(KindRange, "%s: %q: value out of range", ids.quantity, truncate(s, 40))
	}
	t, err := arrivalTime(arrival)
	if err != nil {
		return nil, err
	}
	if v, err = convert(ids.quantity, v, p.unit); err != nil {
		return nil, malformed(KindRange, "%v", err)
	}
	r, err := newReading(t, ids.site, ids.device, ids.quantity, v)
	if err != nil {
		return nil, err
	}
	return []reading.Reading{r}, nil
}

// convert converts v from unit to the catalog unit of quantity (reading.Convert); the
// empty unit is the catalog unit. An unknown quantity is left to newReading.
func convert(quantity string, v float64, unit string) (float64, error) {
	if unit == "" {
		return v, nil
	}
	if _, ok := reading.Lookup(quantity); !ok {
		return v, nil
	}
	return reading.Convert(quantity, v, unit)
}

// isDecimal reports whether s is a decimal number as JSON writes it, except that
// leading zeros are allowed: [-]digits[.digits][(e|E)[+|-]digits]. It rejects what
// strconv.ParseFloat would also accept but no sensor means as a reading: "NaN", "Inf",
// hexadecimal, underscores, a leading '+' or '.'.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// ---- JSON ----

// decodeJSON reads the payload in place if it can (rawDoc), and with encoding/json
// otherwise (jsondoc.go); the results are the same.
func (p *plan) decodeJSON(ids topicIDs, payload []byte, arrival time.Time) ([]reading.Reading, error) {
	if raw, ok := newRawDoc(payload); ok {
		if rs, err := p.readJSON(ids, raw, arrival); err != errSlow {
			return rs, err
		}
	}
	return p.decodeJSONTree(ids, payload, arrival)
}

// decodeJSONTree decodes the payload with encoding/json and reads the document.
func (p *plan) decodeJSONTree(ids topicIDs, payload []byte, arrival time.Time) ([]reading.Reading, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, malformed(KindJSON, "payload is not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed(KindJSON, "payload has data after the JSON value")
	}
	return p.readJSON(ids, treeDoc{doc}, arrival)
}

// readJSON makes the readings of a JSON document. With a rawDoc it may return errSlow,
// and nothing else it returns then depends on which kind of jsonDoc it read.
func (p *plan) readJSON(ids topicIDs, doc jsonDoc, arrival time.Time) ([]reading.Reading, error) {
	t, err := arrivalTime(arrival)
	if p.time.path != nil {
		t, err = p.time.fromJSON(doc, arrival)
	}
	if err != nil {
		return nil, err
	}

	rs := make([]reading.Reading, 0, len(p.fields))
	raw, isRaw := doc.(rawDoc)
	for _, f := range p.fields {
		var (
			x  float64
			ok bool
		)
		if isRaw {
			// A plain number read in place, without a json.Number and its boxing: the
			// same float64 as jsonNumber's. Anything else takes the general way below.
			x, ok = raw.number(f.path)
		}
		if !ok {
			v, found, err := doc.lookup(f.path)
			if err == errSlow {
				return nil, err
			}
			if err != nil {
				return nil, malformed(KindJSON, "field %q: %w", f.pathText, err)
			}
			if !found {
				if f.optional {
					continue
				}
				return nil, malformed(KindJSON, "field %q: missing", f.pathText)
			}
			if x, err = jsonNumber(v); err != nil {
				var de *DecodeError
				if errors.As(err, &de) {
					return nil, &DecodeError{Kind: de.Kind, Err: fmt.Errorf("field %q: %w", f.pathText, de.Err)}
				}
				return nil, malformed(KindJSON, "field %q: %w", f.pathText, err)
			}
		}
		q := f.quantity
		if q == "" {
			q = ids.quantity
		}
		val, err := convert(q, x*f.scale+f.offset, f.unit)
		if err != nil {
			return nil, malformed(KindRange, "field %q: %v", f.pathText, err)
		}
		r, err := newReading(t, ids.site, ids.device, q, val)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, malformed(KindJSON, "none of the %d optional fields is present", len(p.fields))
	}
	return rs, nil
}

// jsonNumber reads a JSON number, or a string holding one (some LoRaWAN decoders and
// ESP32 sketches format values as strings).
func jsonNumber(v any) (float64, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = strings.TrimSpace(x)
		if !isDecimal(s) {
			return 0, fmt.Errorf("string %q is not a number", truncate(x, 40))
		}
	default:
		return 0, fmt.Errorf("is %s, not a number", jsonKind(v))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, &DecodeError{Kind: KindRange, Err: fmt.Errorf("%s: value out of range", truncate(s, 40))}
	}
	return f, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// step is one element of a JSON path: an object key or an array index.
type step struct {
	key     string
	index   int
	isIndex bool
}

// maxIndex bounds array indexes in paths (a payload is at most max_payload).
const maxIndex = 1 << 20

// parsePath parses a dotted path with [i] array indexes: "data.pm25",
// "object.sensors[0].value", "[2].v", "m[0][1]": keys separated by dots, each followed
// by any number of indexes; the path may start with an index. Keys cannot contain '.',
// '[' or ']'. Its errors are for the operator who wrote the path.
func parsePath(path string) ([]step, error) {
	bad := errors.New("must be keys separated by dots, with [i] for array elements, such as data.pm25 or sensors[0].value")
	if path == "" {
		return nil, errors.New("required")
	}
	var steps []step
	for i, part := range strings.Split(path, ".") {
		key, rest := part, ""
		if k := strings.IndexByte(part, '['); k >= 0 {
			key, rest = part[:k], part[k:]
		}
		if strings.Contains(key, "]") || (key == "" && (rest == "" || i > 0)) {
			return nil, bad
		}
		if key != "" {
			steps = append(steps, step{key: key})
		}
		for rest != "" {
			end := strings.IndexByte(rest, ']')
			if rest[0] != '[' || end < 0 {
				return nil, bad
			}
			digits := rest[1:end]
			if digits == "" || strings.Trim(digits, "0123456789") != "" || len(digits) > 7 {
				return nil, bad
			}
			n, _ := strconv.Atoi(digits)
			if n > maxIndex {
				return nil, fmt.Errorf("array index %s is larger than %d", digits, maxIndex)
			}
			steps = append(steps, step{index: n, isIndex: true})
			rest = rest[end+1:]
		}
	}
	return steps, nil
}

func pathString(steps []step) string {
	var b strings.Builder
	for i, s := range steps {
		if s.isIndex {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

// lookup follows steps into a decoded JSON document. An absent key, an index past
// the end of an array or a null value is "not found"; descending into a number,
// string or boolean, or indexing an object, is an error.
func lookup(doc any, steps []step) (any, bool, error) {
	v := doc
	for i, s := range steps {
		switch x := v.(type) {
		case nil:
			return nil, false, nil
		case map[string]any:
			if s.isIndex {
				return nil, false, fmt.Errorf("%s is an object, not an array", where(steps[:i]))
			}
			e, ok := x[s.key]
			if !ok {
				return nil, false, nil
			}
			v = e
		case []any:
			if !s.isIndex {
				return nil, false, fmt.Errorf("%s is an array, not an object", where(steps[:i]))
			}
			if s.index >= len(x) {
				return nil, false, nil
			}
			v = x[s.index]
		default:
			return nil, false, fmt.Errorf("%s is %s, not an object or array", where(steps[:i]), jsonKind(v))
		}
	}
	if v == nil {
		return nil, false, nil
	}
	return v, true, nil
}

func where(steps []step) string {
	if len(steps) == 0 {
		return "the payload"
	}
	return strconv.Quote(pathString(steps))
}

// ---- time ----

// Named time formats of TimeSpec.Format; any other value is a Go layout.
const (
	TimeUnix    = "unix"    // seconds since 1970, may be fractional
	TimeUnixMs  = "unix_ms" // milliseconds
	TimeUnixUs  = "unix_us" // microseconds
	TimeUnixNs  = "unix_ns" // nanoseconds
	TimeRFC3339 = "rfc3339" // 2026-11-28T08:00:00+08:00, fractional seconds allowed
)

// fromJSON reads the message time from the document.
func (tp *timePlan) fromJSON(doc jsonDoc, arrival time.Time) (time.Time, error) {
	v, found, err := doc.lookup(tp.path)
	if err == errSlow {
		return time.Time{}, err
	}
	if err != nil {
		return time.Time{}, malformed(KindTime, "%q: %w", tp.pathText, err)
	}
	if !found {
		return time.Time{}, malformed(KindTime, "%q: missing", tp.pathText)
	}
	var t time.Time
	switch tp.format {
	case TimeUnix, TimeUnixMs, TimeUnixUs, TimeUnixNs:
		var s string
		switch x := v.(type) {
		case json.Number:
			s = string(x)
		case string:
			s = strings.TrimSpace(x)
		default:
			return time.Time{}, malformed(KindTime, "%q is %s, not a %s timestamp", tp.pathText, jsonKind(v), tp.format)
		}
		t, err = parseUnix(s, unixUnit[tp.format])
	default:
		s, ok := v.(string)
		if !ok {
			return time.Time{}, malformed(KindTime, "%q is %s, not a %s time string", tp.pathText, jsonKind(v), tp.format)
		}
		if tp.format == TimeRFC3339 {
			t, err = time.Parse(time.RFC3339, s)
		} else {
			t, err = time.ParseInLocation(tp.format, s, tp.loc)
		}
	}
	if err != nil {
		return time.Time{}, malformed(KindTime, "%q: %v", tp.pathText, err)
	}
	if err := checkTime(t, arrival); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// unixUnit is the length of one unit of each unix format, in nanoseconds.
var unixUnit = map[string]int64{TimeUnix: 1e9, TimeUnixMs: 1e6, TimeUnixUs: 1e3, TimeUnixNs: 1}

// parseUnix reads a decimal count of units (of unit nanoseconds) since 1970. Plain
// decimals ("1764316800.123") are converted exactly, not through float64, whose 53-bit
// mantissa would shift nanosecond timestamps by up to 256 ns.
func parseUnix(s string, unit int64) (time.Time, error) {
	if !isDecimal(s) {
		return time.Time{}, fmt.Errorf("%q is not a number", truncate(s, 40))
	}
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		ns := f * float64(unit)
		if err != nil || ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return time.Time{}, fmt.Errorf("%s: out of range", s)
		}
		return time.Unix(0, int64(ns)), nil
	}
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || n > math.MaxInt64/unit-1 {
		return time.Time{}, fmt.Errorf("%s: out of range", s)
	}
	ns := n * unit
	// Fraction digits finer than a nanosecond are dropped.
	digits := len(strconv.FormatInt(unit, 10)) - 1
	if len(frac) > digits {
		frac = frac[:digits]
	}
	if frac != "" {
		f, _ := strconv.ParseInt(frac+strings.Repeat("0", digits-len(frac)), 10, 64)
		ns += f
	}
	if neg {
		ns = -ns
	}
	return time.Unix(0, ns), nil
}

// ---- line protocol ----

func (p *plan) decodeLineProtocol(ids topicIDs, payload []byte, arrival time.Time) ([]reading.Reading, error) {
	type field struct {
		quantity string
		value    float64
	}
	var (
		rs     []reading.Reading
		fields []field
		line   int
	)
	dec := lineprotocol.NewDecoderWithBytes(payload)
	for dec.Next() {
		line++
		if _, err := dec.Measurement(); err != nil {
			return nil, malformed(KindLineProtocol, "entry %d: %v", line, err)
		}
		site, device := ids.site, ids.device
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				return nil, malformed(KindLineProtocol, "entry %d: %v", line, err)
			}
			if k == nil {
				break
			}
			switch string(k) {
			case "site":
				site = string(v)
			case "device":
				device = string(v)
			}
		}
		fields = fields[:0]
		for {
			k, v, err := dec.NextField()
			if err != nil {
				if errors.Is(err, lineprotocol.ErrValueOutOfRange) {
					return nil, malformed(KindRange, "entry %d: %v", line, err)
				}
				return nil, malformed(KindLineProtocol, "entry %d: %v", line, err)
			}
			if k == nil {
				break
			}
			q := string(k)
			if _, ok := reading.Lookup(q); !ok {
				return nil, malformed(KindQuantity, "entry %d: field %q is not a catalog quantity", line, q)
			}
			var x float64
			switch v.Kind() {
			case lineprotocol.Float:
				x = v.FloatV()
			case lineprotocol.Int:
				x = float64(v.IntV())
			case lineprotocol.Uint:
				x = float64(v.UintV())
			default:
				return nil, malformed(KindLineProtocol, "entry %d: field %q is a %s, not a number", line, q, v.Kind())
			}
			fields = append(fields, field{q, x})
		}
		tb, err := dec.TimeBytes()
		if err != nil {
			return nil, malformed(KindLineProtocol, "entry %d: %v", line, err)
		}
		var t time.Time
		if tb == nil {
			if t, err = arrivalTime(arrival); err != nil {
				return nil, err
			}
		} else {
			if t, err = parseUnix(string(tb), int64(p.time.prec.Duration())); err != nil {
				return nil, malformed(KindTime, "entry %d: timestamp %v", line, err)
			}
			if err := checkTime(t, arrival); err != nil {
				return nil, malformed(KindTime, "entry %d: %v", line, err.(*DecodeError).Err)
			}
			t = t.UTC()
		}
		if err := reading.CheckName(site); err != nil {
			return nil, malformed(KindLineProtocol, "entry %d: site %q (tag, template or config): %v", line, site, err)
		}
		if err := reading.CheckName(device); err != nil {
			return nil, malformed(KindLineProtocol, "entry %d: device %q (tag, template or config): %v", line, device, err)
		}
		for _, f := range fields {
			r, err := newReading(t, site, device, f.quantity, f.value)
			if err != nil {
				de := err.(*DecodeError)
				return nil, malformed(de.Kind, "entry %d: %v", line, de.Err)
			}
			rs = append(rs, r)
		}
	}
	if err := dec.Err(); err != nil {
		return nil, malformed(KindLineProtocol, "%v", err)
	}
	if line == 0 {
		return nil, malformed(KindLineProtocol, "no entries in the payload")
	}
	return rs, nil
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
