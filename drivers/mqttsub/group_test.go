package mqttsub

import (
	"errors"
	"slices"
	"testing"

	"github.com/envgate/envgate/gateway/reading"
)

// Issue 14: the subscriber handed the pipeline one batch per message, which cost the
// writer one append (a write(2)) and the subscriber one Durable call each. The messages
// queued in the inbox when Run takes one now go as one batch per connection and QoS, in
// arrival order, up to the group limit; a malformed one among them is dead-lettered and
// acknowledged after the ones before it, as alone.
func TestGroupedBatches(t *testing.T) {
	r, acks, _ := newTestRunner(t, func(s *Subscriber) { s.lim.group = 4 })
	c := r.connectCounting(1, acks)
	ctx := t.Context()
	out := make(chan reading.Batch, 10)
	queue := func(topic, payload string, qos0 bool) {
		r.onMessage(nil, &fakeMsg{topic: topic, payload: []byte(payload), qos0: qos0, acks: acks})
	}
	queue("lora/a/la", "50", false)
	queue("lora/b/la", "loud", false) // malformed
	queue("lora/c/la", "52", false)
	queue("lora/d/la", "53", false)
	queue("lora/e/la", "54", false) // beyond the group limit of 4
	r.take(ctx, <-r.inbox, out)
	if len(out) != 1 || len(r.inbox) != 1 {
		t.Fatalf("%d batches out, %d messages left in the inbox; want 1 batch of the first 4, 1 left", len(out), len(r.inbox))
	}
	b := <-out
	want := []reading.Reading{rd(arrival, "park-2", "a", "la", 50), rd(arrival, "park-2", "c", "la", 52), rd(arrival, "park-2", "d", "la", 53)}
	if !sameReadings(b.Readings, want) || !b.Redeliverable {
		t.Errorf("batch %v (redeliverable %v), want %v, redeliverable", b.Readings, b.Redeliverable, want)
	}
	r.ackReady()
	if got := acks.list(); len(got) != 0 {
		t.Errorf("acked %q before the batch is durable, want nothing", got)
	}
	b.Durable(nil)
	r.ackReady()
	if got := acks.list(); !slices.Equal(got, []string{"lora/a/la", "lora/b/la", "lora/c/la", "lora/d/la"}) || c.writes != 1 {
		t.Errorf("acked %q in %d writes, want the four in order in one", got, c.writes)
	}

	// A QoS 0 message and a new connection each start a batch of their own.
	queue("lora/f/la", "55", true)
	queue("lora/g/la", "56", false)
	r.take(ctx, <-r.inbox, out)
	r.connectCounting(2, acks)
	queue("lora/h/la", "57", false)
	r.take(ctx, <-r.inbox, out)
	var got [][]string
	var redeliverable []bool
	for len(out) > 0 {
		b := <-out
		var devs []string
		for _, rd := range b.Readings {
			devs = append(devs, rd.Device)
		}
		got = append(got, devs)
		redeliverable = append(redeliverable, b.Redeliverable)
		if devs[0] == "h" {
			b.Durable(errors.New("buffer refused readings that have another copy"))
		} else {
			b.Durable(nil)
		}
	}
	wantGroups := [][]string{{"e"}, {"f"}, {"g"}, {"h"}}
	if !slices.EqualFunc(got, wantGroups, slices.Equal) || !slices.Equal(redeliverable, []bool{true, false, true, true}) {
		t.Errorf("batches %v (redeliverable %v), want %v (QoS 0 alone, not redeliverable)", got, redeliverable, wantGroups)
	}
	r.ackReady()
	st := r.s.Stats()
	if st.Messages != 8 || st.Readings != 7 || st.DeadLettered != 1 || st.NotDurable != 1 || st.InFlight != 0 {
		t.Errorf("Stats() = %+v, want 8 messages, 7 readings, 1 dead-lettered, 1 not durable", st)
	}
}

// A refused batch of several messages leaves every one of them unacknowledged, and the
// later messages of the connection too.
func TestGroupedBatchRefused(t *testing.T) {
	r, acks, _ := newTestRunner(t, func(s *Subscriber) { s.lim.group = maxGroup })
	ctx := t.Context()
	out := make(chan reading.Batch, 10)
	for _, d := range []string{"a", "b", "c"} {
		r.onMessage(nil, &fakeMsg{topic: "lora/" + d + "/la", payload: []byte("50"), acks: acks})
	}
	r.take(ctx, <-r.inbox, out)
	b := <-out
	if len(b.Readings) != 3 {
		t.Fatalf("batch of %d readings, want the 3 messages in one", len(b.Readings))
	}
	b.Durable(errors.New("buffer refused readings that have another copy"))
	b.Durable(nil) // ignored
	r.ackReady()
	r.onMessage(nil, &fakeMsg{topic: "lora/d/la", payload: []byte("50"), acks: acks})
	if got := acks.list(); len(got) != 0 {
		t.Errorf("acked %q, want nothing", got)
	}
	if st := r.s.Stats(); st.NotDurable != 4 || st.Acked != 0 || st.InFlight != 0 {
		t.Errorf("Stats() = %+v, want 4 not durable (3 refused, 1 dropped behind them), nothing acked", st)
	}
}
