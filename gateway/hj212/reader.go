package hj212

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxFrame bounds the bytes a Reader takes for one packet before giving up on it:
// the longest legal packet is 1036 bytes (header, length, 1024, CRC, CR LF); UTF-8
// text and garbage before a header get some slack.
const MaxFrame = 4096

// A Reader finds packets in a byte stream (a TCP connection, a serial port). Packets
// end with CR LF, which no field may hold, so the stream is read line by line:
// anything before "##" on a line is skipped, and a line without "##" or longer than
// MaxFrame is reported as a FrameError and skipped whole. One bad packet never stops
// the packets after it.
type Reader struct {
	r *bufio.Reader
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, MaxFrame)} }

// FrameError is a packet the Reader could not use: Raw is its text (up to
// MaxFrame bytes), Err why (a *CRCError, a *LengthError, a malformed field). The
// stream goes on after it.
type FrameError struct {
	Raw []byte
	Err error
}

func (e *FrameError) Error() string { return fmt.Sprintf("packet %.80q: %v", e.Raw, e.Err) }
func (e *FrameError) Unwrap() error { return e.Err }

// Next returns the next packet, its frame (from "##" to CR LF, for logs) and nil; a
// *FrameError for a packet it had to skip (call Next again); or the stream's error
// (io.EOF at its end; an unfinished packet at EOF is io.ErrUnexpectedEOF).
func (d *Reader) Next() (Packet, []byte, error) {
	line, err := d.line()
	if err != nil {
		return Packet{}, nil, err
	}
	i := bytes.Index(line, []byte("##"))
	if i < 0 {
		return Packet{}, nil, &FrameError{Raw: line, Err: errors.New(`no "##" header before CR LF`)}
	}
	frame := line[i:]
	p, err := Decode(frame)
	if err != nil {
		return Packet{}, frame, &FrameError{Raw: frame, Err: err}
	}
	return p, frame, nil
}

// line reads up to and including the next LF (a CR LF ends a packet; a bare LF
// ends garbage). A line over MaxFrame is consumed to its end and reported.
func (d *Reader) line() ([]byte, error) {
	b, err := d.r.ReadSlice('\n')
	switch {
	case err == nil:
		return bytes.Clone(b), nil
	case errors.Is(err, bufio.ErrBufferFull):
		head := bytes.Clone(b)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = d.r.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, &FrameError{Raw: head, Err: fmt.Errorf("no CR LF within %d bytes", MaxFrame)}
	case errors.Is(err, io.EOF) && len(b) > 0:
		return nil, io.ErrUnexpectedEOF
	default:
		return nil, err
	}
}
