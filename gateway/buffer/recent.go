package buffer

import (
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// recentBatch is how many readings Recent decodes per step.
const recentBatch = 4096

// Recent calls fn with every durable reading in the segments written, or holding
// readings, at or after since (keptLocked) — delivered ones that Options.Keep retains and those not yet delivered — oldest first,
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
	// From the newest segment back to the first neither written nor holding a reading
	// since then: the log is appended in order, so those after it are what is needed,
	// and only those are read to find it (newestLocked).
	if n := len(q.segs); n > 0 && since.IsZero() {
		from = q.segs[0].first
	} else if n > 0 {
		from = q.segs[n-1].first
		for i := n - 2; i >= 0 && q.keptLocked(q.segs[i], since); i-- {
			from = q.segs[i].first
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
