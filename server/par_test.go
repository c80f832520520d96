package server_test

import (
	"crypto/sha256"
	"encoding/base64"
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
	verifier := "par-verifier-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(verifier))

	pushed := url.Values{"response_type": {"code"}, "client_id": {app.Client.ID}, "redirect_uri": {redirect},
		"scope": {"openid email"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp := in.postForm(t, "/oauth2/par", pushed, []string{app.Client.ID, app.Secret})
	var par struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	decodeJSON(t, resp, &par)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(par.RequestURI, "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("PAR: status %d, %+v", resp.StatusCode, par)
	}

	loc := "/oauth2/authorize?" + url.Values{"client_id": {app.Client.ID}, "request_uri": {par.RequestURI}}.Encode()
	for hop := 0; !strings.HasPrefix(loc, redirect); hop++ {
		if hop == 4 {
			t.Fatalf("no redirect to the app after %d hops; at %s", hop, loc)
		}
		r := in.Request(t, http.MethodGet, loc, "", nil, nil)
		r.AddCookie(b.Cookie)
		reply := servertest.Read(t, in.HTTP, r)
		if reply.Status != http.StatusSeeOther && reply.Status != http.StatusFound {
			t.Fatalf("GET %s: %v", loc, reply)
		}
		loc = reply.Location()
	}
	back, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if back.Query().Get("state") != "state-0123456789" || back.Query().Get("code") == "" {
		t.Fatalf("the app got %s", loc)
	}
	resp = in.postForm(t, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}, []string{app.Client.ID, app.Secret})
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
