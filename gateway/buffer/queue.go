// Package buffer is envgate's durable store-and-forward queue: a segmented append-only
// log on local disk with a checksum per record, group commit, one persisted ack cursor
// per sink, bounds by bytes and age, and repair on open.
//
// Data flow: the pipeline calls Append for every reading (written to the OS, not yet
// durable) and Sync to make everything appended so far durable (one fdatasync for the
// whole group). Readers — one per sink — only ever see durable records, so a cursor can
// never point past what survives a power cut. A Reader peeks a batch, the sink delivers
// it, and Ack moves the reader's cursor; cursors are persisted at most every
// CursorInterval, and less often while little data moves (cursor.go), so a crash
// re-sends at most that much (InfluxDB overwrites identical
// points, so a re-send is not a duplicate). Segments every reader has passed are deleted.
//
// Layout of Dir:
//
//	segments/<first seq, 20 digits>.seg   records, see record.go
//	cursors/<sink name>                   two slots (generation, next seq, CRC-32C), saved in place (cursor.go)
//	quarantine/<segment>-<offset>.bad     bytes that failed their checksum, kept for inspection
//	quarantine/<segment>.bad              a segment file set aside whole (name outside the log)
//	lock                                  flock(2)ed by the process using the buffer; names it
//	end                                   seq after the last record, written on Close (8 bytes + CRC-32C)
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
	"github.com/envgate/envgate/internal/clock"
)

// ErrDegraded is wrapped by Append and Sync errors when the disk failed and readings are
// held in memory instead. They are written to disk once it works again.
var ErrDegraded = errors.New("buffer degraded: disk write failed, readings held in memory")

// ErrLost is wrapped by a Sync error when readings held in memory were dropped (the
// MemoryReadings bound) since the previous Sync: some readings appended before this
// Sync may be among them, so the caller must not treat them as durable.
var ErrLost = errors.New("buffer dropped readings held in memory")

// ErrUnsynced is wrapped, with ErrDegraded, by the error of a call whose fsync failed:
// Sync, Close, or an Append or AppendRedeliverable whose group commit (every syncEvery
// readings) it was. No reading written since the last good sync is durable: those
// without another copy are held in memory, those with one are discarded. A caller that
// waits for a Sync to confirm earlier appends must fail them all now — no later Sync
// reports this again. An Append error without it (a failed write: the readings are
// held in memory) leaves earlier appends to the next Sync.
var ErrUnsynced = errors.New("fsync failed, nothing written since the last good sync is durable")

// ErrClosed is returned by operations on a closed Queue.
var ErrClosed = errors.New("buffer closed")

// ErrLocked is wrapped by the Open error when another process uses the directory; the
// message names that process.
var ErrLocked = errors.New("buffer directory is in use")

// maxSeq bounds sequence numbers. At 10 000 readings a second it lasts 14 million
// years, so a larger number in a segment name, record header or cursor is damage, and
// the sequence can never wrap around to numbers readers have passed.
const maxSeq uint64 = 1 << 62

// quarantineMaxBytes bounds quarantine/: a failing card must not fill the disk with
// copies of its own bad sectors. The oldest files go first.
const quarantineMaxBytes = 32 << 20

// Options configure a Queue.
type Options struct {
	Dir      string        // state directory; created if missing
	MaxBytes int64         // drop the oldest segments beyond this many bytes on disk
	MaxAge   time.Duration // drop segments whose newest reading is older than this (olderLocked)
	// Keep is how long a segment every reader has passed stays after its last write or
	// its newest reading, whichever is later (keptLocked), for the derivations to
	// rebuild their open windows after a restart (Recent,
	// gateway/derive). Such segments are the oldest, so the byte and age bounds remove
	// them first, and without counting them as dropped. 0: deleted once delivered.
	Keep           time.Duration
	SegmentBytes   int64         // start a new segment after this many bytes
	CursorInterval time.Duration // persist ack cursors at most this often (cursor.go: less often while little data moves)
	MemoryReadings int           // readings held in RAM while the disk fails (oldest dropped beyond)
	Log            *slog.Logger

	now             func() time.Time
	fs              fileSystem                                                  // default osFS; the crash model in tests
	openFile        func(name string, flag int, perm os.FileMode) (file, error) // tests inject disk faults here
	syncFile        func(f file) error                                          // and here; default fdatasync
	quarantineBytes int64                                                       // default quarantineMaxBytes
}

// Stats is a snapshot of the queue's counters.
type Stats struct {
	Bytes              int64 // segment bytes on disk
	KeptBytes          int64 // of those, bytes of segments every reader has passed, kept (Options.Keep)
	MaxBytes           int64 // the bound on Bytes (Options.MaxBytes)
	Segments           int64
	Appended           uint64 // readings appended since Open (to disk or, degraded, to memory)
	Dropped            uint64 // readings dropped undelivered by the byte, age or memory bounds
	QuarantinedRecords uint64 // readings lost to damage of the log: corrupt records, cut or missing ranges
	QuarantinedBytes   uint64
	QuarantineRemoved  uint64 // files removed from quarantine/ to keep it within its bound
	Degraded           bool   // the last disk write failed
	MemoryReadings     int64  // readings waiting in memory for the disk
	// SyncInProgressSince is when the fsync running now started, zero if none is
	// running. A hung disk shows here while Stats itself still answers at once.
	SyncInProgressSince time.Time
}

type segment struct {
	first   uint64 // seq of its first record
	path    string
	size    int64 // bytes of whole records written (the file may hold more: see supersededLocked)
	durable int64 // bytes of it known to be on stable storage; readers read no further
	// newest is the latest reading time in it: its age for MaxAge and Keep (age). It is
	// kept as records are appended; for a segment found on Open it is read from the
	// file when first needed (newestLocked). mtime is the file's, its fall-back.
	newest      time.Time
	newestKnown bool
	mtime       time.Time
}

