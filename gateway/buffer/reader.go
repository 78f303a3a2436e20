package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// A Reader is one sink's view of the queue: a cursor (the seq of the next reading to
// deliver) that only moves on Ack and survives restarts. Peek, Ack and Wait are called
// from one goroutine (the sink's forwarder); Unsent, Durable, OldestUnsent and Unsaved
// from any: they take no lock and never wait for the disk.
//
// Locking: mu guards the read position and is held while Peek reads a segment. The
// cursor file is written under persistMu alone, so a hung cursor fsync holds up
// neither Peek nor a scrape; persisted and lastPersist are atomics.
type Reader struct {
	q    *Queue
	name string

	committed   atomic.Uint64 // next seq to deliver
	persisted   atomic.Uint64 // the cursor saved last
	lastPersist atomic.Pointer[time.Time]
	oldest      atomic.Pointer[oldestSeen]

	persistMu sync.Mutex // held while the cursor file is written
	// Under persistMu: the cursor file, open for saves in place (cursor.go); nil until
	// the first save, and again after a failed one, so that the next save replaces the
	// file whole. gen is the generation of the newest slot in it.
	cf  file
	gen uint64

	mu      sync.Mutex
	f       file     // open segment, reused across peeks
	fFirst  uint64   // first seq of the open segment
	pos     position // where committed starts, if known
	peekEnd position // where the last peek ended
}

// oldestSeen is what the last Peek saw first: with the cursor at from, the oldest
// reading not yet acknowledged was acquired at t.
type oldestSeen struct {
	from uint64
	t    time.Time
}

// position is a record boundary: the record with sequence number seq (or the first one
// after it) starts at byte off of the segment whose first seq is seg.
type position struct {
	seq, seg uint64
	off      int64
	ok       bool
}

// Reader returns the reader called name (a sink name), loading its persisted cursor. A
// reader without a cursor starts at the oldest reading in the buffer. Asking twice for
// the same name returns the same Reader.
func (q *Queue) Reader(name string) (*Reader, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	if r := q.readers[name]; r != nil {
		return r, nil
	}
	seq, gen, err := loadSinkCursor(q.fs, q.dir("cursors", name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		seq = 0
	case err != nil:
		q.log.Warn("unreadable cursor, re-sending from the oldest reading", "sink", name, "err", err)
		seq = 0
	}
	if len(q.segs) > 0 {
		seq = max(seq, q.segs[0].first)
	} else {
		seq = q.nextSeq // nothing on disk to deliver
	}
	seq = min(seq, q.nextSeq)
	r := &Reader{q: q, name: name, gen: gen}
	r.committed.Store(seq)
	r.persisted.Store(seq)
	now := q.opt.now()
	r.lastPersist.Store(&now)
	q.readers[name] = r
	return r, nil
}

// Peek returns up to n durable readings starting at the cursor, without moving it, and
// next, the cursor value that acknowledges all of them. Corrupt records on the way are
// quarantined and skipped. It does not block: with nothing to deliver it returns no
// readings and next equal to the cursor.
func (r *Reader) Peek(n int) (rs []reading.Reading, next uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peekLocked(n)
}

func (r *Reader) peekLocked(n int) (rs []reading.Reading, next uint64, err error) {
	q := r.q
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, 0, ErrClosed
	}
	segs := make([]segment, len(q.segs))
	for i, s := range q.segs {
		segs[i] = *s
	}
	durableSeq := q.durableSeq
	q.mu.Unlock()

	next = r.committed.Load()
	cursor := next
	if next >= durableSeq {
		return nil, next, nil
	}
	if len(segs) == 0 {
		return nil, durableSeq, nil // everything below durableSeq is gone (dropped or deleted by hand)
	}
	if next < segs[0].first {
		next = segs[0].first // dropped by the bounds while we were behind
	}
	i := len(segs) - 1
	for i > 0 && segs[i].first > next {
		i--
	}
	// At most n, and no more than are durable: one allocation instead of a doubling
	// series (a drain peeks batches of thousands).
	rs = make([]reading.Reading, 0, min(uint64(n), durableSeq-next))
	start := true
	for ; i < len(segs) && len(rs) < n && next < durableSeq; i++ {
		seg := segs[i]
		last := i == len(segs)-1
		limit := seg.durable // bytes past it may be half-written right now
		end := durableSeq    // no record at or past end counts in this segment
		if !last {
			end = min(end, segs[i+1].first)
		}
		if err := r.open(seg); err != nil {
			// The file vanished or cannot be opened: what it held is lost; go on with the
			// next segment rather than stall every reading behind it.
			q.mu.Lock()
			q.forgetSegmentLocked(seg.first, err)
			q.release()
			if !last {
				next = max(next, segs[i+1].first)
				continue
			}
			return rs, max(next, durableSeq), nil
		}
		off := int64(0)
		if start && r.pos.ok && r.pos.seq == next && r.pos.seg == seg.first {
			off = r.pos.off
		}
		start = false
		sc := newScanner(r.f, off, limit)
		for len(rs) < n && next < durableSeq {
			rec, seq, from, skipped, err := sc.next(next)
			if err != nil && !errors.Is(err, io.EOF) {
				// A read error (a bad sector): give up on the rest of this segment.
				q.log.Error("cannot read buffer segment, skipping its rest", "segment", seg.path, "offset", from, "err", err)
				skipped, err = max(limit-from, 1), io.EOF
			}
			if err == nil && !last && seq >= segs[i+1].first {
				// Superseded by the next segment's name (a copy left by a failed fsync or
				// write): the segment ends here.
				err = io.EOF
			}
			if skipped > 0 && (last || next < segs[i+1].first) {
				lostTo := end
				if err == nil {
					lostTo = min(seq, end)
				}
				q.quarantineBytes(r.f, &seg, from, skipped, next, lostTo)
			}
			if errors.Is(err, io.EOF) {
				if !last {
					if skipped == 0 && next < segs[i+1].first {
						// The segment ends before the next one begins: it was cut short.
						q.mu.Lock()
						lost := q.addHoleLocked(next, segs[i+1].first)
						q.release()
						if lost > 0 {
							q.qRecords.Add(lost)
							q.log.Warn("buffer segment ends before the next one begins", "segment", seg.path, "end", next, "next_segment", segs[i+1].first, "records_lost", lost)
						}
					}
					next = max(next, segs[i+1].first)
				} else {
					// Everything durable has been seen: a cursor that lags behind durableSeq
					// here points at readings that are not in the log.
					next = max(next, durableSeq)
				}
				break
			}
			if seq >= durableSeq {
				break
			}
			rd, derr := decodePayload(rec[headerSize:])
			next = seq + 1
			r.peekEnd = position{seq: next, seg: seg.first, off: sc.off, ok: true}
			if derr != nil {
				q.quarantineBytes(r.f, &seg, sc.off-int64(len(rec)), int64(len(rec)), seq, seq+1)
				continue
			}
			if len(rs) == 0 {
				r.oldest.Store(&oldestSeen{from: cursor, t: rd.Time})
			}
			rs = append(rs, rd)
		}
	}
	return rs, next, nil
}

