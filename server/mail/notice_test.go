package mail_test

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/keygate/keygate/server/mail"
)

var (
	signInNotice = mail.SignInNotice{Issuer: issuer, Email: "ada@example.com", Name: "Ada Lovelace",
		Time: time.Date(2026, 12, 6, 19, 40, 0, 0, time.UTC), Place: "Berlin, DE", IP: "203.0.113.9",
		Device: "Chrome on Linux", App: "Wiki", Reasons: []string{"new country: DE", "new device"},
		ReportURL: issuer + "/signin/report?token=tok_123", ReportExpires: time.Date(2026, 12, 13, 19, 40, 0, 0, time.UTC)}
	accountChange = mail.AccountChange{Issuer: issuer, Email: "ada@example.com", Name: "Ada Lovelace",
		Summary: "A security key or passkey was added to your account", Detail: "YubiKey 5",
		Time: time.Date(2026, 12, 6, 19, 40, 0, 0, time.UTC)}
)

func TestSignInNoticeMessage(t *testing.T) {
	m, err := signInNotice.Message()
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "ada@example.com" || m.Subject != "New sign-in to your account at id.example.com" || !m.Expires.IsZero() {
		t.Fatalf("to %s, subject %q, expires %v", m.To, m.Subject, m.Expires)
	}
	for name, body := range map[string]string{"text": m.Text, "html": m.HTML} {
		for _, want := range []string{"new country: DE", "new device", "Berlin, DE", "203.0.113.9", "Chrome on Linux", "Wiki",
			"Sun 6 December 2026, 19:40 UTC", signInNotice.ReportURL, "Sun 13 December 2026, 19:40 UTC", "signs nobody in"} {
			if !strings.Contains(body, want) {
				t.Errorf("the %s body lacks %q:\n%s", name, want, body)
			}
		}
	}
	t.Run("a link outside the issuer is refused", func(t *testing.T) {
		n := signInNotice
		n.ReportURL = "https://evil.example/signin/report?token=x"
		if _, err := n.Message(); err == nil {
			t.Fatal("built a notice that links outside the issuer")
		}
	})
}

var passwordReset = mail.PasswordReset{Issuer: issuer, Email: "ada@example.com", Name: "Ada Lovelace",
	URL: issuer + "/login/reset?token=tok_123", Expires: time.Date(2026, 12, 6, 20, 10, 0, 0, time.UTC)}

func TestPasswordResetMessage(t *testing.T) {
	m, err := passwordReset.Message()
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Choose a new password at id.example.com" || !m.Expires.Equal(passwordReset.Expires) {
		t.Fatalf("subject %q, expires %v: want the link's end, so an unsent one is dropped then", m.Subject, m.Expires)
	}
	for _, want := range []string{passwordReset.URL, "Sun 6 December 2026, 20:10 UTC", "security key, passkey or authenticator"} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("a body lacks %q:\ntext:\n%s\nhtml:\n%s", want, m.Text, m.HTML)
		}
	}
	bad := passwordReset
	bad.URL = "https://evil.example/login/reset?token=x"
	if _, err := bad.Message(); err == nil {
		t.Fatal("built a reset mail that links outside the issuer")
	}
}

func TestAccountChangeMessage(t *testing.T) {
	m, err := accountChange.Message()
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "A security key or passkey was added to your account at id.example.com" {
		t.Fatalf("subject %q", m.Subject)
	}
	for _, want := range []string{"YubiKey 5", "Sun 6 December 2026, 19:40 UTC", issuer + "/account"} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("a body lacks %q:\ntext:\n%s\nhtml:\n%s", want, m.Text, m.HTML)
		}
	}
	if strings.Contains(m.Text, "administrator") {
		t.Errorf("a change by the user says an administrator made it:\n%s", m.Text)
	}
}

// FuzzNoticeMessages: whatever a user's name and address, and whatever
// the place, device, app and key names (an MMDB's city, a user agent, an
// administrator's app name, a name the user typed), a notice that builds
// has one plain recipient, one-line headers, nothing of those in its
// subject, and HTML that links only to the issuer and loads nothing.
func FuzzNoticeMessages(f *testing.F) {
	for _, seed := range [][3]string{
		{"Ada Lovelace", "ada@example.com", "Berlin"},
		{"Eve\r\nBcc: eve@evil.example", "ada@example.com", "x\r\nSubject: hi"},
		{"<img src=x>", "ada@example.com\r\nBcc: eve@evil.example", `<a href="https://evil.example">`},
		{"Zoë \u2028 Şahin", "\"a b\"@example.com", "\u2029"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, name, email, free string) {
		n := signInNotice
		n.Name, n.Email, n.Place, n.Device, n.App, n.Reasons = name, email, free, free, free, []string{free}
		c := accountChange
		c.Name, c.Email, c.Detail = name, email, free
		p := passwordReset
		p.Name, p.Email = name, email
		for _, k := range []struct {
			build   func() (mail.Message, error)
			subject string // keygate's own words only
		}{
			{n.Message, "New sign-in to your account at id.example.com"},
			{c.Message, accountChange.Summary + " at id.example.com"},
			{p.Message, "Choose a new password at id.example.com"},
		} {
			m, err := k.build()
			if err != nil {
				continue
			}
			if m.To != email || strings.ContainsAny(m.To, "\r\n,<>") {
				t.Fatalf("recipient %q from %q", m.To, email)
			}
			if m.Subject != k.subject {
				t.Fatalf("subject %q, want %q", m.Subject, k.subject)
			}
			if strings.ContainsFunc(m.ToName, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }) {
				t.Fatalf("the name keeps a control character: %q", m.ToName)
			}
			if strings.Contains(strings.ToLower(m.HTML), "<img") {
				t.Fatalf("the HTML loads an image:\n%s", m.HTML)
			}
			for _, l := range links.FindAllStringSubmatch(m.HTML, -1) {
				if u := l[1] + l[2]; u != issuer && !strings.HasPrefix(u, issuer+"/") {
					t.Fatalf("the HTML links to %q", u)
				}
			}
		}
	})
}
