// Package buffer is envgate's durable store-and-forward queue: a segmented append-only
// log on local disk with a checksum per record, group commit, one persisted ack cursor
// per sink, bounds by bytes and age, and repair on open.
//
// Data flow: the pipeline calls Append for every reading (written to the OS, not yet
// durable) and Sync to make everything appended so far durable (one fdatasync for the
// whole group). Readers — one per sink — only ever see durable records, so a cursor can
// never point past what survives a power cut. A Reader peeks a batch, the sink delivers
// it, and Ack moves the reader's cursor; cursors are persisted at most every
// CursorInterval, so a crash re-sends at most that much (InfluxDB overwrites identical
// points, so a re-send is not a duplicate). Segments every reader has passed are deleted.
//
// Layout of Dir:
//
//	segments/<first seq, 20 digits>.seg   records, see record.go
//	cursors/<sink name>                   8-byte next seq + CRC-32C, replaced atomically
//	quarantine/<segment>-<offset>.bad     bytes that failed their checksum, kept for inspection
//
// See docs/design.md for why this is a plain log and not an embedded database.
package buffer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// ErrDegraded is wrapped by Append and Sync errors when the disk failed and readings are
// held in memory instead. They are written to disk once it works again.
var ErrDegraded = errors.New("buffer degraded: disk write failed, readings held in memory")

// ErrLost is wrapped by a Sync error when readings held in memory were dropped (the
// MemoryReadings bound) since the previous Sync: some readings appended before this
// Sync may be among them, so the caller must not treat them as durable.
var ErrLost = errors.New("buffer dropped readings held in memory")

// ErrClosed is returned by operations on a closed Queue.
var ErrClosed = errors.New("buffer closed")

// Options configure a Queue.
type Options struct {
	Dir            string        // state directory; created if missing
	MaxBytes       int64         // drop the oldest segments beyond this many bytes on disk
	MaxAge         time.Duration // drop segments last written longer ago than this
	SegmentBytes   int64         // start a new segment after this many bytes
	CursorInterval time.Duration // persist ack cursors at most this often
	MemoryReadings int           // readings held in RAM while the disk fails (oldest dropped beyond)
	Log            *slog.Logger

	now      func() time.Time
	openFile func(name string, flag int, perm os.FileMode) (file, error) // tests inject disk faults here
	syncFile func(f file) error                                          // and here; default fdatasync
}

// file is the part of *os.File the queue writes through.
type file interface {
	io.Writer
	io.ReaderAt
	Truncate(size int64) error
	Close() error
	Name() string
	Fd() uintptr
	Sync() error
}

// Stats is a snapshot of the queue's counters.
type Stats struct {
	Bytes              int64 // segment bytes on disk
	MaxBytes           int64 // the bound on Bytes (Options.MaxBytes)
	Segments           int64
	Appended           uint64 // readings appended since Open (to disk or, degraded, to memory)
	Dropped            uint64 // readings dropped undelivered by the byte, age or memory bounds
	QuarantinedRecords uint64 // records lost to corruption (torn tails, bad checksums)
	QuarantinedBytes   uint64
	Degraded           bool  // the last disk write failed
	MemoryReadings     int64 // readings waiting in memory for the disk
}

type segment struct {
	first uint64 // seq of its first record
	path  string
	size  int64
	mtime time.Time
}

// Queue is the durable log. Its methods are safe for concurrent use.
type Queue struct {
	opt Options
	log *slog.Logger

	mu         sync.Mutex
	closed     bool
	segs       []*segment // oldest first; the last is the active one
	active     file       // nil when no active segment is open (degraded, or before the first append)
	nextSeq    uint64     // seq of the next appended record
	durableSeq uint64     // every record below this seq is on stable storage
	durableOff int64      // bytes of the active segment that are durable (unused when active is nil)
	notify     chan struct{}
	readers    map[string]*Reader
	pending    []reading.Reading // held in memory while the disk fails
	unsynced   []reading.Reading // written since the last sync, kept until it succeeds
	encBuf     []byte
	quarantine map[string]bool // "<segment>@<offset>" already counted

	memDropped uint64 // readings dropped from pending since the last Sync
	// redeliver marks the runs of unsynced that have another copy (AppendRedeliverable):
	// a failed sync discards them instead of holding them in memory; discarded counts
	// them since the last Sync (redeliver.go).
	redeliver []span
	discarded uint64

	appended, dropped, qRecords, qBytes atomic.Uint64
	degraded                            atomic.Bool
}

