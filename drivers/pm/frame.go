package pm

import (
	"errors"
	"fmt"
)

// Errors of the frame parsers. Each comes with the number of bytes the caller drops
// before parsing again; every error except ErrShort drops at least one byte, so a loop
// that parses until ErrShort always ends.
var (
	// ErrShort means the buffer holds the start of a frame (or nothing): read more bytes
	// and parse again. Nothing is dropped.
	ErrShort = errors.New("incomplete frame")
	// ErrGarbage means the buffer starts with bytes that cannot begin a frame (line noise,
	// the tail of a frame we joined mid-stream); they are dropped up to the next candidate
	// start.
	ErrGarbage = errors.New("bytes before a frame start")
	// ErrLength means a frame start was followed by a length field (PMS) or a tail byte
	// (SDS) that does not belong to any frame; the start is dropped and the hunt goes on.
	ErrLength = errors.New("bad frame length")
	// ErrChecksum means a complete frame failed its checksum; its start is dropped so
	// that a frame beginning inside it is still found.
	ErrChecksum = errors.New("bad frame checksum")
	// ErrReply means a well-formed reply to a command (PMS 8-byte acknowledgement, SDS
	// AA C5 frame), not a measurement; it is dropped whole.
	ErrReply = errors.New("command reply, not a measurement")
)

// Plantower frame layout, docs/engineering-notes.md §3.1 (from the PMS5003 manual v2.3, via PyPMS).
const (
	pmsStart1     = 0x42 // 'B'
	pmsStart2     = 0x4D // 'M'
	pmsFrameLen   = 32
	pmsDataLen    = 2*13 + 2 // the length field of a data frame: 13 data words and the checksum
	pmsReplyLen   = 8        // acknowledgement of a mode or sleep command: 42 4D 00 04 CMD DATA SUM
	pmsReplyField = 4
)

// Frame is one Plantower PMS5003/PMS7003 data frame (docs/engineering-notes.md §3.1). Mass
// concentrations are in µg/m³, particle counts per 0.1 L of air.
type Frame struct {
	PM1CF1, PM25CF1, PM10CF1 float64 // CF=1 "standard particle" calibration (factory environments)
	PM1, PM25, PM10          float64 // atmospheric environment: the values for ambient monitoring
	// Counts are the particles larger than 0.3, 0.5, 1.0, 2.5, 5.0 and 10 µm per 0.1 L.
	Counts [6]uint16
	// Version and ErrCode are the reserved word: firmware version and error code on the
	// PMS7003/PMSA003, unspecified on the PMS5003.
	Version, ErrCode uint8
}

// ParsePMS parses the Plantower frame at the start of buf. It returns the frame and the
// number of bytes it used (32) or, with an error, how many bytes to drop: see ErrShort,
// ErrGarbage, ErrLength, ErrChecksum and ErrReply. consumed is never more than len(buf).
func ParsePMS(buf []byte) (f Frame, consumed int, err error) {
	if i := hunt(buf, pmsStart1, func(b byte) bool { return b == pmsStart2 }); i > 0 {
		return Frame{}, i, ErrGarbage
	}
	if len(buf) < 4 {
		return Frame{}, 0, ErrShort
	}
	switch n := be16(buf[2:]); n {
	case pmsDataLen:
	case pmsReplyField:
		if len(buf) < pmsReplyLen {
			return Frame{}, 0, ErrShort
		}
		if sum, want := sum16(buf[:pmsReplyLen-2]), be16(buf[pmsReplyLen-2:]); sum != want {
			return Frame{}, 2, fmt.Errorf("%w: reply % X sums to %04X, checksum says %04X", ErrChecksum, buf[:pmsReplyLen], sum, want)
		}
		return Frame{}, pmsReplyLen, ErrReply
	default:
		return Frame{}, 2, fmt.Errorf("%w: PMS length field %d, want %d", ErrLength, n, pmsDataLen)
	}
	if len(buf) < pmsFrameLen {
		return Frame{}, 0, ErrShort
	}
	if sum, want := sum16(buf[:pmsFrameLen-2]), be16(buf[pmsFrameLen-2:]); sum != want {
		return Frame{}, 2, fmt.Errorf("%w: PMS frame sums to %04X, checksum says %04X", ErrChecksum, sum, want)
	}
	w := func(i int) float64 { return float64(be16(buf[4+2*i:])) }
	f = Frame{PM1CF1: w(0), PM25CF1: w(1), PM10CF1: w(2), PM1: w(3), PM25: w(4), PM10: w(5)}
	for i := range f.Counts {
		f.Counts[i] = be16(buf[16+2*i:])
	}
	f.Version, f.ErrCode = buf[28], buf[29]
	return f, pmsFrameLen, nil
}

// SDS011 frame layout, docs/engineering-notes.md §3.2 (from PyPMS's Nova Fitness notes).
const (
	sdsHead     = 0xAA
	sdsData     = 0xC0 // command byte of a measurement
	sdsReply    = 0xC5 // command byte of a reply to a setting
	sdsTail     = 0xAB
	sdsFrameLen = 10
	sdsCmdHead  = 0xB4 // command byte of a host-to-sensor frame
	sdsCmdLen   = 19
)