// open makes r.f the file of seg.
func (r *Reader) open(seg segment) error {
	if r.f != nil && r.fFirst == seg.first {
		return nil
	}
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	f, err := r.q.fs.OpenFile(seg.path, readFlags, 0)
	if errors.Is(err, fs.ErrPermission) && readFlags != os.O_RDONLY {
		f, err = r.q.fs.OpenFile(seg.path, os.O_RDONLY, 0) // not the owner: O_NOATIME is refused
	}
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	r.f, r.fFirst = f, seg.first
	return nil
}

// Ack marks every reading before next as delivered. The cursor is persisted when it is
// due (cursorDueIn: at most every CursorInterval, and less often while little data
// moves), and on Close — not by this Ack if a Flush is saving it right now; segments
// all readers have passed are deleted.
func (r *Reader) Ack(next uint64) error {
	r.mu.Lock()
	if next <= r.committed.Load() {
		r.mu.Unlock()
		return nil
	}
	r.committed.Store(next)
	r.pos = position{}
	if r.peekEnd.ok && r.peekEnd.seq == next {
		r.pos = r.peekEnd
	}
	r.mu.Unlock()
	var err error
	if r.cursorDueIn() <= 0 {
		err = r.persist(false)
	}

	r.q.mu.Lock()
	if !r.q.closed {
		r.q.enforceBoundsLocked()
	}
	r.q.release()
	r.q.unlinkDoomed()
	return err
}

// Wait blocks until there is a durable reading past the cursor, or ctx is done, or the
// queue is closed.
func (r *Reader) Wait(ctx context.Context) error {
	r.q.mu.Lock()
	closed, ready, ch := r.q.closed, r.q.durableSeq > r.committed.Load(), r.q.notify
	r.q.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case ready:
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
		return nil
	}
}

// Changed returns a channel closed the next time readings become durable (or at once
// if the queue is closed), for a caller that waits for more than it already has.
func (r *Reader) Changed() <-chan struct{} {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	if r.q.closed {
		c := make(chan struct{})
		close(c)
		return c
	}
	return r.q.notify
}

