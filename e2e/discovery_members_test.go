package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The discovery test's checks, one method for each group of members.

func (tr *truth) responseTypes(t *testing.T) {
	tr.d.each(t, "response_types_supported", map[string]func(*testing.T){
		"code": func(t *testing.T) {
			// Every grant here is one; a response type not advertised is refused.
			a := tr.request(tr.conf, allScopes, url.Values{"response_type": {"token"}})
			if q := a.response(t, tr.b.get(a.url(tr.authz))); q.Get("error") != "unsupported_response_type" || q.Has("access_token") {
				t.Errorf("response_type=token: %v", q)
			}
		},
	})
	tr.d.each(t, "response_modes_supported", map[string]func(*testing.T){
		"query": func(t *testing.T) { tr.grant(t, tr.conf, allScopes, url.Values{"response_mode": {"query"}}) },
	})
}

func (tr *truth) tokenAuth(t *testing.T) {
	codeAndRefresh := func(t *testing.T, method string, app registered) {
		a := tr.request(app, allScopes, nil)
		body := tr.redeem(t, method, app, a, tr.codeFor(t, a))
		tr.verify(t, app, body["id_token"])
		if status, r := tr.refresh(t, method, app, body["refresh_token"]); status != http.StatusOK {
			t.Errorf("refresh with %s: %d %v", method, status, r)
		}
	}
	tr.d.each(t, "token_endpoint_auth_methods_supported", map[string]func(*testing.T){
		"client_secret_basic": func(t *testing.T) { codeAndRefresh(t, "client_secret_basic", tr.conf) },
		"client_secret_post":  func(t *testing.T) { codeAndRefresh(t, "client_secret_post", tr.conf) },
		"none": func(t *testing.T) {
			codeAndRefresh(t, "none", tr.pub)
			// A confidential app may not leave its secret out.
			a := tr.request(tr.conf, allScopes, nil)
			status, r := clientPost(t, tr.tokenEP, "none", tr.conf.ClientID, "", url.Values{"grant_type": {"authorization_code"},
				"code": {tr.codeFor(t, a)}, "redirect_uri": {truthRedirect}, "code_verifier": {a.verifier}})
			if status != http.StatusUnauthorized || r["error"] != "invalid_client" {
				t.Errorf("a confidential app without its secret: %d %v", status, r)
			}
		},
	})
}

func (tr *truth) grants(t *testing.T) {
	tr.d.each(t, "grant_types_supported", map[string]func(*testing.T){
		"authorization_code": func(t *testing.T) {
			if tr.tokens["token_type"] != "bearer" || tr.tokens["expires_in"] == nil {
				t.Errorf("token response %v", tr.tokens)
			}
		},
		"refresh_token": func(t *testing.T) {
			status, r := tr.refresh(t, "client_secret_basic", tr.conf, tr.tokens["refresh_token"])
			if status != http.StatusOK || r["refresh_token"] == tr.tokens["refresh_token"] {
				t.Fatalf("refresh: %d %v", status, r)
			}
			c := tr.verify(t, tr.conf, r["id_token"])
			if c["sub"] != tr.claims["sub"] || c["sid"] != tr.claims["sid"] || c["auth_time"] != tr.claims["auth_time"] || c["nonce"] != nil {
				t.Errorf("the refreshed ID token %v, the first %v", c, tr.claims)
			}
			tr.tokens = r
		},
		"client_credentials": func(t *testing.T) {
			status, r := clientPost(t, tr.tokenEP, "client_secret_basic", tr.svc.ClientID, tr.svc.ClientSecret, url.Values{"grant_type": {"client_credentials"}})
			if status != http.StatusOK || r["access_token"] == nil || r["id_token"] != nil || r["refresh_token"] != nil {
				t.Errorf("client credentials: %d %v", status, r)
			}
		},
	})
}

