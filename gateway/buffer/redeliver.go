package buffer

import (
	"errors"
	"fmt"

	"github.com/envgate/envgate/gateway/reading"
)

// ErrRefused is wrapped by AppendRedeliverable errors when readings that have another
// copy were not kept: the disk failed, and they were neither written nor held in
// memory. Their source must get them again (a broker delivers an unacknowledged message
// again).
var ErrRefused = errors.New("buffer refused readings that have another copy")

// span is a run of unsynced, [from, to).
type span struct{ from, to int }

// AppendRedeliverable appends readings that have another copy (reading.Batch.Redeliverable:
// a QoS 1 MQTT message its broker delivers again until it is acknowledged) like Append,
// except that it never holds them in memory, so that they never push readings that exist
// nowhere else out of the MemoryReadings bound:
//
//   - while readings wait in memory for the disk it refuses them at once, without
//     trying the disk (Sync tries it and ends that state);
//   - if the write fails it keeps nothing, and the queue reports Degraded;
//   - if a later fsync fails before they are durable, they are discarded instead of
//     moved to memory, and the call whose fsync failed returns the error: Sync, or the
//     Append or AppendRedeliverable whose group commit (every syncEvery readings) it was.
//     Every reading written since the last good sync was in that failed sync, so the
//     caller fails all of them; no later Sync reports it again.
//
// Its errors wrap ErrRefused and ErrDegraded, and ErrUnsynced when the group commit
// failed (every reading written since the last good sync is then not durable). nil means written, not yet durable, as
// for Append: Sync makes them durable — or, when this call's own group commit ran,
// durable already.
func (q *Queue) AppendRedeliverable(rs ...reading.Reading) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if len(q.pending) > 0 {
		q.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrRefused, ErrDegraded)
	}
	if len(rs) == 0 {
		q.mu.Unlock()
		return nil
	}
	mark := span{len(q.unsynced), len(q.unsynced) + len(rs)}
	q.redeliver = append(q.redeliver, mark)
	if err := q.writeLocked(rs); err != nil {
		// Not written: nothing of rs is kept.
		if n := len(q.redeliver); n > 0 && q.redeliver[n-1] == mark {
			q.redeliver = q.redeliver[:n-1]
		}
		q.holdLocked(nil) // degraded, holding nothing new
		q.release()
		return fmt.Errorf("%w: %w", ErrRefused, degraded(err))
	}
	q.appended.Add(uint64(len(rs)))
	end, epoch := q.nextSeq, q.rewinds
	full := len(q.unsynced) >= syncEvery
	q.release()
	q.unlinkDoomed()
	if !full {
		return nil
	}
	// Group commit by count, as in Append. The fsync runs without mu; a failure
	// discards the unsynced readings that have another copy, rs among them, unless
	// another sync made them durable first.
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	err := q.syncFiles()
	q.mu.Lock()
	defer q.mu.Unlock()
	// Durable if no failed fsync rewound the log since rs was written and the log is
	// durable past it, or the first such rewind found it durable already (seq numbers
	// are given again after a rewind, so durableSeq alone cannot tell).
	switch {
	case q.rewinds == epoch && q.durableSeq >= end,
		q.rewinds == epoch+1 && q.rewoundAt >= end:
		return nil
	case err == nil:
		err = fmt.Errorf("%w: %w: in another call", ErrDegraded, ErrUnsynced)
	}
	return fmt.Errorf("%w: %w", ErrRefused, err)
}

// trimRedeliverLocked forgets the marks of the first n unsynced readings, which a sync
// has just made durable and removed from unsynced, and moves the rest down by n.
func (q *Queue) trimRedeliverLocked(n int) {
	kept := q.redeliver[:0]
	for _, s := range q.redeliver {
		if s.to <= n {
			continue
		}
		kept = append(kept, span{max(s.from-n, 0), s.to - n})
	}
	q.redeliver = kept
}

// heldOfUnsyncedLocked returns a copy of the unsynced readings without those that have
// another copy (discarded: their source sends them again), and forgets the marks. A failed fsync
// moves the result to memory.
func (q *Queue) heldOfUnsyncedLocked() []reading.Reading {
	held := make([]reading.Reading, 0, len(q.unsynced))
	at := 0
	for _, s := range q.redeliver {
		from, to := min(s.from, len(q.unsynced)), min(s.to, len(q.unsynced))
		held = append(held, q.unsynced[at:from]...)
		at = max(at, to)
	}
	held = append(held, q.unsynced[at:]...)
	q.redeliver = q.redeliver[:0]
	return held
}
