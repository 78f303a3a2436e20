package buffer

import (
	"errors"
	"fmt"

	"github.com/envgate/envgate/gateway/reading"
)

// ErrRefused is wrapped by AppendRedeliverable errors, and by a Sync error, when
// readings that have another copy were not kept: the disk failed, and they were neither
// written nor held in memory. Their source must get them again (a broker delivers an
// unacknowledged message again).
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
//   - if a later fsync fails before they are durable (in Sync, or in an Append or
//     AppendRedeliverable that syncs), they are discarded instead of moved to memory, and that Sync, or the next
//     one, returns an error wrapping ErrRefused (if it does not fail anyway).
//
// Its errors wrap ErrRefused and ErrDegraded. nil means written, not yet durable, as
// for Append: Sync makes them durable.
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
		q.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrRefused, degraded(err))
	}
	q.appended.Add(uint64(len(rs)))
	end := q.nextSeq
	full := len(q.unsynced) >= syncEvery
	q.mu.Unlock()
	if !full {
		return nil
	}
	// Group commit by count, as in Append. The fsync runs without mu; a failure
	// discards the unsynced readings that have another copy, rs among them, unless
	// another sync made them durable first.
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	err := q.syncFiles()
	if err == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.durableSeq >= end {
		return nil
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
// another copy, which it counts as discarded, and forgets the marks. A failed fsync
// moves the result to memory.
func (q *Queue) heldOfUnsyncedLocked() []reading.Reading {
	held := make([]reading.Reading, 0, len(q.unsynced))
	at := 0
	for _, s := range q.redeliver {
		from, to := min(s.from, len(q.unsynced)), min(s.to, len(q.unsynced))
		held = append(held, q.unsynced[at:from]...)
		q.discarded += uint64(to - from)
		at = max(at, to)
	}
	held = append(held, q.unsynced[at:]...)
	q.redeliver = q.redeliver[:0]
	return held
}
