package reading

import (
	"fmt"
	"time"
)

// MinPayloadTime and MaxPayloadFuture bound a time read from a payload (an MQTT
// message's timestamp, an HJ 212 packet's DataTime): it must lie in
// [MinPayloadTime, now+MaxPayloadFuture]. The window rejects the usual device-clock and
// configuration mistakes, which would otherwise be stored at absurd times: an RTC that
// lost its battery (1970 or 2000-01-01 00:00 plus uptime just passes, nothing can catch
// that), milliseconds read as "unix" seconds (year 50000+), or local time sent as UTC
// and read with the wrong zone beyond a day. A day allows for every real UTC offset (at
// most 14 h) and for a gateway clock running behind.
var MinPayloadTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxPayloadFuture: see MinPayloadTime.
const MaxPayloadFuture = 24 * time.Hour

// CheckPayloadTime reports why t, a time read from a payload that arrived at now, is
// outside [MinPayloadTime, now+MaxPayloadFuture]. A zero now skips the upper bound: the
// caller passes it while the gateway's own clock is implausible (internal/clock: a box
// without an RTC before NTP sync), so that a wrong local clock cannot reject good data.
// drivers/mqttsub and drivers/hj212 both use it, so that they bound times alike.
func CheckPayloadTime(t, now time.Time) error {
	if t.Before(MinPayloadTime) {
		return fmt.Errorf("%s is before %s", t.Format(time.RFC3339Nano), MinPayloadTime.Format(time.DateOnly))
	}
	if !now.IsZero() && t.After(now.Add(MaxPayloadFuture)) {
		return fmt.Errorf("%s is more than %v after arrival %s", t.Format(time.RFC3339Nano), MaxPayloadFuture, now.Format(time.RFC3339))
	}
	return nil
}
