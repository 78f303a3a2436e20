package hj212

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxSegment is the longest data segment a packet may carry, in characters
// (HJ 212-2017 §6.3.2: 0–1024). Encode refuses longer ones; Split keeps under it.
const MaxSegment = 1024

// Flag bits (the Flag field is V5..V0 D A, bit 7 first).
const (
	FlagAck   = 1 << 0 // A: the receiver must answer (a data upload: CN 9014)
	FlagSplit = 1 << 1 // D: the packet is one of several, numbered by PNUM and PNO
	// Version2017 is the version bits V5..V0 = 000001 (HJ 212-2017); 000000 is
	// HJ/T 212-2005.
	Version2017 = 1 << 2
)

// NoFlag is Packet.Flag for a packet without a Flag field (HJ/T 212-2005 devices
// often send none).
const NoFlag = -1

// Packet is the data segment of one packet, field by field, as text. Encode writes
// the fields in the standard's order; Decode accepts them in any order before CP.
type Packet struct {
	QN   string // request number, YYYYMMDDhhmmsszzz; "" if absent
	ST   string // system code (ST23 acoustic environment, ...)
	CN   string // command code (2011 real-time data, 9014 data answer, ...)
	PW   string // access password
	MN   string // device number of the station or analyzer
	Flag int    // 0..255, or NoFlag
	PNUM int    // packets of a split record (Flag bit D); 0 otherwise
	PNO  int    // this packet's number, 1..PNUM; 0 otherwise
	CP   string // command parameters, between "CP=&&" and "&&"
}

// Ack reports whether the sender asks for an answer (Flag bit A).
func (p Packet) Ack() bool { return p.Flag >= 0 && p.Flag&FlagAck != 0 }

// Split reports whether the packet is one part of a split record (Flag bit D).
func (p Packet) Split() bool { return p.Flag >= 0 && p.Flag&FlagSplit != 0 }

// Version returns the Flag's version bits V5..V0: 0 for HJ/T 212-2005, 1 for
// HJ 212-2017; -1 without a Flag.
func (p Packet) Version() int {
	if p.Flag < 0 {
		return -1
	}
	return p.Flag >> 2
}

// Segment returns the packet's data segment. It checks every field (see Check).
func (p Packet) Segment() ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	return p.appendSegment(nil), nil
}

func (p Packet) appendSegment(b []byte) []byte {
	field := func(name, v string) {
		b = append(b, name...)
		b = append(b, '=')
		b = append(b, v...)
		b = append(b, ';')
	}
	if p.QN != "" {
		field("QN", p.QN)
	}
	field("ST", p.ST)
	field("CN", p.CN)
	field("PW", p.PW)
	field("MN", p.MN)
	if p.Flag >= 0 {
		field("Flag", strconv.Itoa(p.Flag))
	}
	if p.Split() {
		field("PNUM", strconv.Itoa(p.PNUM))
		field("PNO", strconv.Itoa(p.PNO))
	}
	b = append(b, "CP=&&"...)
	b = append(b, p.CP...)
	return append(b, "&&"...)
}

// Check reports the first field that cannot go into a packet: a separator (';', '=',
// '&&', CR, LF) inside a header field, a QN that is not 17 digits, a CN that is not
// 4 digits, a Flag outside 0..255, a split without PNUM ≥ PNO ≥ 1, or CR, LF or "&&"
// inside CP.
func (p Packet) Check() error {
	for _, f := range []struct{ name, v string }{{"QN", p.QN}, {"ST", p.ST}, {"CN", p.CN}, {"PW", p.PW}, {"MN", p.MN}} {
		if strings.ContainsAny(f.v, ";=&\r\n") {
			return fmt.Errorf("field %s=%q: contains one of ; = & CR LF", f.name, f.v)
		}
	}
	if p.QN != "" && !digits(p.QN, 17) {
		return fmt.Errorf("field QN=%q: want 17 digits (YYYYMMDDhhmmsszzz)", p.QN)
	}
	if p.ST == "" {
		return errors.New("field ST: empty")
	}
	if !digits(p.CN, 4) {
		return fmt.Errorf("field CN=%q: want 4 digits", p.CN)
	}
	if p.MN == "" {
		return errors.New("field MN: empty")
	}
	if p.Flag > 255 || p.Flag < NoFlag {
		return fmt.Errorf("field Flag=%d: want 0..255", p.Flag)
	}
	if p.Split() {
		if p.PNUM < 1 || p.PNO < 1 || p.PNO > p.PNUM {
			return fmt.Errorf("fields PNUM=%d, PNO=%d: want 1 ≤ PNO ≤ PNUM", p.PNUM, p.PNO)
		}
	} else if p.PNUM != 0 || p.PNO != 0 {
		return fmt.Errorf("fields PNUM=%d, PNO=%d: set, but Flag bit D is not", p.PNUM, p.PNO)
	}
	if strings.ContainsAny(p.CP, "\r\n") || strings.Contains(p.CP, "&&") {
		return errors.New("field CP: contains CR, LF or &&")
	}
	return nil
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Encode returns the whole packet: "##", the segment's length in four digits, the
// segment, its CRC in four upper-case hex digits, CR LF. A segment longer than
// MaxSegment is an error (split it: Split).
func Encode(p Packet) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 6+len(p.CP)+128)
	b = append(b, "##0000"...)
	b = p.appendSegment(b)
	n := len(b) - 6
	if n > MaxSegment {
		return nil, fmt.Errorf("data segment of %d characters: the limit is %d", n, MaxSegment)
	}
	copy(b[2:6], fmt.Sprintf("%04d", n))
	b = appendCRC(b, CRC(b[6:]))
	return append(b, '\r', '\n'), nil
}

