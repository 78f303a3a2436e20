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
