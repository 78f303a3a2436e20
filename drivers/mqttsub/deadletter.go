package mqttsub

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/envgate/envgate/gateway/deadletter"
)

// deadLetterPayload is how much of a payload a dead-letter line keeps.
const deadLetterPayload = 1 << 10

// deadLetter appends malformed messages to a bounded, rotated file (gateway/deadletter:
// 16 MiB, three rotated files kept, what rotation deletes counted). Only Run's goroutine
// writes. Lines are not fsynced: they are diagnostics, not data.
type deadLetter struct {
	f *deadletter.File // nil: disabled
}

// newDeadLetter returns the dead-letter file at path; "" disables it. It opens nothing.
func newDeadLetter(path string) (deadLetter, error) {
	if path == "" {
		return deadLetter{}, nil
	}
	f, err := deadletter.New(deadletter.Options{Path: path, Keep: deadletter.DefaultKeep})
	return deadLetter{f: f}, err
}

// write appends one line for a malformed message. payload may be the start of a longer
// one, size bytes long (an oversize message's stub).
func (d deadLetter) write(at time.Time, topic string, de *DecodeError, payload []byte, size int) error {
	if d.f == nil {
		return nil
	}
	return d.f.Append([]byte(formatDeadLetter(at, topic, de, payload, size)))
}

// release closes the open file until the next write.
func (d deadLetter) release() error {
	if d.f == nil {
		return nil
	}
	return d.f.Release()
}

// dropped is the number of lines rotation deleted.
func (d deadLetter) dropped() uint64 {
	if d.f == nil {
		return 0
	}
	return d.f.Dropped()
}

// formatDeadLetter renders one line:
//
//	<RFC3339 arrival> topic=<topic> reason=<kind>: <detail>\t<payload %q, first 1 KiB>
//
// payload is the message's payload, or the start of it when the message was size bytes
// long. A topic with spaces or control characters is quoted, and the detail is kept on
// one line, so that every message is exactly one line. A truncated payload ends in "...".
func formatDeadLetter(at time.Time, topic string, de *DecodeError, payload []byte, size int) string {
	var b strings.Builder
	b.WriteString(at.Format(time.RFC3339))
	b.WriteString(" topic=")
	if plainTopic(topic) {
		b.WriteString(topic)
	} else {
		b.WriteString(strconv.Quote(topic))
	}
	b.WriteString(" reason=")
	b.WriteString(de.Kind)
	b.WriteString(": ")
	b.WriteString(oneLine(de.Err.Error()))
	b.WriteByte('\t')
	p, cut := payload, size > len(payload)
	if len(p) > deadLetterPayload {
		p, cut = p[:deadLetterPayload], true
	}
	fmt.Fprintf(&b, "%q", p)
	if cut {
		b.WriteString("...")
	}
	b.WriteByte('\n')
	return b.String()
}

func plainTopic(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsSpace(c) || !unicode.IsPrint(c) || c == '"' {
			return false
		}
	}
	return true
}

// oneLine replaces line breaks (errors.Join uses them) and other control characters.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return ' '
		}
		return c
	}, s)
}
