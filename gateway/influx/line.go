package influx

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/envgate/envgate/gateway/reading"
)

// Line encodes r as one line of InfluxDB line protocol, without a trailing newline,
// following docs/data-model.md:
//
//	<domain>,device=<device>,gateway=<gatewayID>,site=<site> <quantity>=<value>[,<quantity>_quality=<n>i][,<quantity>_reason="<reason>"] <time>
//
// The measurement is the quantity's Domain; the value is always a float (line protocol
// reads a number without an "i" suffix as a float, so 35.0 is written "35"); the
// integer quality field is present only when r.Quality is not Good, and the string
// field <quantity>_reason (the screening flag: "flatline") only with a Reason; the timestamp is
// r.Time truncated to precision (time.Second, Millisecond, Microsecond, otherwise
// nanoseconds). Line does not validate r: call r.Validate first.
func Line(r reading.Reading, gatewayID string, precision time.Duration) string {
	q, _ := reading.Lookup(r.Quantity)
	return string(appendLine(make([]byte, 0, 128), string(q.Domain), r, gatewayID, precision))
}

// appendLine appends Line(r, gatewayID, precision) to dst, given the Domain of
// r.Quantity (measurement; "" for an unknown quantity). It writes what the client
// library's write.Point encoder (influxdb-client-go v2.14.0, api/write/ext.go) writes for
// the same point, byte for byte, with none of its allocations: TestAppendLineMatchesClient
// and FuzzAppendLine compare the two. That covers its escaping, which is not quite the
// line protocol's own: space and comma get a backslash everywhere, "=" in tag keys and
// values and field keys but not in the measurement; a newline, carriage return or tab
// becomes a backslash, a backslash and n, r or t; and bytes that are not UTF-8 become
// U+FFFD. Tags are in key order, as InfluxDB stores them.
func appendLine(dst []byte, measurement string, r reading.Reading, gatewayID string, precision time.Duration) []byte {
	dst = appendEscaped(dst, measurement, false)
	dst = append(dst, ",device="...)
	dst = appendEscaped(dst, r.Device, true)
	dst = append(dst, ",gateway="...)
	dst = appendEscaped(dst, gatewayID, true)
	dst = append(dst, ",site="...)
	dst = appendEscaped(dst, r.Site, true)
	dst = append(dst, ' ')
	dst = appendEscaped(dst, r.Quantity, true)
	dst = append(dst, '=')
	dst = appendFloat(dst, r.Value)
	if r.Quality != reading.Good {
		dst = append(dst, ',')
		dst = appendEscaped(dst, r.Quantity, true)
		dst = appendEscaped(dst, "_quality", true)
		dst = append(dst, '=')
		dst = strconv.AppendInt(dst, int64(r.Quality), 10)
		dst = append(dst, 'i')
	}
	if r.Reason != reading.NoReason {
		dst = append(dst, ',')
		dst = appendEscaped(dst, r.Quantity, true)
		dst = appendEscaped(dst, "_reason", true)
		dst = append(dst, `="`...)
		dst = append(dst, r.Reason.String()...) // lower-case letters only: nothing to escape
		dst = append(dst, '"')
	}
	if r.Time.IsZero() {
		return dst
	}
	dst = append(dst, ' ')
	switch precision {
	case time.Microsecond:
		return strconv.AppendInt(dst, r.Time.UnixNano()/1000, 10)
	case time.Millisecond:
		return strconv.AppendInt(dst, r.Time.UnixNano()/1000000, 10)
	case time.Second:
		return strconv.AppendInt(dst, r.Time.Unix(), 10)
	default:
		return strconv.AppendInt(dst, r.Time.UnixNano(), 10)
	}
}

// appendFloat appends v as fmt's %v does (the client library formats fields so):
// strconv's shortest 'g' form, "+Inf", "-Inf" and "NaN" for the values Validate rejects.
func appendFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendEscaped appends s with the client library's key escaping (see appendLine);
// equal says whether "=" is escaped too.
func appendEscaped(dst []byte, s string, equal bool) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf, c == ' ', c == ',', c == '\n', c == '\r', c == '\t', c == '=' && equal:
			plain = false
		}
		if !plain {
			break
		}
	}
	if plain {
		return append(dst, s...)
	}
	for _, c := range s { // by rune: invalid bytes become U+FFFD, as in the library
		switch c {
		case '\n':
			dst = append(dst, `\\n`...)
			continue
		case '\r':
			dst = append(dst, `\\r`...)
			continue
		case '\t':
			dst = append(dst, `\\t`...)
			continue
		case ' ', ',':
			dst = append(dst, '\\')
		case '=':
			if equal {
				dst = append(dst, '\\')
			}
		}
		dst = utf8.AppendRune(dst, c)
	}
	return dst
}
