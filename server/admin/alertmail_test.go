package admin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/notice"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
)

// TestAlertMail: an administrator who asks for alert mail in the console
// gets one mail per alerting event over SMTP, and no other mail; one who
// did not ask, one suspended and a user without a console role get none.
func TestAlertMail(t *testing.T) {
	c := startMailing(t)
	alice := c.newUser(t, "alice@example.com", true)              // asks for alerts
	bob := c.newUser(t, "bob@example.com", true)                  // does not
	hal := c.withRole(t, "hal@example.com", storage.RoleHelpdesk) // asks, then is suspended
	pat := c.newUser(t, "pat@example.com", false)                 // no console role
	aliceB, bobB, halB, patB := c.key(t, alice.ID), c.key(t, bob.ID), c.key(t, hal.ID), c.key(t, pat.ID)
	on := func() url.Values { return url.Values{"alert_mail": {"on"}} }

	if r := c.form(t, &patB, "/admin/alert-mail", on()); r.Status != http.StatusForbidden {
		t.Fatalf("a user without a console role asked for alert mail: %s", r)
	}
	if r := c.form(t, &bobB, "/admin/alert-mail", url.Values{"alert_mail": {"on"}, "csrf_token": {"forged"}}); r.Status == http.StatusSeeOther {
		t.Fatalf("a form without the session's CSRF token was taken: %s", r)
	}
	for _, b := range []*sessiontest.Browser{&aliceB, &halB} {
		r := c.form(t, b, "/admin/alert-mail", on())
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/users?notice=alert-mail-on" {
			t.Fatalf("asking for alert mail: %s", r)
		}
	}
	for _, who := range []storage.User{bob, pat} {
		if asked, err := notice.AlertMail(t.Context(), c.DB, who.ID); err != nil || asked {
			t.Fatalf("%s has alert mail %v, %v", who.Email, asked, err)
		}
	}
	if page := c.get(t, &aliceB, "/admin/users"); !strings.Contains(string(page.Body), `value="off">Stop mailing me alerts`) {
		t.Fatalf("alice's users page offers no way to stop alert mail:\n%s", page.Body)
	}
	if page := c.get(t, &bobB, "/admin/users"); !strings.Contains(string(page.Body), `value="on">Mail me every alert`) {
		t.Fatalf("bob's users page offers no alert mail:\n%s", page.Body)
	}

	// Suspending hal is an alert; hal is suspended when it is recorded.
	suspend := func(u storage.User) {
		t.Helper()
		if r := c.form(t, &bobB, "/admin/users/"+u.ID+"/suspend", url.Values{"confirm": {"1"}}); r.Status != http.StatusSeeOther {
			t.Fatalf("suspend %s: %s", u.Email, r)
		}
	}
	suspend(hal)
	got := c.deliver(t)
	if len(got) != 1 {
		t.Fatalf("%d mails for one alert, want 1", len(got))
	}
	m := got[0]
	if to := m.To(t).Address; to != "alice@example.com" || len(m.Rcpt) != 1 {
		t.Fatalf("the alert went to %s (RCPT %v)", to, m.Rcpt)
	}
	if s := m.Subject(t); s != "Alert at "+host(t, c.Issuer)+": A user was suspended" {
		t.Fatalf("subject %q", s)
	}
	text := m.Part(t, "text/plain")
	for _, want := range []string{"user.suspended (success)", "User:   hal@example.com", "By:     bob@example.com", c.Issuer + "/admin/audit?type=user.suspended"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the alert's text lacks %q:\n%s", want, text)
		}
	}
	if link := m.Link(t, c.Issuer+"/"); link != c.Issuer+"/admin/audit?type=user.suspended" {
		t.Fatalf("the alert links to %q", link)
	}
	html := m.Part(t, "text/html")
	if !strings.Contains(html, `href="`+c.Issuer+`/admin/audit?type=user.suspended"`) ||
		strings.Count(html, "href=") != strings.Count(html, `href="`+c.Issuer) {
		t.Fatalf("the alert's HTML links elsewhere than the issuer's audit log:\n%s", html)
	}
	if r := c.get(t, &aliceB, "/admin/audit?type=user.suspended"); r.Status != http.StatusOK || !strings.Contains(string(r.Body), hal.ID) {
		t.Fatalf("the alert's link: %s", r)
	}

	// An event that is not an alert mails nobody.
	if r := c.form(t, &bobB, "/admin/users", url.Values{"email": {"new@example.com"}}); r.Status != http.StatusOK {
		t.Fatalf("create a user: %s", r)
	}
	if got := c.deliver(t); len(got) != 1 {
		t.Fatalf("%d mails after a user was created, want still 1", len(got))
	}

	// Having asked to stop, alice gets no more.
	if r := c.form(t, &aliceB, "/admin/alert-mail", url.Values{"alert_mail": {"off"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("alice stops alert mail: %s", r)
	}
	suspend(pat)
	if got := c.deliver(t); len(got) != 1 {
		t.Fatalf("%d mails after alice stopped alert mail, want still 1", len(got))
	}
}

func host(t *testing.T, issuer string) string {
	t.Helper()
	u, err := url.Parse(issuer)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