// A segment's records count only below the name of the next segment: after a failed
// fsync the sequence numbers from the durable end on are given again, in a new segment
// named by the first of them, and copies left in the older file are superseded by that
// name, in this process and after a restart.

// seqRange is the sequence numbers from up to, not including, to.
type seqRange struct{ from, to uint64 }

// Queue is the durable log. Its methods are safe for concurrent use.
//
// Locking: mu guards the state and is never held during an fsync, so Peek answers
// while an fsync hangs. It is held across a segment's write(2), open and truncate, so
// what a scrape asks (Stats, Reader.Unsent, Durable, OldestUnsent) never takes it: every
// change made under mu is published in view before mu is released (release), and those
// read view. syncMu serialises the syncs themselves: a sync takes what to sync under mu,
// fsyncs with mu released, then publishes under mu.
type Queue struct {
	opt    Options
	log    *slog.Logger
	fs     fileSystem
	unlock func() error

	syncMu sync.Mutex

	mu         sync.Mutex
	closed     bool
	segs       []*segment // oldest first; the last is the active one
	active     file       // nil when no active segment is open (degraded, or before the first append)
	toSync     []sealed   // abandoned segments with data not yet synced; closed by the next sync
	dirDirty   bool       // a segment file was created or removed since the last fsync of segments/
	nextSeq    uint64     // seq of the next appended record
	durableSeq uint64     // every record below this seq is on stable storage
	doomed     []string   // segment files to delete once mu is released (unlinkDoomed)
	notify     chan struct{}
	readers    map[string]*Reader
	pending    []reading.Reading // held in memory while the disk fails
	unsynced   []reading.Reading // written since the last sync, kept until it succeeds
	encBuf     []byte
	quarantine map[string]bool // "<segment>@<offset>" already copied aside and counted
	holes      []seqRange      // sorted, disjoint: seqs known to hold no reading in the log

	memDropped uint64 // readings dropped from pending since the last Sync
	// redeliver marks the runs of unsynced that have another copy (AppendRedeliverable):
	// a failed sync discards them instead of holding them in memory (redeliver.go).
	redeliver []span
	// rewinds counts the failed fsyncs that rewound the log; rewoundAt is durableSeq at
	// the last one (AppendRedeliverable tells by them whether its readings survived).
	rewinds, rewoundAt uint64

	view atomic.Pointer[view] // what mu guards, as of the last release

	appended, dropped, qRecords, qBytes, qRemoved atomic.Uint64
	// wBytes and wRecords are the record bytes and records written since Open: their
	// ratio sizes what a cursor save covers (cursor.go).
	wBytes, wRecords atomic.Uint64
	degraded         atomic.Bool
	syncSince        atomic.Pointer[time.Time] // start of the fsync in progress, nil if none

	// noReserve (under mu): the last new segment's reservation failed (preallocate);
	// logged once per episode, as a degraded disk starts a new segment at every Sync.
	noReserve bool
}

// Open opens (or creates) the queue in opt.Dir, takes its lock, checks the segment
// files against their names, repairs a torn or corrupt tail of the last segment
// (moving the bad bytes to quarantine/ and counting them) and starts a new active
// segment. It fails if another process holds the directory (the error wraps ErrLocked
// and names it) or the directory cannot be used at all.
func Open(opt Options) (*Queue, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.now == nil {
		// The gateway's wall clock, which stamps the readings: max_age compares their
		// times with it (shifted alike in -tags fakeclock test builds).
		opt.now = clock.Now
	}
	if opt.fs == nil {
		opt.fs = osFS{}
	}
	if opt.openFile == nil {
		opt.openFile = opt.fs.OpenFile
	}
	if opt.syncFile == nil {
		opt.syncFile = syncData
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = 8 << 20
	}
	if opt.CursorInterval <= 0 {
		opt.CursorInterval = 5 * time.Second
	}
	if opt.quarantineBytes <= 0 {
		opt.quarantineBytes = quarantineMaxBytes
	}
	q := &Queue{opt: opt, log: opt.Log, fs: opt.fs, notify: make(chan struct{}), readers: map[string]*Reader{}, quarantine: map[string]bool{}}
	for _, d := range []string{opt.Dir, q.dir("segments"), q.dir("cursors"), q.dir("quarantine")} {
		if err := q.fs.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("open buffer: %w", err)
		}
	}
	unlock, err := q.fs.Lock(q.dir("lock"), []byte(holder(opt.now())))
	if err != nil {
		return nil, fmt.Errorf("open buffer in %s: %w", opt.Dir, err)
	}
	q.unlock = unlock
	if err := q.load(); err != nil {
		unlock()
		return nil, fmt.Errorf("open buffer in %s: %w", opt.Dir, err)
	}
	q.mu.Lock()
	q.release()
	return q, nil
}

