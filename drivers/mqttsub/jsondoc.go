package mqttsub

import (
	"encoding/json"
	"errors"
	"strconv"
)

// A JSON payload is read in one of two ways, with the same results.
//
// The slow way decodes the whole document with encoding/json into maps and slices
// (treeDoc); it is the reference, and the only way that produces error messages
// about the document. The fast way (rawDoc) reads the few values a subscription needs
// straight from the payload's bytes once json.Valid has accepted it, without building
// the document: it handles the common shape (object keys and the strings it returns
// in plain ASCII, no escapes) and gives up (errSlow) on anything else, whereupon the
// slow way decodes the payload from the start. Decoding the bench's 60-byte payload
// into maps was most of the subscriber's CPU per message (bench/README.md).
//
// Both give the value at a path as the slow way's decoder does: json.Number (the
// number's text as written), string, or nil when absent or null; a duplicated key's
// last value wins, as when encoding/json fills a map. json.Valid accepts exactly the
// payloads the slow way's decoder does (one JSON value, white space around it), so the
// fast way sees only payloads the slow way would decode; TestJSONDocDifferential and
// FuzzJSONDoc compare the two.

// jsonDoc gives the value at a path of a JSON payload; see lookup.
type jsonDoc interface {
	lookup(steps []step) (any, bool, error)
}

// errSlow is rawDoc's answer when it cannot read a path the way treeDoc would; the
// caller decodes the payload with treeDoc instead. It never reaches a DecodeError.
var errSlow = errors.New("read the payload with encoding/json")

// treeDoc is a payload decoded by encoding/json (UseNumber).
type treeDoc struct{ doc any }

func (d treeDoc) lookup(steps []step) (any, bool, error) { return lookup(d.doc, steps) }

// rawDoc is a payload json.Valid accepted, read in place.
type rawDoc []byte

// newRawDoc returns the payload as a rawDoc, or false if it is not valid JSON.
func newRawDoc(payload []byte) (rawDoc, bool) {
	if !json.Valid(payload) {
		return nil, false
	}
	return rawDoc(payload), true
}

// lookup follows steps as lookup does in a decoded document. Every case that is an
// error there, and every value it would have to unescape, is errSlow here.
func (d rawDoc) lookup(steps []step) (any, bool, error) {
	i := skipSpace(d, 0)
	for _, s := range steps {
		if i >= len(d) {
			return nil, false, errSlow
		}
		switch d[i] {
		case 'n': // null: not found, as in a decoded document
			return nil, false, nil
		case '{':
			if s.isIndex {
				return nil, false, errSlow
			}
			at, found, ok := d.member(i, s.key)
			if !ok {
				return nil, false, errSlow
			}
			if !found {
				return nil, false, nil
			}
			i = at
		case '[':
			if !s.isIndex {
				return nil, false, errSlow
			}
			at, found, ok := d.element(i, s.index)
			if !ok {
				return nil, false, errSlow
			}
			if !found {
				return nil, false, nil
			}
			i = at
		default: // a scalar has no members
			return nil, false, errSlow
		}
	}
	if i >= len(d) {
		return nil, false, errSlow
	}
	switch c := d[i]; {
	case c == 'n':
		return nil, false, nil
	case c == '"':
		end, plain := scanString(d, i)
		if !plain || end < 0 {
			return nil, false, errSlow
		}
		return string(d[i+1 : end-1]), true, nil
	case c == '-' || c >= '0' && c <= '9':
		end := skipScalar(d, i)
		return json.Number(d[i:end]), true, nil
	}
	return nil, false, errSlow // a boolean, object or array: only ever an error
}

// number returns the value at a path if it is a JSON number that strconv.ParseFloat
// reads without error (as jsonNumber reads a json.Number); otherwise ok is false and
// lookup tells what it is.
func (d rawDoc) number(steps []step) (x float64, ok bool) {
	i, ok := d.find(steps)
	if !ok || i >= len(d) || !(d[i] == '-' || d[i] >= '0' && d[i] <= '9') {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(d[i:skipScalar(d, i)]), 64)
	return x, err == nil
}

// find returns where the value at a path starts; ok is false if lookup would not find
// it there (absent, null on the way, or errSlow).
func (d rawDoc) find(steps []step) (int, bool) {
	i := skipSpace(d, 0)
	for _, s := range steps {
		if i >= len(d) {
			return 0, false
		}
		var found, ok bool
		switch {
		case d[i] == '{' && !s.isIndex:
			i, found, ok = d.member(i, s.key)
		case d[i] == '[' && s.isIndex:
			i, found, ok = d.element(i, s.index)
		}
		if !found || !ok {
			return 0, false
		}
	}
	return i, true
}

// member returns where the value of key starts in the object at i, the last one if the
// key repeats; ok is false if a key needs unescaping (or the bytes are not an object).
func (d rawDoc) member(i int, key string) (at int, found, ok bool) {
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return 0, false, true
	}
	for i < len(d) {
		if d[i] != '"' {
			return 0, false, false
		}
		end, plain := scanString(d, i)
		if !plain || end < 0 {
			return 0, false, false
		}
		k := d[i+1 : end-1]
		i = skipSpace(d, end)
		if i >= len(d) || d[i] != ':' {
			return 0, false, false
		}
		i = skipSpace(d, i+1)
		if string(k) == key {
			at, found = i, true
		}
		if i = skipValue(d, i); i < 0 {
			return 0, false, false
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return 0, false, false
		}
		switch d[i] {
		case '}':
			return at, found, true
		case ',':
			i = skipSpace(d, i+1)
		default:
			return 0, false, false
		}
	}
	return 0, false, false
}

// element returns where element n of the array at i starts.
func (d rawDoc) element(i, n int) (at int, found, ok bool) {
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == ']' {
		return 0, false, true
	}
	for k := 0; i < len(d); k++ {
		if k == n {
			return i, true, true
		}
		if i = skipValue(d, i); i < 0 {
			return 0, false, false
		}
		i = skipSpace(d, i)
		if i >= len(d) {
			return 0, false, false
		}
		switch d[i] {
		case ']':
			return 0, false, true
		case ',':
			i = skipSpace(d, i+1)
		default:
			return 0, false, false
		}
	}
	return 0, false, false
}

// skipSpace returns the index of the first byte at or after i that is not JSON white
// space (RFC 8259 §2).
func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string that starts with the quote at i,
// or -1 if it does not end; plain reports that it holds only printable ASCII without
// escapes, so that its bytes are its value.
func scanString(d []byte, i int) (end int, plain bool) {
	plain = true
	for j := i + 1; j < len(d); j++ {
		switch c := d[j]; {
		case c == '"':
			return j + 1, plain
		case c == '\\':
			plain = false
			j++ // the escaped byte (of \uXXXX, the u; the hex digits are plain)
		case c < 0x20 || c >= 0x80:
			plain = false
		}
	}
	return -1, false
}

// skipScalar returns the index just past the number or literal at i.
func skipScalar(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// skipValue returns the index just past the value at i, or -1 if it does not end.
func skipValue(d []byte, i int) int {
	if i >= len(d) {
		return -1
	}
	switch d[i] {
	case '"':
		end, _ := scanString(d, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				end, _ := scanString(d, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	return skipScalar(d, i)
}
