//go:build !fakeclock

package clock

import "time"

// Fake reports whether this build honours EnvOffset; Tags is the build tag that makes
// it so ("" in this build), for a test that builds the binary it runs.
const (
	Fake = false
	Tags = ""
)

// Now returns time.Now().
func Now() time.Time { return time.Now() }

// Offset is how far Now is from the kernel's clock (file times, time.Now): 0.
func Offset() time.Duration { return 0 }
