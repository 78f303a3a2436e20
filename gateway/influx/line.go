package influx

import (
	"strings"
	"time"

	"github.com/envgate/envgate/gateway/reading"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// Line encodes r as one line of InfluxDB line protocol, without a trailing newline,
// following docs/data-model.md:
//
//	<domain>,device=<device>,gateway=<gatewayID>,site=<site> <quantity>=<value>[,<quantity>_quality=<n>i] <time>
//
// The measurement is the quantity's Domain; the value is always a float (line protocol
// reads a number without an "i" suffix as a float, so 35.0 is written "35"); the
// integer quality field is present only when r.Quality is not Good; the timestamp is
// r.Time truncated to precision (time.Second, Millisecond, Microsecond, otherwise
// nanoseconds). Escaping is done by the client library's encoder. Line does not
// validate r: call r.Validate first.
func Line(r reading.Reading, gatewayID string, precision time.Duration) string {
	q, _ := reading.Lookup(r.Quantity)
	// Tags in key order, as InfluxDB stores them; the fields are sorted too.
	p := write.NewPointWithMeasurement(string(q.Domain)).
		AddTag("device", r.Device).
		AddTag("gateway", gatewayID).
		AddTag("site", r.Site).
		AddField(r.Quantity, r.Value).
		SetTime(r.Time)
	if r.Quality != reading.Good {
		p.AddField(r.Quantity+"_quality", int64(r.Quality))
	}
	var sb strings.Builder
	sb.Grow(128)
	write.PointToLineProtocolBuffer(p, &sb, precision)
	return strings.TrimSuffix(sb.String(), "\n")
}
