package oidc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func TestWhoMayIntrospect(t *testing.T) {
	e := newEnv(t)
	e.addService(t, "c_svc", "opaque")
	e.addService(t, "c_api", "opaque")
	e.addService(t, "c_other", "opaque")
	// c_svc may ask for tokens meant for c_api.
	if err := e.db.UpdateClient(t.Context(), "c_svc", func(c *storage.Client) error {
		c.Audience = append(c.Audience, "c_api")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	forAPI := e.serviceToken(t, "c_svc", url.Values{"audience": {"c_api"}})
	own := e.serviceToken(t, "c_svc", url.Values{})

	for _, tc := range []struct {
		name, caller, token string
		active              bool
	}{
		{"the client the token was issued to", "c_svc", own, true},
		{"a client the token's audience names", "c_api", forAPI, true},
		{"a client the audience of another token of the same app does not name", "c_api", own, false},
		{"any other client", "c_other", forAPI, false},
	} {
		t.Run(tc.name+" learns active="+map[bool]string{true: "true", false: "false"}[tc.active], func(t *testing.T) {
			in := e.introspectSvc(t, tc.caller, tc.token)
			if in["active"] != tc.active {
				t.Fatalf("introspection as %s: %v", tc.caller, in)
			}
			if !tc.active && len(in) != 1 {
				t.Errorf("an inactive answer says more than active=false: %v", in)
			}
		})
	}

	t.Run("a public client cannot introspect", func(t *testing.T) {
		if err := e.db.CreateClient(t.Context(), storage.Client{ID: "c_spa", Name: "SPA", Public: true,
			RedirectURIs: []string{redirectURI}, GrantTypes: []string{"authorization_code"}, MinACR: "mfa"}); err != nil {
			t.Fatal(err)
		}
		form := url.Values{"token": {own}, "client_id": {"c_spa"}}
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth2/introspect", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp := e.do(t, r, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("client_secret_post works as discovery says", func(t *testing.T) {
		form := url.Values{"token": {own}, "client_id": {"c_svc"}, "client_secret": {svcSecret}}
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth2/introspect", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp := e.do(t, r, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	})

	t.Run("an access token says its type and its own expiry", func(t *testing.T) {
		in := e.introspectSvc(t, "c_svc", own)
		if in["token_type"] != "bearer" || in["token_use"] != "access_token" || in["iss"] != issuer {
			t.Errorf("introspection: %v", in)
		}
		exp, _ := in["exp"].(float64)
		// fosite sets expiries from its own clock, not the injected one.
		if want := time.Now().Add(DefaultLifetimes.AccessToken); time.Unix(int64(exp), 0).Sub(want).Abs() > 5*time.Second {
			t.Errorf("exp %v, want about %v", time.Unix(int64(exp), 0), want)
		}
	})
}

func TestIntrospectRefreshToken(t *testing.T) {
	e := newEnv(t)
	app := e.signInWithScope(t, "openid offline_access")
	in := e.introspect(t, app.refreshToken)
	if in["active"] != true || in["token_use"] != "refresh_token" {
		t.Fatalf("introspection: %v", in)
	}
	if _, ok := in["token_type"]; ok {
		t.Errorf("a refresh token is not a bearer token: %v", in)
	}
	exp, _ := in["exp"].(float64)
	if want := time.Now().Add(DefaultLifetimes.RefreshToken); time.Unix(int64(exp), 0).Sub(want).Abs() > 5*time.Second {
		t.Errorf("exp %v, want the refresh token's, about %v", time.Unix(int64(exp), 0), want)
	}
}

// The whole answer for a user's access token: RFC 7662's members, how the
// user signed in (RFC 9470) and their groups of now, and nothing else.
func TestIntrospectionOfAUsersToken(t *testing.T) {
	e := newEnv(t)
	e.allowScope(t, "groups")
	e.joinGroup(t, "g_staff", "")
	app := e.signInWithScope(t, "openid groups offline_access")
	// A membership that ends after the token was issued is gone from it.
	e.joinGroup(t, "g_ops", "")
	if err := e.db.RemoveGroupMember(t.Context(), "g_staff", e.user.ID); err != nil {
		t.Fatal(err)
	}
	in := e.introspect(t, app.accessToken)
	authTime := e.idTokenClaims(t, app.idToken)["auth_time"]
	want := map[string]any{
		"active": true, "iss": issuer, "client_id": "c_app", "token_use": "access_token", "token_type": "bearer",
		"scope": "openid groups offline_access", "sub": e.user.ID,
		"acr": "mfa", "amr": []any{"pwd", "otp"}, "auth_time": authTime, "groups": []any{"g_ops"},
		"exp": in["exp"], "iat": in["iat"],
	}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("introspection\n got %v\nwant %v", in, want)
	}
	// Both in seconds, by fosite's clock: the token request and the
	// access token's lifetime after it.
	exp, _ := in["exp"].(float64)
	iat, _ := in["iat"].(float64)
	if d := time.Duration(exp-iat) * time.Second; iat == 0 || (d-DefaultLifetimes.AccessToken).Abs() > time.Second {
		t.Errorf("iat %v, exp %v: want the access token's lifetime apart", in["iat"], in["exp"])
	}

	// A client's own token has no user: no sub, sign-in or groups.
	e.addService(t, "c_svc", "opaque")
	in = e.introspectSvc(t, "c_svc", e.serviceToken(t, "c_svc", url.Values{}))
	for _, k := range []string{"sub", "acr", "amr", "auth_time", "groups", "scope", "aud"} {
		if _, ok := in[k]; ok {
			t.Errorf("a client_credentials token's introspection has %s: %v", k, in)
		}
	}
}

// allowScope lets the test app ask for scope too.
func (e *env) allowScope(t *testing.T, scope string) {
	t.Helper()
	if err := e.db.UpdateClient(t.Context(), e.client.ID, func(c *storage.Client) error {
		c.Scopes = append(c.Scopes, scope)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// userinfo asks the userinfo endpoint with accessToken.
func (e *env) userinfo(t *testing.T, accessToken string) (*http.Response, map[string]any) {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/oauth2/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+accessToken)
	resp := e.do(t, r, nil)
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("userinfo: status %d, %v", resp.StatusCode, err)
	}
	return resp, body
}

func TestUserinfoStorageError(t *testing.T) {
	var spy *spyStore
	e := newEnv(t, withSpy(&spy))
	e.allowScope(t, "groups")
	app := e.signInWithScope(t, "openid groups")
	for _, read := range []string{"GetUser", "ListUserGroups"} {
		t.Run("a failed "+read+" is a server error, not an inactive token", func(t *testing.T) {
			spy.reset(t, read)
			resp, body := e.userinfo(t, app.accessToken)
			if resp.StatusCode != http.StatusInternalServerError || body["error"] != "server_error" {
				t.Errorf("status %d, %v; want 500 server_error", resp.StatusCode, body)
			}
			if h := resp.Header.Get("WWW-Authenticate"); h != "" {
				t.Errorf("WWW-Authenticate %q: the token is not at fault", h)
			}
		})
	}
	spy.reset(t)
	if resp, body := e.userinfo(t, app.accessToken); resp.StatusCode != http.StatusOK || body["sub"] != e.user.ID {
		t.Errorf("once the store answers again: status %d, %v", resp.StatusCode, body)
	}
}

// The answer writes itself byte for byte as json.Marshal writes it.
func TestIntrospectionAppendsAsMarshal(t *testing.T) {
	full := introspection{Active: true, Issuer: "https://id.example", ClientID: "c_app", TokenUse: "access_token",
		TokenType: "bearer", Scope: "openid groups", Subject: "u_<alice>&", Audience: []string{"c_api", "\"x\""},
		ExpiresAt: 1796593186, IssuedAt: -5,
		signIn: signIn{ACR: "phr", AMR: []string{"hwk", "user"}, AuthTime: 1796592526, Groups: []string{"ops", "dev"}}}
	for name, in := range map[string]introspection{
		"every member":                 full,
		"a client's own token":         {Active: true, Issuer: "i", ClientID: "c", TokenUse: "access_token", TokenType: "bearer", ExpiresAt: 1},
		"nothing":                      {},
		"empty lists":                  {Audience: []string{}, signIn: signIn{AMR: []string{}}},
		"groups decoded from a record": {signIn: signIn{Groups: []any{"a", 1.5, nil}}},
		"no groups now":                {signIn: signIn{Groups: []string{}}},
		"a nil list of groups":         {signIn: signIn{Groups: []string(nil)}},
		"text that is escaped":         {Issuer: "a\u2028b\xff", Scope: "tab\t", Subject: "é"},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.AppendJSON(nil)
			if err != nil || string(got) != string(want) {
				t.Errorf("AppendJSON\n got %s (%v)\nwant %s", got, err, want)
			}
		})
	}
	t.Run("groups that cannot be encoded fail", func(t *testing.T) {
		in := full
		in.Groups = func() {}
		if _, err := in.AppendJSON(nil); err == nil {
			t.Error("no error")
		}
	})
}

func FuzzIntrospectionAppendsAsMarshal(f *testing.F) {
	f.Add("https://id.example", "c_app", "openid <x>", "u\u2028", "mfa", int64(1796593186))
	f.Fuzz(func(t *testing.T, iss, client, scope, sub, acr string, exp int64) {
		in := introspection{Active: exp%2 == 0, Issuer: iss, ClientID: client, TokenUse: "access_token", Scope: scope,
			Subject: sub, Audience: []string{client, sub}, ExpiresAt: exp, IssuedAt: exp / 3,
			signIn: signIn{ACR: acr, AMR: []string{acr}, AuthTime: -exp, Groups: []string{scope}}}
		want, _ := json.Marshal(in)
		if got, err := in.AppendJSON(nil); err != nil || string(got) != string(want) {
			t.Fatalf("AppendJSON\n got %s (%v)\nwant %s", got, err, want)
		}
	})
}

// Writing a client_credentials token's answer:
//
//	go test ./server/oidc -run '^$' -bench IntrospectionAnswer
func BenchmarkIntrospectionAnswer(b *testing.B) {
	in := &introspection{Active: true, Issuer: "http://localhost:8080", ClientID: "c_xDZHXJn66P6aVpkGVvTO7A",
		TokenUse: "access_token", TokenType: "bearer", ExpiresAt: 1796593186, IssuedAt: 1796592586}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			if _, err := in.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := json.NewEncoder(&buf).Encode(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
