package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
)

// Go's form parser drops a parameter it cannot decode and goes on; every
// protocol endpoint must refuse such a request instead of serving what is
// left of it.
func TestMalformedPercentEncodingIsRefused(t *testing.T) {
	in := start(t)
	app := in.registerClient(t, manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}})
	token := clientToken(t, in, app.Client.ID, app.Secret)
	form := func(s string) []byte { return []byte(s) }
	for _, tc := range []struct {
		name, method, path, body string
		wantJSONError            bool
	}{
		{"a token request with a mangled parameter gets no token", http.MethodPost, "/oauth2/token",
			"grant_type=client_credentials&scope=%zz", true},
		{"a mangled grant_type", http.MethodPost, "/oauth2/token", "grant_type=client_cred%zzentials", true},
		{"introspection", http.MethodPost, "/oauth2/introspect", "token=" + url.QueryEscape(token) + "&token_type_hint=%zz", true},
		{"revocation", http.MethodPost, "/oauth2/revoke", "token=" + url.QueryEscape(token) + "&x=%zz", true},
		{"a pushed authorization request", http.MethodPost, "/oauth2/par",
			"response_type=code&client_id=" + app.Client.ID + "&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=%zz", true},
		{"userinfo", http.MethodPost, "/oauth2/userinfo", "x=%zz", true},
		{"a sign-out request", http.MethodGet, "/oauth2/logout?client_id=" + app.Client.ID + "&state=%zz", "", false},
		{"an authorize request with an undecodable state", http.MethodGet, "/oauth2/authorize?response_type=code&client_id=" + app.Client.ID +
			"&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&state=%zz&code_challenge=abc&code_challenge_method=S256", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			ctype := ""
			if tc.body != "" {
				body, ctype = form(tc.body), "application/x-www-form-urlencoded"
			}
			r := in.Request(t, tc.method, tc.path, ctype, body, nil)
			if tc.path == "/oauth2/userinfo" {
				r.Header.Set("Authorization", "Bearer "+token)
			} else {
				r.SetBasicAuth(url.QueryEscape(app.Client.ID), url.QueryEscape(app.Secret))
			}
			reply := servertest.Read(t, in.HTTP, r)
			if reply.Status != http.StatusBadRequest {
				t.Fatalf("%v, want 400", reply)
			}
			if loc := reply.Location(); loc != "" {
				t.Errorf("redirected to %s", loc)
			}
			if tc.wantJSONError {
				if e := servertest.Decode[map[string]any](t, reply); e["error"] != "invalid_request" {
					t.Errorf("error %v, want invalid_request", e)
				}
			} else if !strings.Contains(string(reply.Body), "invalid_request") && !strings.Contains(string(reply.Body), "malformed") {
				t.Errorf("the page does not say what is wrong: %.300s", reply.Body)
			}
		})
	}
}
