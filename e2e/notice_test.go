package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keygate/keygate/server/geo/geotest"
	"github.com/keygate/keygate/server/mail/mailtest"
)

// TestThisWasntMe runs a sign-in notice through the built binary, a real
// SMTP server and Chromium: a sign-in from a new country mails its user a
// notice; its "this wasn't me" link, followed and confirmed in another
// browser, ends that sign-in's session — the app's refresh fails and its
// back-channel logout arrives — and the alert webhook fires.
func TestThisWasntMe(t *testing.T) {
	dir := t.TempDir()
	mmdb := filepath.Join(dir, "places.mmdb")
	geotest.WriteMMDB(t, mmdb, []geotest.Record{
		{CIDR: "203.0.113.0/24", Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, HasCoords: true},
		{CIDR: "192.0.2.0/24", Country: "PL", City: "Szczecin", Lat: 53.4285, Lon: 14.5528, HasCoords: true},
	})
	hook := newWebhook(t)
	secretFile := filepath.Join(dir, "alert-secret")
	if err := os.WriteFile(secretFile, []byte(hook.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	smtp := mailtest.Start(t, mailtest.NoAuth)
	kg := startKeygate(t, filepath.Join(dir, "data"), fmt.Sprintf(`trusted_proxies: [127.0.0.1/32, "::1/128"]
dev: true
alerts:
  webhooks: [%s]
  secret_file: %s
risk:
  mmdb_file: %s
smtp:
  host: 127.0.0.1
  port: %d
  tls: none
  from: keygate@localhost
`, hook.url, secretFile, mmdb, smtp.Port))
	cb := newAppCallback(t)
	lr := newLogoutReceiver(t, kg.issuer)
	var app registered
	kg.cliJSON(&app, "client", "add", "--name", "Wiki", "--redirect-uri", cb.url, "--backchannel-logout-uri", lr.url)
	wiki := newRP(t, kg.issuer, app.ClientID, app.ClientSecret, cb.url)
	admin := account{email: "admin@localhost", password: testPassword}

	tb := newTab(t)
	tb.addAuthenticator(securityKey)
	tb.from("203.0.113.10")
	tb.navigate(kg.enrollURL)
	tb.fill(map[string]string{"password": testPassword, "confirm": testPassword}, "form[action='/enroll'] button[type=submit]")
	tb.waitLocation(kg.issuer + "/mfa/enroll")
	tb.click("#register-key")
	tb.waitFor("!document.getElementById('recovery-section').hidden")

	// A first sign-in in Berlin starts the history: nothing new, no mail.
	a := wiki.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
	browserSignIn(t, tb, kg.issuer, a, admin, "password+key")
	_, _, first := wiki.exchange(t, a, codeFrom(t, tb.waitLocation(cb.url), a))

	// The same browser from Poland is stepped up, signs in, and its user
	// is told.
	tb.from("192.0.2.20")
	a = wiki.newRequest()
	tb.navigate(a.url)
	tb.waitLocation(kg.issuer + "/mfa/verify")
	waitNextSecond(first.AuthTime)
	tb.click("#use-key")
	tok, _, claims := wiki.exchange(t, a, codeFrom(t, tb.waitLocation(cb.url), a))
	if tok.RefreshToken == "" || claims.SID == "" {
		t.Fatalf("the app got no refresh token (%q) or sid (%q)", tok.RefreshToken, claims.SID)
	}

	smtp.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 0 })
	got := smtp.Received()
	if len(got) != 1 || got[0].To(t).Address != admin.email {
		t.Fatalf("%d messages, want one to %s", len(got), admin.email)
	}
	text := got[0].Part(t, "text/plain")
	for _, want := range []string{"new country: PL", "Szczecin, PL", "192.0.2.20"} {
		if !strings.Contains(text, want) {
			t.Errorf("the notice lacks %q:\n%s", want, text)
		}
	}
	link := got[0].Link(t, kg.issuer+"/signin/report?token=")

	// The user, in another browser, says it was not them.
	phone := newTab(t)
	phone.navigate(link)
	phone.waitFor("document.querySelector(\"form[action='/signin/report']\") !== null")
	// Refresh tokens rotate: keep the new one.
	tok, err := refresh(t.Context(), wiki.cfg, tok.RefreshToken)
	if err != nil {
		t.Fatalf("opening the link ended the sign-in: %v", err)
	}
	phone.click("form[action='/signin/report'] button[type=submit]")
	phone.waitFor("document.body.innerText.includes('That sign-in has ended')")
	phone.screenshot("this-wasnt-me-done")

	if _, err := refresh(t.Context(), wiki.cfg, tok.RefreshToken); err == nil {
		t.Error("the app's refresh token still works after the report")
	}
	lr.waitFor(t, func(c map[string]any) bool { return c["sid"] == claims.SID })
	if alert := hook.waitFor(t, "signin.reported"); alert.Details["session_ended"] != "true" {
		t.Errorf("the alert's details %v", alert.Details)
	}
	tb.navigate(kg.issuer + "/account")
	tb.waitLocation(kg.issuer + "/login")

	phone.navigate(link)
	phone.waitFor("document.body.innerText.includes('no longer works')")

	_, token, _ := strings.Cut(link, "token=")
	if logs := kg.stdout.String() + kg.stderr.String(); strings.Contains(logs, token) {
		t.Error("the server logged the link's token")
	}
}