// Open opens (or creates) the queue in opt.Dir, repairs a torn or corrupt tail of the
// last segment (moving the bad bytes to quarantine/ and counting them) and starts a new
// active segment. It fails only if the directory cannot be used at all.
func Open(opt Options) (*Queue, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.now == nil {
		opt.now = time.Now
	}
	if opt.openFile == nil {
		opt.openFile = func(name string, flag int, perm os.FileMode) (file, error) {
			return os.OpenFile(name, flag, perm)
		}
	}
	if opt.syncFile == nil {
		opt.syncFile = func(f file) error { return fdatasync(f) }
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = 8 << 20
	}
	if opt.CursorInterval <= 0 {
		opt.CursorInterval = 5 * time.Second
	}
	q := &Queue{opt: opt, log: opt.Log, notify: make(chan struct{}), readers: map[string]*Reader{}, quarantine: map[string]bool{}}
	for _, d := range []string{q.dir("segments"), q.dir("cursors"), q.dir("quarantine")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("open buffer: %w", err)
		}
	}
	if err := q.load(); err != nil {
		return nil, fmt.Errorf("open buffer in %s: %w", opt.Dir, err)
	}
	return q, nil
}

func (q *Queue) dir(parts ...string) string {
	return filepath.Join(append([]string{q.opt.Dir}, parts...)...)
}

