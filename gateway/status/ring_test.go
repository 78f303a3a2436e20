package status

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestRing checks that the ring keeps only WARN and above, newest first, at most n,
// with the attributes of With and WithGroup, and still passes every record the next
// handler is enabled for.
func TestRing(t *testing.T) {
	var out bytes.Buffer
	next := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})
	ring := NewRing(next, 3)
	log := slog.New(ring)
	log.Debug("not for anyone")
	log.Info("bus up")
	bus := log.With("bus", "rs485-a")
	bus.Warn("bus down", "err", "connection refused", "retry_in", "2s")
	log.WithGroup("sink").Error("write failed", "name", "city")
	for i := range 3 {
		log.Error("buffer write failed", "n", i)
	}
	got := ring.Records()
	if len(got) != 3 {
		t.Fatalf("Records() = %d records, want 3: %+v", len(got), got)
	}
	for i, r := range got {
		if want := fmt.Sprintf("n=%d", 2-i); r.Message != "buffer write failed" || r.Attrs != want || r.Level != "ERROR" {
			t.Errorf("Records()[%d] = %+v, want buffer write failed %s", i, r, want)
		}
	}
	if text := out.String(); !strings.Contains(text, "bus up") || strings.Contains(text, "not for anyone") || !strings.Contains(text, "bus=rs485-a") {
		t.Errorf("next handler got:\n%s\nwant the INFO record and attributes, not the DEBUG one", text)
	}

	ring = NewRing(next, 10)
	log = slog.New(ring)
	log.With("bus", "rs485-a").Warn("bus down", "err", "connect: connection refused")
	log.WithGroup("sink").With("name", "city").Error("write failed", slog.Group("http", "status", 401))
	got = ring.Records()
	if len(got) != 2 || got[1].Attrs != `bus=rs485-a err="connect: connection refused"` ||
		got[0].Attrs != "sink.name=city sink.http.status=401" || got[0].Level != "ERROR" || got[1].Level != "WARN" {
		t.Errorf("Records() = %+v", got)
	}
}

// TestRingBounded checks that a record's message and attributes are cut to their
// bounds, and that the ring keeps WARN records even when next is set to ERROR.
func TestRingBounded(t *testing.T) {
	var out bytes.Buffer
	ring := NewRing(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError}), 5)
	log := slog.New(ring)
	log.Warn(strings.Repeat("m", 5000), "err", strings.Repeat("é", 5000))
	got := ring.Records()
	if len(got) != 1 || len(got[0].Message) > maxMessage || len(got[0].Attrs) > maxAttrs || !strings.HasSuffix(got[0].Message, "…") {
		t.Fatalf("Records() = %d records, message %d bytes, attrs %d bytes; want 1 within %d and %d", len(got),
			len(got[0].Message), len(got[0].Attrs), maxMessage, maxAttrs)
	}
	if !strings.HasPrefix(got[0].Attrs, "err=é") || strings.ToValidUTF8(got[0].Attrs, "?") != got[0].Attrs {
		t.Errorf("attrs cut = %q..., want valid UTF-8", got[0].Attrs[:20])
	}
	if out.Len() != 0 {
		t.Errorf("next handler (ERROR) got a WARN record: %s", out.String())
	}
	if NewRing(slog.DiscardHandler, 1e9).ring.buf == nil || cap(NewRing(slog.DiscardHandler, 1e9).ring.buf) != maxRecords {
		t.Errorf("NewRing(n = 1e9) does not cap n at %d", maxRecords)
	}
}
