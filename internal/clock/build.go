package clock

import (
	"fmt"
	"sync"
	"time"
)

// buildTime is when this binary was built, RFC 3339, set by the packaging script:
//
//	-ldflags "-X github.com/envgate/envgate/internal/clock.buildTime=2026-12-07T00:00:00Z"
//
// A build without it (go build, go test) uses FallbackBuildTime.
var buildTime string

// FallbackBuildTime is the build-time bound of a binary built without the ldflag. It is
// bumped rarely, by hand, and must stay more than 400 days before any day the tests run:
// scripts/test.sh runs the date-sensitive packages with the fake clock 400 days behind,
// and a clock before the bound holds every reading (docs/design.md, section 11).
const FallbackBuildTime = "2025-06-01T00:00:00Z"

var buildOnce = sync.OnceValue(func() time.Time {
	s := buildTime
	if s == "" {
		s = FallbackBuildTime
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(fmt.Sprintf("internal/clock.buildTime=%q: want RFC 3339 such as 2026-12-07T00:00:00Z: %v", s, err))
	}
	return t.UTC()
})

// BuildTime is the lower bound of every plausible wall-clock time in this binary: no
// reading can have been measured before the software measuring it was built. A box
// without a real-time clock boots in 1970 and stays there until NTP sets it.
func BuildTime() time.Time { return buildOnce() }

// Plausible reports whether t can be a time read from a correct wall clock: not before
// BuildTime. It is the one test of "this clock is certainly wrong".
func Plausible(t time.Time) bool { return !t.Before(BuildTime()) }
