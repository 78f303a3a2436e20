package pm

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzParser checks the contract every parser shares: no panic; consumed within the
// buffer; nothing consumed exactly when more bytes are needed (so that a parse loop
// always ends); a frame uses its whole length and re-encodes to the bytes it came from,
// which parse to the same frame; a loop over the whole input ends with less than a frame
// left.
func fuzzParser[F comparable](t *testing.T, buf []byte, parse func([]byte) (F, int, error), encode func(F) []byte, frameLen int) {
	f, n, err := parse(buf)
	if n < 0 || n > len(buf) {
		t.Fatalf("parse(% X) consumed %d of %d bytes", buf, n, len(buf))
	}
	if (n == 0) != errors.Is(err, ErrShort) {
		t.Fatalf("parse(% X) = %d, %v: ErrShort must come with 0 bytes consumed, and only it", buf, n, err)
	}
	var zero F
	if err != nil && f != zero {
		t.Fatalf("parse(% X) = %+v with error %v, want a zero frame", buf, f, err)
	}
	if err == nil {
		if n != frameLen {
			t.Fatalf("parse(% X) consumed %d, want a %d-byte frame", buf, n, frameLen)
		}
		enc := encode(f)
		if !bytes.Equal(enc, buf[:n]) {
			t.Fatalf("parse(% X) = %+v, which encodes to % X", buf[:n], f, enc)
		}
		if f2, n2, err2 := parse(enc); f2 != f || n2 != n || err2 != nil {
			t.Fatalf("parse(encode(%+v)) = %+v, %d, %v", f, f2, n2, err2)
		}
	}
	rest := buf
	for steps := 0; ; steps++ {
		_, n, _ := parse(rest)
		if n == 0 {
			break
		}
		rest = rest[n:]
		if steps > len(buf) {
			t.Fatalf("parse loop over % X did not end", buf)
		}
	}
	if len(rest) >= frameLen {
		t.Fatalf("parse loop over % X stopped with %d bytes left (% X)", buf, len(rest), rest)
	}
}

func FuzzParsePMS(f *testing.F) {
	for _, seed := range []string{
		pmsExample,
		pmsAck,
		"00 FF 42 " + pmsExample,
		pmsExample + " " + pmsExample,
		pmsExample[:50],
		"42 4D 00 14 00 0C",
		"42 4D E1 00 01 01 71", // our own command
		"",
	} {
		f.Add(unhex(f, seed))
	}
	f.Fuzz(func(t *testing.T, buf []byte) { fuzzParser(t, buf, ParsePMS, encodePMS, pmsFrameLen) })
}

func FuzzParseSDS(f *testing.F) {
	for _, seed := range []string{
		sdsExample1,
		sdsExample2,
		sdsReplyQueryMode,
		"AA AA " + sdsExample1 + " " + sdsExample2,
		sdsExample1[:14],
		"AA B4 04 00 00 00 00 00 00 00 00 00 00 00 00 FF FF 02 AB", // our own command
		"",
	} {
		f.Add(unhex(f, seed))
	}
	f.Fuzz(func(t *testing.T, buf []byte) { fuzzParser(t, buf, ParseSDS, encodeSDS, sdsFrameLen) })
}
