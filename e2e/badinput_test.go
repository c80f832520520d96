package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// fixture is a server with one enrolled employee and one registered app.
type fixture struct {
	kg       *instance
	user     account
	app      registered
	relying  *rp
	redirect string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	kg := startKeygate(t, t.TempDir(), "")
	f := &fixture{kg: kg, redirect: "http://127.0.0.1:9/callback"}
	f.user = enroll(t, newBrowser(t, kg.issuer), kg.addUser("ada@localhost"), "ada@localhost")
	kg.cliJSON(&f.app, "client", "add", "--name", "App", "--redirect-uri", f.redirect)
	f.relying = newRP(t, kg.issuer, f.app.ClientID, f.app.ClientSecret, f.redirect)
	return f
}

// authorizeError returns the error an authorization request was answered
// with: via a redirect to the app (error param), or as a page when the
// app cannot be trusted with a redirect.
func authorizeQuery(t *testing.T, b *browser, issuer string, q url.Values) *page {
	t.Helper()
	return b.get(issuer + "/oauth2/authorize?" + q.Encode())
}

func validQuery(f *fixture) url.Values {
	return url.Values{
		"client_id": {f.app.ClientID}, "redirect_uri": {f.redirect}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}
}

func redirectError(t *testing.T, p *page, redirect string) string {
	t.Helper()
	if !strings.HasPrefix(p.location, redirect) {
		t.Fatalf("expected a redirect to the app, got %d %q", p.status, p.location)
	}
	u, _ := url.Parse(p.location)
	if u.Query().Get("code") != "" {
		t.Fatalf("a code was issued: %s", p.location)
	}
	return u.Query().Get("error")
}

