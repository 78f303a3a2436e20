package buffer

import (
	"testing"
)

// BenchmarkAppendSync measures group commit: batches of 100 readings, one fdatasync each.
// Reports readings/s and payload MB/s (b.SetBytes is one batch's record bytes).
func BenchmarkAppendSync(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(map[int]string{1: "batch=1", 100: "batch=100", 1000: "batch=1000"}[batch], func(b *testing.B) {
			q, err := Open(Options{Dir: b.TempDir(), SegmentBytes: 8 << 20, CursorInterval: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			rs := readings(0, batch)
			b.SetBytes(int64(len(validSegment(batch))))
			b.ReportAllocs()
			for b.Loop() {
				if err := q.Append(rs...); err != nil {
					b.Fatal(err)
				}
				if err := q.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkReplay measures reading back: Peek 1000 and Ack, over a 100 000-reading log.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	q, err := Open(Options{Dir: dir, SegmentBytes: 8 << 20, CursorInterval: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	const total = 100_000
	for i := 0; i < total; i += 1000 {
		q.Append(readings(i, 1000)...)
	}
	q.Sync()
	recBytes := int64(len(validSegment(1000)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r, _ := q.Reader("replay")
		rs, next, err := r.Peek(1000)
		if err != nil || len(rs) == 0 {
			// Start over with a fresh cursor name so the log is never exhausted.
			q.mu.Lock()
			delete(q.readers, "replay")
			q.mu.Unlock()
			r, _ = q.Reader("replay")
			rs, next, _ = r.Peek(1000)
		}
		n += len(rs)
		r.pos, r.peekEnd = r.peekEnd, position{}
		r.committed.Store(next)
	}
	b.SetBytes(recBytes)
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}