// holder describes this process for the lock file, so a second process can say who
// holds the buffer.
func holder(now time.Time) string {
	cmd := strings.Join(os.Args, " ")
	if len(cmd) > 200 {
		cmd = cmd[:200] + "…"
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("pid %d on %s, since %s: %s\n", os.Getpid(), host, now.Format(time.RFC3339), cmd)
}

// sealed is an abandoned segment's file with its segment.
type sealed struct {
	f   file
	seg *segment
}

// view is a snapshot of the state mu guards, published by release for the callers
// that must not wait for mu (a write holds it on a hung disk). It is never modified.
type view struct {
	nextSeq, durableSeq uint64
	oldest              uint64 // first seq of the oldest segment
	hasSegs             bool
	segments, bytes     int64
	kept                int64 // bytes of sealed segments every reader has passed
	pending             int64
	holes               []seqRange // shared with the Queue, which replaces but never modifies it
}

// inLog returns how many readings with seq from..to-1 are in the log as of the
// snapshot: not below its oldest segment and not in a known hole.
func (v *view) inLog(from, to uint64) uint64 {
	if !v.hasSegs {
		return 0
	}
	from = max(from, v.oldest)
	if from >= to {
		return 0
	}
	return to - from - holesIn(v.holes, from, to)
}

// release publishes the state in view and unlocks mu.
func (q *Queue) release() {
	v := &view{nextSeq: q.nextSeq, durableSeq: q.durableSeq, segments: int64(len(q.segs)),
		pending: int64(len(q.pending)), holes: q.holes}
	if len(q.segs) > 0 {
		v.oldest, v.hasSegs = q.segs[0].first, true
	}
	passed := q.minCursorLocked()
	for i, s := range q.segs {
		v.bytes += s.size
		if len(q.readers) > 0 && i+1 < len(q.segs) && q.segs[i+1].first <= passed {
			v.kept += s.size
		}
	}
	q.view.Store(v)
	q.mu.Unlock()
}

func (q *Queue) dir(parts ...string) string {
	return filepath.Join(append([]string{q.opt.Dir}, parts...)...)
}

// load lists the segments, sets aside files whose name does not fit the log, repairs
// the last segment and sets nextSeq. Nothing runs concurrently with it.
//
// What it can know about readings that should be there but are not: the next
// segment's name bounds a segment cut short (counted by the readers), and for the last
// segment the highest seq any cursor reached and the end recorded by the last clean
// Close. Readings between the end of the log and that high-water mark are counted as
// lost (for the sinks whose cursors had not passed them) and the gap becomes a hole.
func (q *Queue) load() error {
	entries, err := q.fs.ReadDir(q.dir("segments"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.name
		path := q.dir("segments", name)
		first, err := strconv.ParseUint(strings.TrimSuffix(name, ".seg"), 10, 64)
		if !strings.HasSuffix(name, ".seg") || err != nil || e.dir {
			q.log.Warn("ignoring unexpected file in buffer", "file", path)
			continue
		}
		// A file's mtime is on the kernel's clock; the queue's (the gateway's) is the same
		// but in -tags fakeclock test builds, where it is shifted (internal/clock).
		seg := &segment{first: first, path: path, size: e.size, durable: e.size, mtime: e.mtime.Add(clock.Offset())}
		if first >= maxSeq {
			q.quarantineFile(seg, "sequence number out of range")
			continue
		}
		q.segs = append(q.segs, seg)
	}
	slices.SortFunc(q.segs, func(a, b *segment) int { return cmpU64(a.first, b.first) })

	// The highest seq known to have been written: every cursor, and the end recorded
	// by the last clean Close.
	var known, minCursor uint64
	haveCursor := false
	cursors, err := q.fs.ReadDir(q.dir("cursors"))
	if err != nil {
		return err
	}
	for _, e := range cursors {
		path := q.dir("cursors", e.name)
		if strings.HasSuffix(e.name, ".tmp") {
			// A crash during a cursor update.
			_ = q.fs.Remove(path)
			continue
		}
		seq, _, err := loadSinkCursor(q.fs, path)
		if err != nil {
			continue // the Reader logs it and starts at the oldest reading
		}
		known = max(known, seq)
		if !haveCursor || seq < minCursor {
			minCursor = seq
		}
		haveCursor = true
	}
	if end, err := loadCursor(q.fs, q.dir("end")); err == nil {
		known = max(known, end)
	}

	q.checkNames()
	// Repair the last segment. One without a single whole record is removed (a crash
	// right after it was created, or junk): the one before it tells where the log ends.
	var floor uint64
	var torn *tornTail
	for len(q.segs) > 0 {
		last := q.segs[len(q.segs)-1]
		end, next, t, err := q.repair(last)
		if err != nil {
			return err
		}
		if end > 0 {
			last.size, last.durable, q.nextSeq, torn = end, end, next, t
			break
		}
		if t != nil {
			torn = t // counted below against the end of the log
		}
		if err := q.fs.Remove(last.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		q.dirDirty = true
		q.segs = q.segs[:len(q.segs)-1]
		if len(q.segs) == 0 {
			floor = last.first // everything below it was passed or dropped before
		}
	}
	q.nextSeq = max(q.nextSeq, floor)
	if torn != nil || known > q.nextSeq {
		q.countTailLoss(torn, known, minCursor, haveCursor)
	}
	q.nextSeq = max(q.nextSeq, known)
	q.durableSeq = q.nextSeq
	if q.dirDirty {
		q.dirDirty = false
		return q.fs.SyncDir(q.dir("segments"))
	}
	return nil
}

// tornTail is corrupt bytes at the end of the last segment, n bytes from off; data
// holds (the start of) them, read before the segment was cut.
type tornTail struct {
	seg  *segment
	off  int64
	n    int64
	data []byte
}

// countTailLoss counts what the end of the log lost: a torn tail is at least one
// reading, and the readings up to the high-water mark known are lost too, except for
// sinks whose cursors had already passed them. The gap becomes a hole, so it is never
// reported as unsent.
func (q *Queue) countTailLoss(torn *tornTail, known, minCursor uint64, haveCursor bool) {
	from := q.nextSeq
	to := max(known, from)
	countFrom := from
	if haveCursor {
		countFrom = max(from, minCursor)
	}
	lost := to - min(countFrom, to)
	if torn != nil {
		lost = max(lost, 1)
		q.copyAside(torn.seg, torn.off, torn.n, func() []byte { return torn.data })
	}
	if to > from {
		q.addHoleLocked(from, to)
		q.log.Warn("buffer log ends before readings known to have been written", "end", from, "known_end", to, "readings_lost", lost)
	}
	q.qRecords.Add(lost)
}

// checkNames reads the first record of every segment and sets aside, whole, a file
// whose first record is not in the range its name claims (from its name up to the next
// file's name): a copy, a file created by hand, or junk. Such a file is never used to
// skip readings. The last segment is left to repair. A file it cannot open or read (a
// bad sector, EIO) is kept: readers skip what they cannot read and count it, and one
// bad old file must not keep the gateway from starting.
func (q *Queue) checkNames() {
	kept := q.segs[:0]
	for i, seg := range q.segs {
		if i == len(q.segs)-1 {
			kept = append(kept, seg)
			break
		}
		limit := q.segs[i+1].first
		f, err := q.fs.OpenFile(seg.path, os.O_RDONLY, 0)
		if err != nil {
			q.log.Error("cannot open buffer segment; readers will skip it", "segment", seg.path, "err", err)
			kept = append(kept, seg)
			continue
		}
		_, seq, _, _, err := newScanner(f, 0, seg.size).next(0)
		f.Close()
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			q.log.Error("cannot read buffer segment; readers will skip what they cannot read", "segment", seg.path, "err", err)
			kept = append(kept, seg)
		case errors.Is(err, io.EOF):
			q.quarantineFile(seg, "no readable record")
		case seq < seg.first || seq >= limit:
			q.quarantineFile(seg, fmt.Sprintf("first record has seq %d, outside the range %d to %d of its name", seq, seg.first, limit-1))
		default:
			kept = append(kept, seg)
		}
	}
	q.segs = kept
}

// quarantineFile moves a whole segment file into quarantine/. The readings it may have
// held are counted by the readers as a gap if no other file holds them.
func (q *Queue) quarantineFile(seg *segment, why string) {
	name := q.dir("quarantine", filepath.Base(seg.path)+".bad")
	q.boundQuarantine(seg.size)
	if err := q.fs.Rename(seg.path, name); err != nil {
		q.log.Error("cannot set aside buffer file; ignoring it", "file", seg.path, "err", err)
		return
	}
	q.dirDirty = true
	q.qBytes.Add(uint64(seg.size))
	q.log.Warn("buffer file does not fit the log, set aside", "file", seg.path, "reason", why, "bytes", seg.size, "kept_in", name)
}

// repair scans a segment to its end, quarantines corrupt bytes inside it and truncates
// a torn tail (returned, not yet counted: load knows how much it cost). It returns the
// new size and the seq following the last valid record.
func (q *Queue) repair(seg *segment) (size int64, nextSeq uint64, torn *tornTail, err error) {
	f, err := q.fs.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, nil, err
	}
	defer f.Close()
	s := newScanner(f, 0, seg.size)
	nextSeq, end := seg.first, int64(0)
	for {
		_, seq, from, skipped, err := s.next(nextSeq)
		if errors.Is(err, io.EOF) {
			if skipped > 0 {
				// Read it now: the truncation below removes it from the file.
				torn = &tornTail{seg: seg, off: from, n: skipped, data: readAside(f, from, skipped)}
			}
			break
		}
		if err != nil {
			return 0, 0, nil, err
		}
		if skipped > 0 {
			q.quarantineBytes(f, seg, from, skipped, nextSeq, seq)
		}
		nextSeq, end = seq+1, s.off
	}
	if end < seg.size {
		if err := f.Truncate(end); err != nil {
			return 0, 0, nil, err
		}
		q.log.Warn("buffer repaired torn tail", "segment", seg.path, "truncated_at", end, "bytes", seg.size-end)
	} else if err := releasePrealloc(f, end); err != nil {
		// A new segment is started: what the last one reserved is of no use any more.
		q.log.Warn("cannot release the space reserved for a buffer segment", "segment", seg.path, "err", err)
	}
	// After a SIGKILL the tail may still be only in the page cache: make it durable
	// before readers (and their persisted cursors) treat it so.
	if err := q.opt.syncFile(f); err != nil {
		return 0, 0, nil, err
	}
	return end, nextSeq, torn, nil
}

// readAside reads up to 16 MiB of the n corrupt bytes at off, for quarantine/.
func readAside(f io.ReaderAt, off, n int64) []byte {
	buf := make([]byte, min(n, 16<<20))
	got, _ := f.ReadAt(buf, off)
	return buf[:got]
}

// quarantineBytes copies corrupt bytes aside (once per place) and counts the readings
// with seq from..to-1 as lost, unless already counted.
func (q *Queue) quarantineBytes(f io.ReaderAt, seg *segment, off, n int64, from, to uint64) {
	q.copyAside(seg, off, n, func() []byte { return readAside(f, off, n) })
	q.mu.Lock()
	lost := q.addHoleLocked(from, max(to, from+1))
	q.release()
	q.qRecords.Add(lost)
	if lost > 0 {
		q.log.Warn("buffer lost readings to corruption", "segment", seg.path, "offset", off, "records_lost", lost)
	}
}

// copyAside copies n corrupt bytes at off of seg into quarantine/ and counts the bytes,
// once per place; read returns (the start of) those bytes and is called only the first
// time, so that a reader passing the place again (a sink retrying its batch, another
// sink) does not read up to 16 MiB only to throw it away.
func (q *Queue) copyAside(seg *segment, off, n int64, read func() []byte) {
	key := fmt.Sprintf("%s@%d", seg.path, off)
	q.mu.Lock()
	seen := q.quarantine[key]
	q.quarantine[key] = true
	q.mu.Unlock()
	if seen {
		return
	}
	q.qBytes.Add(uint64(n))
	data := read()
	name := q.dir("quarantine", fmt.Sprintf("%020d-%d.bad", seg.first, off))
	q.boundQuarantine(int64(len(data)))
	if err := q.writeFile(name, data); err != nil {
		q.log.Warn("cannot keep quarantined bytes", "file", name, "err", err)
	}
	q.log.Warn("buffer quarantined corrupt bytes", "segment", seg.path, "offset", off, "bytes", n, "kept_in", name)
}

func (q *Queue) writeFile(name string, b []byte) error {
	f, err := q.fs.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// boundQuarantine removes the oldest files in quarantine/ until incoming more bytes fit
// in its bound, counting them.
func (q *Queue) boundQuarantine(incoming int64) {
	es, err := q.fs.ReadDir(q.dir("quarantine"))
	if err != nil {
		return
	}
	var total int64
	for _, e := range es {
		total += e.size
	}
	slices.SortFunc(es, func(a, b dirEntry) int {
		if c := a.mtime.Compare(b.mtime); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for _, e := range es {
		if total+incoming <= q.opt.quarantineBytes || e.dir {
			break
		}
		if err := q.fs.Remove(q.dir("quarantine", e.name)); err != nil {
			q.log.Warn("cannot remove old quarantine file", "file", e.name, "err", err)
			return
		}
		total -= e.size
		q.qRemoved.Add(1)
		q.log.Warn("quarantine full, removed the oldest file", "file", e.name, "bytes", e.size)
	}
}

// addHoleLocked records that the seqs from..to-1 hold no reading in the log and returns
// how many of them were not known before.
func (q *Queue) addHoleLocked(from, to uint64) uint64 {
	if to <= from {
		return 0
	}
	newly := (to - from) - q.holesInLocked(from, to)
	// A new slice: views published earlier share the old one.
	all := append(slices.Clone(q.holes), seqRange{from, to})
	slices.SortFunc(all, func(a, b seqRange) int { return cmpU64(a.from, b.from) })
	merged := all[:1]
	for _, h := range all[1:] {
		last := &merged[len(merged)-1]
		if h.from <= last.to {
			last.to = max(last.to, h.to)
		} else {
			merged = append(merged, h)
		}
	}
	q.holes = merged
	return newly
}

// trimHolesLocked forgets the holes at and above seq, whose numbers are given again.
func (q *Queue) trimHolesLocked(seq uint64) {
	var kept []seqRange
	for _, h := range q.holes {
		if h.from < seq {
			kept = append(kept, seqRange{h.from, min(h.to, seq)})
		}
	}
	q.holes = kept
}

// holesInLocked returns how many seqs in from..to-1 are known holes.
func (q *Queue) holesInLocked(from, to uint64) uint64 { return holesIn(q.holes, from, to) }

// holesIn returns how many seqs in from..to-1 are in holes.
func holesIn(holes []seqRange, from, to uint64) uint64 {
	var n uint64
	for _, h := range holes {
		if lo, hi := max(h.from, from), min(h.to, to); hi > lo {
			n += hi - lo
		}
	}
	return n
}

// Append writes readings to the active segment, in order, in one write. They are not
// durable until Sync returns nil. If the disk fails, the readings are kept in memory
// (up to MemoryReadings), the queue reports Degraded, and the error wraps ErrDegraded.
//
// Every syncEvery readings written Append syncs them itself (group commit by count). If
// that fsync fails, Append returns its error, wrapping ErrDegraded and ErrUnsynced: none of the readings
// written since the last good sync — of this call and of every earlier Append and
// AppendRedeliverable that returned nil — is durable; those without another copy are
// held in memory, those with one are discarded (their source sends them again). A
// later Sync does not report that failure again.
func (q *Queue) Append(rs ...reading.Reading) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.appended.Add(uint64(len(rs)))
	var err error
	if len(q.pending) > 0 {
		// Keep order: the disk failed earlier; everything queues behind what waits in memory.
		q.pending = append(q.pending, rs...)
		err = q.flushPendingLocked()
	} else if err = q.writeLocked(rs); err != nil {
		q.holdLocked(rs)
		err = degraded(err)
	}
	full := err == nil && len(q.unsynced) >= syncEvery
	q.release()
	q.unlinkDoomed()
	if full {
		// Group commit by count as well as by time. The fsync runs without mu; a failure
		// puts the unsynced readings back in memory.
		q.syncMu.Lock()
		defer q.syncMu.Unlock()
		if err := q.syncFiles(); err != nil {
			return err
		}
	}
	return err
}

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
		q.pending = append(q.pending, pending...)
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
	if q.nextSeq+uint64(len(rs)) >= maxSeq {
		return fmt.Errorf("sequence numbers exhausted at %d", q.nextSeq) // never, but never wrap
	}
	err := q.tryWriteLocked(rs)
	if errors.Is(err, syscall.ENOSPC) && q.removeOldestLocked("disk_full", true) {
		err = q.tryWriteLocked(rs)
	}
	if err != nil {
		return err
	}
	q.unsynced = append(q.unsynced, rs...)
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
		// that fails, whole records of this write may sit in the file: abandon the
		// segment. The next one is named by nextSeq, which supersedes those records
		// (see segment), so their numbers go to the readings written again, not twice.
		if n > 0 {
			if terr := q.active.Truncate(seg.size); terr != nil {
				q.abandonActiveLocked()
			}
		}
		return fmt.Errorf("write %s: %w", seg.path, err)
	}
	seg.size += int64(n)
	q.wBytes.Add(uint64(n))
	q.wRecords.Add(uint64(len(rs)))
	seg.mtime = q.opt.now()
	for _, r := range rs {
		if r.Time.After(seg.newest) {
			seg.newest = r.Time
		}
	}
	q.nextSeq += uint64(len(rs))
	return nil
}

// rotateLocked opens a new active segment when there is none or the current one is full
// and wholly durable, then applies the byte and age bounds. A full segment with
// unsynced records takes more until the next sync: sealing it needs no fsync then, and
// a power cut can cut only the newest segment, never leave a gap before it.
func (q *Queue) rotateLocked() error {
	if q.active != nil {
		if seg := q.segs[len(q.segs)-1]; seg.size < q.opt.SegmentBytes || seg.durable < seg.size {
			return nil
		}
	}
	for n := len(q.segs); q.active == nil && n > 0 && q.segs[n-1].first >= q.nextSeq; n = len(q.segs) {
		// A segment that holds no record below nextSeq (abandoned before it took a
		// whole record, or cut back after a failed fsync): its name is given again.
		if err := q.fs.Remove(q.segs[n-1].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		q.dirDirty = true
		q.segs = q.segs[:n-1]
	}
	if q.active != nil {
		err := q.active.Close()
		q.active = nil
		if err != nil {
			return err
		}
	}
	path := q.dir("segments", fmt.Sprintf("%020d.seg", q.nextSeq))
	f, err := q.opt.openFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	// The new name is made durable by the next sync, before any record in it is.
	q.dirDirty = true
	switch err := preallocate(f, q.opt.SegmentBytes); {
	case err != nil && !q.noReserve:
		q.log.Warn("cannot reserve the space of a new buffer segment; appending without", "segment", path, "err", err)
		q.noReserve = true
	case err == nil && q.noReserve:
		q.log.Info("buffer segments reserve their space again", "segment", path)
		q.noReserve = false
	}
	q.active = f
	q.segs = append(q.segs, &segment{first: q.nextSeq, path: path, newestKnown: true, mtime: q.opt.now()})
	q.enforceBoundsLocked()
	return nil
}

// abandonActiveLocked closes the active segment after a write that could not be cut off
// cleanly; the next append starts a new segment. What it holds unsynced is synced by
// the next Sync.
func (q *Queue) abandonActiveLocked() {
	if q.active == nil {
		return
	}
	seg := q.segs[len(q.segs)-1]
	// It takes no more appends: give back the blocks reserved for it (preallocate), or a
	// disk that fails and recovers again and again would gather a reservation per
	// segment set aside. Best effort: they come back when the segment is deleted.
	_ = releasePrealloc(q.active, seg.size)
	q.toSync = append(q.toSync, sealed{q.active, seg})
	q.active = nil
}

// requeueUnsyncedLocked moves readings written since the last sync back to memory after
// the sync failed: the kernel may have dropped them, and a second fsync would not say
// so. They are written again once the disk works, with the same sequence numbers (see
// rewindLocked); readings with another copy are discarded.
func (q *Queue) requeueUnsyncedLocked() {
	if len(q.unsynced) == 0 {
		return
	}
	q.pending = append(q.heldOfUnsyncedLocked(), q.pending...)
	q.unsynced = q.unsynced[:0]
	q.holdLocked(nil)
}

// rewindLocked undoes, after a failed fsync, everything written since the last durable
// point: the files written to are cut back (best effort) to their durable length and
// closed, segments holding nothing durable are removed, and nextSeq goes back to
// durableSeq. The next segment is named durableSeq, so whatever of the undone records
// survives in an older file is superseded (see segment) and never read: a reading is
// never delivered twice, nor delivered after it was counted as dropped or discarded.
func (q *Queue) rewindLocked() {
	d := q.durableSeq
	q.rewinds++
	q.rewoundAt = d
	for _, s := range q.toSync {
		if s.seg.size > s.seg.durable {
			_ = s.f.Truncate(s.seg.durable)
		}
		s.f.Close()
	}
	q.toSync = nil
	if q.active != nil {
		if seg := q.segs[len(q.segs)-1]; seg.size > seg.durable {
			_ = q.active.Truncate(seg.durable)
		}
		q.active.Close()
		q.active = nil
	}
	kept := q.segs[:0]
	for _, s := range q.segs {
		if s.first >= d {
			if err := q.fs.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				// rotateLocked tries again before it takes the name.
				q.log.Warn("cannot remove buffer segment after a failed fsync", "segment", s.path, "err", err)
				s.size, s.durable = 0, 0
				kept = append(kept, s)
			}
			q.dirDirty = true
			continue
		}
		s.size = min(s.size, s.durable)
		kept = append(kept, s)
	}
	clear(q.segs[len(kept):])
	q.segs = kept
	if q.nextSeq > d {
		q.nextSeq = d
		q.trimHolesLocked(d)
	}
}

// Sync makes everything appended so far durable and wakes readers. While degraded it
// first tries to move the readings held in memory to disk. It returns nil only if every
// reading appended since the previous Sync (whose Append returned nil) is durable: after
// a drop from memory it returns an error wrapping ErrLost, even if the disk works again.
// A failure of an earlier group commit inside Append or AppendRedeliverable was
// reported by that call, not again here. The fsync runs without the queue's lock:
// Stats, readers and Append go on meanwhile.
func (q *Queue) Sync() error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	var err error
	switch {
	case len(q.pending) > 0:
		err = q.flushPendingLocked()
	case q.degraded.Load():
		// Degraded with nothing held (a refused write, or a failed fsync whose readings
		// were all dropped or discarded): start the next segment to see whether the disk
		// works again; the fsyncs below (the directory, and the segment a write failed
		// on) then end the degraded state.
		q.abandonActiveLocked()
		if err = q.rotateLocked(); err != nil {
			err = degraded(err)
		}
	}
	q.release()
	q.unlinkDoomed()
	if err == nil {
		err = q.syncFiles()
	}
	q.mu.Lock()
	defer q.release()
	if err == nil && q.memDropped > 0 {
		err = fmt.Errorf("%w: %d since the previous sync (memory_readings bound)", ErrLost, q.memDropped)
	}
	q.memDropped = 0 // reported (or covered by err) to everyone waiting for this Sync
	return err
}