func (tr *truth) codeChallenges(t *testing.T) {
	tr.d.each(t, "code_challenge_methods_supported", map[string]func(*testing.T){
		"S256": func(t *testing.T) {
			a := tr.request(tr.conf, allScopes, nil)
			other := oauth2.GenerateVerifier()
			if status, r := clientPost(t, tr.tokenEP, "client_secret_basic", tr.conf.ClientID, tr.conf.ClientSecret, url.Values{"grant_type": {"authorization_code"},
				"code": {tr.codeFor(t, a)}, "redirect_uri": {truthRedirect}, "code_verifier": {other}}); status != http.StatusBadRequest || r["error"] != "invalid_grant" {
				t.Errorf("a code redeemed with another verifier: %d %v", status, r)
			}
			plain := tr.request(tr.conf, allScopes, url.Values{"code_challenge_method": {"plain"}, "code_challenge": {other}})
			if q := plain.response(t, tr.b.get(plain.url(tr.authz))); q.Get("error") != "invalid_request" {
				t.Errorf("plain, which is not advertised: %v", q)
			}
		},
	})
}

func (tr *truth) scopes(t *testing.T) {
	tr.d.each(t, "scopes_supported", map[string]func(*testing.T){
		"openid": func(t *testing.T) {
			if tr.idToken == "" {
				t.Error("no ID token with openid")
			}
			if body := tr.grant(t, tr.conf, "email", url.Values{"nonce": {""}}); body["id_token"] != nil {
				t.Error("an ID token without openid")
			}
		},
		"email": func(t *testing.T) {
			if tr.claims["email"] != tr.ada.email || tr.claims["email_verified"] != true {
				t.Errorf("email claims %v", tr.claims)
			}
			if c := tr.verify(t, tr.conf, tr.grant(t, tr.conf, "openid", nil)["id_token"]); c["email"] != nil || c["name"] != nil {
				t.Errorf("claims of scopes not asked for: %v", c)
			}
		},
		"profile": func(t *testing.T) {
			if tr.claims["name"] != "Ada Lovelace" || tr.claims["preferred_username"] != tr.ada.email {
				t.Errorf("name %v, preferred_username %v", tr.claims["name"], tr.claims["preferred_username"])
			}
		},
		"groups": func(t *testing.T) {
			if g, _ := tr.claims["groups"].([]any); len(g) != 1 || g[0] != "engineering" {
				t.Errorf("groups %v", tr.claims["groups"])
			}
			if c := tr.verify(t, tr.conf, tr.grant(t, tr.conf, "openid profile", nil)["id_token"]); c["groups"] != nil {
				t.Errorf("groups without the groups scope: %v", c)
			}
		},
		"offline_access": func(t *testing.T) {
			if tr.tokens["refresh_token"] == nil {
				t.Error("no refresh token with offline_access")
			}
			if body := tr.grant(t, tr.conf, "openid email", nil); body["refresh_token"] != nil {
				t.Error("a refresh token without offline_access")
			}
		},
	})
}

