package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
)

const loopbackCB = "http://127.0.0.1:8400/cb"

// Redirect URIs match exactly, except that a public (native) client's
// loopback URI matches on any port (RFC 8252 §7.3); a confidential
// client's loopback URI on another port is refused with a page, never
// redirected to, at the authorize endpoint, PAR and the token endpoint.
func TestLoopbackRedirectPortsVaryOnlyForPublicClients(t *testing.T) {
	in := start(t)
	m := in.Manager()
	nu, err := m.CreateUser(t.Context(), manage.UserSpec{Email: "native@localhost", Name: "Native"})
	if err != nil {
		t.Fatal(err)
	}
	web := in.registerClient(t, manage.ClientSpec{Name: "Web", RedirectURIs: []string{loopbackCB}})
	native := in.registerClient(t, manage.ClientSpec{Name: "Native", Public: true, RedirectURIs: []string{loopbackCB}})
	browser := in.Mint(t, session.Auth{UserID: nu.User.ID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"},
		AuthTime: time.Now().Add(-time.Minute)})

	// code follows a signed-in browser's single sign-on from authorize to
	// the app and returns the code, or the reply that was not a redirect
	// on the way.
	code := func(t *testing.T, clientID, redirect string) (string, servertest.Reply) {
		t.Helper()
		r := followSSO(t, in.HTTP, in.Instance, browser.Cookie, "/oauth2/authorize?"+authorizeQuery(clientID, redirect).Encode())
		if r.Status != http.StatusSeeOther && r.Status != http.StatusFound {
			return "", r
		}
		if !strings.HasPrefix(r.Location(), redirect+"?") {
			t.Fatalf("redirected to %s, asked for %s", r.Location(), redirect)
		}
		return redirectCode(t, r, redirect), r
	}

	t.Run("authorize", func(t *testing.T) {
		tests := []struct {
			name     string
			clientID string
			redirect string
			allowed  bool
		}{
			{"a confidential client's registered URI is used", web.Client.ID, loopbackCB, true},
			{"a confidential client's loopback URI on another port is refused", web.Client.ID, "http://127.0.0.1:9999/cb", false},
			{"a confidential client's loopback URI without its port is refused", web.Client.ID, "http://127.0.0.1/cb", false},
			{"a public client's registered URI is used", native.Client.ID, loopbackCB, true},
			{"a public client's loopback URI on another port is used", native.Client.ID, "http://127.0.0.1:51234/cb", true},
			{"a public client's loopback URI without a port is used", native.Client.ID, "http://127.0.0.1/cb", true},
			{"a public client's loopback URI with another path is refused", native.Client.ID, "http://127.0.0.1:51234/other", false},
			{"a public client's URI on another loopback host is refused", native.Client.ID, "http://localhost:51234/cb", false},
			{"a public client's loopback URI over https is refused", native.Client.ID, "https://127.0.0.1:51234/cb", false},
			{"a public client's loopback URI with user info is refused", native.Client.ID, "http://x@127.0.0.1:51234/cb", false},
			{"an unregistered URI is refused", native.Client.ID, "https://evil.example/cb", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c, r := code(t, tt.clientID, tt.redirect)
				if tt.allowed && c == "" {
					t.Fatalf("no code: %s (Location %q)", r, r.Location())
				}
				if !tt.allowed && (r.Status != http.StatusBadRequest || r.Location() != "" || c != "") {
					t.Fatalf("status %d, Location %q; want an error page and no redirect", r.Status, r.Location())
				}
			})
		}
	})

	t.Run("PAR", func(t *testing.T) {
		par := func(clientID, secret, redirect string) int {
			form := authorizeQuery(clientID, redirect)
			r := in.Request(t, http.MethodPost, "/oauth2/par", "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
			if secret != "" {
				form.Del("client_id")
				r = in.Request(t, http.MethodPost, "/oauth2/par", "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
				r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
			}
			return servertest.Read(t, in.HTTP, r).Status
		}
		if s := par(web.Client.ID, web.Secret, loopbackCB); s != http.StatusCreated {
			t.Errorf("a confidential client pushing its registered URI: status %d, want 201", s)
		}
		if s := par(web.Client.ID, web.Secret, "http://127.0.0.1:9999/cb"); s != http.StatusBadRequest {
			t.Errorf("a confidential client pushing another port: status %d, want 400", s)
		}
		if s := par(native.Client.ID, "", "http://127.0.0.1:9999/cb"); s != http.StatusCreated {
			t.Errorf("a public client pushing another port: status %d, want 201", s)
		}
	})

	t.Run("token", func(t *testing.T) {
		exchange := func(clientID, secret, c, redirect string) (int, string) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirect},
				"code_verifier": {pkceVerifier}}
			var basic []string
			if secret != "" {
				basic = []string{clientID, secret}
			} else {
				form.Set("client_id", clientID)
			}
			resp := in.postForm(t, "/oauth2/token", form, basic)
			var body struct {
				Error string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			return resp.StatusCode, body.Error
		}
		webCode, r := code(t, web.Client.ID, loopbackCB)
		if webCode == "" {
			t.Fatalf("no code: %s", r)
		}
		if s, e := exchange(web.Client.ID, web.Secret, webCode, "http://127.0.0.1:9999/cb"); s != http.StatusBadRequest || e != "invalid_grant" {
			t.Errorf("a confidential client's code with another port: %d %s, want 400 invalid_grant", s, e)
		}
		if s, e := exchange(web.Client.ID, web.Secret, webCode, loopbackCB); s != http.StatusOK {
			t.Errorf("a confidential client's code with its URI: %d %s, want 200", s, e)
		}

		const port = "http://127.0.0.1:51234/cb"
		nativeCode, r := code(t, native.Client.ID, port)
		if nativeCode == "" {
			t.Fatalf("no code: %s", r)
		}
		// The port may vary between requests, not within one grant: the
		// code's redirect_uri must be the one it was issued for.
		if s, e := exchange(native.Client.ID, "", nativeCode, "http://127.0.0.1:51235/cb"); s != http.StatusBadRequest || e != "invalid_grant" {
			t.Errorf("a public client's code with another port than its own: %d %s, want 400 invalid_grant", s, e)
		}
		if s, e := exchange(native.Client.ID, "", nativeCode, port); s != http.StatusOK {
			t.Errorf("a public client's code with its own port: %d %s, want 200", s, e)
		}
	})
}
