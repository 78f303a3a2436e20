package pm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// Frames of docs/engineering-notes.md §3.
const (
	// PMS data frame: CF=1 12/18/21, atmospheric 11/17/21, counts 2310/690/120/12/4/1,
	// reserved 0x9700.
	pmsExample = "42 4D 00 1C 00 0C 00 12 00 15 00 0B 00 11 00 15 09 06 02 B2 00 78 00 0C 00 04 00 01 97 00 02 F2"
	// PMS acknowledgement of "active mode" (42 4D E1 00 01).
	pmsAck = "42 4D 00 04 E1 00 01 74"
	// SDS011 measurements: 12.3/45.6 and the datasheet-style 123.6/261.8, ID A160.
	sdsExample1 = "AA C0 7B 00 C8 01 A1 60 45 AB"
	sdsExample2 = "AA C0 D4 04 3A 0A A1 60 1D AB"
	// SDS011 reply to "set query mode", ID A160.
	sdsReplyQueryMode = "AA C5 02 01 01 00 A1 60 05 AB"
)

var (
	pmsExampleFrame = Frame{PM1CF1: 12, PM25CF1: 18, PM10CF1: 21, PM1: 11, PM25: 17, PM10: 21,
		Counts: [6]uint16{2310, 690, 120, 12, 4, 1}, Version: 0x97}
	sdsExample1Frame = SDSFrame{PM25: 12.3, PM10: 45.6, ID: 0xA160}
	sdsExample2Frame = SDSFrame{PM25: 123.6, PM10: 261.8, ID: 0xA160}
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("unhex(%q): %v", s, err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// encodePMS is the inverse of ParsePMS, for fakes and round trips.
func encodePMS(f Frame) []byte {
	b := []byte{pmsStart1, pmsStart2, 0, pmsDataLen}
	for _, v := range []float64{f.PM1CF1, f.PM25CF1, f.PM10CF1, f.PM1, f.PM25, f.PM10} {
		b = append(b, byte(uint16(v)>>8), byte(uint16(v)))
	}
	for _, c := range f.Counts {
		b = append(b, byte(c>>8), byte(c))
	}
	b = append(b, f.Version, f.ErrCode)
	sum := sum16(b)
	return append(b, byte(sum>>8), byte(sum))
}

// encodeSDS is the inverse of ParseSDS.
func encodeSDS(f SDSFrame) []byte {
	pm25, pm10 := uint16(math.Round(f.PM25*10)), uint16(math.Round(f.PM10*10))
	b := []byte{sdsHead, sdsData, byte(pm25), byte(pm25 >> 8), byte(pm10), byte(pm10 >> 8), byte(f.ID >> 8), byte(f.ID)}
	return append(b, sum8(b[2:]), sdsTail)
}

func TestEncodersMatchTechNotes(t *testing.T) {
	if got, want := encodePMS(pmsExampleFrame), unhex(t, pmsExample); !bytes.Equal(got, want) {
		t.Errorf("encodePMS(example) = % X, want % X", got, want)
	}
	if got, want := encodeSDS(sdsExample1Frame), unhex(t, sdsExample1); !bytes.Equal(got, want) {
		t.Errorf("encodeSDS(12.3/45.6) = % X, want % X", got, want)
	}
	if got, want := encodeSDS(sdsExample2Frame), unhex(t, sdsExample2); !bytes.Equal(got, want) {
		t.Errorf("encodeSDS(123.6/261.8) = % X, want % X", got, want)
	}
}

func TestParsePMS(t *testing.T) {
	example := unhex(t, pmsExample)
	badSum := slices.Clone(example)
	badSum[31] ^= 0x01
	badData := slices.Clone(example)
	badData[13] = 0x99 // PM2.5 atmospheric changed, checksum not
	badLen := slices.Clone(example)
	badLen[3] = 0x14 // a PMS3003's 20
	badAck := unhex(t, pmsAck)
	badAck[7]++
	for _, c := range []struct {
		name    string
		in      []byte
		want    Frame
		n       int
		wantErr error
	}{
		{"example", example, pmsExampleFrame, 32, nil},
		{"example then more", cat(example, example[:5]), pmsExampleFrame, 32, nil},
		{"empty", nil, Frame{}, 0, ErrShort},
		{"B", example[:1], Frame{}, 0, ErrShort},
		{"BM", example[:2], Frame{}, 0, ErrShort},
		{"header only", example[:4], Frame{}, 0, ErrShort},
		{"one byte short", example[:31], Frame{}, 0, ErrShort},
		{"garbage", unhex(t, "00 FF 13 4D"), Frame{}, 4, ErrGarbage},
		{"garbage before", cat(unhex(t, "00 FF 42"), example), Frame{}, 3, ErrGarbage},
		{"garbage keeps a final B", unhex(t, "00 4D 42"), Frame{}, 2, ErrGarbage},
		{"M first", example[1:], Frame{}, 31, ErrGarbage},
		{"bad checksum", badSum, Frame{}, 2, ErrChecksum},
		{"bad data", badData, Frame{}, 2, ErrChecksum},
		{"bad length", badLen, Frame{}, 2, ErrLength},
		{"length 0", unhex(t, "42 4D 00 00"), Frame{}, 2, ErrLength},
		{"ack", unhex(t, pmsAck), Frame{}, 8, ErrReply},
		{"ack short", unhex(t, pmsAck)[:7], Frame{}, 0, ErrShort},
		{"ack bad checksum", badAck, Frame{}, 2, ErrChecksum},
	} {
		f, n, err := ParsePMS(c.in)
		if f != c.want || n != c.n || !errors.Is(err, c.wantErr) || (err == nil) != (c.wantErr == nil) {
			t.Errorf("%s: ParsePMS(% X) = %+v, %d, %v; want %+v, %d, %v", c.name, c.in, f, n, err, c.want, c.n, c.wantErr)
		}
	}
}

func TestParseSDS(t *testing.T) {
	ex1, ex2 := unhex(t, sdsExample1), unhex(t, sdsExample2)
	badSum := slices.Clone(ex1)
	badSum[8]++
	badTail := slices.Clone(ex1)
	badTail[9] = 0xAA
	for _, c := range []struct {
		name    string
		in      []byte
		want    SDSFrame
		n       int
		wantErr error
	}{
		{"12.3/45.6", ex1, sdsExample1Frame, 10, nil},
		{"123.6/261.8", ex2, sdsExample2Frame, 10, nil},
		{"two frames", cat(ex1, ex2), sdsExample1Frame, 10, nil},
		{"empty", nil, SDSFrame{}, 0, ErrShort},
		{"AA", ex1[:1], SDSFrame{}, 0, ErrShort},
		{"one byte short", ex1[:9], SDSFrame{}, 0, ErrShort},
		{"garbage", unhex(t, "01 02 C0 AB"), SDSFrame{}, 4, ErrGarbage},
		{"garbage before", cat(unhex(t, "AB AA AA"), ex1), SDSFrame{}, 3, ErrGarbage},
		{"our own command", unhex(t, "AA B4 04 00"), SDSFrame{}, 4, ErrGarbage},
		{"bad checksum", badSum, SDSFrame{}, 2, ErrChecksum},
		{"no tail", badTail, SDSFrame{}, 2, ErrLength},
		{"reply", unhex(t, sdsReplyQueryMode), SDSFrame{}, 10, ErrReply},
	} {
		f, n, err := ParseSDS(c.in)
		if f != c.want || n != c.n || !errors.Is(err, c.wantErr) || (err == nil) != (c.wantErr == nil) {
			t.Errorf("%s: ParseSDS(% X) = %+v, %d, %v; want %+v, %d, %v", c.name, c.in, f, n, err, c.want, c.n, c.wantErr)
		}
	}
}

// tally is what a parse loop made of a byte stream.
type tally[F comparable] struct {
	frames                                        []F
	garbage, checksum, length, replies, leftovers int
}

// drain runs parse over stream the way Run does: chunk bytes at a time appended to a
// buffer, parsing until ErrShort after each chunk.
func drain[F comparable](t *testing.T, parse func([]byte) (F, int, error), stream []byte, chunk int) tally[F] {
	t.Helper()
	var got tally[F]
	var buf []byte
	for len(stream) > 0 {
		k := min(chunk, len(stream))
		buf, stream = append(buf, stream[:k]...), stream[k:]
		for {
			f, n, err := parse(buf)
			if n < 0 || n > len(buf) || (n == 0) != errors.Is(err, ErrShort) {
				t.Fatalf("parse(% X) consumed %d with %v", buf, n, err)
			}
			buf = buf[n:]
			switch {
			case err == nil:
				got.frames = append(got.frames, f)
			case errors.Is(err, ErrGarbage):
				got.garbage += n
			case errors.Is(err, ErrChecksum):
				got.checksum++
			case errors.Is(err, ErrLength):
				got.length++
			case errors.Is(err, ErrReply):
				got.replies++
			}
			if n == 0 {
				break
			}
		}
	}
	got.leftovers = len(buf)
	return got
}

func TestPMSStream(t *testing.T) {
	ex := unhex(t, pmsExample)
	o := Frame{PM1CF1: 1, PM25CF1: 2, PM10CF1: 3, PM1: 4, PM25: 5, PM10: 6, Counts: [6]uint16{7, 8, 9, 10, 11, 12}}
	other := encodePMS(o)
	corrupt := slices.Clone(other)
	corrupt[10]++
	e := pmsExampleFrame
	for _, c := range []struct {
		name   string
		stream []byte
		want   tally[Frame]
	}{
		{"back to back", cat(ex, other), tally[Frame]{frames: []Frame{e, o}}},
		{"garbage before", cat(unhex(t, "13 42 00 FF 42"), ex), tally[Frame]{frames: []Frame{e}, garbage: 5}},
		// A frame cut short by a new one: its start fails the checksum over the next
		// frame's bytes, its rest is skipped, the next frame parses.
		{"truncated frame inside", cat(ex[:20], other), tally[Frame]{frames: []Frame{o}, garbage: 18, checksum: 1}},
		{"garbage inside", cat(ex[:10], unhex(t, "00 00 42"), ex[10:], other), tally[Frame]{frames: []Frame{o}, garbage: 33, checksum: 1}},
		{"corrupt then good", cat(corrupt, ex), tally[Frame]{frames: []Frame{e}, garbage: 30, checksum: 1}},
		{"ack between", cat(ex, unhex(t, pmsAck), other), tally[Frame]{frames: []Frame{e, o}, replies: 1}},
		{"bad length", cat(unhex(t, "42 4D 00 14"), ex), tally[Frame]{frames: []Frame{e}, garbage: 2, length: 1}},
		{"partial at end", cat(ex, ex[:17]), tally[Frame]{frames: []Frame{e}, leftovers: 17}},
	} {
		for _, chunk := range []int{1, 2, 7, 31, 32, 33, 1000} {
			if got := drain(t, ParsePMS, c.stream, chunk); !tallyEqual(got, c.want) {
				t.Errorf("%s in chunks of %d: got %+v, want %+v", c.name, chunk, got, c.want)
			}
		}
	}
}

func TestSDSStream(t *testing.T) {
	ex1, ex2 := unhex(t, sdsExample1), unhex(t, sdsExample2)
	both := []SDSFrame{sdsExample1Frame, sdsExample2Frame}
	for _, c := range []struct {
		name   string
		stream []byte
		want   tally[SDSFrame]
	}{
		{"back to back", cat(ex1, ex2), tally[SDSFrame]{frames: both}},
		{"garbage before", cat(unhex(t, "AA 00 AB AA"), ex1, ex2), tally[SDSFrame]{frames: both, garbage: 4}},
		{"truncated frame inside", cat(ex1[:6], ex1, ex2), tally[SDSFrame]{frames: both, garbage: 4, length: 1}},
		{"garbage inside", cat(ex1[:4], unhex(t, "FF"), ex1[4:], ex2), tally[SDSFrame]{frames: []SDSFrame{sdsExample2Frame}, garbage: 9, length: 1}},
		{"reply between", cat(ex1, unhex(t, sdsReplyQueryMode), ex2), tally[SDSFrame]{frames: both, replies: 1}},
		{"partial at end", cat(ex1, ex2[:5]), tally[SDSFrame]{frames: both[:1], leftovers: 5}},
	} {
		for _, chunk := range []int{1, 2, 3, 9, 10, 11, 1000} {
			if got := drain(t, ParseSDS, c.stream, chunk); !tallyEqual(got, c.want) {
				t.Errorf("%s in chunks of %d: got %+v, want %+v", c.name, chunk, got, c.want)
			}
		}
	}
}

func tallyEqual[F comparable](a, b tally[F]) bool {
	return slices.Equal(a.frames, b.frames) && a.garbage == b.garbage && a.checksum == b.checksum &&
		a.length == b.length && a.replies == b.replies && a.leftovers == b.leftovers
}

func TestCommands(t *testing.T) {
	check := func(name string, got []byte, want string) {
		t.Helper()
		if w := unhex(t, want); !bytes.Equal(got, w) {
			t.Errorf("%s = % X, want % X", name, got, w)
		}
	}
	// docs/engineering-notes.md §3.1
	check("PMSCommand(mode, passive)", PMSCommand(PMSCmdMode, 0), "42 4D E1 00 00 01 70")
	check("PMSCommand(mode, active)", PMSCommand(PMSCmdMode, 1), "42 4D E1 00 01 01 71")
	check("PMSCommand(read)", PMSCommand(PMSCmdRead, 0), "42 4D E2 00 00 01 71")
	check("PMSCommand(sleep)", PMSCommand(PMSCmdSleep, 0), "42 4D E4 00 00 01 73")
	check("PMSCommand(wake)", PMSCommand(PMSCmdSleep, 1), "42 4D E4 00 01 01 74")
	// docs/engineering-notes.md §3.2; "…" there is zeros up to D13.
	check("SDSCommand(query)", SDSCommand(SDSCmdQuery, [12]byte{}, SDSAnyID),
		"AA B4 04 00 00 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB")
	check("SDSCommand(set query mode)", SDSCommand(SDSCmdReportMode, [12]byte{1, 1}, SDSAnyID),
		"AA B4 02 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB")
	check("SDSCommand(set active mode)", SDSCommand(SDSCmdReportMode, [12]byte{1, 0}, SDSAnyID),
		"AA B4 02 01 00 00 00 00 00 00 00 00 00 00 00 FF FF 01 AB")
	check("SDSCommand(sleep)", SDSCommand(SDSCmdSleepWork, [12]byte{1, 0}, SDSAnyID),
		"AA B4 06 01 00 00 00 00 00 00 00 00 00 00 00 FF FF 05 AB")
	check("SDSCommand(work)", SDSCommand(SDSCmdSleepWork, [12]byte{1, 1}, SDSAnyID),
		"AA B4 06 01 01 00 00 00 00 00 00 00 00 00 00 FF FF 06 AB")
	check("SDSCommand(working period 5)", SDSCommand(SDSCmdWorkingPeriod, [12]byte{1, 5}, SDSAnyID),
		"AA B4 08 01 05 00 00 00 00 00 00 00 00 00 00 FF FF 0C AB")
	// Addressed to the example sensor A160: the ID counts in the checksum.
	check("SDSCommand(query, A160)", SDSCommand(SDSCmdQuery, [12]byte{}, 0xA160),
		"AA B4 04 00 00 00 00 00 00 00 00 00 00 00 00 A1 60 05 AB")
}