func (tr *truth) claimsAndSigning(t *testing.T) {
	c := tr.claims
	num := func(k string) float64 { f, _ := c[k].(float64); return f }
	aud, _ := c["aud"].([]any)
	amr, _ := c["amr"].([]any)
	holds := map[string]bool{
		"iss": c["iss"] == tr.kg.issuer, "sub": c["sub"] != nil && c["sub"] != "",
		"aud": c["aud"] == tr.conf.ClientID || len(aud) == 1 && aud[0] == tr.conf.ClientID,
		"exp": num("exp") > float64(time.Now().Unix()), "iat": num("iat") > 0 && num("iat") < num("exp"),
		"auth_time": num("auth_time") > 0 && num("auth_time") <= num("iat"),
		"nonce":     c["nonce"] == tr.first.params.Get("nonce"),
		"acr":       c["acr"] == "mfa", "amr": len(amr) == 2 && amr[0] == "pwd" && amr[1] == "otp",
		"sid":   c["sid"] != nil && c["sid"] != "",
		"email": c["email"] == tr.ada.email, "email_verified": c["email_verified"] == true,
		"name": c["name"] == "Ada Lovelace", "preferred_username": c["preferred_username"] == tr.ada.email,
		"groups": func() bool { g, _ := c["groups"].([]any); return len(g) == 1 && g[0] == "engineering" }(),
	}
	checks := map[string]func(*testing.T){}
	for name, ok := range holds {
		checks[name] = func(t *testing.T) {
			if !ok {
				t.Errorf("the ID token's %s is %v", name, c[name])
			}
		}
	}
	tr.d.each(t, "claims_supported", checks)
	tr.d.each(t, "id_token_signing_alg_values_supported", map[string]func(*testing.T){
		// The default: an app registered without --id-token-alg.
		"RS256": func(t *testing.T) {
			for _, raw := range []any{tr.idToken, tr.tokens["id_token"]} {
				s, _ := raw.(string)
				if h := jwtHeader(t, s); h["alg"] != "RS256" || tr.publishedAlg(t, h["kid"]) != "RS256" {
					t.Errorf("ID token header %v", h)
				}
			}
		},
		// An app registered with --id-token-alg ES256, from the code and
		// from a refresh, verified by go-oidc's verifier as discovery
		// configures it.
		"ES256": func(t *testing.T) {
			p, err := oidc.NewProvider(t.Context(), tr.kg.issuer)
			if err != nil {
				t.Fatal(err)
			}
			v := p.Verifier(&oidc.Config{ClientID: tr.es256.ClientID})
			first := tr.grant(t, tr.es256, "openid offline_access", nil)
			status, next := tr.refresh(t, "client_secret_basic", tr.es256, first["refresh_token"])
			if status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, next)
			}
			for _, raw := range []any{first["id_token"], next["id_token"]} {
				s, _ := raw.(string)
				if h := jwtHeader(t, s); h["alg"] != "ES256" || tr.publishedAlg(t, h["kid"]) != "ES256" {
					t.Errorf("ID token header %v", h)
				}
				if c := idTokenClaims(t, v, s); c["sub"] != tr.claims["sub"] {
					t.Errorf("sub %v, want %v", c["sub"], tr.claims["sub"])
				}
			}
		},
	})
	tr.d.each(t, "subject_types_supported", map[string]func(*testing.T){
		"public": func(t *testing.T) {
			if o := tr.verify(t, tr.other, tr.grant(t, tr.other, allScopes, nil)["id_token"]); o["sub"] != c["sub"] {
				t.Errorf("sub %v for one app, %v for another", c["sub"], o["sub"])
			}
		},
	})
}

func (tr *truth) acrAndPrompt(t *testing.T) {
	tr.d.each(t, "acr_values_supported", map[string]func(*testing.T){
		"mfa": func(t *testing.T) {
			if c := tr.verify(t, tr.conf, tr.grant(t, tr.conf, allScopes, url.Values{"acr_values": {"mfa"}})["id_token"]); c["acr"] != "mfa" {
				t.Errorf("acr %v", c["acr"])
			}
		},
		// A security key proves these (TestSecurityKeysInChromium); an
		// authenticator app's sign-in must not be taken for them.
		"phr":  func(t *testing.T) { tr.keyRequired(t, "phr") },
		"phrh": func(t *testing.T) { tr.keyRequired(t, "phrh") },
	})
	tr.d.each(t, "prompt_values_supported", map[string]func(*testing.T){
		"none": func(t *testing.T) {
			tr.grant(t, tr.conf, allScopes, url.Values{"prompt": {"none"}})
			a := tr.request(tr.conf, allScopes, url.Values{"prompt": {"none"}})
			if q := a.response(t, newBrowser(t, tr.kg.issuer).get(a.url(tr.authz))); q.Get("error") != "login_required" {
				t.Errorf("prompt=none without a session: %v", q)
			}
		},
		"login": func(t *testing.T) {
			a := tr.request(tr.conf, allScopes, url.Values{"prompt": {"login"}})
			if p := tr.b.get(a.url(tr.authz)); p.location != "" || p.url.Path != "/login" || p.form("/login").Get("csrf_token") == "" {
				t.Errorf("prompt=login in a signed-in browser: %d at %s (location %q)", p.status, p.url, p.location)
			}
		},
	})
}

