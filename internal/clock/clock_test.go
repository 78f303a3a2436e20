package clock

import (
	"os"
	"testing"
	"time"
)

// TestNowFollowsTheOffset: Now is time.Now, shifted by EnvOffset only in a fakeclock
// build.
func TestNowFollowsTheOffset(t *testing.T) {
	var want time.Duration
	if Fake {
		want, _ = time.ParseDuration(os.Getenv(EnvOffset))
	}
	before := time.Now()
	got := Now()
	after := time.Now()
	if got.Before(before.Add(want)) || got.After(after.Add(want)) {
		t.Errorf("Now() = %v, want between %v and %v (offset %v, fake build %v)", got, before.Add(want), after.Add(want), want, Fake)
	}
}

// The build-time bound: the fallback parses, and a time before it is implausible.
func TestBuildTimeBound(t *testing.T) {
	b := BuildTime()
	if b.IsZero() || !Plausible(b) || Plausible(b.Add(-time.Nanosecond)) || Plausible(time.Unix(0, 0)) {
		t.Errorf("BuildTime() = %v: want a non-zero bound, plausible itself, 1970 not", b)
	}
	if !Plausible(Now()) {
		t.Errorf("Now() = %v is before BuildTime() %v: FallbackBuildTime must stay 400 days behind today", Now(), b)
	}
}
