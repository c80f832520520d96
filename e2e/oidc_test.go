package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// registered is what `keygate client add --json` prints.
type registered struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// TestCodeFlowEndToEnd is the whole life of an app's integration: the
// employee enrols from a link the CLI printed, an app is registered
// with the CLI, a user signs in through the real pages, and a stock RP
// exchanges, verifies, refreshes, introspects, revokes and logs out. Then
// the server restarts and everything is still there.
func TestCodeFlowEndToEnd(t *testing.T) {
	// A 1 ms grace makes refresh-token reuse detectable at once.
	kg := startKeygate(t, t.TempDir(), "tokens:\n  refresh_grace: 1ms\n")
	if kg.enrollURL == "" {
		t.Fatalf("serve printed no enrolment URL:\n%s", kg.stdout)
	}
	ada := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ada@localhost"), "ada@localhost")

	const redirect = "http://127.0.0.1:9/callback"
	const afterLogout = "http://127.0.0.1:9/bye"
	var app registered
	kg.cliJSON(&app, "client", "add", "--name", "Support tool", "--redirect-uri", redirect, "--post-logout-redirect-uri", afterLogout)
	if app.ClientID == "" || len(app.ClientSecret) < 43 {
		t.Fatalf("client add printed %+v; want an id and a >=256-bit secret", app)
	}
	relying := newRP(t, kg.issuer, app.ClientID, app.ClientSecret, redirect)

	b := newBrowser(t, kg.issuer)
	a := relying.newRequest()
	code := a.callback(t, signIn(t, b, a, ada, "totp", nextCode(t, ada.totpSecret)), redirect)
	tok, idt, claims := relying.exchange(t, a, code)

	t.Run("the ID token tells how the user signed in", func(t *testing.T) {
		if claims.ACR != "mfa" || !slices.Equal(claims.AMR, []string{"pwd", "otp"}) {
			t.Errorf("acr %q amr %v, want mfa and [pwd otp]", claims.ACR, claims.AMR)
		}
		if claims.Email != ada.email || claims.SID == "" || claims.Sub == "" {
			t.Errorf("claims %+v", claims)
		}
		if age := time.Since(time.Unix(claims.AuthTime, 0)); age < 0 || age > time.Minute {
			t.Errorf("auth_time is %v ago", age)
		}
		if idt.Issuer != kg.issuer {
			t.Errorf("iss %q", idt.Issuer)
		}
	})

	t.Run("userinfo answers for the access token", func(t *testing.T) {
		info, err := relying.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		if info.Subject != claims.Sub || info.Email != ada.email {
			t.Errorf("userinfo %+v", info)
		}
	})

	t.Run("introspection says the access token is active", func(t *testing.T) {
		body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, tok.AccessToken)
		if body["active"] != true || body["sub"] != claims.Sub || body["client_id"] != app.ClientID {
			t.Errorf("introspection %v", body)
		}
		// What an RFC 9470 resource server checks before asking for step-up.
		if body["acr"] != "mfa" || body["auth_time"] != float64(claims.AuthTime) {
			t.Errorf("introspection lacks acr/auth_time: %v", body)
		}
	})

	t.Run("single sign-on skips the forms while the session lasts", func(t *testing.T) {
		a2 := relying.newRequest()
		code := a2.callback(t, b.get(a2.url), redirect)
		_, _, c2 := relying.exchange(t, a2, code)
		if c2.AuthTime != claims.AuthTime || c2.SID != claims.SID {
			t.Errorf("SSO changed auth_time or sid: %+v vs %+v", c2, claims)
		}
	})

	t.Run("prompt=login asks again, and a recovery code works once", func(t *testing.T) {
		a3 := relying.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		code := a3.callback(t, signIn(t, b, a3, ada, "recovery", ada.recovery[0]), redirect)
		_, _, c3 := relying.exchange(t, a3, code)
		if c3.AuthTime < claims.AuthTime {
			t.Errorf("re-authentication did not move auth_time")
		}
		a4 := relying.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		p := signIn(t, b, a4, ada, "recovery", ada.recovery[0])
		if p.location != "" || !strings.Contains(p.alert(), "already used") {
			t.Errorf("a used recovery code was accepted: %d %q", p.status, p.alert())
		}
	})

	t.Run("refresh rotates, and reusing an old refresh token revokes the family", func(t *testing.T) {
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for offline_access")
		}
		next, err := refresh(t.Context(), relying.cfg, tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
			t.Fatal("refresh did not rotate")
		}
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, next.AccessToken); body["active"] != true {
			t.Fatalf("refreshed access token inactive: %v", body)
		}
		// The grace window is 1 ms; wait until it has surely passed.
		time.Sleep(5 * time.Millisecond)
		if _, err := refresh(t.Context(), relying.cfg, tok.RefreshToken); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("reused refresh token: %v, want invalid_grant", err)
		}
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, next.AccessToken); body["active"] != false {
			t.Errorf("the family's newest access token survived reuse detection: %v", body)
		}
		if _, err := refresh(t.Context(), relying.cfg, next.RefreshToken); err == nil {
			t.Errorf("the family's newest refresh token survived reuse detection")
		}
	})

	t.Run("revocation ends an access token", func(t *testing.T) {
		a5 := relying.newRequest()
		code := a5.callback(t, b.get(a5.url), redirect)
		t5, _, _ := relying.exchange(t, a5, code)
		status, body := postForm(t, kg.issuer+"/oauth2/revoke", app.ClientID, app.ClientSecret,
			url.Values{"token": {t5.AccessToken}, "token_type_hint": {"access_token"}})
		if status != http.StatusOK {
			t.Fatalf("revoke: %d %v", status, body)
		}
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, t5.AccessToken); body["active"] != false {
			t.Errorf("revoked token still active: %v", body)
		}
	})

	t.Run("client credentials issue a service token", func(t *testing.T) {
		var svc registered
		kg.cliJSON(&svc, "client", "add", "--name", "Batch job", "--grant", "client_credentials")
		cc := clientcredentials.Config{ClientID: svc.ClientID, ClientSecret: svc.ClientSecret, TokenURL: kg.issuer + "/oauth2/token"}
		st, err := cc.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if body := introspect(t, kg.issuer, svc.ClientID, svc.ClientSecret, st.AccessToken); body["active"] != true {
			t.Errorf("service token inactive: %v", body)
		}
		// client_secret_post works as well as basic.
		cc.AuthStyle = oauth2.AuthStyleInParams
		if _, err := cc.Token(t.Context()); err != nil {
			t.Errorf("client_secret_post: %v", err)
		}
	})

	t.Run("logout ends the session and returns only to a registered URI", func(t *testing.T) {
		a6 := relying.newRequest()
		code := a6.callback(t, b.get(a6.url), redirect)
		t6, _, _ := relying.exchange(t, a6, code)
		raw, _ := t6.Extra("id_token").(string)
		evil := kg.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode()
		if p := b.get(evil); p.location != "" || p.status != http.StatusBadRequest {
			t.Fatalf("unregistered post-logout URI: %d location %q", p.status, p.location)
		}
		good := kg.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {afterLogout}, "state": {"s-123456789"}}.Encode()
		p := b.get(good)
		if p.location != afterLogout+"?state=s-123456789" {
			t.Fatalf("logout went to %q (%d)", p.location, p.status)
		}
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, t6.AccessToken); body["active"] != false {
			t.Errorf("a token of the ended session is still active")
		}
		if p := b.get(kg.issuer + "/account"); p.url.Path != "/login" {
			t.Errorf("after logout /account shows %s", p.url.Path)
		}
	})

	t.Run("data survives a restart", func(t *testing.T) {
		jwksBefore := readAll(t, mustGet(t, kg.issuer+"/oauth2/jwks").Body)
		kg.restart()
		// No administrator has finished enrolling (they enrol with a key):
		// serve keeps offering the link.
		if kg.enrollURL == "" {
			t.Error("serve printed no admin enrolment link although no administrator enrolled")
		}
		if jwks := readAll(t, mustGet(t, kg.issuer+"/oauth2/jwks").Body); jwks != jwksBefore {
			t.Error("signing keys changed across a restart")
		}
		b2 := newBrowser(t, kg.issuer)
		a7 := relying.newRequest()
		code := a7.callback(t, signIn(t, b2, a7, ada, "recovery", ada.recovery[1]), redirect)
		_, _, c7 := relying.exchange(t, a7, code)
		if c7.Sub != claims.Sub {
			t.Errorf("the user's id changed across a restart")
		}
	})

	t.Run("concurrent service tokens each get one audit event and stay valid", func(t *testing.T) {
		// Concurrent token requests share SQLite commits in the server;
		// each token must still be stored with exactly its own audit event.
		var svc registered
		kg.cliJSON(&svc, "client", "add", "--name", "Busy job", "--grant", "client_credentials")
		auditEvents := func() int {
			var v struct {
				OK     bool `json:"ok"`
				Events int  `json:"events"`
			}
			kg.cliJSON(&v, "audit", "verify")
			if !v.OK {
				t.Fatalf("audit verify: %+v", v)
			}
			return v.Events
		}
		before := auditEvents()
		cc := clientcredentials.Config{ClientID: svc.ClientID, ClientSecret: svc.ClientSecret, TokenURL: kg.issuer + "/oauth2/token"}
		const workers, each = 16, 15
		tokens := make(chan string, workers*each)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					tok, err := cc.Token(t.Context())
					if err != nil {
						t.Error(err)
						return
					}
					tokens <- tok.AccessToken
				}
			})
		}
		wg.Wait()
		close(tokens)
		seen := map[string]bool{}
		for tok := range tokens {
			if seen[tok] {
				t.Fatal("the same access token was issued twice")
			}
			seen[tok] = true
			if body := introspect(t, kg.issuer, svc.ClientID, svc.ClientSecret, tok); body["active"] != true {
				t.Fatalf("a concurrently issued token is inactive: %v", body)
			}
		}
		if len(seen) != workers*each {
			t.Fatalf("%d tokens issued, want %d", len(seen), workers*each)
		}
		if got := auditEvents() - before; got != workers*each {
			t.Errorf("%d audit events for %d tokens", got, workers*each)
		}
	})

	t.Run("the audit chain verifies and names what happened", func(t *testing.T) {
		var v struct {
			OK     bool `json:"ok"`
			Events int  `json:"events"`
		}
		kg.cliJSON(&v, "audit", "verify")
		if !v.OK || v.Events < 20 {
			t.Errorf("audit verify: %+v", v)
		}
	})

	t.Run("secrets never reach the log", func(t *testing.T) {
		logs := kg.stderr.String()
		for name, secret := range map[string]string{"client secret": app.ClientSecret, "password": ada.password,
			"TOTP secret": ada.totpSecret, "access token": tok.AccessToken, "refresh token": tok.RefreshToken,
			"recovery code": ada.recovery[2], "authorization code": code} {
			if strings.Contains(logs, secret) {
				t.Errorf("the %s appears in the server log", name)
			}
		}
	})
}

func mustGet(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
