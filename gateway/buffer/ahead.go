package buffer

import (
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// An Ahead reads a Reader's readings past its cursor, for a forwarder with several
// writes in flight: it reads and prepares the next batches while earlier ones are not
// yet acknowledged. It has a position of its own, which only Skip moves; the Reader's
// cursor moves only by Ack, as before, so what is read ahead and lost in a crash is
// read again. It holds no segment back (the Reader's cursor does) and saves nothing.
// Its methods are called from the Reader's goroutine.
type Ahead struct {
	r *Reader
	f *Follower // the read position

	// What the last Peek saw first, for Skip, and the first reading of each batch
	// skipped but not yet acknowledged, for Ack: OldestUnsent follows the cursor.
	peekFrom  uint64
	peekFirst time.Time
	firsts    []oldestSeen
}

// Ahead returns an Ahead starting at r's cursor.
func (r *Reader) Ahead() (*Ahead, error) {
	f, err := r.Follow()
	if err != nil {
		return nil, err
	}
	f.r.committed.Store(r.committed.Load())
	return &Ahead{r: r, f: f}, nil
}

// Peek returns up to n durable readings from the Ahead's position, without moving it,
// and next, the position after them; as Reader.Peek. A position behind the Reader's
// cursor (the cursor was moved by Ack past what was read ahead) is first moved up to
// the cursor.
func (a *Ahead) Peek(n int) (rs []reading.Reading, next uint64, err error) {
	if c := a.r.committed.Load(); a.f.Next() < c {
		a.Skip(c)
	}
	from := a.f.Next()
	rs, next, err = a.f.Peek(n)
	a.peekFrom, a.peekFirst = from, time.Time{}
	if len(rs) > 0 {
		a.peekFirst = rs[0].Time
		if from == a.r.committed.Load() {
			a.r.oldest.Store(&oldestSeen{from: from, t: rs[0].Time})
		}
	}
	return rs, next, err
}

// Skip moves the position to next, a value Peek returned (or the Reader's cursor).
func (a *Ahead) Skip(next uint64) {
	if from := a.f.Next(); from == a.peekFrom && !a.peekFirst.IsZero() && next > from {
		a.firsts = append(a.firsts, oldestSeen{from: from, t: a.peekFirst})
	}
	a.peekFirst = time.Time{}
	a.f.Skip(next)
}

// Next returns the position: the sequence number of the next reading Peek reads.
func (a *Ahead) Next() uint64 { return a.f.Next() }

// Ack acknowledges every reading before next, as Reader.Ack, and tells OldestUnsent the
// time of the reading at the new cursor if a Peek has seen it.
func (a *Ahead) Ack(next uint64) error {
	err := a.r.Ack(next)
	i := 0
	for i < len(a.firsts) && a.firsts[i].from < next {
		i++
	}
	a.firsts = a.firsts[:copy(a.firsts, a.firsts[i:])]
	if len(a.firsts) > 0 && a.firsts[0].from == next {
		o := a.firsts[0]
		a.r.oldest.Store(&o)
	}
	return err
}

// Close releases the segment file the Ahead has open.
func (a *Ahead) Close() { a.f.Close() }
