package buffer

import (
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// recentBatch is how many readings Recent decodes per step.
const recentBatch = 4096

// Recent calls fn with every durable reading in the segments written at or after since
// — delivered ones that Options.Keep retains and those not yet delivered — oldest first,
// in the order they were appended. The derivations use it after a restart to rebuild
// their open windows (gateway/derive); since bounds the work by the time they need,
// however much undelivered data a long outage left in the buffer. Corrupt records are
// quarantined and skipped, as a Reader does; no cursor moves. It reads the log as of
// the call: readings appended meanwhile may or may not be seen.
func (q *Queue) Recent(since time.Time, fn func(reading.Reading)) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	from, end := q.nextSeq, q.durableSeq
	for i, s := range q.segs {
		// A segment's mtime is its last write: the first one written since is the
		// oldest that can hold readings appended since (the active one always can).
		if !s.mtime.Before(since) || i == len(q.segs)-1 {
			from = s.first
			break
		}
	}
	q.mu.Unlock()
	// A reader of its own, not registered: it holds back no segment and saves no cursor.
	r := &Reader{q: q, name: "recent"}
	r.committed.Store(from)
	defer func() {
		r.mu.Lock()
		if r.f != nil {
			r.f.Close()
		}
		r.mu.Unlock()
	}()
	for from < end {
		r.mu.Lock()
		rs, next, err := r.peekLocked(recentBatch)
		if err == nil {
			r.committed.Store(next)
			r.pos = position{}
			if r.peekEnd.ok && r.peekEnd.seq == next {
				r.pos = r.peekEnd
			}
		}
		r.mu.Unlock()
		if err != nil {
			return err
		}
		for _, rd := range rs {
			fn(rd)
		}
		if next <= from {
			break // nothing more can be read
		}
		from = next
	}
	return nil
}
