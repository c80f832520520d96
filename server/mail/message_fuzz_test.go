package mail_test

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzEnrollmentMessage: whatever name and address a user was given, a
// message that builds has one plain recipient, a one-line name and
// subject, and an HTML body that links only to the issuer and loads
// nothing.
func FuzzEnrollmentMessage(f *testing.F) {
	for _, seed := range [][2]string{
		{"Ada Lovelace", "ada@example.com"},
		{"Eve\r\nBcc: eve@evil.example", "ada@example.com"},
		{"<img src=x>", "ada@example.com\r\nBcc: eve@evil.example"},
		{"Zoë \u2028 Şahin", "\"a b\"@example.com"},
		{"", "a@b"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, email string) {
		e := enrollment
		e.Name, e.Email = name, email
		m, err := e.Message()
		if err != nil {
			return
		}
		if m.To != email || strings.ContainsAny(m.To, "\r\n,<>") {
			t.Fatalf("recipient %q from %q", m.To, email)
		}
		for _, h := range []string{m.ToName, m.Subject} {
			if strings.ContainsFunc(h, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }) {
				t.Fatalf("a header value keeps a control character: %q", h)
			}
		}
		if strings.Contains(strings.ToLower(m.HTML), "<img") {
			t.Fatalf("the HTML loads an image:\n%s", m.HTML)
		}
		for _, l := range links.FindAllStringSubmatch(m.HTML, -1) {
			if u := l[1] + l[2]; u != issuer && !strings.HasPrefix(u, issuer+"/") {
				t.Fatalf("the HTML links to %q", u)
			}
		}
	})
}
