package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestAdminConsoleInChromium is an administrator's day in the console: the
// first admin enrols from the link serve printed, creates a user and
// registers an app; the user enrols a key and signs in to the app with the
// secret the console showed; the admin suspends the user and the app's
// very next introspection and refresh fail.
func TestAdminConsoleInChromium(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "")
	cb := newAppCallback(t)

	console := newTab(t)
	console.addAuthenticator(securityKey)
	console.enrollWithKey(kg.issuer, kg.enrollURL)
	console.navigate(kg.issuer + "/admin")
	console.waitLocation(kg.issuer + "/admin/users")
	console.screenshot("admin-users")

	// A user, and their single-use enrolment link, shown once.
	console.fill(map[string]string{"new-email": "dana@localhost", "new-name": "Dana"}, "form[method=post][action='/admin/users'] button[type=submit]")
	console.waitFor("document.getElementById('enrollment-url') !== null")
	link := console.eval("document.getElementById('enrollment-url').textContent")
	userPage := console.eval("document.querySelector('a.button[href^=\"/admin/users/\"]').href")
	console.screenshot("admin-enrolment-link")
	if !strings.HasPrefix(link, kg.issuer+"/enroll?token=") {
		t.Fatalf("enrolment link %q", link)
	}

	// An app, and its secret, shown once.
	console.navigate(kg.issuer + "/admin/apps")
	console.eval(`(() => { document.querySelectorAll('input[name=grant]').forEach(c => c.checked = c.value !== 'client_credentials'); return '' })()`)
	console.fill(map[string]string{"app-name": "Support desk", "app-redirects": cb.url}, "form[action='/admin/apps'] button[type=submit]")
	console.waitFor("document.getElementById('client-secret') !== null")
	clientID := console.eval("document.getElementById('client-id').textContent")
	secret := console.eval("document.getElementById('client-secret').textContent")
	console.screenshot("admin-app-secret")

	// The user enrols their own key and signs in to the app.
	laptop := newTab(t)
	laptop.addAuthenticator(securityKey)
	laptop.enrollWithKey(kg.issuer, link)
	app := newRP(t, kg.issuer, clientID, secret, cb.url)
	a := app.newRequest()
	laptop.navigate(a.url)
	tok, _, claims := app.exchange(t, a, codeFrom(t, laptop.waitLocation(cb.url), a))
	if claims.Email != "dana@localhost" || claims.ACR != "phrh" {
		t.Fatalf("the app got %+v", claims)
	}
	if body := introspect(t, kg.issuer, clientID, secret, tok.AccessToken); body["active"] != true {
		t.Fatalf("token inactive before the suspension: %v", body)
	}

	t.Run("suspending cuts the user off at once", func(t *testing.T) {
		console.navigate(userPage)
		console.screenshot("admin-user")
		console.do(chromedp.Click(chromedp.CSS("form[action$='/suspend'] input[name=confirm]")))
		start := time.Now()
		console.do(chromedp.Click(chromedp.CSS("form[action$='/suspend'] button[type=submit]")))
		console.waitFor("document.getElementById('status') && document.getElementById('status').textContent.includes('suspended')")
		clicked := time.Since(start)
		if body := introspect(t, kg.issuer, clientID, secret, tok.AccessToken); body["active"] != false {
			t.Fatalf("the app's access token is still active: %v", body)
		}
		if _, err := refresh(t.Context(), app.cfg, tok.RefreshToken); err == nil {
			t.Fatal("the app's refresh token still works")
		}
		effect := time.Since(start)
		console.screenshot("admin-user-suspended")
		t.Logf("suspend in the console: page answered after %v; introspection inactive and refresh refused by %v",
			clicked.Round(time.Millisecond), effect.Round(time.Millisecond))
		laptop.navigate(kg.issuer + "/account")
		laptop.waitLocation(kg.issuer + "/login")
	})

	t.Run("the audit log shows what happened and its chain verifies", func(t *testing.T) {
		console.navigate(kg.issuer + "/admin/audit/verify")
		console.waitFor("document.getElementById('chain-status') !== null")
		if s := console.eval("document.getElementById('chain-status').textContent"); !strings.Contains(s, "intact") {
			t.Errorf("chain status %q", s)
		}
		console.navigate(kg.issuer + "/admin/audit?type=user.suspended")
		if body := console.bodyText(); !strings.Contains(body, "user.suspended") || !strings.Contains(body, "intact") {
			t.Errorf("the audit page does not list the suspension with the chain status: %s", body)
		}
		console.screenshot("admin-audit")
		laptop.navigate(kg.issuer + "/account")
	})
}
