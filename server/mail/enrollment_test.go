package mail_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/mail"
)

const issuer = "https://id.example.com"

var enrollment = mail.Enrollment{Issuer: issuer, Email: "ada@example.com", Name: "Ada Lovelace",
	URL: issuer + "/enroll?token=tok_123", Expires: time.Date(2026, 12, 9, 18, 54, 0, 0, time.UTC)}

func TestEnrollmentMessage(t *testing.T) {
	m, err := enrollment.Message()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("it is addressed to the user", func(t *testing.T) {
		if m.To != "ada@example.com" || m.ToName != "Ada Lovelace" {
			t.Fatalf("to %q <%s>", m.ToName, m.To)
		}
		if m.Subject != "Set up your sign-in at id.example.com" {
			t.Fatalf("subject %q", m.Subject)
		}
		if !m.Expires.Equal(enrollment.Expires) {
			t.Fatalf("expires %v, want the link's %v", m.Expires, enrollment.Expires)
		}
	})
	t.Run("both bodies carry the link, its end and the greeting", func(t *testing.T) {
		for name, body := range map[string]string{"text": m.Text, "html": m.HTML} {
			for _, want := range []string{enrollment.URL, "Wed 9 December 2026, 18:54 UTC", "Hello Ada Lovelace,", "ada@example.com"} {
				if !strings.Contains(body, want) {
					t.Errorf("the %s body lacks %q:\n%s", name, want, body)
				}
			}
		}
	})
	t.Run("a new link for an existing account says so", func(t *testing.T) {
		again := enrollment
		again.Again = true
		m, err := again.Message()
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "A new link to set up your sign-in at id.example.com" || !strings.Contains(m.Text, "issued a new enrolment link") {
			t.Fatalf("subject %q, text:\n%s", m.Subject, m.Text)
		}
	})
}

// links finds every URL an HTML body points a reader or a mail client to.
var links = regexp.MustCompile(`(?i)(?:href|src|action|background)\s*=\s*"([^"]*)"|url\(([^)]*)\)`)

func TestEnrollmentHTMLLinksOnlyToTheIssuer(t *testing.T) {
	hostile := enrollment
	hostile.Name = `<img src="https://evil.example/p.png"><a href="https://evil.example">x</a>`
	m, err := hostile.Message()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(m.HTML), "<img") {
		t.Fatalf("the HTML has an image:\n%s", m.HTML)
	}
	found := links.FindAllStringSubmatch(m.HTML, -1)
	if len(found) == 0 {
		t.Fatal("the HTML has no link at all")
	}
	for _, l := range found {
		u := l[1] + l[2]
		if u != issuer && !strings.HasPrefix(u, issuer+"/") {
			t.Errorf("the HTML links to %q, outside the issuer", u)
		}
	}
	if !strings.Contains(m.HTML, "&lt;img") {
		t.Fatalf("the name was not escaped:\n%s", m.HTML)
	}
}

func TestEnrollmentRefusesALinkOutsideTheIssuer(t *testing.T) {
	for _, link := range []string{
		"https://evil.example/enroll?token=x",
		"https://id.example.com.evil.example/enroll",
		"https://id.example.com@evil.example/enroll",
		"javascript:alert(1)",
		"",
	} {
		e := enrollment
		e.URL = link
		if _, err := e.Message(); err == nil {
			t.Errorf("a message with link %q was built", link)
		}
	}
}

func TestEnrollmentNameIsOneLine(t *testing.T) {
	e := enrollment
	e.Name = "Ada\r\nBcc: eve@evil.example"
	m, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(m.ToName, "\r\n") || strings.Contains(m.Text, "Ada\r\n") {
		t.Fatalf("a line break of the name survived: %q", m.ToName)
	}
}