// syncFiles makes every record written so far durable: the abandoned segments, the
// active one and the directory entries of segments/. The caller holds syncMu and not
// mu. On failure every unsynced reading goes back to memory (or is discarded if it has
// another copy), the files are closed and the log is rewound to its durable end: Linux
// reports a failed writeback once, so a second fsync could falsely succeed.
func (q *Queue) syncFiles() error {
	q.mu.Lock()
	if q.durableSeq == q.nextSeq && len(q.toSync) == 0 && !q.dirDirty {
		q.mu.Unlock()
		return nil
	}
	type item struct {
		f    file
		seg  *segment
		size int64
	}
	var items []item
	for _, s := range q.toSync {
		items = append(items, item{s.f, s.seg, s.seg.size})
	}
	active := q.active
	if active != nil {
		seg := q.segs[len(q.segs)-1]
		items = append(items, item{active, seg, seg.size})
	}
	target, nUnsynced, nSealed, dir := q.nextSeq, len(q.unsynced), len(q.toSync), q.dirDirty
	q.dirDirty = false
	start := time.Now() // an age (SyncInProgressSince): the kernel's monotonic clock
	q.syncSince.Store(&start)
	q.mu.Unlock()

	var err error
	var failed string
	if dir {
		if err = q.fs.SyncDir(q.dir("segments")); err != nil {
			failed = q.dir("segments")
		}
	}
	for _, it := range items {
		if err != nil {
			break
		}
		if err = q.opt.syncFile(it.f); err != nil {
			failed = it.f.Name()
		}
	}

	q.mu.Lock()
	defer q.release()
	q.syncSince.Store(nil)
	if err != nil {
		q.dirDirty = q.dirDirty || dir
		q.requeueUnsyncedLocked()
		q.rewindLocked()
		if !q.degraded.Swap(true) {
			q.log.Error("buffer fsync failed", "file", failed, "err", err)
		}
		return fmt.Errorf("%w: %w: sync %s: %w", ErrDegraded, ErrUnsynced, failed, err)
	}
	for _, s := range q.toSync[:nSealed] {
		s.f.Close()
	}
	q.toSync = slices.Delete(q.toSync, 0, nSealed)
	q.unsynced = append(q.unsynced[:0], q.unsynced[min(nUnsynced, len(q.unsynced)):]...)
	q.trimRedeliverLocked(nUnsynced)
	for _, it := range items {
		it.seg.durable = max(it.seg.durable, it.size)
	}
	if target > q.durableSeq {
		q.durableSeq = target
		close(q.notify)
		q.notify = make(chan struct{})
	}
	if len(q.pending) == 0 && q.degraded.Swap(false) {
		q.log.Info("buffer disk writes work again")
	}
	return nil
}

