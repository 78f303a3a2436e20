package buffer

import (
	"errors"
	"io"
)

const readAhead = 64 << 10

// A scanner reads the records of one segment file between off and limit. It verifies
// every record and skips over corrupt bytes to the next record that verifies.
type scanner struct {
	f      io.ReaderAt
	off    int64 // file offset of the next record
	limit  int64 // bytes at and after limit are not read
	buf    []byte
	bufOff int64
}

func newScanner(f io.ReaderAt, off, limit int64) *scanner {
	return &scanner{f: f, off: off, limit: limit}
}

// window returns the n bytes at file offset off, or fewer if limit or EOF comes first.
func (s *scanner) window(off int64, n int) ([]byte, error) {
	if off >= s.bufOff && off+int64(n) <= s.bufOff+int64(len(s.buf)) {
		return s.buf[off-s.bufOff : off-s.bufOff+int64(n)], nil
	}
	size := max(n, readAhead)
	if rest := s.limit - off; int64(size) > rest {
		size = int(max(rest, 0))
	}
	if cap(s.buf) < size {
		s.buf = make([]byte, size)
	}
	s.buf = s.buf[:size]
	got, err := s.f.ReadAt(s.buf, off)
	s.buf, s.bufOff = s.buf[:got], off
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return s.buf[:min(n, got)], nil
}

// recordAt returns the verified record at off, or errCorrupt, or an I/O error.
func (s *scanner) recordAt(off int64) (rec []byte, seq uint64, err error) {
	h, err := s.window(off, headerSize)
	if err != nil {
		return nil, 0, err
	}
	if len(h) < headerSize {
		return nil, 0, errCorrupt
	}
	n, seq, err := parseHeader(h)
	if err != nil {
		return nil, 0, err
	}
	rec, err = s.window(off, headerSize+n)
	if err != nil {
		return nil, 0, err
	}
	if len(rec) < headerSize+n {
		return nil, 0, errCorrupt
	}
	if err := checkRecord(rec); err != nil {
		return nil, 0, err
	}
	return rec, seq, nil
}

// next returns the next verified record whose sequence number is at least expect. Bytes
// it had to step over to find it are reported in skipped, starting at skipFrom. At the
// end of the readable range it returns io.EOF (skipped may then be > 0: a torn or
// corrupt tail).
func (s *scanner) next(expect uint64) (rec []byte, seq uint64, skipFrom, skipped int64, err error) {
	skipFrom = s.off
	for off := s.off; off < s.limit; {
		rec, seq, err := s.recordAt(off)
		switch {
		case err == nil && seq >= expect:
			s.off = off + int64(len(rec))
			return rec, seq, skipFrom, off - skipFrom, nil
		case err == nil:
			// An intact record the caller has already consumed: step over it whole.
			off += int64(len(rec))
			if skipFrom == off-int64(len(rec)) {
				skipFrom = off
			}
			s.off = max(s.off, skipFrom)
		case errors.Is(err, errCorrupt):
			off++
		default:
			return nil, 0, skipFrom, off - skipFrom, err
		}
	}
	skipped = max(s.limit-skipFrom, 0)
	s.off = max(s.limit, s.off)
	return nil, 0, skipFrom, skipped, io.EOF
}