// SDSFrame is one Nova Fitness SDS011 measurement (docs/engineering-notes.md §3.2): mass concentrations
// in µg/m³ with a resolution of 0.1, and the sensor's ID.
type SDSFrame struct {
	PM25, PM10 float64
	ID         uint16
}

// ParseSDS parses the SDS011 frame (AA C0 … CS AB) at the start of buf. It returns the
// frame and the number of bytes it used (10) or, with an error, how many bytes to drop:
// see ErrShort, ErrGarbage, ErrLength, ErrChecksum and ErrReply. consumed is never more
// than len(buf).
func ParseSDS(buf []byte) (f SDSFrame, consumed int, err error) {
	if i := hunt(buf, sdsHead, func(b byte) bool { return b == sdsData || b == sdsReply }); i > 0 {
		return SDSFrame{}, i, ErrGarbage
	}
	if len(buf) < sdsFrameLen {
		return SDSFrame{}, 0, ErrShort
	}
	if buf[sdsFrameLen-1] != sdsTail {
		return SDSFrame{}, 2, fmt.Errorf("%w: SDS frame % X does not end in %02X", ErrLength, buf[:sdsFrameLen], sdsTail)
	}
	if sum := sum8(buf[2:8]); sum != buf[8] {
		return SDSFrame{}, 2, fmt.Errorf("%w: SDS frame % X sums to %02X", ErrChecksum, buf[:sdsFrameLen], sum)
	}
	if buf[1] == sdsReply {
		return SDSFrame{}, sdsFrameLen, ErrReply
	}
	f = SDSFrame{
		PM25: float64(le16(buf[2:])) / 10,
		PM10: float64(le16(buf[4:])) / 10,
		ID:   be16(buf[6:]),
	}
	return f, sdsFrameLen, nil
}

// Plantower command codes (docs/engineering-notes.md §3.1).
const (
	PMSCmdMode  byte = 0xE1 // data 0: passive mode, 1: active mode (the default)
	PMSCmdRead  byte = 0xE2 // in passive mode: send one data frame
	PMSCmdSleep byte = 0xE4 // data 0: sleep, 1: wake
)

// PMSCommand returns the 7-byte Plantower command frame 42 4D CMD DATAH DATAL SUMH SUML,
// where SUM is the 16-bit sum of the first five bytes (docs/engineering-notes.md §3.1).
func PMSCommand(cmd byte, data uint16) []byte {
	b := []byte{pmsStart1, pmsStart2, cmd, byte(data >> 8), byte(data)}
	sum := sum16(b)
	return append(b, byte(sum>>8), byte(sum))
}

// SDS011 command codes: D1 of a command frame (docs/engineering-notes.md §3.2).
const (
	SDSCmdReportMode    byte = 0x02 // D2 1: set, 0: ask; D3 1: query mode, 0: active mode
	SDSCmdQuery         byte = 0x04 // the sensor answers with a measurement
	SDSCmdSetID         byte = 0x05 // D12-D13: the new ID
	SDSCmdSleepWork     byte = 0x06 // D2 1: set, 0: ask; D3 0: sleep, 1: work
	SDSCmdFirmware      byte = 0x07
	SDSCmdWorkingPeriod byte = 0x08 // D2 1: set, 0: ask; D3 minutes 0 (continuous) to 30
)

// SDSAnyID addresses a command to whichever SDS011 is on the line.
const SDSAnyID uint16 = 0xFFFF

// SDSCommand returns the 19-byte SDS011 command frame AA B4 D1 … D15 CS AB: D1 is cmd,
// D2-D13 are data, D14-D15 the device ID (high byte first, SDSAnyID for any) and CS the
// low 8 bits of the sum of D1-D15 (docs/engineering-notes.md §3.2).
func SDSCommand(cmd byte, data [12]byte, id uint16) []byte {
	b := make([]byte, 0, sdsCmdLen)
	b = append(b, sdsHead, sdsCmdHead, cmd)
	b = append(b, data[:]...)
	b = append(b, byte(id>>8), byte(id))
	return append(b, sum8(b[2:]), sdsTail)
}

// hunt returns the index of the first byte of buf that can start a frame: first, with
// second(next byte) true or at the very end of buf (its next byte is still to come). It
// returns len(buf) if there is none.
func hunt(buf []byte, first byte, second func(byte) bool) int {
	for i, b := range buf {
		if b == first && (i+1 == len(buf) || second(buf[i+1])) {
			return i
		}
	}
	return len(buf)
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func le16(b []byte) uint16 { return uint16(b[1])<<8 | uint16(b[0]) }

func sum16(b []byte) uint16 {
	var s uint16
	for _, c := range b {
		s += uint16(c)
	}
	return s
}

func sum8(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}