// DataAnswer returns the answer to a data upload that set Flag bit A: CN 9014 with
// the upload's QN, PW and MN, ST 91, Flag 4 and an empty CP (HJ 212-2017,
// docs/standards.md §4.9).
func DataAnswer(p Packet) ([]byte, error) {
	return Encode(Packet{QN: p.QN, ST: STInteraction, CN: CNDataAnswer, PW: p.PW, MN: p.MN, Flag: Version2017})
}

// Frame wraps a data segment as a packet, as Encode does, without checking the
// segment's fields: for tools that send a segment as written (envgate hj212 encode).
func Frame(segment []byte) ([]byte, error) {
	if len(segment) > 9999 {
		return nil, fmt.Errorf("data segment of %d characters: the length field has 4 digits", len(segment))
	}
	b := make([]byte, 0, len(segment)+12)
	b = fmt.Appendf(b, "##%04d", len(segment))
	b = append(b, segment...)
	b = appendCRC(b, CRC(segment))
	return append(b, '\r', '\n'), nil
}

// CRCError is a packet whose CRC field does not match its data segment.
type CRCError struct {
	Sent     uint16 // the packet's CRC field
	Computed uint16 // the CRC of the segment received
	Segment  []byte // the data segment as received (unverified; BadFrameHeader); part of the frame
}

func (e *CRCError) Error() string {
	return fmt.Sprintf("CRC %04X in the packet, %04X computed over the data segment", e.Sent, e.Computed)
}

// LengthError is a packet whose length field does not match its data segment.
type LengthError struct {
	Field   int    // the packet's length field
	Bytes   int    // the segment's length in bytes
	Segment []byte // the data segment as received (unverified; BadFrameHeader); part of the frame
}

func (e *LengthError) Error() string {
	return fmt.Sprintf("length field %04d, data segment of %d bytes", e.Field, e.Bytes)
}

// BadFrameHeader reads the header fields (QN, ST, CN, PW, MN) of a packet whose frame
// failed only its length or CRC check (err is, or wraps, a *LengthError or a
// *CRCError), leniently: a field that cannot be read is left empty, CP is not read.
// ok reports whether QN (17 digits) and MN were read, so that the sender can be
// answered with CN 9011 QnRtn 9 (CRC error). The analyzer source and the uplink both
// use it (docs/hj212.md).
func BadFrameHeader(err error) (p Packet, ok bool) {
	var seg []byte
	var le *LengthError
	var ce *CRCError
	switch {
	case errors.As(err, &le):
		seg = le.Segment
	case errors.As(err, &ce):
		seg = ce.Segment
	default:
		return Packet{}, false
	}
	p.Flag = NoFlag
	head, _, _ := strings.Cut(string(seg), "CP=&&")
	for _, f := range strings.Split(head, ";") {
		name, v, found := strings.Cut(f, "=")
		if !found || strings.ContainsAny(v, "&\r\n#") || len(v) > 64 {
			continue
		}
		switch name {
		case "QN":
			if digits(v, 17) {
				p.QN = v
			}
		case "ST":
			p.ST = v
		case "CN":
			if digits(v, 4) {
				p.CN = v
			}
		case "PW":
			p.PW = v
		case "MN":
			p.MN = v
		}
	}
	return p, p.QN != "" && p.MN != ""
}