// enforceBoundsLocked deletes sealed segments that readers have all passed (after
// Keep), then the oldest sealed segments beyond MaxBytes or MaxAge, counting
// undelivered readings. The files are deleted by unlinkDoomed once mu is released.
func (q *Queue) enforceBoundsLocked() {
	for len(q.segs) > 1 {
		var total int64
		for _, s := range q.segs {
			total += s.size
		}
		oldest, end := q.segs[0], q.segs[1].first
		delivered := len(q.readers) > 0 && q.minCursorLocked() >= end
		switch {
		case delivered && (q.opt.Keep <= 0 || !q.keptLocked(oldest, q.opt.now().Add(-q.opt.Keep))):
			q.removeOldestLocked("", false)
		case q.opt.MaxBytes > 0 && total > q.opt.MaxBytes:
			q.removeOldestLocked("max_bytes", false)
		case q.opt.MaxAge > 0 && q.olderLocked(oldest, q.opt.MaxAge):
			q.removeOldestLocked("max_age", false)
		default:
			return
		}
	}
}

// olderLocked reports whether the newest reading in seg is more than d old. The age is
// from record times, not the file's mtime, so that setting the wall clock (a box
// without a real-time clock booting in 1970, then NTP) neither ages nor rejuvenates
// data; and it is judged only while the wall clock is plausible (after the build time,
// internal/clock): before, every age would be wrong, and nothing goes for its age.
func (q *Queue) olderLocked(seg *segment, d time.Duration) bool {
	now := q.opt.now()
	return clock.Plausible(now) && now.Sub(q.newestLocked(seg)) > d
}

