package gateway

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// TestRateCapKeepsCursorSaves: max_rate cuts the batches a write carries to one
// second's worth, but not the cursor policy (docs/design.md §1, "Re-sends after a
// crash"): the cursor is still saved per configured batch_size acknowledged, so a box
// that keeps up under its cap saves it as seldom as without the cap (here: not at all
// in 30 s of 10 readings/s, under the 64 KiB and 1-minute rules), and a crash still
// re-sends fewer than batch_size. Before, the cursor was saved every ⌈max_rate⌉
// readings (every 2 s here; every reading with max_rate 1), many times the SD card
// writes issue 14 measured.
func TestRateCapKeepsCursorSaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const batch, rateCap, perSecond = 1000, 20, 10
		q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		r, err := q.Reader("sink")
		if err != nil {
			t.Fatal(err)
		}
		sink := &recordingSink{r: r}
		f := newForwarder(SinkSpec{Name: "sink", Sink: sink, BatchSize: batch, FlushInterval: time.Second,
			MaxRate: rateCap}, r, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); f.run(ctx, make(chan struct{})) }()
		for i := range 30 * perSecond {
			if err := q.Append(reading.New(time.Now(), "s", "d", "la", float64(i))); err != nil {
				t.Fatal(err)
			}
			if err := q.Sync(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second / perSecond)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		cancel()
		<-done

		if sink.written != 30*perSecond {
			t.Fatalf("delivered %d readings, want %d", sink.written, 30*perSecond)
		}
		most := uint64(0)
		for _, n := range sink.unsaved {
			most = max(most, n)
		}
		if most >= batch {
			t.Errorf("%d acknowledged readings unsaved at a write, want fewer than batch_size (%d)", most, batch)
		}
		if want := uint64(30*perSecond - 2*rateCap); most < want {
			t.Errorf("at most %d acknowledged readings unsaved at a write, want at least %d: the cursor was saved every ⌈max_rate⌉ readings",
				most, want)
		}
	})
}

// failSink fails every write.
type failSink struct{}

func (failSink) Write(context.Context, []reading.Reading) error {
	return errors.New("connection refused")
}

// TestPacingNeverHoldsAHandover: neither the jittered retry (retry_jitter up to 1h) nor
// a write the rate cap holds back delays a reload's hand-over (Pipeline.Handover): the
// forwarder stops at once, without any time passing.
func TestPacingNeverHoldsAHandover(t *testing.T) {
	for _, c := range []struct {
		name string
		sink Sink
		spec SinkSpec
	}{
		{"retry jitter", failSink{}, SinkSpec{RetryInitial: time.Millisecond, RetryMax: time.Millisecond, RetryJitter: time.Hour}},
		{"rate cap", &recordingSink{}, SinkSpec{MaxRate: 1, FlushInterval: time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q, err := buffer.Open(buffer.Options{Dir: t.TempDir(), CursorInterval: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer q.Close()
				r := fillBacklog(t, q, 100, time.Now().Add(-time.Hour), time.Second)
				if rs, ok := c.sink.(*recordingSink); ok {
					rs.r = r
				}
				c.spec.Name, c.spec.Sink = "sink", c.sink
				f := newForwarder(c.spec, r, slog.New(slog.DiscardHandler))
				handover := make(chan struct{})
				f.handover = handover
				done := make(chan struct{})
				go func() { defer close(done); f.run(t.Context(), make(chan struct{})) }()
				time.Sleep(time.Second) // in the jitter's wait, or held by the cap
				synctest.Wait()
				select {
				case <-done:
					t.Fatal("the forwarder stopped before the hand-over")
				default:
				}
				start := time.Now()
				close(handover)
				synctest.Wait()
				select {
				case <-done:
				default:
					t.Fatal("the forwarder did not stop at the hand-over")
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("the hand-over took %v, want no wait", d)
				}
			})
		})
	}
}