// Durable returns the number of readings past the cursor that are durable, so readable
// now (an upper bound if corruption not yet found by a reader took some). It takes no
// lock.
func (r *Reader) Durable() int64 {
	v := r.q.view.Load()
	return int64(v.inLog(r.committed.Load(), v.durableSeq))
}

// Unsent returns the number of readings in the log this reader has not yet
// acknowledged: from its cursor, or the oldest reading still on disk if the bounds
// dropped the ones before, to the last appended, less the ranges known to be lost
// (an upper bound if corruption not yet found by a reader took some). It takes no
// lock and never waits for the disk.
func (r *Reader) Unsent() int64 {
	v := r.q.view.Load()
	return int64(v.inLog(r.committed.Load(), v.nextSeq))
}

// OldestUnsent returns the acquisition time of the oldest reading not yet acknowledged,
// as the forwarder's last Peek saw it, or the zero time when the reader is caught up or
// has not peeked since its cursor last moved (between batches: the age is not known
// then). It takes no lock and never reads the disk.
func (r *Reader) OldestUnsent() time.Time {
	if r.Unsent() == 0 {
		return time.Time{}
	}
	if o := r.oldest.Load(); o != nil && o.from == r.committed.Load() {
		return o.t
	}
	return time.Time{}
}

// Unsaved returns how many sequence numbers have been acknowledged since the cursor was
// last saved (what a crash now would make the sink deliver again), and how long until
// Ack would save it again by itself (cursorDueIn; 0 or less when
// that is past). A caller that stops acknowledging for a while, with n > 0, calls Flush
// then. It takes no lock.
func (r *Reader) Unsaved() (n uint64, dueIn time.Duration) {
	return r.committed.Load() - r.persisted.Load(), r.cursorDueIn()
}

// Flush persists the cursor now (after a save in progress, if any).
func (r *Reader) Flush() error { return r.persist(true) }

func (r *Reader) close() error {
	err := r.persist(true)
	r.persistMu.Lock()
	r.dropCursorFile()
	r.persistMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	return err
}

// persist saves the cursor under persistMu alone: nothing that Peek, Ack's callers or a
// scrape wait for is held across its fsyncs. With wait false (Ack) it returns at once
// if another save is running; lastPersist stays, so the next Ack saves what it missed.
func (r *Reader) persist(wait bool) error {
	if wait {
		r.persistMu.Lock()
	} else if !r.persistMu.TryLock() {
		return nil
	}
	defer r.persistMu.Unlock()
	seq := r.committed.Load()
	if seq != r.persisted.Load() {
		if err := r.saveCursor(seq); err != nil {
			return fmt.Errorf("persist cursor of %s: %w", r.name, err)
		}
		r.persisted.Store(seq)
	}
	now := r.q.opt.now()
	r.lastPersist.Store(&now)
	return nil
}

// storeCursor writes a 12-byte cursor file: the next seq (8 bytes) and its CRC-32C (4
// bytes), little-endian, replaced by rename, so a crash leaves either the old or the
// new one. The queue's end file has this format, as had sinks' cursor files before
// cursor.go.
func storeCursor(fsys fileSystem, path string, seq uint64) error {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return replaceFile(fsys, path, b)
}

// replaceFile replaces the file at path with b atomically and durably: write-tmp,
// fdatasync, rename, directory fsync.
func replaceFile(fsys fileSystem, path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := syncData(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// loadCursor reads a cursor file. A seq beyond maxSeq is damage, like a bad checksum.
func loadCursor(fsys fileSystem, path string) (uint64, error) {
	b, err := readFile(fsys, path, 12)
	if err != nil {
		return 0, err
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		return 0, fmt.Errorf("cursor file %s: corrupt", path)
	}
	seq := binary.LittleEndian.Uint64(b)
	if seq >= maxSeq {
		return 0, fmt.Errorf("cursor file %s: seq %d out of range", path, seq)
	}
	return seq, nil
}

// RemoveReader forgets the reader called name — a sink removed from the config by a
// reload — and deletes its cursor file, so that its position no longer holds back the
// deletion of segments. The reader must not be used afterwards; a later Reader of the
// same name starts afresh, at the oldest reading. Removing an unknown name deletes its
// cursor file, if any.
func (q *Queue) RemoveReader(name string) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	r := q.readers[name]
	delete(q.readers, name)
	q.enforceBoundsLocked()
	q.release()
	q.unlinkDoomed()
	if r != nil {
		r.persistMu.Lock() // a save in progress must not write the file again after it goes
		defer r.persistMu.Unlock()
		r.dropCursorFile()
		r.mu.Lock()
		if r.f != nil {
			r.f.Close()
			r.f = nil
		}
		r.mu.Unlock()
	}
	if err := q.fs.Remove(q.dir("cursors", name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cursor of %s: %w", name, err)
	}
	return nil
}