// keptLocked reports whether seg was written, or holds a reading, at or after since:
// what the derivations may need after a restart (Keep, Recent). The write time covers
// a backlog whose readings are days old but arrived just now (the windows close on the
// device's clock); the reading time covers a segment written while the box's clock
// still said 1970. While the wall clock is not plausible every segment is kept.
func (q *Queue) keptLocked(seg *segment, since time.Time) bool {
	if !clock.Plausible(q.opt.now()) {
		return true
	}
	return !seg.mtime.Before(since) || !q.newestLocked(seg).Before(since)
}

// newestLocked returns the latest reading time in seg, reading the segment once if it
// was found on Open. A segment that cannot be read counts from its file's mtime; one
// without a readable record, from the zero time (it holds nothing worth keeping).
func (q *Queue) newestLocked(seg *segment) time.Time {
	if seg.newestKnown {
		return seg.newest
	}
	seg.newestKnown = true
	f, err := q.fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		seg.newest = seg.mtime
		return seg.newest
	}
	defer f.Close()
	sc := newScanner(f, 0, seg.durable)
	for {
		rec, _, _, _, err := sc.next(0)
		if errors.Is(err, io.EOF) {
			return seg.newest
		}
		if err != nil {
			seg.newest = seg.mtime
			return seg.newest
		}
		if r, err := decodePayload(rec[headerSize:]); err == nil && r.Time.After(seg.newest) {
			seg.newest = r.Time
		}
	}
}

