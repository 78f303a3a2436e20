package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"time"
)

// A sink's cursor file costs the card what it writes, and the first format — a 12-byte
// file replaced by write-tmp, fdatasync, rename and a directory fsync — cost 64 KiB of
// writes on ext4 per save (file creation, rename and two journal commits; measured on a
// loop-mounted ext4 with /sys/block/<dev>/stat, bench/wear_test.go). Saved every 5 s,
// that was 1.1 GB a day per sink, more than the readings of a small box. So:
//
//   - the file keeps its size and is overwritten in place: two slots, at offsets 0 and
//     cursorSlotGap (different file-system blocks and sectors, so a torn write of one
//     never touches the other), each generation (8 bytes) | next seq (8) | CRC-32C of
//     both (4), little-endian. A save writes the slot not holding the newest generation
//     and fdatasyncs: one 4 KiB block, no metadata, no journal commit (measured 4 KiB).
//     Loading takes the valid slot with the higher generation; a torn save leaves the
//     other, the previous cursor. A failed save drops the open file, and the next save
//     replaces it whole the old way (tmp, fdatasync, rename, directory fsync), as does
//     the first save of a reader, and one over a file in the old 12-byte format (still
//     read).
//   - a save is due at most every CursorInterval, and only once the acknowledged
//     records it covers take cursorCover times what it writes (cursorSaveBytes), or
//     cursorIdleSaves × CursorInterval after the last save: so cursor writes stay
//     within 1/16 of the data they cover, and a sink moving little data saves once
//     per minute (defaults) instead of every 5 s. The forwarder's own rules (a save
//     per batch_size acknowledged, on failure, on stop) come on top, through Flush.
const (
	cursorSlotGap  = 4096
	cursorSlotSize = 20
	cursorFileSize = cursorSlotGap + cursorSlotSize
	// cursorSaveBytes is what one in-place save costs the file system: one block.
	cursorSaveBytes = 4096
	// cursorCover: a save is due once the unsaved acknowledged records take this many
	// times cursorSaveBytes (64 KiB, about 1100 readings of ~60 bytes).
	// With 16, cursor saves add at most 1/16 to what the records cost.
	cursorCover = 16
	// cursorIdleSaves: with less than that acknowledged, a save is due this many
	// CursorIntervals after the last one (1 min with the default 5 s).
	cursorIdleSaves = 12
	// recordBytesGuess sizes a record before this process has written any: a reading
	// of BenchmarkWear's MQTT and sim loads took 59 bytes.
	recordBytesGuess = 60
)

// cursorDueIn is how long until a save of the cursor is due by itself (Ack saves it
// then; a caught-up forwarder waits that long): 0 or less when due now.
func (r *Reader) cursorDueIn() time.Duration {
	iv := r.q.opt.CursorInterval
	last := *r.lastPersist.Load()
	unsaved := r.committed.Load() - r.persisted.Load()
	if unsaved*r.q.recordBytes() < cursorCover*cursorSaveBytes {
		iv *= cursorIdleSaves
	}
	return last.Add(iv).Sub(r.q.opt.now())
}

// recordBytes is the mean size of a record written by this process.
func (q *Queue) recordBytes() uint64 {
	n := q.wRecords.Load()
	if n == 0 {
		return recordBytesGuess
	}
	return max(q.wBytes.Load()/n, 1)
}

// cursorSlot encodes one slot.
func cursorSlot(gen, seq uint64) []byte {
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, cursorSlotSize), gen)
	b = binary.LittleEndian.AppendUint64(b, seq)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeSlot decodes a slot; ok is false for a torn or never-written one.
func decodeSlot(b []byte) (gen, seq uint64, ok bool) {
	if len(b) < cursorSlotSize || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), true
}

// loadSinkCursor reads a sink's cursor file, in either format: the newest valid slot,
// and its generation (0 for the old format).
func loadSinkCursor(fsys fileSystem, path string) (seq, gen uint64, err error) {
	b, err := readFile(fsys, path, cursorFileSize)
	if err != nil {
		return 0, 0, err
	}
	if len(b) == 12 {
		seq, err := loadCursor(fsys, path)
		return seq, 0, err
	}
	if len(b) != cursorFileSize {
		return 0, 0, fmt.Errorf("cursor file %s: corrupt (%d bytes)", path, len(b))
	}
	g0, s0, ok0 := decodeSlot(b)
	g1, s1, ok1 := decodeSlot(b[cursorSlotGap:])
	switch {
	case ok0 && (!ok1 || g0 >= g1):
		gen, seq = g0, s0
	case ok1:
		gen, seq = g1, s1
	default:
		return 0, 0, fmt.Errorf("cursor file %s: corrupt", path)
	}
	if seq >= maxSeq {
		return 0, 0, fmt.Errorf("cursor file %s: seq %d out of range", path, seq)
	}
	return seq, gen, nil
}

// saveCursor persists seq; the caller holds persistMu.
func (r *Reader) saveCursor(seq uint64) error {
	path := r.q.dir("cursors", r.name)
	gen := r.gen + 1
	if r.cf == nil {
		if err := r.replaceCursorFile(path, gen, seq); err != nil {
			return err
		}
		r.gen = gen
		return nil
	}
	// The slot not holding the newest generation: gen alternates between the slots.
	off := int64(gen%2) * cursorSlotGap
	if _, err := r.cf.WriteAt(cursorSlot(gen, seq), off); err != nil {
		r.dropCursorFile()
		return err
	}
	if err := syncData(r.cf); err != nil {
		// The slot may hold anything now; the other one still holds the last good
		// cursor. The next save replaces the file whole.
		r.dropCursorFile()
		return err
	}
	r.gen = gen
	return nil
}

// replaceCursorFile writes a new cursor file with both slots holding seq, replaces the
// old one atomically, and keeps it open for saves in place.
func (r *Reader) replaceCursorFile(path string, gen, seq uint64) error {
	img := make([]byte, cursorFileSize)
	copy(img, cursorSlot(gen, seq))
	copy(img[cursorSlotGap:], cursorSlot(gen, seq))
	if err := replaceFile(r.q.fs, path, img); err != nil {
		return err
	}
	f, err := r.q.fs.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cursor file %s vanished after its save", path)
		}
		return err // saved, but the next save replaces it whole again
	}
	r.cf = f
	return nil
}

// dropCursorFile closes the cursor file kept open for saves in place; the caller holds
// persistMu.
func (r *Reader) dropCursorFile() {
	if r.cf != nil {
		r.cf.Close()
		r.cf = nil
	}
}
