package noise

import (
	"slices"
	"time"
)

// cadenceSize is how many of a meter's latest distinct `laeq` times its period is learned
// from: 15 spacings, so one gap among them does not outvote the steady ones.
const cadenceSize = 16

// maxLaeqSpacing bounds a spacing taken as a meter's period: a longer one is an outage
// (HJ 212 noise data are at most hourly records short of the daily ones).
const maxLaeqSpacing = time.Hour

// A cadence learns the period of a smart meter's own Leq values from their times, for a
// meter whose laeq_period is not configured. A meter sends one Leq per period, so its
// period is the most common spacing between consecutive values; a gap makes one longer
// spacing, which never wins against the steady ones (ties go to the shorter spacing, as a
// gap only ever lengthens one).
//
// It keeps the latest cadenceSize distinct times. Spacings are rounded to whole seconds
// (meters and networks stamp with some jitter); one that rounds to 0 or is longer than
// maxLaeqSpacing is no period and is ignored. A time seen before changes nothing, so a
// redelivered value does not move the period, and a value arriving out of order is placed
// by its time.
type cadence struct {
	times []time.Time // ascending, distinct, at most cadenceSize
}

// add records the time of one `laeq` value.
func (c *cadence) add(t time.Time) {
	i, found := slices.BinarySearchFunc(c.times, t, time.Time.Compare)
	switch {
	case found:
		return
	case len(c.times) < cadenceSize:
		c.times = slices.Insert(c.times, i, t)
	case i > 0: // full: the oldest time makes room, unless t is older still
		copy(c.times, c.times[1:i])
		c.times[i-1] = t
	}
}

// period returns the most common spacing in seconds and how many times it occurs among
// the kept times; 0, 0 before two values a period apart have been seen.
func (c *cadence) period() (seconds float64, n int) {
	var buf [cadenceSize - 1]int64
	s := buf[:0]
	for i := 1; i < len(c.times); i++ {
		d := c.times[i].Sub(c.times[i-1]).Round(time.Second)
		if sec := int64(d / time.Second); sec > 0 && d <= maxLaeqSpacing {
			s = append(s, sec)
		}
	}
	slices.Sort(s)
	var best int64
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if j-i > n { // strictly more: a tie keeps the shorter spacing
			best, n = s[i], j-i
		}
		i = j
	}
	return float64(best), n
}
