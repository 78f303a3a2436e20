package modbus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrCircuitOpen is the poll error of a device whose requests are being skipped
// because it stopped answering. The error also wraps the failure that opened the
// breaker (ErrTimeout, ErrCRC or ErrFrame).
var ErrCircuitOpen = errors.New("circuit breaker open")

// Breaker tuning. A dead slave on RS-485 costs a full response timeout of bus time that
// every other slave waits through ("typically 1 s to several seconds at 9600 bps",
// Modbus over Serial Line V1.02; docs/engineering-notes.md §1.3), so it is probed
// with exponential back-off instead of at its poll rate.
const (
	breakerMinBackoff = time.Second
	breakerMaxBackoff = 5 * time.Minute
	// breakerGarbled consecutive CRC or framing errors open the breaker. One garbled
	// reply is usually line noise (a motor starting, a long unterminated stub) and
	// the next poll succeeds; a run of them means the slave cannot be understood
	// (wrong baud or parity, two slaves sharing an address), and each one costs a
	// full reply plus the receiver's resync wait.
	breakerGarbled = 3
)

// A breaker guards the bus against one device that does not answer. It is owned by
// the bus goroutine.
//
// Rules:
//   - ErrTimeout opens it at once: the slave is silent and every retry costs a full
//     timeout.
//   - ErrCRC or ErrFrame open it after breakerGarbled in a row (any failed probe
//     reopens it at once).
//   - A reply, even an exception, closes it and resets the back-off: the slave is
//     there and answered quickly.
//   - Other errors (I/O errors of the port) leave it alone: they are the bus's
//     problem, handled by reconnecting.
//
// While open, allow refuses until the back-off has elapsed; then it lets exactly one
// request through as a probe, whose outcome either closes the breaker or reopens it
// with the back-off doubled, from 1 s up to 5 min, minus up to 20 % jitter so that
// several slaves that died together (a shared power supply) are not probed in lockstep.
type breaker struct {
	open    bool
	garbled int           // consecutive CRC/framing errors
	backoff time.Duration // nominal back-off of the current open period; 0 when closed
	until   time.Time     // while open: when the next probe may go out
	err     error         // while open: the error of skipped requests
}

// allow reports whether a request may use the bus at now. While open, the first call
// at or after the back-off's end is the probe; allow keeps returning true until
// record sees the probe's outcome.
func (b *breaker) allow(now time.Time) bool { return !b.open || !now.Before(b.until) }

// record notes the outcome of a transaction that ended at now. It reports whether the
// breaker changed state (opened or closed) and, when it is open afterwards, how long
// until the next probe.
func (b *breaker) record(now time.Time, err error) (changed bool, retryIn time.Duration) {
	switch {
	case err == nil || isException(err) && !NoAnswer(err):
		changed = b.open
		*b = breaker{}
		return changed, 0
	case errors.Is(err, ErrTimeout), NoAnswer(err):
	case errors.Is(err, ErrCRC), errors.Is(err, ErrFrame):
		b.garbled++
		if !b.open && b.garbled < breakerGarbled {
			return false, 0
		}
	default:
		return false, 0
	}
	changed = !b.open
	b.open = true
	b.backoff = min(max(2*b.backoff, breakerMinBackoff), breakerMaxBackoff)
	retryIn = b.backoff - rand.N(b.backoff/5)
	b.until = now.Add(retryIn)
	b.err = fmt.Errorf("%w (last error: %w)", ErrCircuitOpen, err)
	return changed, retryIn
}

// isException reports whether err is a Modbus exception reply: the slave answered.
// NoAnswer reports whether err means the slave itself did not answer: a timeout, or a
// gateway's exception 0A (path unavailable) or 0B (target device failed to respond),
// which a Modbus TCP gateway sends after its own timeout when the RTU slave behind it
// is silent.
func NoAnswer(err error) bool {
	var exc *ExceptionError
	if errors.As(err, &exc) {
		return exc.Code == 0x0A || exc.Code == 0x0B
	}
	return errors.Is(err, ErrTimeout)
}

func isException(err error) bool {
	var exc *ExceptionError
	return err != nil && errors.As(err, &exc)
}