// Unframe checks a packet's frame (header, length, CRC, trailer) and returns its data
// segment. The trailing CR LF may be missing (a reader that split lines has eaten
// it), or be a bare LF (some devices). The length counts bytes; when the segment holds UTF-8 text, a length that
// counts characters is accepted too (implementations differ; docs/hj212.md). Errors
// are a *LengthError, a *CRCError or a description of what is malformed.
func Unframe(frame []byte) ([]byte, error) {
	frame = bytes.TrimSuffix(bytes.TrimSuffix(frame, []byte("\n")), []byte("\r"))
	if !bytes.HasPrefix(frame, []byte("##")) {
		return nil, errors.New(`no "##" header`)
	}
	if len(frame) < 10 {
		return nil, fmt.Errorf("%d bytes: shorter than header, length and CRC", len(frame))
	}
	n, ok := 0, true
	for _, d := range frame[2:6] {
		if d < '0' || d > '9' {
			ok = false
			break
		}
		n = n*10 + int(d-'0')
	}
	if !ok {
		return nil, fmt.Errorf("length field %q: want 4 digits", frame[2:6])
	}
	seg := frame[6 : len(frame)-4]
	if n != len(seg) && (!utf8.Valid(seg) || n != utf8.RuneCount(seg)) {
		return nil, &LengthError{Field: n, Bytes: len(seg), Segment: seg}
	}
	sent, ok := parseCRC(frame[len(frame)-4:])
	if !ok {
		return nil, fmt.Errorf("CRC field %q: want 4 hex digits", frame[len(frame)-4:])
	}
	if c := CRC(seg); c != sent {
		return nil, &CRCError{Sent: sent, Computed: c, Segment: seg}
	}
	return seg, nil
}

// Decode checks a packet's frame (Unframe) and parses its data segment (ParseSegment).
func Decode(frame []byte) (Packet, error) {
	seg, err := Unframe(frame)
	if err != nil {
		return Packet{}, err
	}
	return ParseSegment(string(seg))
}

// ParseSegment parses a data segment: fields "name=value" separated by ';', in any
// order, then CP=&&…&& last. Names are case-sensitive; an unknown or repeated field,
// a missing ST, CN or MN, a Flag outside 0..255, or a split packet without PNUM and
// PNO is an error naming the field. QN is not required (answers echo it; some
// devices omit it).
func ParseSegment(seg string) (Packet, error) {
	p := Packet{Flag: NoFlag}
	i := strings.Index(seg, "CP=&&")
	if i < 0 {
		return p, errors.New(`no "CP=&&" field`)
	}
	if !strings.HasSuffix(seg[i+5:], "&&") {
		return p, errors.New(`CP does not end with "&&"`)
	}
	p.CP = seg[i+5 : len(seg)-2]
	if strings.Contains(p.CP, "&&") {
		return p, errors.New(`CP: "&&" inside the parameters`)
	}
	head := seg[:i]
	if head != "" && !strings.HasSuffix(head, ";") {
		return p, errors.New(`no ";" before CP`)
	}
	seen := map[string]bool{}
	var pnum, pno string
	for _, f := range strings.Split(strings.TrimSuffix(head, ";"), ";") {
		if f == "" && head == "" {
			break
		}
		name, v, ok := strings.Cut(f, "=")
		if !ok {
			return p, fmt.Errorf("field %q: no '='", f)
		}
		if seen[name] {
			return p, fmt.Errorf("field %s: repeated", name)
		}
		seen[name] = true
		switch name {
		case "QN":
			p.QN = v
		case "ST":
			p.ST = v
		case "CN":
			p.CN = v
		case "PW":
			p.PW = v
		case "MN":
			p.MN = v
		case "Flag":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				return p, fmt.Errorf("field Flag=%q: want 0..255", v)
			}
			p.Flag = n
		case "PNUM":
			pnum = v
		case "PNO":
			pno = v
		default:
			return p, fmt.Errorf("field %q: unknown (fields are case-sensitive)", name)
		}
	}
	switch {
	case p.ST == "":
		return p, errors.New("field ST: missing")
	case !digits(p.CN, 4):
		return p, fmt.Errorf("field CN=%q: want 4 digits", p.CN)
	case p.MN == "":
		return p, errors.New("field MN: missing")
	}
	if p.QN != "" && !digits(p.QN, 17) {
		return p, fmt.Errorf("field QN=%q: want 17 digits", p.QN)
	}
	if p.Split() || pnum != "" || pno != "" {
		var err1, err2 error
		p.PNUM, err1 = strconv.Atoi(pnum)
		p.PNO, err2 = strconv.Atoi(pno)
		if !p.Split() {
			return p, errors.New("fields PNUM, PNO: present, but Flag bit D is not set")
		}
		if err1 != nil || err2 != nil || p.PNUM < 1 || p.PNO < 1 || p.PNO > p.PNUM {
			return p, fmt.Errorf("fields PNUM=%q, PNO=%q: want 1 ≤ PNO ≤ PNUM (Flag bit D is set)", pnum, pno)
		}
	}
	return p, nil
}
