package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/mail/mailtest"
)

// TestForgotPasswordWithAnAuthenticatorApp runs "forgot password" through
// the built binary and a real SMTP server for a user whose second factor
// is an authenticator app: the mailed link's new password takes effect
// only after a code, the old password stops working, and the browser is
// not signed in by it.
func TestForgotPasswordWithAnAuthenticatorApp(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.NoAuth)
	kg := startKeygate(t, t.TempDir(), fmt.Sprintf("smtp:\n  host: 127.0.0.1\n  port: %d\n  tls: none\n  from: keygate@localhost\n", smtp.Port))
	ada := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ada@localhost"), "ada@localhost")
	const newPassword = "a much better passphrase"

	b := newBrowser(t, kg.issuer)
	p := b.get(kg.issuer + "/login")
	if !strings.Contains(p.body, `href="/login/forgot"`) {
		t.Fatal("the sign-in page offers no \"Forgot password?\"")
	}
	p = b.submit(b.get(kg.issuer+"/login/forgot"), "/login/forgot", map[string]string{"email": ada.email})
	if p.status != 200 || !strings.Contains(p.body, "If an account exists") {
		t.Fatalf("forgot answer (%d): %s", p.status, p.alert())
	}
	smtp.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 0 })
	link := smtp.Received()[0].Link(t, kg.issuer+"/login/reset?token=")

	p = b.submit(b.get(link), "/login/reset", map[string]string{"password": newPassword, "confirm": newPassword})
	if p.url.Path != "/mfa/verify" {
		t.Fatalf("after the new password: %s (%d) %s", p.url, p.status, p.alert())
	}
	if !signsIn(t, kg, ada.email, ada.password) || signsIn(t, kg, ada.email, newPassword) {
		t.Fatal("the password changed before the second factor")
	}
	p = b.submit(p, "/mfa/totp", map[string]string{"code": nextCode(t, ada.totpSecret)})
	if p.status != 200 || !strings.Contains(p.body, "Your password has been changed") {
		t.Fatalf("after the code (%d) at %s: %s", p.status, p.url, p.alert())
	}
	if signsIn(t, kg, ada.email, ada.password) || !signsIn(t, kg, ada.email, newPassword) {
		t.Fatal("the new password is not the one that works")
	}
	if p = b.get(kg.issuer + "/account"); p.url.Path == "/account" {
		t.Fatal("the reset signed its browser in")
	}
	if kg.auditDetail("password.reset", "sessions_ended") == "" {
		t.Error("the reset is not in the audit log")
	}
	if p = b.get(link); p.status != 410 {
		t.Errorf("the used link answered %d, want 410", p.status)
	}
	_, token, _ := strings.Cut(link, "token=")
	if logs := kg.stdout.String() + kg.stderr.String(); strings.Contains(logs, token) || strings.Contains(logs, newPassword) {
		t.Error("the server logged the link's token or the new password")
	}
}

// signsIn reports whether email and password pass the password step in a
// new browser (it stops at the second factor).
func signsIn(t *testing.T, kg *instance, email, password string) bool {
	t.Helper()
	b := newBrowser(t, kg.issuer)
	p := b.submit(b.get(kg.issuer+"/login"), "/login", map[string]string{"email": email, "password": password})
	return p.url.Path == "/mfa/verify"
}