// keyRequired asks for acr_values=acr in the browser signed in with an
// authenticator app: keygate asks for a security key, and the app gets no
// code for the weaker sign-in.
func (tr *truth) keyRequired(t *testing.T, acr string) {
	a := tr.request(tr.conf, "openid", url.Values{"acr_values": {acr}})
	p := tr.b.get(a.url(tr.authz))
	if p.location != "" {
		t.Fatalf("acr_values=%s answered the app after an authenticator app's sign-in: %s", acr, p.location)
	}
	if !strings.Contains(p.alert(), "needs a security key") {
		t.Errorf("acr_values=%s: %d at %s does not ask for a security key: %q", acr, p.status, p.url, p.alert())
	}
}

func (tr *truth) userinfo(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		status, info := userinfoCall(t, method, tr.userEP, tr.tokens["access_token"])
		if status != http.StatusOK || info["sub"] != tr.claims["sub"] || info["email"] != tr.ada.email || info["name"] != "Ada Lovelace" {
			t.Errorf("userinfo %s: %d %v", method, status, info)
		}
	}
}

func (tr *truth) introspection(t *testing.T) {
	introspectWith := func(t *testing.T, method string) {
		status, body := clientPost(t, tr.introEP, method, tr.conf.ClientID, tr.conf.ClientSecret, url.Values{"token": {tr.tokens["access_token"].(string)}})
		if status != http.StatusOK || body["active"] != true || body["client_id"] != tr.conf.ClientID {
			t.Errorf("introspection with %s: %d %v", method, status, body)
		}
	}
	tr.d.each(t, "introspection_endpoint_auth_methods_supported", map[string]func(*testing.T){
		"client_secret_basic": func(t *testing.T) { introspectWith(t, "client_secret_basic") },
		"client_secret_post":  func(t *testing.T) { introspectWith(t, "client_secret_post") },
	})
	// Not advertised: a public app cannot introspect.
	if status, r := clientPost(t, tr.introEP, "none", tr.pub.ClientID, "", url.Values{"token": {tr.tokens["access_token"].(string)}}); status == http.StatusOK {
		t.Errorf("a public app introspected: %v", r)
	}
}

func (tr *truth) revocation(t *testing.T) {
	revoke := func(t *testing.T, method string, app registered, hint string) {
		a := tr.request(app, allScopes, nil)
		body := tr.redeem(t, method, app, a, tr.codeFor(t, a))
		token, _ := body[hint].(string)
		if status, r := clientPost(t, tr.revokeEP, method, app.ClientID, app.ClientSecret, url.Values{"token": {token}, "token_type_hint": {hint}}); status != http.StatusOK {
			t.Fatalf("revoke with %s: %d %v", method, status, r)
		}
		switch hint {
		case "access_token":
			if tr.active(t, token) {
				t.Error("the revoked access token is still active")
			}
		case "refresh_token":
			if status, r := tr.refresh(t, method, app, token); status != http.StatusBadRequest || r["error"] != "invalid_grant" {
				t.Errorf("the revoked refresh token: %d %v", status, r)
			}
			// RFC 7009 §2.1: the grant's access token goes with it.
			if status, _ := userinfoCall(t, http.MethodGet, tr.userEP, body["access_token"]); status != http.StatusUnauthorized {
				t.Errorf("userinfo with the access token of a revoked refresh token: %d", status)
			}
		}
	}
	tr.d.each(t, "revocation_endpoint_auth_methods_supported", map[string]func(*testing.T){
		"client_secret_basic": func(t *testing.T) { revoke(t, "client_secret_basic", tr.conf, "access_token") },
		"client_secret_post":  func(t *testing.T) { revoke(t, "client_secret_post", tr.conf, "access_token") },
		"none":                func(t *testing.T) { revoke(t, "none", tr.pub, "refresh_token") },
	})
}

