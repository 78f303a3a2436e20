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
