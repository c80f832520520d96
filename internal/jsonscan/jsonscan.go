// Package jsonscan reads the narrow JSON keygate itself writes for its
// hottest lookups — objects of known keys, strings without escapes, arrays
// of them, integers — without encoding/json's reflection. Every method
// reports false for anything outside that subset, without saying why: the
// caller then hands the whole document to encoding/json, so the two ways
// never disagree about what it says.
package jsonscan

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// Reader reads one document from its start.
type Reader struct {
	s string // the document, which the strings read are cut from
	b []byte // the document as given to NewReader, or nil
	i int
}

// NewReader reads b; the strings it returns share one copy of b.
func NewReader(b []byte) *Reader {
	return &Reader{b: b, s: string(b)}
}

// NewStringReader reads s; the strings it returns share s, uncopied.
func NewStringReader(s string) *Reader {
	return &Reader{s: s}
}

// bytes returns the document's bytes from i to j: part of what NewReader
// was given, or else a copy.
func (r *Reader) bytes(i, j int) []byte {
	if r.b != nil {
		return r.b[i:j]
	}
	return []byte(r.s[i:j])
}

// End reports whether only space is left.
func (r *Reader) End() bool {
	r.space()
	return r.i == len(r.s)
}

func (r *Reader) space() {
	for r.i < len(r.s) && (r.s[r.i] == ' ' || r.s[r.i] == '\t' || r.s[r.i] == '\n' || r.s[r.i] == '\r') {
		r.i++
	}
}

// next consumes c, after any space, if it comes next.
func (r *Reader) next(c byte) bool {
	r.space()
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	return false
}

// Object reads an object whose values value reads, key by key. A key seen
// twice fails if the object is a struct's (fields), and otherwise keeps
// its last value, as encoding/json does with a map's. A struct's object
// may have at most 16 keys.
func (r *Reader) Object(fields bool, value func(key string) bool) bool {
	if !r.next('{') {
		return false
	}
	var seen [16]string
	n := 0
	for more := !r.next('}'); more; {
		key, ok := r.Str()
		if !ok || !r.next(':') {
			return false
		}
		if fields {
			if n == len(seen) || slices.Contains(seen[:n], key) {
				return false
			}
			seen[n] = key
			n++
		}
		if !value(key) {
			return false
		}
		if more = !r.next('}'); more && !r.next(',') {
			return false
		}
	}
	return true
}

// Quoted reads a string without escapes or control characters, of valid
// UTF-8 (encoding/json would replace invalid bytes with U+FFFD), and
// returns it quotes included.
func (r *Reader) Quoted() ([]byte, bool) {
	v, ok := r.Str()
	if !ok {
		return nil, false
	}
	return r.bytes(r.i-len(v)-2, r.i), true
}

// Str reads a string as Quoted does, and returns what it says.
func (r *Reader) Str() (string, bool) {
	if !r.next('"') {
		return "", false
	}
	ascii := true
	for j := r.i; j < len(r.s); j++ {
		switch c := r.s[j]; {
		case c == '"':
			v := r.s[r.i:j]
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			r.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// Strs reads an array of strings; [] is an empty slice, not nil, as
// encoding/json makes it.
func (r *Reader) Strs() ([]string, bool) {
	if !r.next('[') {
		return nil, false
	}
	var buf [8]string
	out := buf[:0]
	for more := !r.next(']'); more; {
		v, ok := r.Str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if more = !r.next(']'); more && !r.next(',') {
			return nil, false
		}
	}
	return append([]string{}, out...), true
}

// Int reads an integer as JSON writes it: no fraction, exponent or
// leading zero.
func (r *Reader) Int() (int64, bool) {
	r.space()
	start := r.i
	if r.i < len(r.s) && r.s[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.s) && '0' <= r.s[r.i] && r.s[r.i] <= '9' {
		r.i++
	}
	if r.i == digits || (r.s[digits] == '0' && r.i > digits+1) {
		return 0, false
	}
	if r.i < len(r.s) && (r.s[r.i] == '.' || r.s[r.i] == 'e' || r.s[r.i] == 'E') {
		return 0, false
	}
	n, err := strconv.ParseInt(r.s[start:r.i], 10, 64)
	return n, err == nil
}

// RawObject returns the bytes of the object that comes next, found by
// matching its brackets outside strings. It does not check what is
// between them: the caller decodes or validates them with encoding/json.
func (r *Reader) RawObject() ([]byte, bool) {
	r.space()
	if r.i >= len(r.s) || r.s[r.i] != '{' {
		return nil, false
	}
	depth, inString := 0, false
	for j := r.i; j < len(r.s); j++ {
		c := r.s[j]
		switch {
		case inString && c == '\\':
			j++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				v := r.bytes(r.i, j+1)
				r.i = j + 1
				return v, true
			}
		}
	}
	return nil, false
}
