package status

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// ErrorRecord is one remembered log record at WARN or above.
type ErrorRecord struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"` // "WARN", "ERROR"
	Message string    `json:"message"`
	Attrs   string    `json:"attrs"` // key=value pairs as the text handler writes them
}

// Limits of what a Ring keeps, so that a burst of long errors cannot grow it.
const (
	maxMessage = 200  // bytes of a record's message
	maxAttrs   = 600  // bytes of its attributes
	maxRecords = 1000 // the largest n NewRing accepts
)

// Ring is a slog.Handler that passes every record on to another handler and keeps the
// last n records at WARN or above, for the status page. Loggers made from it with With
// or WithGroup share its records.
type Ring struct {
	next  slog.Handler
	ring  *records
	attrs string // preformatted attributes of With
	group string // prefix of WithGroup, with a final "."
}

type records struct {
	mu   sync.Mutex
	buf  []ErrorRecord // circular
	head int           // index of the oldest when full
	full bool
}

// NewRing returns a Ring that passes records to next and keeps the last n (1 to 1000)
// at WARN or above, whatever level next is enabled for.
func NewRing(next slog.Handler, n int) *Ring {
	n = min(max(n, 1), maxRecords)
	return &Ring{next: next, ring: &records{buf: make([]ErrorRecord, 0, n)}}
}

// Enabled implements slog.Handler: next's levels, and WARN and above.
func (h *Ring) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *Ring) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(h.attrs)
		r.Attrs(func(a slog.Attr) bool {
			appendAttr(&b, h.group, a)
			return b.Len() < maxAttrs
		})
		h.ring.add(ErrorRecord{Time: r.Time.UTC(), Level: r.Level.String(),
			Message: cut(r.Message, maxMessage), Attrs: cut(strings.TrimSpace(b.String()), maxAttrs)})
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h *Ring) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	return &Ring{next: h.next.WithAttrs(as), ring: h.ring, attrs: cut(b.String(), maxAttrs), group: h.group}
}

// WithGroup implements slog.Handler.
func (h *Ring) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Ring{next: h.next.WithGroup(name), ring: h.ring, attrs: h.attrs, group: h.group + name + "."}
}

// Records returns the kept records, newest first.
func (h *Ring) Records() []ErrorRecord {
	rs := h.ring
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]ErrorRecord, 0, len(rs.buf))
	for i := len(rs.buf) - 1; i >= 0; i-- {
		out = append(out, rs.buf[(rs.head+i)%len(rs.buf)])
	}
	return out
}

func (rs *records) add(r ErrorRecord) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.buf) < cap(rs.buf) {
		rs.buf = append(rs.buf, r)
		return
	}
	rs.buf[rs.head] = r
	rs.head = (rs.head + 1) % len(rs.buf)
}

// appendAttr writes " key=value" (groups flattened with dots) to b.
func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " =\"") {
		v = quote(v)
	}
	b.WriteString(" " + group + a.Key + "=" + cut(v, maxAttrs))
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut with "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}
