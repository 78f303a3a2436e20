package gateway

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

// retryAfterError is a sink error asking for a delay, as influx.RetryError does.
type retryAfterError time.Duration

func (e retryAfterError) Error() string             { return "busy" }
func (e retryAfterError) RetryAfter() time.Duration { return time.Duration(e) }

// TestRetryAfterIsCapped: a sink passing on an absurd Retry-After (issue 10: a server
// answering "Retry-After: 999999999") holds the forwarder back at most maxRetryAfter,
// and a negative one does not shorten the back-off.
func TestRetryAfterIsCapped(t *testing.T) {
	f := newForwarder(SinkSpec{RetryInitial: time.Second, RetryMax: 2 * time.Minute}, nil, slog.New(slog.DiscardHandler))
	check := func(after time.Duration, atLeast, atMost time.Duration) {
		t.Helper()
		backoff := time.Second
		if got := f.failed(retryAfterError(after), &backoff); got < atLeast || got > atMost {
			t.Errorf("failed(RetryAfter %v) = %v, want %v to %v", after, got, atLeast, atMost)
		}
	}
	check(999999999*time.Second, maxRetryAfter, maxRetryAfter)
	check(time.Duration(1<<63-1), maxRetryAfter, maxRetryAfter)
	check(30*time.Second, 30*time.Second, 30*time.Second)
	check(-time.Hour, time.Second/2, time.Second) // the jittered back-off
	check(0, time.Second/2, time.Second)
	if !errors.As(error(retryAfterError(0)), new(interface{ RetryAfter() time.Duration })) {
		t.Fatal("retryAfterError does not look like a RetryError")
	}
}
