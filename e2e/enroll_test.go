package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestEnrolmentHasNoDeadEnds walks what people do with enrolment links:
// open a mangled one, stop half-way, come back, and (for an administrator)
// try to enrol without a security key.
func TestEnrolmentHasNoDeadEnds(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "")

	t.Run("a mangled link is refused before any password is typed", func(t *testing.T) {
		link := kg.addUser("cut@localhost")
		for _, bad := range []string{link[:len(link)-5], kg.issuer + "/enroll?token=", kg.issuer + "/enroll"} {
			p := newBrowser(t, kg.issuer).get(bad)
			if p.status != http.StatusGone || strings.Contains(p.body, `name="password"`) {
				t.Errorf("%s: status %d, want 410 without a password form", bad, p.status)
			}
			if !strings.Contains(p.body, "Ask your administrator for a new link") {
				t.Errorf("%s: the page does not say what to do: %s", bad, tail(p.body, 400))
			}
		}
	})

	t.Run("the password page names the account", func(t *testing.T) {
		p := newBrowser(t, kg.issuer).get(kg.addUser("named@localhost"))
		if p.status != http.StatusOK || !strings.Contains(p.body, "<strong>named@localhost</strong>") {
			t.Errorf("status %d; the page does not name the account: %s", p.status, tail(p.body, 600))
		}
	})

	t.Run("an enrolment abandoned after the password is pending and its link still works", func(t *testing.T) {
		const email = "later@localhost"
		link := kg.addUser(email)
		b := newBrowser(t, kg.issuer)
		p := b.submit(b.get(link), "/enroll", map[string]string{"password": testPassword, "confirm": testPassword})
		if p.url.Path != "/mfa/enroll" {
			t.Fatalf("after the password: %s (%d)", p.url, p.status)
		}
		// The user closes the tab here.
		if st := userStatus(t, kg, email); st["enrolled"] != false {
			t.Errorf("user list after the password alone: %v, want not enrolled", st)
		}
		if out := kg.cli("user", "list"); !strings.Contains(lineOf(out, email), "pending") {
			t.Errorf("user list shows %q for the half-enrolled user, want pending", lineOf(out, email))
		}
		// Signing in with the password leads nowhere but says where to go.
		other := newBrowser(t, kg.issuer)
		lp := other.get(kg.issuer + "/login")
		lp = other.submit(lp, "/login", map[string]string{"email": email, "password": testPassword})
		if lp.status != http.StatusForbidden || !strings.Contains(lp.body, "open your enrolment link again") || lp.url.Path != "/login" {
			t.Errorf("sign-in of a pending user: %s (%d): %s", lp.url, lp.status, lp.alert())
		}
		// The same link finishes the enrolment, in another browser too.
		acct := enroll(t, newBrowser(t, kg.issuer), link, email)
		if st := userStatus(t, kg, email); st["enrolled"] != true {
			t.Errorf("user list after enrolment: %v, want enrolled", st)
		}
		if p := newBrowser(t, kg.issuer).get(link); p.status != http.StatusGone {
			t.Errorf("the link after enrolment: status %d, want 410", p.status)
		}
		if acct.totpSecret == "" {
			t.Error("no authenticator app was enrolled")
		}
	})

	t.Run("an administrator enrols with a key, not an authenticator app", func(t *testing.T) {
		if kg.enrollURL == "" {
			t.Fatalf("serve printed no admin enrolment URL:\n%s", kg.stdout)
		}
		b := newBrowser(t, kg.issuer)
		p := b.submit(b.get(kg.enrollURL), "/enroll", map[string]string{"password": testPassword, "confirm": testPassword})
		if p.url.Path != "/mfa/enroll" {
			t.Fatalf("after the password: %s (%d)", p.url, p.status)
		}
		if !strings.Contains(p.body, "admin console (admin)") || strings.Contains(p.body, `href="/mfa/totp/enroll"`) {
			t.Errorf("the factor page for an administrator: %s", tail(p.body, 800))
		}
		if p := b.get(kg.issuer + "/mfa/totp/enroll"); p.url.Path != "/mfa/enroll" {
			t.Errorf("the authenticator app page let an administrator in: %s (%d)", p.url, p.status)
		}
		// Posting a code straight to the app enrolment is refused too.
		reg := p.byID("register-key")
		if reg == nil {
			t.Fatal("the factor page has no key registration button")
		}
		res := b.post(kg.issuer+"/mfa/totp/enroll", map[string][]string{"csrf_token": {attr(reg, "data-csrf")}, "code": {"123456"}})
		if res.status != http.StatusForbidden || !strings.Contains(res.body, "security key or passkey") {
			t.Errorf("a code posted for an administrator: %d %s", res.status, res.alert())
		}
		if st := userStatus(t, kg, "admin@localhost"); st["enrolled"] != false {
			t.Errorf("the administrator shows as enrolled without a key: %v", st)
		}
	})
}

// userStatus is user list --json's entry for email.
func userStatus(t *testing.T, kg *instance, email string) map[string]any {
	t.Helper()
	var users []map[string]any
	kg.cliJSON(&users, "user", "list")
	for _, u := range users {
		if u["email"] == email {
			return u
		}
	}
	t.Fatalf("user list has no %s", email)
	return nil
}

// lineOf is the line of out that mentions s.
func lineOf(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