// pushed sends pushed authorization requests (RFC 9126) with each of the
// token endpoint's client authentications, as the RFC has it.
func (tr *truth) pushed(t *testing.T) {
	for _, c := range []struct {
		method string
		app    registered
	}{{"client_secret_basic", tr.conf}, {"client_secret_post", tr.conf}, {"none", tr.pub}} {
		t.Run(c.method, func(t *testing.T) {
			a := tr.request(c.app, allScopes, nil)
			status, r := clientPost(t, tr.parEP, c.method, c.app.ClientID, c.app.ClientSecret, a.params)
			uri, _ := r["request_uri"].(string)
			if status != http.StatusCreated || uri == "" || r["expires_in"] == nil {
				t.Fatalf("push: %d %v", status, r)
			}
			p := tr.b.get(tr.authz + "?" + url.Values{"client_id": {c.app.ClientID}, "request_uri": {uri}}.Encode())
			body := tr.redeem(t, c.method, c.app, a, a.code(t, p))
			if nonce := tr.verify(t, c.app, body["id_token"])["nonce"]; nonce != a.params.Get("nonce") {
				t.Errorf("the pushed nonce came back as %v", nonce)
			}
		})
	}
}

func (tr *truth) notOffered(t *testing.T) {
	refused := func(t *testing.T, param, value, rfcError string) {
		a := tr.request(tr.conf, allScopes, url.Values{param: {value}})
		if p := tr.b.get(a.url(tr.authz)); p.location != "" || p.status != http.StatusBadRequest || !strings.Contains(p.alert(), rfcError) {
			t.Errorf("%s: %d location %q: %s", param, p.status, p.location, p.alert())
		}
	}
	if tr.d.flag(t, "request_parameter_supported") {
		t.Fatal("request objects are advertised; this test knows only their refusal")
	}
	refused(t, "request", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "request_not_supported")
	if tr.d.flag(t, "request_uri_parameter_supported") {
		t.Fatal("request_uri by reference is advertised; this test knows only its refusal")
	}
	refused(t, "request_uri", "https://app.example/request.jwt", "request_uri_not_supported")
	if tr.d.flag(t, "claims_parameter_supported") {
		t.Fatal("the claims parameter is advertised; this test knows only that it is ignored")
	}
	claims := url.Values{"claims": {`{"id_token":{"email":{"essential":true}}}`}}
	if c := tr.verify(t, tr.conf, tr.grant(t, tr.conf, "openid", claims)["id_token"]); c["email"] != nil {
		t.Errorf("the claims parameter was honoured: %v", c)
	}
	if tr.d.flag(t, "authorization_response_iss_parameter_supported") {
		t.Fatal("iss in the authorization response is advertised; this test knows only its absence")
	}
	a := tr.request(tr.conf, allScopes, nil)
	if q := a.response(t, tr.b.get(a.url(tr.authz))); q.Has("iss") {
		t.Errorf("the authorization response carries iss although discovery says it does not: %v", q)
	}
	if tr.d.flag(t, "frontchannel_logout_supported") {
		t.Fatal("front-channel logout is advertised; nothing registers a front-channel URI")
	}
}

func (tr *truth) logout(t *testing.T) {
	if !tr.d.flag(t, "backchannel_logout_supported") || !tr.d.flag(t, "backchannel_logout_session_supported") {
		t.Fatal("back-channel logout is not advertised; this test knows only its delivery")
	}
	q := url.Values{"id_token_hint": {tr.idToken}, "post_logout_redirect_uri": {truthAfterLogout}, "state": {"bye-0123456789"}}
	if p := tr.b.get(tr.endSession + "?" + q.Encode()); p.location != truthAfterLogout+"?state=bye-0123456789" {
		t.Fatalf("logout: %d location %q: %s", p.status, p.location, p.alert())
	}
	if p := tr.b.get(tr.kg.issuer + "/account"); p.url.Path != "/login" {
		t.Errorf("still signed in after logout: %s", p.url)
	}
	got, _ := tr.lr.waitFor(t, func(c map[string]any) bool { return c["sid"] == tr.claims["sid"] })
	if got["sub"] != tr.claims["sub"] || got["aud"] != tr.conf.ClientID || got["iss"] != tr.kg.issuer {
		t.Errorf("logout token %v", got)
	}
}
