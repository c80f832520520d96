package admin

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzDuration: a lifetime as an administrator writes it ("90m", "7d") is
// never negative, and what the console shows for it reads back the same.
func FuzzDuration(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := duration(s)
		if !ok {
			return
		}
		if d < 0 {
			t.Fatalf("duration(%q) = %v", s, d)
		}
		shown := durationField(d)
		if back, ok := duration(shown); !ok || back != d {
			t.Fatalf("duration(%q) = %v, shown as %q, which reads back as %v, %v", s, d, shown, back, ok)
		}
	})
}

// FuzzCredentialID: a credential id in a URL names the same bytes the
// console links to it with, and is accepted only as the console spells
// it (or with its padding): "AA" and "AB" do not both name the byte 0.
func FuzzCredentialID(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		b, ok := parseCredID(s)
		if !ok {
			return
		}
		if len(b) == 0 {
			t.Fatalf("parseCredID(%q) accepted no bytes", s)
		}
		if again, ok := parseCredID(credID(b)); !ok || !bytes.Equal(again, b) {
			t.Fatalf("parseCredID(%q) = %x, but its link %q reads as %x, %v", s, b, credID(b), again, ok)
		}
		if s != credID(b) && s != base64.URLEncoding.EncodeToString(b) {
			t.Fatalf("parseCredID(%q) = %x, which the console spells %q: two spellings name one key", s, b, credID(b))
		}
	})
}
