package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// On-disk record layout (all integers little-endian):
//
//	crc32c  uint32  Castagnoli checksum of everything after this field
//	length  uint32  payload length in bytes
//	seq     uint64  sequence number, one higher than the previous record's
//	payload [length]byte
//
// The payload is one reading:
//
//	version  byte    payloadVersion, or payloadVersionSeconds
//	time     varint  Unix nanoseconds (zig-zag); with payloadVersionSeconds:
//	                 varint Unix seconds, then uvarint nanoseconds (0 to 999 999 999)
//	site, device, quantity, unit: uvarint length + UTF-8 bytes each
//	value    uint64  IEEE 754 bits
//	quality  byte
//	reason   byte    only when not reading.NoReason (a screening flag); a payload
//	                 without it has NoReason, so older segments read unchanged
const (
	headerSize     = 16
	maxPayload     = 4 << 10 // a reading is ~60 bytes; anything larger is corruption
	payloadVersion = 1
	// payloadVersionSeconds is used for times Unix nanoseconds cannot hold (before
	// 1677-09-21 or after 2262-04-11): the encoder never wraps a time around. Validate
	// refuses such readings before they get here, so it is written only for readings
	// that bypassed it.
	payloadVersionSeconds = 2
)

// minNanoTime and maxNanoTime are the times Unix nanoseconds in an int64 can hold.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record that fails its checksum, length or decoding.
var errCorrupt = errors.New("corrupt record")

// appendRecord appends the encoded record for r with sequence number seq to dst.
func appendRecord(dst []byte, seq uint64, r reading.Reading) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	if r.Time.Before(minNanoTime) || r.Time.After(maxNanoTime) {
		dst = append(dst, payloadVersionSeconds)
		dst = binary.AppendVarint(dst, r.Time.Unix())
		dst = binary.AppendUvarint(dst, uint64(r.Time.Nanosecond()))
	} else {
		dst = append(dst, payloadVersion)
		dst = binary.AppendVarint(dst, r.Time.UnixNano())
	}
	for _, s := range [...]string{r.Site, r.Device, r.Quantity, r.Unit} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(r.Value))
	dst = append(dst, byte(r.Quality))
	if r.Reason != reading.NoReason {
		dst = append(dst, byte(r.Reason))
	}
	h := dst[start : start+headerSize]
	binary.LittleEndian.PutUint32(h[4:], uint32(len(dst)-start-headerSize))
	binary.LittleEndian.PutUint64(h[8:], seq)
	binary.LittleEndian.PutUint32(h[0:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// parseHeader checks the plausibility of a record header and returns its payload length
// and sequence number. The checksum can only be checked once the payload is read.
func parseHeader(h []byte) (length int, seq uint64, err error) {
	n := binary.LittleEndian.Uint32(h[4:])
	if n == 0 || n > maxPayload {
		return 0, 0, fmt.Errorf("%w: payload length %d", errCorrupt, n)
	}
	seq = binary.LittleEndian.Uint64(h[8:])
	if seq >= maxSeq {
		return 0, 0, fmt.Errorf("%w: seq %d out of range", errCorrupt, seq)
	}
	return int(n), seq, nil
}

// checkRecord verifies the checksum of a whole record (header and payload).
func checkRecord(rec []byte) error {
	if crc32.Checksum(rec[4:], castagnoli) != binary.LittleEndian.Uint32(rec) {
		return fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	return nil
}

// decodePayload decodes a reading from a record payload.
func decodePayload(p []byte) (reading.Reading, error) {
	var r reading.Reading
	if len(p) < 1 || (p[0] != payloadVersion && p[0] != payloadVersionSeconds) {
		return r, fmt.Errorf("%w: unknown payload version", errCorrupt)
	}
	version := p[0]
	p = p[1:]
	t, n := binary.Varint(p)
	if n <= 0 {
		return r, fmt.Errorf("%w: bad time", errCorrupt)
	}
	p = p[n:]
	r.Time = time.Unix(0, t).UTC()
	if version == payloadVersionSeconds {
		ns, n := binary.Uvarint(p)
		if n <= 0 || ns >= 1e9 {
			return r, fmt.Errorf("%w: bad time", errCorrupt)
		}
		p = p[n:]
		r.Time = time.Unix(t, int64(ns)).UTC()
	}
	var strs [4]string
	for i := range strs {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return r, fmt.Errorf("%w: bad string length", errCorrupt)
		}
		strs[i] = intern(p[n : n+int(l)])
		p = p[n+int(l):]
	}
	if len(p) != 9 && (len(p) != 10 || p[9] == 0) {
		return r, fmt.Errorf("%w: %d trailing bytes, want 9 or 10", errCorrupt, len(p))
	}
	r.Site, r.Device, r.Quantity, r.Unit = strs[0], strs[1], strs[2], strs[3]
	r.Value = math.Float64frombits(binary.LittleEndian.Uint64(p))
	r.Quality = reading.Quality(p[8])
	if len(p) == 10 {
		r.Reason = reading.Reason(p[9])
	}
	return r, nil
}
