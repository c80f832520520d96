package mfa

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzKeyName: whatever name a key is given (a form, a URL, FIDO
// metadata), what is stored is valid UTF-8 without control characters or
// surrounding spaces, at most 64 bytes, and keeps as much of the name as
// fits.
func FuzzKeyName(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got := cleanName(s)
		switch {
		case !utf8.ValidString(got):
			t.Fatalf("cleanName(%q) = %q, not UTF-8", s, got)
		case len(got) > 64:
			t.Fatalf("cleanName(%q) is %d bytes", s, len(got))
		case strings.ContainsFunc(got, unicode.IsControl):
			t.Fatalf("cleanName(%q) = %q holds a control character", s, got)
		case strings.TrimSpace(got) != got:
			t.Fatalf("cleanName(%q) = %q has surrounding spaces", s, got)
		case cleanName(got) != got:
			t.Fatalf("cleanName(%q) = %q, which cleans to %q", s, got, cleanName(got))
		}
		if short := strings.TrimSpace(s); len(short) <= 64 && utf8.ValidString(short) && !strings.ContainsFunc(short, unicode.IsControl) && got != short {
			t.Fatalf("cleanName(%q) = %q, want the name as it is", s, got)
		}
	})
}