// load lists the segments, repairs the last one and sets nextSeq.
func (q *Queue) load() error {
	entries, err := os.ReadDir(q.dir("segments"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		first, err := strconv.ParseUint(strings.TrimSuffix(name, ".seg"), 10, 64)
		if !strings.HasSuffix(name, ".seg") || err != nil || e.IsDir() {
			q.log.Warn("ignoring unexpected file in buffer", "file", filepath.Join(q.dir("segments"), name))
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		q.segs = append(q.segs, &segment{first: first, path: q.dir("segments", name), size: info.Size(), mtime: info.ModTime()})
	}
	slices.SortFunc(q.segs, func(a, b *segment) int { return cmpU64(a.first, b.first) })
	// Stray temporary cursor files come from a crash during a cursor update.
	if tmps, _ := filepath.Glob(q.dir("cursors", "*.tmp")); len(tmps) > 0 {
		for _, t := range tmps {
			_ = os.Remove(t)
		}
	}
	// A cursor beyond the log (segments removed by hand) must not hide new appends.
	if names, _ := filepath.Glob(q.dir("cursors", "*")); len(names) > 0 {
		for _, n := range names {
			if seq, err := loadCursor(n); err == nil {
				q.nextSeq = max(q.nextSeq, seq)
			}
		}
		q.durableSeq = q.nextSeq
	}
	if len(q.segs) == 0 {
		return nil
	}
	last := q.segs[len(q.segs)-1]
	end, nextSeq, err := q.repair(last)
	if err != nil {
		return err
	}
	q.nextSeq = max(q.nextSeq, nextSeq)
	q.durableSeq = q.nextSeq
	if end == 0 {
		// Nothing valid in it: remove it; the next append recreates a segment at nextSeq.
		if err := os.Remove(last.path); err != nil {
			return err
		}
		q.segs = q.segs[:len(q.segs)-1]
	} else {
		last.size = end
	}
	return syncDir(q.dir("segments"))
}

// repair scans a segment to its end, quarantines corrupt bytes and truncates a torn tail.
// It returns the new size and the seq following the last valid record.
func (q *Queue) repair(seg *segment) (size int64, nextSeq uint64, err error) {
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := newScanner(f, 0, seg.size)
	nextSeq, end := seg.first, int64(0)
	for {
		rec, seq, from, skipped, err := s.next(nextSeq)
		if skipped > 0 {
			q.quarantineBytes(f, seg, from, skipped, nextSeq, seqOrEnd(err, seq, nextSeq))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		_ = rec
		nextSeq, end = seq+1, s.off
	}
	if end < seg.size {
		if err := f.Truncate(end); err != nil {
			return 0, 0, err
		}
		q.log.Warn("buffer repaired torn tail", "segment", seg.path, "truncated_at", end, "bytes", seg.size-end)
	}
	// After a SIGKILL the tail may still be only in the page cache: make it durable
	// before readers (and their persisted cursors) treat it so.
	if err := fdatasync(f); err != nil {
		return 0, 0, err
	}
	return end, nextSeq, nil
}

func seqOrEnd(err error, seq, expect uint64) uint64 {
	if err != nil {
		return expect // a tail: at least one record lost, count it as one
	}
	return seq
}

// quarantineBytes copies corrupt bytes aside and counts them once per place. lostTo is
// the seq of the next good record, so lostTo-expect records were lost (at least one).
func (q *Queue) quarantineBytes(f io.ReaderAt, seg *segment, off, n int64, expect, lostTo uint64) {
	key := fmt.Sprintf("%s@%d", seg.path, off)
	q.mu.Lock()
	seen := q.quarantine[key]
	q.quarantine[key] = true
	q.mu.Unlock()
	if seen {
		return
	}
	lost := uint64(1)
	if lostTo > expect {
		lost = lostTo - expect
	}
	q.qRecords.Add(lost)
	q.qBytes.Add(uint64(n))
	name := q.dir("quarantine", fmt.Sprintf("%020d-%d.bad", seg.first, off))
	buf := make([]byte, min(n, 16<<20))
	got, _ := f.ReadAt(buf, off)
	if err := os.WriteFile(name, buf[:got], 0o640); err != nil {
		q.log.Warn("cannot keep quarantined bytes", "file", name, "err", err)
	}
	q.log.Warn("buffer quarantined corrupt bytes", "segment", seg.path, "offset", off, "bytes", n, "records_lost", lost, "kept_in", name)
}

// Append writes readings to the active segment, in order, in one write. They are not
// durable until Sync returns nil. If the disk fails, the readings are kept in memory
// (up to MemoryReadings), the queue reports Degraded, and the error wraps ErrDegraded.
func (q *Queue) Append(rs ...reading.Reading) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	q.appended.Add(uint64(len(rs)))
	if len(q.pending) > 0 {
		// Keep order: the disk failed earlier; everything queues behind what waits in memory.
		q.pending = append(q.pending, rs...)
		rs = nil
		return q.flushPendingLocked()
	}
	if err := q.writeLocked(rs); err != nil {
		var se *syncError
		if !errors.As(err, &se) {
			q.holdLocked(rs) // not written; after a failed sync they are already back in memory
		}
		return degraded(err)
	}
	return nil
}

// syncError is a failed fsync after a successful write: the unsynced readings, those
// just written included, are already back in memory (requeueUnsyncedLocked).
type syncError struct{ err error }

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

// degraded wraps err in ErrDegraded unless it already is.
func degraded(err error) error {
	if errors.Is(err, ErrDegraded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrDegraded, err)
}

// holdLocked keeps readings in memory while the disk fails, dropping the oldest beyond
// MemoryReadings.
func (q *Queue) holdLocked(rs []reading.Reading) {
	if !q.degraded.Swap(true) {
		q.log.Error("buffer disk write failed, holding readings in memory", "limit", q.opt.MemoryReadings)
	}
	q.pending = append(q.pending, rs...)
	if over := len(q.pending) - q.opt.MemoryReadings; over > 0 {
		q.dropped.Add(uint64(over))
		q.memDropped += uint64(over)
		q.pending = slices.Delete(q.pending, 0, over)
	}
}

// flushPendingLocked tries to move readings held in memory to disk.
func (q *Queue) flushPendingLocked() error {
	pending := q.pending
	q.pending = nil
	if err := q.writeLocked(pending); err != nil {
		var se *syncError
		if !errors.As(err, &se) {
			// Not written: back behind whatever a failed rotation requeued (older).
			q.pending = append(q.pending, pending...)
		}
		q.holdLocked(nil)
		return degraded(err)
	}
	return nil
}

// syncEvery bounds the readings written but not yet synced: group commit by count as
// well as by time, so a burst neither waits for the sync interval nor piles up in RAM.
const syncEvery = 10000

// writeLocked encodes and writes records, rotating and enforcing bounds first. When the
// file system is full it drops the oldest sealed segment (counted) and tries once more:
// new readings matter more than old ones.
func (q *Queue) writeLocked(rs []reading.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	err := q.tryWriteLocked(rs)
	if errors.Is(err, syscall.ENOSPC) && q.removeOldestLocked("disk_full") {
		err = q.tryWriteLocked(rs)
	}
	if err != nil {
		return err
	}
	q.unsynced = append(q.unsynced, rs...)
	if len(q.unsynced) >= syncEvery {
		if err := q.syncLocked(); err != nil {
			return &syncError{err}
		}
	}
	return nil
}

func (q *Queue) tryWriteLocked(rs []reading.Reading) error {
	if err := q.rotateLocked(); err != nil {
		return err
	}
	q.encBuf = q.encBuf[:0]
	for i, r := range rs {
		q.encBuf = appendRecord(q.encBuf, q.nextSeq+uint64(i), r)
	}
	seg := q.segs[len(q.segs)-1]
	n, err := q.active.Write(q.encBuf)
	if err != nil {
		// Cut off the partial write so the next record starts on a boundary. If even
		// that fails, whole records of this write may sit in the file: never give their
		// sequence numbers to other readings (a reader could deliver the wrong one), and
		// abandon the segment (readers step over the junk by checksum).
		if n > 0 {
			if terr := q.active.Truncate(seg.size); terr != nil {
				q.nextSeq += uint64(len(rs))
				q.abandonActiveLocked()
			}
		}
		return fmt.Errorf("write %s: %w", seg.path, err)
	}
	seg.size += int64(n)
	seg.mtime = q.opt.now()
	q.nextSeq += uint64(len(rs))
	return nil
}

// rotateLocked opens a new active segment when there is none or the current one is full,
// then applies the byte and age bounds.
func (q *Queue) rotateLocked() error {
	if q.active != nil && q.segs[len(q.segs)-1].size < q.opt.SegmentBytes {
		return nil
	}
	if n := len(q.segs); q.active == nil && n > 0 && q.segs[n-1].first == q.nextSeq {
		// An abandoned segment that never took a whole record: reuse its name.
		if err := os.Remove(q.segs[n-1].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		q.segs = q.segs[:n-1]
	}
	if q.active != nil {
		if err := q.syncLocked(); err != nil {
			return err
		}
		if err := q.active.Close(); err != nil {
			q.active = nil
			return err
		}
		q.active = nil
	}
	path := q.dir("segments", fmt.Sprintf("%020d.seg", q.nextSeq))
	f, err := q.opt.openFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	if err := syncDir(q.dir("segments")); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	q.active = f
	q.durableOff = 0
	q.segs = append(q.segs, &segment{first: q.nextSeq, path: path, mtime: q.opt.now()})
	q.enforceBoundsLocked()
	return nil
}

// abandonActiveLocked closes the active segment after a write that could not be cut off
// cleanly; the next append starts a new segment. Readers step over the junk by checksum.
func (q *Queue) abandonActiveLocked() {
	if q.active == nil {
		return
	}
	if q.opt.syncFile(q.active) == nil {
		q.markDurableLocked()
	} else {
		q.requeueUnsyncedLocked()
	}
	q.active.Close()
	q.active = nil
}

// requeueUnsyncedLocked moves readings written since the last sync back to memory after
// the sync failed: the kernel may have dropped them, and a second fsync would not say
// so. They are written again, with new sequence numbers, once the disk works; if the
// old copies survive too, InfluxDB overwrites the identical points.
func (q *Queue) requeueUnsyncedLocked() {
	if len(q.unsynced) == 0 {
		return
	}
	q.pending = append(q.heldOfUnsyncedLocked(), q.pending...)
	q.unsynced = q.unsynced[:0]
	q.holdLocked(nil)
}

// Sync makes everything appended so far durable and wakes readers. While degraded it
// first tries to move the readings held in memory to disk. It returns nil only if every
// reading appended since the previous Sync (whose Append returned nil) is durable: after
// a drop from memory it returns an error wrapping ErrLost, even if the disk works again.
func (q *Queue) Sync() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	err := q.syncAllLocked()
	if err == nil && q.memDropped > 0 {
		err = fmt.Errorf("%w: %d since the previous sync (memory_readings bound)", ErrLost, q.memDropped)
	}
	if err == nil && q.discarded > 0 {
		err = fmt.Errorf("%w: %d readings with another copy since the previous sync", ErrRefused, q.discarded)
	}
	q.memDropped = 0 // reported (or covered by err) to everyone waiting for this Sync
	q.discarded = 0
	return err
}

func (q *Queue) syncAllLocked() error {
	if len(q.pending) > 0 {
		if err := q.flushPendingLocked(); err != nil {
			return err
		}
	}
	return q.syncLocked()
}

func (q *Queue) syncLocked() error {
	if q.durableSeq == q.nextSeq || q.active == nil {
		return nil
	}
	if err := q.opt.syncFile(q.active); err != nil {
		name := q.active.Name()
		q.requeueUnsyncedLocked()
		q.active.Close()
		q.active = nil
		return fmt.Errorf("%w: sync %s: %w", ErrDegraded, name, err)
	}
	q.markDurableLocked()
	if len(q.pending) == 0 && q.degraded.Swap(false) {
		q.log.Info("buffer disk writes work again")
	}
	return nil
}

// markDurableLocked records that everything appended is on stable storage and wakes readers.
func (q *Queue) markDurableLocked() {
	q.unsynced = q.unsynced[:0]
	q.redeliver = q.redeliver[:0]
	q.durableSeq = q.nextSeq
	q.durableOff = q.segs[len(q.segs)-1].size
	close(q.notify)
	q.notify = make(chan struct{})
}

// enforceBoundsLocked deletes sealed segments that readers have all passed, then the
// oldest sealed segments beyond MaxBytes or MaxAge, counting undelivered readings.
func (q *Queue) enforceBoundsLocked() {
	for len(q.segs) > 1 {
		var total int64
		for _, s := range q.segs {
			total += s.size
		}
		oldest, end := q.segs[0], q.segs[1].first
		switch {
		case len(q.readers) > 0 && q.minCursorLocked() >= end:
			if !q.removeOldestLocked("") {
				return
			}
		case q.opt.MaxBytes > 0 && total > q.opt.MaxBytes:
			if !q.removeOldestLocked("max_bytes") {
				return
			}
		case q.opt.MaxAge > 0 && q.opt.now().Sub(oldest.mtime) > q.opt.MaxAge:
			if !q.removeOldestLocked("max_age") {
				return
			}
		default:
			return
		}
	}
}

// removeOldestLocked deletes the oldest sealed segment. With a reason (a bound or a full
// disk) the readings in it that some reader has not acknowledged are counted as dropped
// and logged. It reports whether a segment was removed.
func (q *Queue) removeOldestLocked(reason string) bool {
	if len(q.segs) < 2 {
		return false // only the active segment is left
	}
	oldest, end := q.segs[0], q.segs[1].first
	if err := os.Remove(oldest.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.log.Warn("cannot delete buffer segment", "segment", oldest.path, "err", err)
		return false
	}
	q.segs = q.segs[1:]
	if reason != "" {
		lost := end - oldest.first
		if len(q.readers) > 0 {
			lost = end - max(oldest.first, min(q.minCursorLocked(), end))
		}
		q.dropped.Add(lost)
		q.log.Warn("buffer full, dropped oldest segment", "reason", reason, "readings", lost, "segment", oldest.path)
	}
	return true
}

// forgetSegmentLocked drops a segment whose file vanished or cannot be read, counting
// the readings no reader had acknowledged.
func (q *Queue) forgetSegmentLocked(first uint64, cause error) {
	i := slices.IndexFunc(q.segs, func(s *segment) bool { return s.first == first })
	if i < 0 || (q.active != nil && i == len(q.segs)-1) {
		return
	}
	end := q.nextSeq
	if i+1 < len(q.segs) {
		end = q.segs[i+1].first
	}
	lost := end - max(first, min(q.minCursorLocked(), end))
	q.dropped.Add(lost)
	q.log.Error("buffer segment lost", "segment", q.segs[i].path, "readings", lost, "err", cause)
	q.segs = slices.Delete(q.segs, i, i+1)
}

func (q *Queue) minCursorLocked() uint64 {
	m := q.nextSeq
	for _, r := range q.readers {
		m = min(m, r.committed.Load())
	}
	return m
}

// Stats returns a snapshot of the counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	var b int64
	for _, s := range q.segs {
		b += s.size
	}
	return Stats{
		Bytes: b, MaxBytes: q.opt.MaxBytes, Segments: int64(len(q.segs)),
		Appended: q.appended.Load(), Dropped: q.dropped.Load(),
		QuarantinedRecords: q.qRecords.Load(), QuarantinedBytes: q.qBytes.Load(),
		Degraded: q.degraded.Load(), MemoryReadings: int64(len(q.pending)),
	}
}

// Close syncs, persists every cursor and closes the files. Readings still held in memory
// (degraded disk) are lost and counted as dropped. Calling Close twice is safe.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	var errs []error
	if len(q.pending) > 0 {
		if err := q.flushPendingLocked(); err != nil {
			q.dropped.Add(uint64(len(q.pending)))
			errs = append(errs, fmt.Errorf("%d readings held in memory are lost: %w", len(q.pending), err))
		}
	}
	if err := q.syncLocked(); err != nil {
		errs = append(errs, err)
	}
	if q.active != nil {
		if err := q.active.Close(); err != nil {
			errs = append(errs, err)
		}
		q.active = nil
	}
	q.closed = true
	readers := make([]*Reader, 0, len(q.readers))
	for _, r := range q.readers {
		readers = append(readers, r)
	}
	close(q.notify)
	q.mu.Unlock()
	for _, r := range readers {
		if err := r.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