func TestBadInputIsRefusedCleanly(t *testing.T) {
	f := newFixture(t)
	kg := f.kg
	b := newBrowser(t, kg.issuer)

	t.Run("an unknown client gets a page, never a redirect", func(t *testing.T) {
		q := validQuery(f)
		q.Set("client_id", "c_nobody")
		p := authorizeQuery(t, b, kg.issuer, q)
		if p.location != "" || p.status < 400 || p.status >= 500 || p.alert() == "" {
			t.Errorf("status %d location %q alert %q", p.status, p.location, p.alert())
		}
	})

	t.Run("an unregistered redirect URI gets a page, never a redirect", func(t *testing.T) {
		q := validQuery(f)
		q.Set("redirect_uri", "https://evil.example/callback")
		p := authorizeQuery(t, b, kg.issuer, q)
		if p.location != "" || p.status != http.StatusBadRequest {
			t.Errorf("status %d location %q", p.status, p.location)
		}
	})

	t.Run("a request without PKCE is refused", func(t *testing.T) {
		q := validQuery(f)
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		if e := redirectError(t, authorizeQuery(t, b, kg.issuer, q), f.redirect); e != "invalid_request" {
			t.Errorf("error %q", e)
		}
	})

	t.Run("PKCE plain is refused", func(t *testing.T) {
		q := validQuery(f)
		q.Set("code_challenge", strings.Repeat("a", 43))
		q.Set("code_challenge_method", "plain")
		if e := redirectError(t, authorizeQuery(t, b, kg.issuer, q), f.redirect); e != "invalid_request" {
			t.Errorf("error %q", e)
		}
	})

	t.Run("request objects are refused cleanly", func(t *testing.T) {
		q := validQuery(f)
		q.Set("request", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
		p := authorizeQuery(t, b, kg.issuer, q)
		if p.location != "" || p.status != http.StatusBadRequest || !strings.Contains(p.alert(), "request_not_supported") {
			t.Errorf("status %d location %q alert %q", p.status, p.location, p.alert())
		}
	})

	t.Run("prompt=none without a session answers login_required", func(t *testing.T) {
		q := validQuery(f)
		q.Set("prompt", "none")
		if e := redirectError(t, authorizeQuery(t, newBrowser(t, kg.issuer), kg.issuer, q), f.redirect); e != "login_required" {
			t.Errorf("error %q", e)
		}
	})

	t.Run("a wrong password is refused, and many are throttled", func(t *testing.T) {
		// Its own user, so the lock-out does not spill into other subtests.
		var nu struct {
			EnrollmentURL string `json:"enrollment_url"`
		}
		kg.cliJSON(&nu, "user", "add", "victim@localhost")
		victim := enroll(t, newBrowser(t, kg.issuer), nu.EnrollmentURL, "victim@localhost")
		wrong := victim
		wrong.password = "not the password at all"
		a := f.relying.newRequest()
		bb := newBrowser(t, kg.issuer)
		p := bb.get(a.url)
		for i := 0; i < 5; i++ {
			p = bb.submit(p, "/login", map[string]string{"email": wrong.email, "password": wrong.password})
			if p.status != http.StatusUnauthorized || !strings.Contains(p.alert(), "incorrect") {
				t.Fatalf("attempt %d: %d %q", i+1, p.status, p.alert())
			}
		}
		p = bb.submit(p, "/login", map[string]string{"email": victim.email, "password": victim.password})
		if p.status != http.StatusTooManyRequests || !strings.Contains(p.alert(), "Too many") {
			t.Errorf("after 5 failures even the right password should wait: %d %q", p.status, p.alert())
		}
	})

	t.Run("a form without its CSRF token is refused", func(t *testing.T) {
		a := f.relying.newRequest()
		bb := newBrowser(t, kg.issuer)
		p := bb.get(a.url)
		form := p.form("/login")
		form.Del("csrf_token")
		form.Set("email", "x@example.com")
		form.Set("password", "whatever")
		if p := bb.post(kg.issuer+"/login", form); p.status != http.StatusForbidden {
			t.Errorf("status %d", p.status)
		}
	})

	t.Run("token endpoint errors use the RFC 6749 codes", func(t *testing.T) {
		cases := []struct {
			name, id, secret string
			form             url.Values
			status           int
			code             string
		}{
			{"wrong secret", f.app.ClientID, "wrong-secret", url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
			{"unknown client", "c_nobody", "x", url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
			{"unknown grant", f.app.ClientID, f.app.ClientSecret, url.Values{"grant_type": {"urn:example:magic"}}, 400, "unsupported_grant_type"},
			{"grant the client may not use", f.app.ClientID, f.app.ClientSecret, url.Values{"grant_type": {"client_credentials"}}, 400, "unauthorized_client"},
			{"password grant is not offered", f.app.ClientID, f.app.ClientSecret, url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, 400, "unsupported_grant_type"},
			{"made-up code", f.app.ClientID, f.app.ClientSecret, url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {f.redirect}, "code_verifier": {strings.Repeat("v", 43)}}, 400, "invalid_grant"},
		}
		for _, c := range cases {
			status, body := postForm(t, kg.issuer+"/oauth2/token", c.id, c.secret, c.form)
			if status != c.status || body["error"] != c.code {
				t.Errorf("%s: %d %v, want %d %s", c.name, status, body["error"], c.status, c.code)
			}
		}
	})

	t.Run("malformed and oversized bodies are refused", func(t *testing.T) {
		resp, err := http.Post(kg.issuer+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=%zz&&="))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("malformed body: %d", resp.StatusCode)
		}
		resp, err = http.Post(kg.issuer+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type="+strings.Repeat("a", 1<<20)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body: %d", resp.StatusCode)
		}
	})

	t.Run("a replayed TOTP code is refused", func(t *testing.T) {
		code := nextCode(t, f.user.totpSecret)
		a := f.relying.newRequest()
		a.callback(t, signIn(t, newBrowser(t, kg.issuer), a, f.user, "totp", code), f.redirect)
		a2 := f.relying.newRequest()
		p := signIn(t, newBrowser(t, kg.issuer), a2, f.user, "totp", code)
		if p.location != "" || !strings.Contains(p.alert(), "already used") {
			t.Errorf("replayed code: %d %q", p.status, p.alert())
		}
	})

	t.Run("a reused authorization code is refused and revokes what it issued", func(t *testing.T) {
		bb := newBrowser(t, kg.issuer)
		a := f.relying.newRequest()
		code := a.callback(t, signIn(t, bb, a, f.user, "recovery", f.user.recovery[0]), f.redirect)
		tok, _, _ := f.relying.exchange(t, a, code)
		_, err := f.relying.cfg.Exchange(t.Context(), code, oauth2.VerifierOption(a.verifier))
		if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("second exchange: %v", err)
		}
		if body := introspect(t, kg.issuer, f.app.ClientID, f.app.ClientSecret, tok.AccessToken); body["active"] != false {
			t.Errorf("the first exchange's token survived the code's reuse")
		}
	})

	t.Run("a phr app never gets a token from a TOTP sign-in", func(t *testing.T) {
		var strict registered
		kg.cliJSON(&strict, "client", "add", "--name", "Admin tool", "--redirect-uri", f.redirect, "--acr", "phr")
		strictRP := newRP(t, kg.issuer, strict.ClientID, strict.ClientSecret, f.redirect)
		a := strictRP.newRequest()
		bb := newBrowser(t, kg.issuer)
		p := bb.get(a.url)
		csrf := p.form("/login").Get("csrf_token")
		p = bb.submit(p, "/login", map[string]string{"email": f.user.email, "password": f.user.password})
		if p.url.Path != "/mfa/verify" || !strings.Contains(p.alert(), "needs a security key") {
			t.Fatalf("after the password: %s %q", p.url.Path, p.alert())
		}
		if p.byID("code") != nil {
			t.Error("the page offers a TOTP code although the app requires a key")
		}
		// Posting a code anyway is refused by the server too.
		flowID := p.url.Query().Get("flow")
		res := bb.post(kg.issuer+"/mfa/totp", url.Values{"flow": {flowID}, "code": {nextCode(t, f.user.totpSecret)}, "csrf_token": {csrf}})
		if res.location != "" || res.status != http.StatusForbidden {
			t.Errorf("a TOTP code for a phr app: %d %q", res.status, res.location)
		}
	})

	t.Run("nothing stored was harmed", func(t *testing.T) {
		var v struct {
			OK bool `json:"ok"`
		}
		kg.cliJSON(&v, "audit", "verify")
		var users []map[string]any
		kg.cliJSON(&users, "user", "list")
		var clients []map[string]any
		kg.cliJSON(&clients, "client", "list")
		// The administrator serve created, the employee, and one the
		// bad input above added.
		if !v.OK || len(users) != 3 || len(clients) != 2 {
			t.Errorf("audit ok=%v users=%d clients=%d", v.OK, len(users), len(clients))
		}
		// The employee can still sign in.
		a := f.relying.newRequest()
		a.callback(t, signIn(t, newBrowser(t, kg.issuer), a, f.user, "recovery", f.user.recovery[1]), f.redirect)
	})
}