// removeOldestLocked deletes the oldest sealed segment: now, or (later) by unlinkDoomed
// after mu is released. With a reason (a bound or a full disk) the readings in it that
// some reader has not acknowledged are counted as dropped and logged. It reports
// whether a segment was removed.
func (q *Queue) removeOldestLocked(reason string, now bool) bool {
	if len(q.segs) < 2 {
		return false // only the active segment is left
	}
	oldest, end := q.segs[0], q.segs[1].first
	if now {
		if err := q.fs.Remove(oldest.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.log.Warn("cannot delete buffer segment", "segment", oldest.path, "err", err)
			return false
		}
	} else {
		q.doomed = append(q.doomed, oldest.path)
	}
	q.segs = q.segs[1:]
	if reason != "" {
		from := oldest.first
		if len(q.readers) > 0 {
			from = max(oldest.first, min(q.minCursorLocked(), end))
		}
		lost := end - from - q.holesInLocked(from, end)
		q.dropped.Add(lost)
		if lost > 0 {
			q.log.Warn("buffer full, dropped oldest segment", "reason", reason, "readings", lost, "segment", oldest.path)
		} else {
			q.log.Info("buffer bound reached, deleted a segment with nothing undelivered", "reason", reason, "segment", oldest.path)
		}
	}
	q.pruneHolesLocked()
	return true
}

