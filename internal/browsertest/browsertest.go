// Package browsertest reads URLs the way a browser does, for tests whose
// property is about where a browser goes (a Location header, a registered
// redirect URI), not about what Go's net/url makes of the same string.
//
// A browser's parser (the WHATWG URL Standard) forgives what net/url
// refuses or reads literally: it trims leading and trailing control
// characters and spaces, drops ASCII tab and newline anywhere, and for
// http(s) URLs reads a backslash as a slash. "/\t/evil.example" is
// "//evil.example" to a browser: another host. Clean does that
// preprocessing; what follows is net/url's parsing, which agrees with a
// browser on where the host is once the string is clean.
//
// It is a test helper: only _test.go files may import it (the architecture
// test in internal/archtest checks that no other package depends on it).
// It depends on the standard library only.
package browsertest

import (
	"net/url"
	"strings"
)

// c0AndSpace are the bytes a browser trims from both ends of a URL.
const c0AndSpace = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f" +
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "

// Clean is s as a browser's URL parser sees it before parsing.
func Clean(s string) string {
	// Byte by byte: bytes that are not UTF-8 pass through untouched.
	s = strings.Trim(s, c0AndSpace)
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	if !special(s) {
		return s
	}
	// In http(s) URLs a backslash is a slash up to the query or fragment.
	end := strings.IndexAny(s, "?#")
	if end < 0 {
		end = len(s)
	}
	return strings.ReplaceAll(s[:end], `\`, "/") + s[end:]
}

// special reports whether s is read with the rules of http(s) URLs: it
// names such a scheme, or none (a reference resolved against an http(s)
// page).
func special(s string) bool {
	scheme, _, ok := strings.Cut(s, ":")
	if !ok || !isScheme(scheme) {
		return true
	}
	switch strings.ToLower(scheme) {
	case "http", "https", "ws", "wss", "ftp", "file":
		return true
	}
	return false
}

// isScheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986).
func isScheme(s string) bool {
	for i, c := range []byte(s) {
		alpha := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !alpha && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// Parse is raw, an absolute URL, as a browser parses it.
func Parse(raw string) (*url.URL, error) { return url.Parse(Clean(raw)) }

// Resolve is ref as a browser resolves it on a page at base: where a
// Location header of ref sends it.
func Resolve(base *url.URL, ref string) (*url.URL, error) {
	u, err := url.Parse(Clean(ref))
	if err != nil {
		return nil, err
	}
	return base.ResolveReference(u), nil
}

// SameOrigin reports whether u has base's scheme and host and no userinfo.
func SameOrigin(base, u *url.URL) bool {
	return u.User == nil && strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host)
}
