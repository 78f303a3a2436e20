package mqttsub

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// deadLetterPayload is how much of a payload a dead-letter line keeps.
	deadLetterPayload = 1 << 10
	// deadLetterMax bounds the dead-letter file: a misconfigured sensor sending a
	// malformed message a second fills 16 MiB in about a day, and then the file is
	// renamed to <path>.1 (replacing the previous one) so the disk cannot fill up.
	deadLetterMax = 16 << 20
)

// deadLetter appends malformed messages to a file. Only Run's goroutine uses it. The
// file is opened on first use and again after an error; lines are flushed per message
// but not fsynced (they are diagnostics, not data).
type deadLetter struct {
	path string // empty: disabled
	f    *os.File
	w    *bufio.Writer
	size int64
}

// write appends one line for a malformed message. payload may be the start of a longer
// one, size bytes long (an oversize message's stub).
func (d *deadLetter) write(at time.Time, topic string, de *DecodeError, payload []byte, size int) error {
	if d.path == "" {
		return nil
	}
	line := formatDeadLetter(at, topic, de, payload, size)
	if d.f == nil {
		if err := d.open(); err != nil {
			return err
		}
	}
	if d.size > 0 && d.size+int64(len(line)) > deadLetterMax {
		if err := d.rotate(); err != nil {
			return err
		}
		if err := d.open(); err != nil {
			return err
		}
	}
	n, err := d.w.WriteString(line)
	d.size += int64(n)
	if err == nil {
		err = d.w.Flush()
	}
	if err != nil {
		// Start afresh with the next message: the file may have been removed or the
		// disk remounted.
		_ = d.close()
		return fmt.Errorf("write dead-letter file: %w", err)
	}
	return nil
}

func (d *deadLetter) open() error {
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		return fmt.Errorf("create dead-letter directory: %w", err)
	}
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	d.f, d.w, d.size = f, bufio.NewWriter(f), fi.Size()
	return nil
}

func (d *deadLetter) rotate() error {
	if err := d.close(); err != nil {
		return err
	}
	if err := os.Rename(d.path, d.path+".1"); err != nil {
		return fmt.Errorf("rotate dead-letter file: %w", err)
	}
	return nil
}

// close flushes and closes the file; it is safe to call when nothing is open.
func (d *deadLetter) close() error {
	if d.f == nil {
		return nil
	}
	err := d.w.Flush()
	err = errors.Join(err, d.f.Close())
	d.f, d.w = nil, nil
	return err
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
