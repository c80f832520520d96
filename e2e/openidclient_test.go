package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestOpenIDClientNode runs openid-client 6 (panva's, the OIDC client most
// Node.js apps use) with its default settings against the built binary,
// through keygate's real pages: discovery; the code flow with PKCE, plain
// and pushed (PAR), after a full sign-in and on single sign-on; the ID
// token with its signature checked and with the library's default checks;
// userinfo, refresh, introspection and revocation with the library's
// default client authentication (client_secret_post); RP-initiated logout,
// and the back-channel logout it sends the app. keygate serves TLS here:
// openid-client refuses plain http unless told to allow it.
func TestOpenIDClientNode(t *testing.T) {
	cert, key := selfSigned(t)
	certFile, keyFile := writeKeyPair(t, t.TempDir(), cert, key)
	rp := startNodeRP(t, certFile)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	issuer := fmt.Sprintf("https://localhost:%d", port)
	trust := trusting(t, cert)
	kg := startKeygateConfig(t, t.TempDir(), issuer, fmt.Sprintf("issuer: %q\nlisten: %q\ntls:\n  cert: %q\n  key: %q\n",
		issuer, addr, certFile, keyFile), trust)
	browse := func() *browser {
		b := newBrowser(t, issuer)
		b.c.Transport = trust.Transport
		return b
	}
	ada := enroll(t, browse(), kg.addUser("ada@localhost"), "ada@localhost")
	grace := enroll(t, browse(), kg.addUser("grace@localhost"), "grace@localhost")

	lr := newLogoutReceiverVia(t, issuer, trust)
	const redirect = "http://127.0.0.1:9/callback"
	const afterLogout = "http://127.0.0.1:9/signed-out"
	var app registered
	kg.cliJSON(&app, "client", "add", "--name", "Node app", "--redirect-uri", redirect,
		"--post-logout-redirect-uri", afterLogout, "--backchannel-logout-uri", lr.url)

	const scope = "openid email profile offline_access"
	authorize := func(t *testing.T, id string, args map[string]any) nodeAnswer {
		t.Helper()
		args["id"], args["redirect_uri"], args["scope"] = id, redirect, scope
		return rp.call(t, "authorize", args)
	}
	callback := func(t *testing.T, id string, p *page, config string) nodeAnswer {
		t.Helper()
		if !strings.HasPrefix(p.location, redirect+"?") {
			t.Fatalf("expected a redirect to the app, got %d at %s (location %q): %s %s", p.status, p.url, p.location, p.alert(), tail(p.body, 300))
		}
		return rp.call(t, "callback", map[string]any{"id": id, "url": p.location, "config": config})
	}

	t.Run("discovery", func(t *testing.T) {
		d := rp.call(t, "discover", map[string]any{"issuer": issuer, "client_id": app.ClientID, "client_secret": app.ClientSecret})
		if d.Metadata["issuer"] != issuer || d.Metadata["token_endpoint"] != issuer+"/oauth2/token" || !d.SupportsPKCE {
			t.Errorf("discovered %v (PKCE %v)", d.Metadata, d.SupportsPKCE)
		}
	})

	// The code flow as openid-client's documentation writes it: PKCE S256
	// and, since keygate advertises PKCE, no state and no nonce.
	b := browse()
	var first nodeAnswer
	t.Run("code flow with PKCE after a full sign-in, ID token signature verified", func(t *testing.T) {
		a := authorize(t, "plain", map[string]any{})
		u, err := url.Parse(a.URL)
		if err != nil {
			t.Fatal(err)
		}
		if q := u.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Has("state") {
			t.Fatalf("authorization URL %s", a.URL)
		}
		p := signIn(t, b, authRequest{url: a.URL}, ada, "totp", nextCode(t, ada.totpSecret))
		first = callback(t, "plain", p, "verified")
		c := first.Claims
		if c["iss"] != issuer || !audience(c["aud"], app.ClientID) || c["email"] != ada.email || c["sub"] == nil || c["sid"] == nil {
			t.Errorf("ID token claims %v", c)
		}
		if amr, _ := c["amr"].([]any); c["acr"] != "mfa" || !slices.Equal(amr, []any{"pwd", "otp"}) {
			t.Errorf("acr %v amr %v, want mfa and [pwd otp]", c["acr"], c["amr"])
		}
		if first.AccessToken == "" || first.RefreshToken == "" || !strings.EqualFold(first.TokenType, "bearer") {
			t.Errorf("token response %+v", first)
		}
		// Checking the signature is what fetches the JWKS.
		if !slices.ContainsFunc(first.Wire, func(w wireRequest) bool { return w.URL == issuer+"/oauth2/jwks" }) {
			t.Errorf("the ID token's signature was not checked: requests %+v", first.Wire)
		}
	})

	t.Run("code flow with state and nonce on single sign-on, default ID token checks", func(t *testing.T) {
		need(t, first.AccessToken, "the first sign-in")
		a := authorize(t, "sso", map[string]any{"state": true, "nonce": true})
		g := callback(t, "sso", b.get(a.URL), "default")
		if g.Claims["nonce"] != a.Nonce || g.Claims["sid"] != first.Claims["sid"] || g.Claims["auth_time"] != first.Claims["auth_time"] {
			t.Errorf("single sign-on ID token %v, first %v", g.Claims, first.Claims)
		}
	})

	t.Run("userinfo", func(t *testing.T) {
		need(t, first.AccessToken, "the first sign-in's tokens")
		u := rp.call(t, "userinfo", map[string]any{"access_token": first.AccessToken, "sub": first.Claims["sub"]})
		if u.UserInfo["sub"] != first.Claims["sub"] || u.UserInfo["email"] != ada.email {
			t.Errorf("userinfo %v", u.UserInfo)
		}
	})

	var refreshed nodeAnswer
	t.Run("refresh rotates the tokens", func(t *testing.T) {
		need(t, first.RefreshToken, "the first sign-in's tokens")
		refreshed = rp.call(t, "refresh", map[string]any{"refresh_token": first.RefreshToken, "config": "verified"})
		if refreshed.AccessToken == "" || refreshed.AccessToken == first.AccessToken ||
			refreshed.RefreshToken == "" || refreshed.RefreshToken == first.RefreshToken {
			t.Fatalf("refresh did not rotate: %+v", refreshed)
		}
		// OIDC Core 12.2: a new ID token names the same user and sign-in.
		if c := refreshed.Claims; c["sub"] != first.Claims["sub"] || c["auth_time"] != first.Claims["auth_time"] || c["iss"] != issuer {
			t.Errorf("refreshed ID token claims %v, first %v", c, first.Claims)
		}
	})

	// clientSecretPost: the client authenticated in the form, not with
	// the Authorization header.
	clientSecretPost := func(t *testing.T, a nodeAnswer, endpoint string) {
		t.Helper()
		i := slices.IndexFunc(a.Wire, func(w wireRequest) bool { return w.URL == endpoint })
		if i < 0 {
			t.Fatalf("no request to %s: %+v", endpoint, a.Wire)
		}
		if w := a.Wire[i]; w.Authorization || !slices.Contains(w.Form, "client_id") || !slices.Contains(w.Form, "client_secret") {
			t.Errorf("%s was not client_secret_post: %+v", endpoint, w)
		}
	}

	t.Run("introspection with client_secret_post", func(t *testing.T) {
		need(t, refreshed.AccessToken, "the refreshed tokens")
		in := rp.call(t, "introspect", map[string]any{"token": refreshed.AccessToken})
		clientSecretPost(t, in, issuer+"/oauth2/introspect")
		if r := in.Introspection; r["active"] != true || r["client_id"] != app.ClientID || r["sub"] != first.Claims["sub"] || r["token_use"] != "access_token" {
			t.Errorf("introspection of the access token %v", r)
		}
		if r := rp.call(t, "introspect", map[string]any{"token": refreshed.RefreshToken}).Introspection; r["active"] != true || r["token_use"] != "refresh_token" {
			t.Errorf("introspection of the refresh token %v", r)
		}
	})

	t.Run("revocation with client_secret_post", func(t *testing.T) {
		need(t, refreshed.AccessToken, "the refreshed tokens")
		rv := rp.call(t, "revoke", map[string]any{"token": refreshed.AccessToken})
		clientSecretPost(t, rv, issuer+"/oauth2/revoke")
		if r := rp.call(t, "introspect", map[string]any{"token": refreshed.AccessToken}).Introspection; r["active"] != false {
			t.Errorf("a revoked access token introspects as %v", r)
		}
		rp.call(t, "revoke", map[string]any{"token": refreshed.RefreshToken})
		if r := rp.try(t, "refresh", map[string]any{"refresh_token": refreshed.RefreshToken, "config": "default"}); r.OK || r.Error.Error != "invalid_grant" {
			t.Errorf("a revoked refresh token: ok %v, error %s", r.OK, r.Error)
		}
	})

	// Pushed authorization requests in a second browser, for another user.
	b2 := browse()
	var pushed nodeAnswer
	parURL := func(t *testing.T, a nodeAnswer) {
		t.Helper()
		u, err := url.Parse(a.URL)
		if err != nil {
			t.Fatal(err)
		}
		if q := u.Query(); q.Get("request_uri") == "" || q.Get("client_id") != app.ClientID || q.Has("code_challenge") {
			t.Fatalf("PAR authorization URL %s", a.URL)
		}
		clientSecretPost(t, a, issuer+"/oauth2/par")
	}
	t.Run("PAR after a full sign-in", func(t *testing.T) {
		a := authorize(t, "par-full", map[string]any{"par": true})
		parURL(t, a)
		pushed = callback(t, "par-full", signIn(t, b2, authRequest{url: a.URL}, grace, "totp", nextCode(t, grace.totpSecret)), "verified")
		if pushed.Claims["email"] != grace.email || pushed.Claims["acr"] != "mfa" {
			t.Errorf("ID token claims %v", pushed.Claims)
		}
	})

	t.Run("PAR on single sign-on", func(t *testing.T) {
		need(t, pushed.AccessToken, "the sign-in with PAR")
		a := authorize(t, "par-sso", map[string]any{"par": true, "state": true, "nonce": true})
		parURL(t, a)
		g := callback(t, "par-sso", b2.get(a.URL), "verified")
		if g.Claims["email"] != grace.email || g.Claims["nonce"] != a.Nonce || g.Claims["sid"] != pushed.Claims["sid"] {
			t.Errorf("single sign-on ID token %v, first %v", g.Claims, pushed.Claims)
		}
		pushed = g
	})

	t.Run("RP-initiated logout with id_token_hint, and back-channel logout", func(t *testing.T) {
		need(t, pushed.IDToken, "grace's tokens")
		e := rp.call(t, "end_session", map[string]any{"id_token_hint": pushed.IDToken, "post_logout_redirect_uri": afterLogout, "state": "s-1234567890"})
		if !strings.HasPrefix(e.URL, issuer+"/oauth2/logout?") {
			t.Fatalf("end-session URL %s", e.URL)
		}
		if p := b2.get(e.URL); p.location != afterLogout+"?state=s-1234567890" {
			t.Fatalf("logout went to %q (%d): %s", p.location, p.status, p.alert())
		}
		if p := b2.get(issuer + "/account"); p.url.Path != "/login" {
			t.Errorf("after logout /account shows %s", p.url.Path)
		}
		if r := rp.call(t, "introspect", map[string]any{"token": pushed.AccessToken}).Introspection; r["active"] != false {
			t.Errorf("a token of the ended session introspects as %v", r)
		}

		sid := pushed.Claims["sid"]
		got, _ := lr.waitFor(t, func(c map[string]any) bool { return c["sid"] == sid })
		events, _ := got["events"].(map[string]any)
		if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok ||
			got["iss"] != issuer || !audience(got["aud"], app.ClientID) || got["sub"] != pushed.Claims["sub"] ||
			got["iat"] == nil || got["jti"] == nil || got["nonce"] != nil {
			t.Errorf("logout token claims %v", got)
		}

		// Only grace's session ended: ada's still signs her in.
		a := authorize(t, "after-logout", map[string]any{})
		if g := callback(t, "after-logout", b.get(a.URL), "default"); g.Claims["sid"] != first.Claims["sid"] {
			t.Errorf("ada's session changed: %v", g.Claims)
		}
	})

	// Silent sign-in after the logout: the app is told login_required as
	// an authorization error it can act on.
	t.Run("prompt=none without a session answers login_required", func(t *testing.T) {
		a := authorize(t, "silent", map[string]any{"params": map[string]string{"prompt": "none"}})
		p := b2.get(a.URL)
		if !strings.HasPrefix(p.location, redirect+"?") {
			t.Fatalf("expected a redirect to the app, got %d at %s: %s", p.status, p.url, p.alert())
		}
		r := rp.try(t, "callback", map[string]any{"id": "silent", "url": p.location, "config": "default"})
		if r.OK || r.Error.Name != "AuthorizationResponseError" || r.Error.Error != "login_required" {
			t.Errorf("callback: ok %v, error %s; want AuthorizationResponseError login_required", r.OK, r.Error)
		}
	})
}

// need fails a step whose earlier one did not get what it needs.
func need(t *testing.T, got, what string) {
	t.Helper()
	if got == "" {
		t.Fatalf("needs %s, which an earlier step did not get", what)
	}
}

// audience reports whether a JWT's aud, a string or an array, names id.
func audience(aud any, id string) bool {
	if list, ok := aud.([]any); ok {
		return slices.Contains(list, any(id))
	}
	return aud == id
}
