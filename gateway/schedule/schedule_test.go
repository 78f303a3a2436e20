package schedule

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// pollFunc adapts a function to Poller.
type pollFunc func(ctx context.Context) ([]reading.Reading, error)

func (f pollFunc) Poll(ctx context.Context) ([]reading.Reading, error) { return f(ctx) }

func one() []reading.Reading {
	return []reading.Reading{reading.New(time.Now(), "site", "dev", "la", 50)}
}

type observation struct {
	d   time.Duration
	err error
}

// harness runs Run in a goroutine inside a synctest bubble. Run's start time is
// synctest's epoch (2000-01-01 00:00:00 UTC), which is aligned to every interval used
// here, plus offset.
type harness struct {
	t0     time.Time // the bubble's start
	polls  []time.Duration
	obs    []observation
	out    chan reading.Batch
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, offset time.Duration, opt Options, outCap int, poll func(ctx context.Context) ([]reading.Reading, error)) *harness {
	t.Helper()
	h := &harness{t0: time.Now(), out: make(chan reading.Batch, outCap), done: make(chan error, 1)}
	time.Sleep(offset)
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	p := pollFunc(func(ctx context.Context) ([]reading.Reading, error) {
		h.polls = append(h.polls, time.Since(h.t0))
		return poll(ctx)
	})
	observe := func(d time.Duration, err error) { h.obs = append(h.obs, observation{d, err}) }
	go func() { h.done <- Run(ctx, p, opt, h.out, observe) }()
	return h
}

// stopAt cancels Run at t0+at and waits for it to return.
func (h *harness) stopAt(t *testing.T, at time.Duration) {
	t.Helper()
	time.Sleep(at - time.Since(h.t0))
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
}

func seconds(s ...int) []time.Duration {
	var ds []time.Duration
	for _, n := range s {
		ds = append(ds, time.Duration(n)*time.Second)
	}
	return ds
}

func TestAlignedTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, 3500*time.Millisecond, Options{Interval: 10 * time.Second}, 10,
			func(context.Context) ([]reading.Reading, error) { return one(), nil })
		h.stopAt(t, 45*time.Second)
		if want := seconds(10, 20, 30, 40); !slices.Equal(h.polls, want) {
			t.Errorf("polls at %v, want %v", h.polls, want)
		}
		if len(h.out) != 4 {
			t.Errorf("%d batches sent, want 4", len(h.out))
		}
		if len(h.obs) != 4 || h.obs[0] != (observation{}) {
			t.Errorf("observed %v, want 4 × {0 <nil>}", h.obs)
		}
	})
}

func TestStartOnTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, 0, Options{Interval: time.Minute}, 10,
			func(context.Context) ([]reading.Reading, error) { return one(), nil })
		h.stopAt(t, 150*time.Second)
		if want := seconds(0, 60, 120); !slices.Equal(h.polls, want) {
			t.Errorf("polls at %v, want %v", h.polls, want)
		}
	})
}

func blockUntilDone(ctx context.Context) ([]reading.Reading, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestTimeout(t *testing.T) {
	check := func(opt Options, wantD time.Duration, wantPolls []time.Duration) {
		t.Helper()
		synctest.Test(t, func(t *testing.T) {
			h := start(t, 0, opt, 10, blockUntilDone)
			h.stopAt(t, 25*time.Second)
			if !slices.Equal(h.polls, wantPolls) {
				t.Errorf("%+v: polls at %v, want %v", opt, h.polls, wantPolls)
			}
			// The last poll is cut short by the cancel.
			for _, o := range h.obs[:len(h.obs)-1] {
				if o.d != wantD || !errors.Is(o.err, context.DeadlineExceeded) {
					t.Errorf("%+v: observed %v, want {%v %v}", opt, o, wantD, context.DeadlineExceeded)
				}
			}
			if len(h.out) != 0 {
				t.Errorf("%+v: %d batches sent, want 0", opt, len(h.out))
			}
		})
	}
	check(Options{Interval: 10 * time.Second, Timeout: 3 * time.Second}, 3*time.Second, seconds(0, 10, 20))
	// Timeout 0 is the interval: a hanging device is polled on every tick, no more.
	check(Options{Interval: 10 * time.Second}, 10*time.Second, seconds(0, 10, 20))
}

func TestOverrunSkipsTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(ctx context.Context) ([]reading.Reading, error) {
			select {
			case <-time.After(25 * time.Second):
				return one(), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		h := start(t, 0, Options{Interval: 10 * time.Second, Timeout: time.Minute}, 10, slow)
		h.stopAt(t, 65*time.Second)
		if want := seconds(0, 30, 60); !slices.Equal(h.polls, want) {
			t.Errorf("polls at %v, want %v", h.polls, want)
		}
		if len(h.out) != 2 {
			t.Errorf("%d batches sent, want 2", len(h.out))
		}
		want := []observation{{25 * time.Second, nil}, {25 * time.Second, nil}, {5 * time.Second, context.Canceled}}
		if !slices.EqualFunc(h.obs, want, func(a, b observation) bool { return a.d == b.d && errors.Is(a.err, b.err) }) {
			t.Errorf("observed %v, want %v", h.obs, want)
		}
	})
}

func TestErrorsObservedNothingSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errNoReply := errors.New("no reply from unit 3")
		h := start(t, 0, Options{Interval: 10 * time.Second}, 10,
			func(context.Context) ([]reading.Reading, error) {
				time.Sleep(200 * time.Millisecond)
				return nil, errNoReply
			})
		h.stopAt(t, 35*time.Second)
		if len(h.obs) != 4 {
			t.Fatalf("observed %d polls, want 4", len(h.obs))
		}
		for _, o := range h.obs {
			if o.d != 200*time.Millisecond || o.err != errNoReply {
				t.Errorf("observed %v, want {200ms %v}", o, errNoReply)
			}
		}
		if len(h.out) != 0 {
			t.Errorf("%d batches sent, want 0", len(h.out))
		}
	})
}

func TestPartialResultSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errPartial := errors.New("read input registers 30010-30011 on unit 2: timeout")
		h := start(t, 0, Options{Interval: 10 * time.Second}, 10,
			func(context.Context) ([]reading.Reading, error) { return one(), errPartial })
		h.stopAt(t, 5*time.Second)
		if len(h.out) != 1 || len(h.obs) != 1 || h.obs[0].err != errPartial {
			t.Errorf("sent %d batches, observed %v; want 1 batch and the error", len(h.out), h.obs)
		}
	})
}

func TestCancelWithFullOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, 0, Options{Interval: 10 * time.Second}, 0, // nobody reads out
			func(context.Context) ([]reading.Reading, error) { return one(), nil })
		time.Sleep(time.Minute)
		synctest.Wait() // Run is blocked sending
		if want := seconds(0); !slices.Equal(h.polls, want) {
			t.Errorf("polls at %v, want %v (blocked on out)", h.polls, want)
		}
		before := time.Now()
		h.cancel()
		if err := <-h.done; err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
		if d := time.Since(before); d != 0 {
			t.Errorf("Run returned %v after cancel, want at once", d)
		}
	})
}

func TestCancelledBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		polled := false
		p := pollFunc(func(context.Context) ([]reading.Reading, error) { polled = true; return one(), nil })
		if err := Run(ctx, p, Options{Interval: time.Second}, make(chan reading.Batch, 1), nil); err != nil || polled {
			t.Errorf("Run(cancelled) = %v, polled %v; want nil, false", err, polled)
		}
	})
}

func TestBadOptions(t *testing.T) {
	p := pollFunc(func(context.Context) ([]reading.Reading, error) { return nil, nil })
	for _, opt := range []Options{{}, {Interval: -time.Second}, {Interval: time.Second, Timeout: -1}} {
		if err := Run(t.Context(), p, opt, nil, nil); err == nil {
			t.Errorf("Run(%+v) = nil, want error", opt)
		}
	}
}

func TestCeilMultiple(t *testing.T) {
	for _, c := range []struct{ n, m, want int64 }{
		{0, 10, 0}, {1, 10, 10}, {10, 10, 10}, {11, 10, 20}, {-1, 10, 0}, {-10, 10, -10}, {-11, 10, -10},
	} {
		if got := ceilMultiple(c.n, c.m); got != c.want {
			t.Errorf("ceilMultiple(%d, %d) = %d, want %d", c.n, c.m, got, c.want)
		}
	}
}
