package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// instance is the whole server in-process over a fresh SQLite store, with
// the helpers of this package's tests.
type instance struct{ *servertest.Instance }

// start starts the server; opts change its configuration.
func start(t *testing.T, opts ...func(*server.Config)) *instance {
	return &instance{servertest.Start(t, opts...)}
}

func (in *instance) registerClient(t *testing.T, spec manage.ClientSpec) manage.NewClient {
	t.Helper()
	nc, err := in.Manager().RegisterClient(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

func (in *instance) do(t *testing.T, r *http.Request) *http.Response {
	t.Helper()
	resp, err := in.HTTP.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (in *instance) get(t *testing.T, path string) *http.Response {
	t.Helper()
	return in.do(t, in.Request(t, http.MethodGet, path, "", nil, nil))
}

// postForm posts form to path; basic, if set, is client_id:client_secret.
func (in *instance) postForm(t *testing.T, path string, form url.Values, basic []string) *http.Response {
	t.Helper()
	r := in.Request(t, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	if basic != nil {
		r.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return in.do(t, r)
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("status %d, body is not JSON: %v\n%.300s", resp.StatusCode, err, body)
	}
}

// browser mints a session cookie the server accepts; a non-empty userID
// signs it in. It returns the cookie and the session's CSRF token.
func (in *instance) browser(t *testing.T, userID string) (*http.Cookie, string) {
	t.Helper()
	if userID != "" {
		// Only an existing user can be signed in.
		if _, err := in.DB.GetUser(t.Context(), userID); errors.Is(err, storage.ErrNotFound) {
			if err := in.DB.CreateUser(t.Context(), storage.User{ID: userID, Email: userID + "@example.com", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := in.Mint(t, session.Auth{UserID: userID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: time.Now()})
	return b.Cookie, b.CSRF
}

func TestDiscovery(t *testing.T) {
	in := start(t)
	resp := in.get(t, "/.well-known/openid-configuration")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	decodeJSON(t, resp, &doc)

	list := func(key string) []string {
		var out []string
		for _, v := range doc[key].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	t.Run("the issuer is the configured one", func(t *testing.T) {
		if doc["issuer"] != in.Issuer {
			t.Errorf("issuer = %v, want %s", doc["issuer"], in.Issuer)
		}
	})
	endpoints := map[string]string{
		"authorization_endpoint":                "/oauth2/authorize",
		"token_endpoint":                        "/oauth2/token",
		"userinfo_endpoint":                     "/oauth2/userinfo",
		"jwks_uri":                              "/oauth2/jwks",
		"end_session_endpoint":                  "/oauth2/logout",
		"introspection_endpoint":                "/oauth2/introspect",
		"revocation_endpoint":                   "/oauth2/revoke",
		"pushed_authorization_request_endpoint": "/oauth2/par",
	}
	t.Run("every endpoint is under the issuer and served", func(t *testing.T) {
		for key, path := range endpoints {
			if doc[key] != in.Issuer+path {
				t.Errorf("%s = %v, want %s", key, doc[key], in.Issuer+path)
				continue
			}
			if resp := in.get(t, path); resp.StatusCode == http.StatusNotFound {
				t.Errorf("%s (%s) is not served", key, path)
			}
		}
	})
	for _, tc := range []struct {
		name, key string
		want      []string
	}{
		{"the acr values are the three levels, weakest first", "acr_values_supported", []string{"mfa", "phr", "phrh"}},
		{"PKCE is S256 only", "code_challenge_methods_supported", []string{"S256"}},
		{"only the code response type is offered", "response_types_supported", []string{"code"}},
		{"only the composed grants are offered", "grant_types_supported", []string{"authorization_code", "refresh_token", "client_credentials"}},
		{"ID tokens are RS256 (the default) or ES256", "id_token_signing_alg_values_supported", []string{"RS256", "ES256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := list(tc.key); !slices.Equal(got, tc.want) {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
	t.Run("plain PKCE is not advertised", func(t *testing.T) {
		if slices.Contains(list("code_challenge_methods_supported"), "plain") {
			t.Error("plain is advertised")
		}
	})
}

func TestJWKS(t *testing.T) {
	in := start(t)
	resp := in.get(t, "/oauth2/jwks")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	decodeJSON(t, resp, &set)
	byAlg := map[string]map[string]any{}
	kids := map[any]bool{}
	for _, k := range set.Keys {
		byAlg[k["alg"].(string)] = k
		if kids[k["kid"]] {
			t.Errorf("kid %v appears twice", k["kid"])
		}
		kids[k["kid"]] = true
	}
	for _, tc := range []struct {
		name, alg, kty string
	}{
		{"an ES256 signing key is published", "ES256", "EC"},
		{"an RS256 signing key is published", "RS256", "RSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, ok := byAlg[tc.alg]
			if !ok {
				t.Fatalf("no %s key in %v", tc.alg, set.Keys)
			}
			if kid, _ := k["kid"].(string); kid == "" {
				t.Error("no kid")
			}
			if k["use"] != "sig" || k["kty"] != tc.kty {
				t.Errorf("use = %v, kty = %v; want sig, %s", k["use"], k["kty"], tc.kty)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := k[private]; ok {
					t.Errorf("the published key has private member %q", private)
				}
			}
		})
	}
}

func TestTokenEndpoint(t *testing.T) {
	in := start(t)
	nc := in.registerClient(t, manage.ClientSpec{Name: "Backend", GrantTypes: []string{"client_credentials"}})
	id, secret := nc.Client.ID, nc.Secret
	cc := url.Values{"grant_type": {"client_credentials"}}
	withCreds := func(v url.Values) url.Values {
		out := url.Values{"client_id": {id}, "client_secret": {secret}}
		for k, vs := range v {
			out[k] = vs
		}
		return out
	}

	tests := []struct {
		name    string
		form    url.Values
		basic   []string
		status  int
		errCode string // "" for success
	}{
		{"client_credentials with HTTP Basic issues a token", cc, []string{id, secret}, http.StatusOK, ""},
		{"client_credentials with the secret in the body issues a token", withCreds(cc), nil, http.StatusOK, ""},
		{"a wrong secret in HTTP Basic is an invalid client", cc, []string{id, secret + "x"}, http.StatusUnauthorized, "invalid_client"},
		{"a wrong secret in the body is an invalid client",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"nope"}}, nil, http.StatusUnauthorized, "invalid_client"},
		{"an unknown client is an invalid client", cc, []string{"c_nobody", secret}, http.StatusUnauthorized, "invalid_client"},
		{"an unknown grant is unsupported", url.Values{"grant_type": {"urn:example:magic"}}, []string{id, secret}, http.StatusBadRequest, "unsupported_grant_type"},
		{"the password grant is unsupported", url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, []string{id, secret}, http.StatusBadRequest, "unsupported_grant_type"},
		{"the implicit grant is unsupported", url.Values{"grant_type": {"implicit"}}, []string{id, secret}, http.StatusBadRequest, "unsupported_grant_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := in.postForm(t, "/oauth2/token", tc.form, tc.basic)
			var body map[string]any
			decodeJSON(t, resp, &body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %v", resp.StatusCode, tc.status, body)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if tc.errCode != "" {
				if body["error"] != tc.errCode {
					t.Errorf("error = %v, want %s", body["error"], tc.errCode)
				}
				if _, ok := body["access_token"]; ok {
					t.Error("an error response carries an access token")
				}
				return
			}
			if tok, _ := body["access_token"].(string); tok == "" || !strings.EqualFold(body["token_type"].(string), "bearer") {
				t.Errorf("body %v, want a bearer access token", body)
			}
			for _, absent := range []string{"refresh_token", "id_token"} {
				if _, ok := body[absent]; ok {
					t.Errorf("client_credentials answered a %s", absent)
				}
			}
		})
	}
}

// clientToken gets a client_credentials access token.
func clientToken(t *testing.T, in *instance, id, secret string) string {
	t.Helper()
	resp := in.postForm(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, []string{id, secret})
	var body struct {
		AccessToken string `json:"access_token"`
	}
	decodeJSON(t, resp, &body)
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("token: status %d", resp.StatusCode)
	}
	return body.AccessToken
}

func TestIntrospectionAndRevocation(t *testing.T) {
	in := start(t)
	nc := in.registerClient(t, manage.ClientSpec{Name: "Backend", GrantTypes: []string{"client_credentials"}})
	creds := []string{nc.Client.ID, nc.Secret}
	token := clientToken(t, in, creds[0], creds[1])
	other := clientToken(t, in, creds[0], creds[1])

	introspect := func(t *testing.T, tok string) map[string]any {
		t.Helper()
		resp := in.postForm(t, "/oauth2/introspect", url.Values{"token": {tok}}, creds)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("introspect: status %d", resp.StatusCode)
		}
		var body map[string]any
		decodeJSON(t, resp, &body)
		return body
	}

	t.Run("a fresh client_credentials token is active", func(t *testing.T) {
		body := introspect(t, token)
		if body["active"] != true || body["client_id"] != nc.Client.ID {
			t.Errorf("introspection = %v, want active for %s", body, nc.Client.ID)
		}
	})
	t.Run("an unknown token is inactive", func(t *testing.T) {
		if body := introspect(t, "ory_at_bogus.bogus"); body["active"] != false {
			t.Errorf("introspection = %v, want inactive", body)
		}
	})
	t.Run("introspection needs client authentication", func(t *testing.T) {
		resp := in.postForm(t, "/oauth2/introspect", url.Values{"token": {token}}, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("a revoked token is inactive and the others stay active", func(t *testing.T) {
		resp := in.postForm(t, "/oauth2/revoke", url.Values{"token": {token}}, creds)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: status %d", resp.StatusCode)
		}
		if body := introspect(t, token); body["active"] != false {
			t.Errorf("after revocation: %v, want inactive", body)
		}
		if body := introspect(t, other); body["active"] != true {
			t.Errorf("another token after revocation: %v, want active", body)
		}
	})
}

func TestUserinfo(t *testing.T) {
	in := start(t)
	nc := in.registerClient(t, manage.ClientSpec{Name: "Backend", GrantTypes: []string{"client_credentials"}})
	cc := clientToken(t, in, nc.Client.ID, nc.Secret)

	for _, tc := range []struct {
		name   string
		auth   string
		status int
		errMsg string // in WWW-Authenticate
	}{
		{"a request without a token gets a bare Bearer challenge (RFC 6750 §3.1)", "", http.StatusUnauthorized, ""},
		{"an unknown token is an invalid token", "Bearer ory_at_bogus.bogus", http.StatusUnauthorized, "invalid_token"},
		{"a token without the openid scope is refused", "Bearer " + cc, http.StatusForbidden, "insufficient_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, in.Base+"/oauth2/userinfo", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			resp := in.do(t, r)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			h := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(h, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", h)
			}
			if hasError := strings.Contains(h, "error="); tc.errMsg == "" && hasError {
				t.Errorf("WWW-Authenticate = %q, want no error code", h)
			} else if tc.errMsg != "" && !strings.Contains(h, `error="`+tc.errMsg+`"`) {
				t.Errorf("WWW-Authenticate = %q, want error=%q", h, tc.errMsg)
			}
		})
	}
}

func TestResumeUnknownFlow(t *testing.T) {
	in := start(t)
	cookie, _ := in.browser(t, "u_alice")
	for _, tc := range []struct {
		name   string
		cookie *http.Cookie
	}{
		{"an unknown flow is a 400 page for a signed-in browser", cookie},
		{"an unknown flow is a 400 page for a browser without a session", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, in.Base+"/oauth2/authorize/resume?flow=nope", nil)
			if tc.cookie != nil {
				r.AddCookie(tc.cookie)
			}
			resp := in.do(t, r)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("redirects to %s", loc)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q, want a page", ct)
			}
		})
	}
}

func TestLogoutRedirect(t *testing.T) {
	in := start(t)
	nc := in.registerClient(t, manage.ClientSpec{
		Name: "Web", RedirectURIs: []string{"https://app.example/cb"},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
	})
	other := in.registerClient(t, manage.ClientSpec{
		Name: "Other", RedirectURIs: []string{"https://other.example/cb"},
		PostLogoutRedirectURIs: []string{"https://other.example/bye"},
	})
	for _, tc := range []struct {
		name     string
		query    url.Values
		status   int
		location string
	}{
		{"an unregistered return address is refused",
			url.Values{"client_id": {nc.Client.ID}, "post_logout_redirect_uri": {"https://evil.example/bye"}}, http.StatusBadRequest, ""},
		{"a return address registered by another app is refused",
			url.Values{"client_id": {nc.Client.ID}, "post_logout_redirect_uri": {"https://other.example/bye"}}, http.StatusBadRequest, ""},
		{"a return address extending a registered one is refused",
			url.Values{"client_id": {nc.Client.ID}, "post_logout_redirect_uri": {"https://app.example/bye/../../evil"}}, http.StatusBadRequest, ""},
		{"a return address without an app is refused",
			url.Values{"post_logout_redirect_uri": {"https://app.example/bye"}}, http.StatusBadRequest, ""},
		{"an unknown app is refused",
			url.Values{"client_id": {"c_nobody"}, "post_logout_redirect_uri": {"https://app.example/bye"}}, http.StatusBadRequest, ""},
		{"the registered return address is followed, with the state",
			url.Values{"client_id": {nc.Client.ID}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s1"}},
			http.StatusSeeOther, "https://app.example/bye?state=s1"},
		{"another app's own return address is followed",
			url.Values{"client_id": {other.Client.ID}, "post_logout_redirect_uri": {"https://other.example/bye"}},
			http.StatusSeeOther, "https://other.example/bye"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := in.get(t, "/oauth2/logout?"+tc.query.Encode())
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if loc := resp.Header.Get("Location"); loc != tc.location {
				t.Errorf("Location = %q, want %q", loc, tc.location)
			}
		})
	}
}

// formRoutes are the browser forms: POSTs that must carry the session's
// CSRF token in the csrf_token field.
var formRoutes = []string{"/login", "/login/forgot", "/login/reset", "/enroll", "/mfa/totp", "/mfa/recovery", "/mfa/totp/enroll",
	"/account/logout", "/oauth2/logout", "/mfa/keys/rename", "/mfa/keys/remove",
	"/account/sessions/revoke", "/account/sessions/revoke-others", "/mfa/recovery-codes"}

// headerRoutes are the pages' JSON calls (WebAuthn ceremonies): POSTs that
// must carry the session's CSRF token in the X-CSRF-Token header.
var headerRoutes = []string{"/mfa/webauthn/register/begin", "/mfa/webauthn/register/finish",
	"/mfa/webauthn/assert/begin", "/mfa/webauthn/assert/finish",
	"/mfa/webauthn/passwordless/begin", "/mfa/webauthn/passwordless/finish"}

// The admin console's forms and JSON calls are classified by prefix: every
// POST under /admin/ is a form, every one under /api/admin/ a JSON call
// (a browser session must send the header; service tokens carry no cookie).
func isForm(p string) bool { return slices.Contains(formRoutes, p) || strings.HasPrefix(p, "/admin/") }
func isHeader(p string) bool {
	return slices.Contains(headerRoutes, p) || strings.HasPrefix(p, "/api/admin/")
}

// notForms are browser-reachable POSTs that are not keygate's forms: the
// OAuth authorize request, protected by state and PKCE instead, and the
// "this wasn't me" confirmation, whose visitor is signed out and whose
// mailed link's token is the credential (server/notice).
var notForms = []string{"/oauth2/authorize", "/signin/report"}

func TestRoutes(t *testing.T) {
	in := start(t)
	routes := in.Srv.Routes()
	if len(routes) == 0 {
		t.Fatal("no routes")
	}

	t.Run("every route has a known guard and a handler", func(t *testing.T) {
		for _, rt := range routes {
			if !rt.Guard.Valid() || rt.Handler == nil {
				t.Errorf("%s: guard %q, handler %v", rt, rt.Guard, rt.Handler)
			}
		}
	})
	t.Run("client-authenticated routes are all OAuth endpoints", func(t *testing.T) {
		for _, rt := range routes {
			if rt.Guard == httpx.GuardClient && !strings.HasPrefix(rt.Pattern, "/oauth2/") {
				t.Errorf("%s is client-guarded outside /oauth2/", rt)
			}
		}
	})
	t.Run("nothing under /admin is public", func(t *testing.T) {
		for _, rt := range routes {
			if strings.HasPrefix(rt.Pattern, "/admin") && rt.Guard != httpx.GuardAdmin {
				t.Errorf("%s has guard %s", rt, rt.Guard)
			}
		}
	})

	// The browser POSTs: every one must be classified.
	var browserPOSTs []httpx.Route
	for _, rt := range routes {
		if rt.Method != http.MethodPost {
			continue
		}
		if rt.Guard == httpx.GuardClient {
			if isForm(rt.Pattern) || isHeader(rt.Pattern) {
				t.Errorf("%s is a browser form but client-guarded", rt)
			}
			continue
		}
		browserPOSTs = append(browserPOSTs, rt)
	}
	t.Run("every browser POST is classified as a form, a page's JSON call or neither", func(t *testing.T) {
		for _, rt := range browserPOSTs {
			if !isForm(rt.Pattern) && !isHeader(rt.Pattern) && !slices.Contains(notForms, rt.Pattern) {
				t.Errorf("POST %s (guard %s) is not classified: add it to formRoutes, headerRoutes or notForms", rt.Pattern, rt.Guard)
			}
		}
	})

	signedIn, _ := in.browser(t, "u_alice")
	anonymous, _ := in.browser(t, "")
	_, foreignToken := in.browser(t, "u_mallory")
	for _, b := range []struct {
		name   string
		cookie *http.Cookie
		skip   []string
	}{
		{"signed-in", signedIn, nil},
		// Signing an anonymous browser out changes nothing, so there is
		// nothing to forge.
		{"anonymous", anonymous, []string{"/oauth2/logout"}},
	} {
		for _, rt := range browserPOSTs {
			p := rt.Pattern
			header := isHeader(p)
			if slices.Contains(b.skip, p) || !header && !slices.Contains(formRoutes, p) {
				continue
			}
			for _, tok := range []struct{ what, value string }{{"without a CSRF token", ""}, {"with another session's CSRF token", foreignToken}} {
				t.Run("POST "+p+" from a "+b.name+" browser "+tok.what+" is forbidden", func(t *testing.T) {
					var r *http.Request
					if header {
						r, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, in.Base+p, strings.NewReader(`{}`))
						r.Header.Set("Content-Type", "application/json")
						if tok.value != "" {
							r.Header.Set("X-CSRF-Token", tok.value)
						}
					} else {
						form := url.Values{"flow": {"f"}, "email": {"alice@example.com"}, "password": {"pw"}, "code": {"123456"}, "token": {"t"}, "id": {"AAAA"}}
						if tok.value != "" {
							form.Set("csrf_token", tok.value)
						}
						r, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, in.Base+p, strings.NewReader(form.Encode()))
						r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					r.AddCookie(b.cookie)
					resp := in.do(t, r)
					if resp.StatusCode != http.StatusForbidden {
						t.Errorf("status %d, want 403", resp.StatusCode)
					}
					if loc := resp.Header.Get("Location"); loc != "" {
						t.Errorf("redirects to %s", loc)
					}
				})
			}
		}
	}
}
