package mail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/mail"
)

var alertMail = mail.Alert{Issuer: issuer, Email: "root@example.com", Name: "Grace", Summary: "A sign-in was denied",
	Type: "signin.denied", Seq: 42, Result: "denied", User: "ada@example.com", Actor: "ada@example.com", IP: "203.0.113.9",
	Time: time.Date(2026, 12, 6, 19, 40, 0, 0, time.UTC), Details: map[string]string{"reason": "unknown key", "acr": "phr"}}

func TestAlertMessage(t *testing.T) {
	m, err := alertMail.Message()
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "root@example.com" || m.Subject != "Alert at id.example.com: A sign-in was denied" || !m.Expires.IsZero() {
		t.Fatalf("to %s, subject %q, expires %v", m.To, m.Subject, m.Expires)
	}
	for name, body := range map[string]string{"text": m.Text, "html": m.HTML} {
		for _, want := range []string{"signin.denied (denied), number 42", "ada@example.com", "203.0.113.9",
			"Sun 6 December 2026, 19:40 UTC", "unknown key", "phr", issuer + "/admin/audit?type=signin.denied"} {
			if !strings.Contains(body, want) {
				t.Errorf("the %s body lacks %q:\n%s", name, want, body)
			}
		}
	}
	if a, r := strings.Index(m.Text, "acr: phr"), strings.Index(m.Text, "reason: unknown key"); a < 0 || r < a {
		t.Errorf("the details are not in key order:\n%s", m.Text)
	}

	t.Run("details chosen by users stay on their line and out of the markup", func(t *testing.T) {
		a := alertMail
		a.Details = map[string]string{"name": "key\r\nBcc: evil@example.com<script>"}
		m, err := a.Message()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(m.Text, "\nBcc:") || strings.Contains(m.HTML, "<script>") {
			t.Fatalf("a detail broke out:\ntext:\n%s\nhtml:\n%s", m.Text, m.HTML)
		}
	})
}
