package gateway

import (
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/buffer"
	"github.com/envgate/envgate/gateway/reading"
)

// fillBacklog appends n readings of one series to q, the i-th stamped first + i×step
// with the value i, syncs them, and returns the reader of sink "sink": a backlog for a
// forwarder to deliver.
func fillBacklog(t testing.TB, q *buffer.Queue, n int, first time.Time, step time.Duration) *buffer.Reader {
	t.Helper()
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = reading.New(first.Add(time.Duration(i)*step), "s", "d", "la", float64(i))
	}
	return backlogOf(t, q, "sink", rs)
}

// backlogOf appends rs to q, syncs them, and returns the reader of sink.
func backlogOf(t testing.TB, q *buffer.Queue, sink string, rs []reading.Reading) *buffer.Reader {
	t.Helper()
	if err := q.Append(rs...); err != nil {
		t.Fatal(err)
	}
	if err := q.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := q.Reader(sink)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