// unlinkDoomed deletes the segment files enforceBoundsLocked gave up, without holding
// mu: an unlink on a hung disk must not stop Append's callers, Peek or Ack of other
// sinks. A file it cannot delete is logged; its readings are below every cursor or
// counted as dropped, and the next Open offers it again only to readers whose cursors
// lag behind it.
func (q *Queue) unlinkDoomed() {
	q.mu.Lock()
	doomed := q.doomed
	q.doomed = nil
	q.mu.Unlock()
	for _, p := range doomed {
		if err := q.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.log.Warn("cannot delete buffer segment", "segment", p, "err", err)
		}
	}
}

// pruneHolesLocked forgets holes below the oldest segment: nothing counts them there.
func (q *Queue) pruneHolesLocked() {
	if len(q.segs) == 0 {
		return
	}
	floor := q.segs[0].first
	i := 0
	for i < len(q.holes) && q.holes[i].to <= floor {
		i++
	}
	q.holes = q.holes[i:]
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
	from := max(first, min(q.minCursorLocked(), end))
	lost := end - from - q.holesInLocked(from, end)
	q.addHoleLocked(first, end)
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

// SetKeep changes Options.Keep: a reload that changes the derivations changes how
// long they need delivered readings kept.
func (q *Queue) SetKeep(d time.Duration) {
	q.mu.Lock()
	q.opt.Keep = d
	if !q.closed {
		q.enforceBoundsLocked()
	}
	q.release()
	q.unlinkDoomed()
}

// Stats returns a snapshot of the counters. It takes no lock (the queue's lock is held
// across write(2) on a hung disk), so it never waits for the disk; the sizes are those
// of the last change completed.
func (q *Queue) Stats() Stats {
	v := q.view.Load()
	return Stats{
		Bytes: v.bytes, KeptBytes: v.kept, MaxBytes: q.opt.MaxBytes, Segments: v.segments,
		Appended: q.appended.Load(), Dropped: q.dropped.Load(),
		QuarantinedRecords: q.qRecords.Load(), QuarantinedBytes: q.qBytes.Load(), QuarantineRemoved: q.qRemoved.Load(),
		Degraded: q.degraded.Load(), MemoryReadings: v.pending,
		SyncInProgressSince: q.SyncInProgressSince(),
	}
}

// SyncInProgressSince is when the fsync running now started, zero if none is running,
// as in Stats. It takes no lock: it answers even while a write holds the queue's lock
// on a hung disk (Healthy asks it).
func (q *Queue) SyncInProgressSince() time.Time {
	if t := q.syncSince.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// Close syncs, persists every cursor and the end of the log, closes the files and
// releases the directory. Readings still held in memory (degraded disk) are lost and
// counted as dropped. Calling Close twice is safe.
func (q *Queue) Close() error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	var errs []error
	if len(q.pending) > 0 {
		if err := q.flushPendingLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	q.release()
	q.unlinkDoomed()
	if err := q.syncFiles(); err != nil {
		errs = append(errs, err)
	}
	q.mu.Lock()
	if n := len(q.pending); n > 0 {
		// Held in memory, or put back there by the failed final fsync (which rewound
		// the log, so their first copies are never read): lost with the process.
		q.dropped.Add(uint64(n))
		errs = append(errs, fmt.Errorf("%d readings held in memory are lost", n))
		q.pending = nil
	}
	if q.active != nil {
		if err := releasePrealloc(q.active, q.segs[len(q.segs)-1].size); err != nil {
			errs = append(errs, err)
		}
		if err := q.active.Close(); err != nil {
			errs = append(errs, err)
		}
		q.active = nil
	}
	for _, s := range q.toSync {
		s.f.Close()
	}
	q.toSync = nil
	clean := len(errs) == 0 && q.durableSeq == q.nextSeq
	end := q.nextSeq
	q.closed = true
	readers := make([]*Reader, 0, len(q.readers))
	for _, r := range q.readers {
		readers = append(readers, r)
	}
	close(q.notify)
	q.release()
	for _, r := range readers {
		if err := r.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if clean {
		// The next Open counts readings missing below this mark as lost.
		if err := storeCursor(q.fs, q.dir("end"), end); err != nil {
			errs = append(errs, fmt.Errorf("record end of buffer: %w", err))
		}
	}
	if err := q.unlock(); err != nil {
		errs = append(errs, err)
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
