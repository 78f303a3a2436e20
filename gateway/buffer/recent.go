package buffer

import "github.com/envgate/envgate/gateway/reading"

// recentBatch is how many readings Recent decodes per step.
const recentBatch = 4096

// Recent calls fn with every durable reading still in the log — delivered ones that
// Options.Keep retains and those not yet delivered — oldest first, in the order they
// were appended. The derivations use it after a restart to rebuild their open windows
// (gateway/derive). Corrupt records are quarantined and skipped, as a Reader does; no
// cursor moves. It reads the log as of the call: readings appended meanwhile may or may
// not be seen.
func (q *Queue) Recent(fn func(reading.Reading)) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	from, end := q.nextSeq, q.durableSeq
	if len(q.segs) > 0 {
		from = q.segs[0].first
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
