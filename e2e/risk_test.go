package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"golang.org/x/oauth2"

	"github.com/keygate/keygate/server/geo/geotest"
)

// Places the test MMDB knows. The office is a named, trusted network in
// Berlin; Szczecin is in another country but close (no travel signal);
// Sydney is the other side of the world.
const (
	officeIP   = "203.0.113.10"
	szczecinIP = "192.0.2.20"
	sydneyIP   = "198.51.100.30"
)

// from makes every request of the tab arrive from ip, as a trusted proxy
// in front of keygate would say in X-Forwarded-For.
func (tb *tab) from(ip string) {
	tb.t.Helper()
	tb.cdp(func(ctx context.Context, s cdp.Session) error {
		if _, err := cdp.Call(ctx, s, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, s, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"X-Forwarded-For": ip}})
		return err
	})
}

// TestRiskBasedStepUp runs the risk engine through the real server: the
// client address comes from X-Forwarded-For of a trusted proxy, places
// from a generated MMDB, and every decision is checked in the browser, in
// the ID token and in the audit log.
func TestRiskBasedStepUp(t *testing.T) {
	dir := t.TempDir()
	mmdb := filepath.Join(dir, "places.mmdb")
	geotest.WriteMMDB(t, mmdb, []geotest.Record{
		{CIDR: "203.0.113.0/24", Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, HasCoords: true},
		{CIDR: "192.0.2.0/24", Country: "PL", City: "Szczecin", Lat: 53.4285, Lon: 14.5528, HasCoords: true},
		{CIDR: "198.51.100.0/24", Country: "AU", City: "Sydney", Lat: -33.8688, Lon: 151.2093, HasCoords: true},
		{CIDR: "100.64.0.0/24", Country: "CH"}, // no coordinates: a new country, no travel signal
	})
	hook := newWebhook(t)
	secretFile := filepath.Join(dir, "alert-secret")
	if err := os.WriteFile(secretFile, []byte(hook.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	kg := startKeygate(t, filepath.Join(dir, "data"), fmt.Sprintf(`trusted_proxies: [127.0.0.1/32, "::1/128"]
dev: true
alerts:
  webhooks: [%s]
  secret_file: %s
risk:
  mmdb_file: %s
  networks:
    - name: office
      cidrs: [203.0.113.0/24]
      trust: trusted
`, hook.url, secretFile, mmdb))
	cb := newAppCallback(t)
	var app, strict registered
	kg.cliJSON(&app, "client", "add", "--name", "Wiki", "--redirect-uri", cb.url)
	kg.cliJSON(&strict, "client", "add", "--name", "Payroll", "--redirect-uri", cb.url, "--acr", "phrh")
	var careful registered
	kg.cliJSON(&careful, "client", "add", "--name", "Treasury", "--redirect-uri", cb.url, "--deny-risky")
	treasury := newRP(t, kg.issuer, careful.ClientID, careful.ClientSecret, cb.url)
	wiki := newRP(t, kg.issuer, app.ClientID, app.ClientSecret, cb.url)
	payroll := newRP(t, kg.issuer, strict.ClientID, strict.ClientSecret, cb.url)
	admin := account{email: "admin@localhost", password: testPassword}

	tb := newTab(t)
	tb.addAuthenticator(securityKey)
	tb.from(officeIP)
	tb.navigate(kg.enrollURL)
	tb.fill(map[string]string{"password": testPassword, "confirm": testPassword}, "form[action='/enroll'] button[type=submit]")
	tb.waitLocation(kg.issuer + "/mfa/enroll")
	tb.click("#register-key")
	tb.waitFor("!document.getElementById('recovery-section').hidden")

	code := func(t *testing.T, r *rp, a authRequest) idClaims {
		t.Helper()
		_, _, c := r.exchange(t, a, codeFrom(t, tb.waitLocation(cb.url), a))
		return c
	}

	// A first real sign-in at the office starts the user's history.
	a := wiki.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
	browserSignIn(t, tb, kg.issuer, a, admin, "password+key")
	first := code(t, wiki, a)

	t.Run("a known device at the office gets single sign-on silently", func(t *testing.T) {
		a := wiki.newRequest()
		tb.navigate(a.url)
		c := code(t, wiki, a)
		if c.AuthTime != first.AuthTime {
			t.Errorf("SSO changed auth_time")
		}
		if d := kg.auditDetail("signin.sso", "decision"); d != "allow" {
			t.Errorf("SSO decision %q", d)
		}
		if r := kg.auditDetail("signin.sso", "reasons"); !strings.Contains(r, "office") {
			t.Errorf("SSO reasons %q should name the office network", r)
		}
	})

	var steppedUp idClaims
	t.Run("the same session from a new country is stepped up to a key, and says why", func(t *testing.T) {
		tb.from(szczecinIP)
		a := wiki.newRequest()
		tb.navigate(a.url)
		tb.waitLocation(kg.issuer + "/mfa/verify")
		if txt := tb.bodyText(); !strings.Contains(txt, "new country: PL") {
			t.Errorf("the step-up page does not say why: %s", txt)
		}
		if tb.eval("document.getElementById('code') ? 'yes' : 'no'") != "no" {
			t.Error("a TOTP code is offered for a phishing-pattern step-up")
		}
		// A second passes so the new auth_time is visibly later.
		waitNextSecond(first.AuthTime)
		tb.click("#use-key")
		steppedUp = code(t, wiki, a)
		if steppedUp.ACR != "phrh" || !slices.Contains(steppedUp.AMR, "hwk") || steppedUp.AuthTime <= first.AuthTime {
			t.Errorf("stepped-up token: acr %q amr %v auth_time %d (was %d)", steppedUp.ACR, steppedUp.AMR, steppedUp.AuthTime, first.AuthTime)
		}
		if r := kg.auditDetail("risk.step_up", "reasons"); !strings.Contains(r, "new country: PL") {
			t.Errorf("step-up audit reasons %q", r)
		}
	})

	t.Run("impossible travel is denied, alerted, and ends the session", func(t *testing.T) {
		tb.from(sydneyIP)
		before := cb.count()
		a := wiki.newRequest()
		tb.navigate(a.url)
		tb.waitFor("document.getElementById('reasons') !== null")
		if txt := tb.bodyText(); !strings.Contains(txt, "impossible travel") {
			t.Errorf("deny page: %s", txt)
		}
		if cb.count() != before {
			t.Fatal("the app got a code")
		}
		if r := kg.auditDetail("signin.denied", "reasons"); !strings.Contains(r, "impossible travel") || !strings.Contains(r, " km in ") {
			t.Errorf("denied audit reasons %q", r)
		}
		tb.navigate(kg.issuer + "/account")
		tb.waitLocation(kg.issuer + "/login")
		alert := hook.waitFor(t, "signin.denied")
		if !strings.Contains(alert.Details["reasons"], "impossible travel") {
			t.Errorf("alert details %v", alert.Details)
		}
	})

	t.Run("an app that denies risky sign-ins refuses instead of stepping up", func(t *testing.T) {
		tb.from("100.64.0.9")
		before := cb.count()
		a := treasury.newRequest()
		tb.navigate(a.url)
		tb.waitLocation(kg.issuer + "/login")
		tb.fill(map[string]string{"email": admin.email, "password": admin.password}, "form[action='/login'] button[type=submit]")
		tb.waitFor("document.getElementById('reasons') !== null")
		if txt := tb.bodyText(); !strings.Contains(txt, "new country: CH") || !strings.Contains(txt, "this app refuses") {
			t.Errorf("deny page: %s", txt)
		}
		if cb.count() != before {
			t.Fatal("the app got a code")
		}
	})

	t.Run("a phrh app with max_age forces a fresh key tap", func(t *testing.T) {
		tb.from(officeIP)
		a := payroll.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		browserSignIn(t, tb, kg.issuer, a, admin, "password+key")
		signedIn := code(t, payroll, a)
		// max_age=1: once a second has passed, the session is too old.
		waitNextSecond(signedIn.AuthTime + 1)
		a = payroll.newRequest(oauth2.SetAuthURLParam("max_age", "1"))
		tb.navigate(a.url)
		tb.waitLocation(kg.issuer + "/login")
		tb.fill(map[string]string{"email": admin.email, "password": admin.password}, "form[action='/login'] button[type=submit]")
		tb.waitLocation(kg.issuer + "/mfa/verify")
		tb.click("#use-key")
		fresh := code(t, payroll, a)
		if fresh.ACR != "phrh" || fresh.AuthTime <= signedIn.AuthTime {
			t.Errorf("max_age sign-in: acr %q auth_time %d (was %d)", fresh.ACR, fresh.AuthTime, signedIn.AuthTime)
		}
	})
}

// waitNextSecond waits until the wall clock is past unix second sec, so
// a later auth_time (whole seconds) is strictly greater.
func waitNextSecond(sec int64) {
	for time.Now().Unix() <= sec {
		time.Sleep(20 * time.Millisecond)
	}
}
