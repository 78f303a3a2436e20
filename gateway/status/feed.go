package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// Filter selects readings by device, site and quantity; an empty list matches
// everything. Names match exactly.
type Filter struct {
	Devices, Sites, Quantities []string
}

// Match reports whether r passes the filter.
func (f Filter) Match(r reading.Reading) bool {
	in := func(list []string, s string) bool { return len(list) == 0 || slices.Contains(list, s) }
	return in(f.Devices, r.Device) && in(f.Sites, r.Site) && in(f.Quantities, r.Quantity)
}

// SplitList splits a comma-separated flag or query value into its names, dropping
// empty ones and surrounding spaces.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Feed hands the readings the pipeline admits to the clients of /api/readings. Publish
// never blocks: each subscriber has a bounded queue, and a reading that does not fit
// is dropped for that subscriber only and counted, and the subscriber is told how many
// it lost before its next reading.
type Feed struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	done   chan struct{}
	active atomic.Int32 // len(subs), read by Publish without the lock
	max    int
}

// DefaultQueue is the readings a subscriber's queue holds: a few seconds of a busy box.
const DefaultQueue = 1024

// ErrTooMany is returned by Subscribe when maxSubscribers are streaming already.
var ErrTooMany = errors.New("too many readers of the reading stream")

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("the reading stream is closed: the gateway is stopping")

// NewFeed returns a Feed that accepts at most maxSubscribers at once (each holds one
// HTTP connection of the gateway's few).
func NewFeed(maxSubscribers int) *Feed {
	return &Feed{subs: map[*Subscription]struct{}{}, done: make(chan struct{}), max: max(maxSubscribers, 1)}
}

// Subscription is one reader of a Feed.
type Subscription struct {
	f       *Feed
	filter  Filter
	ch      chan reading.Reading
	dropped atomic.Uint64
}

// Subscribe adds a subscriber for the readings that pass filter, with a queue of n
// readings (DefaultQueue if n <= 0). The caller must Cancel it.
func (f *Feed) Subscribe(filter Filter, n int) (*Subscription, error) {
	if n <= 0 {
		n = DefaultQueue
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if len(f.subs) >= f.max {
		return nil, ErrTooMany
	}
	s := &Subscription{f: f, filter: filter, ch: make(chan reading.Reading, n)}
	f.subs[s] = struct{}{}
	f.active.Store(int32(len(f.subs)))
	return s, nil
}

// Publish offers r to every subscriber whose filter it passes. It never blocks. The
// pipeline's writer calls it for every reading it admits.
func (f *Feed) Publish(r reading.Reading) {
	if f == nil || f.active.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if !s.filter.Match(r) {
			continue
		}
		select {
		case s.ch <- r:
		default:
			s.dropped.Add(1)
		}
	}
}

// Close ends every subscription (Done is closed) and refuses new ones. Safe to call twice.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

// Done is closed when the feed closes.
func (s *Subscription) Done() <-chan struct{} { return s.f.done }

// C delivers the subscriber's readings.
func (s *Subscription) C() <-chan reading.Reading { return s.ch }

// Dropped returns the readings dropped since the last call, and resets the count.
func (s *Subscription) Dropped() uint64 { return s.dropped.Swap(0) }

// Cancel removes the subscription. Safe to call twice.
func (s *Subscription) Cancel() {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
	f.active.Store(int32(len(f.subs)))
}

// Line is one line of the /api/readings stream, newline-delimited JSON: exactly one of
// a reading, a count of readings dropped because the reader was too slow, or a
// heartbeat (the gateway's time, sent while nothing else is).
//
//	{"reading":{"time":"2026-12-07T10:00:00.5Z","site":"canal-demo","device":"noise-1","quantity":"la","value":52.1,"unit":"dB(A)","quality":"good"}}
//	{"dropped":12}
//	{"heartbeat":"2026-12-07T10:00:15Z"}
type Line struct {
	Reading   *LineReading `json:"reading,omitempty"`
	Dropped   uint64       `json:"dropped,omitempty"`
	Heartbeat *time.Time   `json:"heartbeat,omitempty"`
}

// LineReading is a reading in the stream.
type LineReading struct {
	Time     time.Time `json:"time"`
	Site     string    `json:"site"`
	Device   string    `json:"device"`
	Quantity string    `json:"quantity"`
	Value    float64   `json:"value"`
	Unit     string    `json:"unit"`
	Quality  string    `json:"quality"`
}

// MaxLine is the longest line DecodeLine accepts, in bytes.
const MaxLine = 4096

// EncodeReading returns r as one stream line, with its newline.
func EncodeReading(r reading.Reading) ([]byte, error) {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		return nil, fmt.Errorf("reading %s/%s: value %v has no JSON form", r.Device, r.Quantity, r.Value)
	}
	return encode(Line{Reading: &LineReading{Time: r.Time.UTC(), Site: r.Site, Device: r.Device, Quantity: r.Quantity,
		Value: r.Value, Unit: r.Unit, Quality: r.Quality.String()}})
}

func encode(l Line) ([]byte, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeLine parses one line of the stream (without or with its newline). It refuses
// a line longer than MaxLine, one that is not a JSON object of the Line form, one that
// carries none or more than one of its parts, and a reading without a time, device or
// quantity.
func DecodeLine(b []byte) (Line, error) {
	b = bytes.TrimRight(b, "\r\n")
	var l Line
	if len(b) > MaxLine {
		return l, fmt.Errorf("line of %d bytes, longer than %d", len(b), MaxLine)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&l); err != nil {
		return Line{}, fmt.Errorf("not a stream line: %w", err)
	}
	if len(bytes.TrimSpace(b[d.InputOffset():])) > 0 {
		return Line{}, errors.New("not a stream line: data after the JSON object")
	}
	parts := 0
	if l.Reading != nil {
		parts++
		r := l.Reading
		if r.Time.IsZero() || r.Device == "" || r.Quantity == "" {
			return Line{}, errors.New("reading without a time, device or quantity")
		}
	}
	if l.Dropped > 0 {
		parts++
	}
	if l.Heartbeat != nil {
		parts++
	}
	if parts != 1 {
		return Line{}, fmt.Errorf("stream line with %d parts, want 1 of reading, dropped, heartbeat", parts)
	}
	return l, nil
}
