package buffer

import "github.com/envgate/envgate/gateway/reading"

// A Follower reads the newest readings of the queue, from the durable end of the log at
// the time it was made: a sink's live lane while its reader drains a backlog (the
// gateway's forwarder). Unlike a Reader it has no cursor file and holds no segment back:
// it is not saved, a restart forgets it, and the bounds may drop what it has not read
// yet (Peek then goes on from the oldest reading left). Its methods are called from one
// goroutine.
type Follower struct {
	r *Reader // not in the queue's readers: nothing waits for it
}

// Follow returns a Follower starting after the last durable reading.
func (r *Reader) Follow() (*Follower, error) {
	q := r.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	fr := &Reader{q: q, name: r.name + " (live)"}
	fr.committed.Store(q.durableSeq)
	fr.persisted.Store(q.durableSeq)
	now := q.opt.now()
	fr.lastPersist.Store(&now)
	return &Follower{r: fr}, nil
}

// Peek returns up to n durable readings from the follower's position, without moving
// it, and next, the position after them; as Reader.Peek.
func (f *Follower) Peek(n int) (rs []reading.Reading, next uint64, err error) {
	return f.r.Peek(n)
}

// Skip moves the follower to next, a value Peek returned; it saves nothing and deletes
// nothing.
func (f *Follower) Skip(next uint64) {
	r := f.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if next <= r.committed.Load() {
		return
	}
	r.committed.Store(next)
	r.pos = position{}
	if r.peekEnd.ok && r.peekEnd.seq == next {
		r.pos = r.peekEnd
	}
}

// Next returns the follower's position: the sequence number of the next reading it reads.
func (f *Follower) Next() uint64 { return f.r.committed.Load() }

// Close releases the segment file the follower has open.
func (f *Follower) Close() {
	r := f.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}
