package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
)

// A pushed authorization request (RFC 9126) goes through the whole
// sign-in: the request_uri that fosite uses up at the authorize endpoint
// must not be what the sign-in resumes from.
func TestPushedAuthorizationRequest(t *testing.T) {
	in := start(t)
	const redirect = "https://app.example/cb"
	app := in.registerClient(t, manage.ClientSpec{Name: "PAR app", RedirectURIs: []string{redirect}})
	u, err := in.Manager().CreateUser(t.Context(), manage.UserSpec{Email: "par@example.com", Name: "Par"})
	if err != nil {
		t.Fatal(err)
	}
	b := in.Mint(t, session.Auth{UserID: u.User.ID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"}, AuthTime: time.Now().Add(-time.Minute)})

	pushed := authorizeQuery(app.Client.ID, redirect, "openid", "email")
	resp := in.postForm(t, "/oauth2/par", pushed, []string{app.Client.ID, app.Secret})
	var par struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	decodeJSON(t, resp, &par)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(par.RequestURI, "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("PAR: status %d, %+v", resp.StatusCode, par)
	}

	reply := followSSO(t, in.HTTP, in.Instance, b.Cookie,
		"/oauth2/authorize?"+url.Values{"client_id": {app.Client.ID}, "request_uri": {par.RequestURI}}.Encode())
	code := redirectCode(t, reply, redirect)
	back, err := url.Parse(reply.Location())
	if err != nil {
		t.Fatal(err)
	}
	if back.Query().Get("state") != authzState || back.Query().Get("code") == "" {
		t.Fatalf("the app got %s", reply.Location())
	}
	resp = in.postForm(t, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {pkceVerifier}}, []string{app.Client.ID, app.Secret})
	var tok map[string]any
	decodeJSON(t, resp, &tok)
	if resp.StatusCode != http.StatusOK || tok["id_token"] == nil {
		t.Fatalf("exchange: status %d, %v", resp.StatusCode, tok)
	}

	t.Run("a request_uri works once", func(t *testing.T) {
		r := in.Request(t, http.MethodGet, "/oauth2/authorize?"+url.Values{"client_id": {app.Client.ID}, "request_uri": {par.RequestURI}}.Encode(), "", nil, nil)
		r.AddCookie(b.Cookie)
		if reply := servertest.Read(t, in.HTTP, r); reply.Status < 400 {
			t.Errorf("a used request_uri: %v", reply)
		}
	})
}