func TestCLIContract(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "")

	t.Run("user add prints the enrolment link as JSON", func(t *testing.T) {
		out := kg.cli("user", "add", "Dana@Example.com", "--name", "Dana", "--json")
		if !strings.Contains(out, `"enrollment_url"`) || !strings.Contains(out, `"expires_at"`) || !strings.Contains(out, `"user_id"`) {
			t.Fatalf("json keys: %s", out)
		}
		if !strings.Contains(out, kg.issuer+"/enroll?token=") || !strings.Contains(out, "dana@example.com") {
			t.Errorf("output: %s", out)
		}
	})

	t.Run("bad usage exits 2 with a message", func(t *testing.T) {
		cases := [][]string{
			{"user", "add"},
			{"user", "add", "not-an-email"},
			{"client", "add", "--name", "x", "--acr", "weak"},
			{"client", "add", "--name", "x", "--redirect-uri", "http://example.com/cb"},
			{"client", "add", "--name", "x", "--grant", "implicit"},
			{"frobnicate"},
			{"user", "suspend", "nobody@example.com"},
		}
		for _, args := range cases {
			_, stderr, code := kg.cliCode(args...)
			if code != 2 || !strings.HasPrefix(stderr, "keygate: ") {
				t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			}
		}
	})

	t.Run("a duplicate user is refused and the first kept", func(t *testing.T) {
		_, stderr, code := kg.cliCode("user", "add", "dana@example.com")
		if code != 2 || !strings.Contains(stderr, "already exists") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})

	t.Run("suspend revokes everything and introspection agrees", func(t *testing.T) {
		var s map[string]any
		kg.cliJSON(&s, "user", "suspend", "dana@example.com")
		if s["email"] != "dana@example.com" {
			t.Errorf("%v", s)
		}
	})

	t.Run("version and backup", func(t *testing.T) {
		if out := kg.cli("version"); !strings.HasPrefix(out, "keygate ") {
			t.Errorf("version: %q", out)
		}
		dst := t.TempDir() + "/backup.db"
		kg.cli("backup", dst)
		if _, _, code := kg.cliCode("backup", dst); code != 2 {
			t.Errorf("backup over an existing file: exit %d", code)
		}
	})
}
