//go:build fakeclock

package clock

import (
	"fmt"
	"os"
	"time"
)

// Fake reports whether this build honours EnvOffset; Tags is the build tag that makes
// it so, for a test that builds the binary it runs.
const (
	Fake = true
	Tags = "fakeclock"
)

// offset is read once: every reading of the clock in a process is shifted alike, and
// time.Time.Add shifts the monotonic reading too, so durations stay exact.
var offset = parseOffset(os.Getenv(EnvOffset))

func parseOffset(s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("%s=%q: want a Go duration such as 9600h: %v", EnvOffset, s, err))
	}
	return d
}

// Now returns time.Now() shifted by EnvOffset.
func Now() time.Time { return time.Now().Add(offset) }

// Offset is how far Now is from the kernel's clock (file times, time.Now): EnvOffset.
func Offset() time.Duration { return offset }
