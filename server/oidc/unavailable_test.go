package oidc

import (
	"net/http"
	"net/url"
	"testing"
)

// A client that cannot be read (the database is unreachable) is the
// server's failure: every endpoint that authenticates a client answers
// 503 temporarily_unavailable, never invalid_client, which would tell the
// app its credentials are wrong. Once the store answers, so do they.
// (TestAnUnreadableTokenIsNotAnInactiveOne does the same for tokens.)
func TestAnUnreadableClientIsNotAnInvalidOne(t *testing.T) {
	var spy *spyStore
	e := newEnv(t, withSpy(&spy))
	requests := []struct {
		path string
		form url.Values
	}{
		{"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y"}}},
		{"/oauth2/introspect", url.Values{"token": {"x.y"}}},
		{"/oauth2/revoke", url.Values{"token": {"x.y"}}},
		{"/oauth2/par", url.Values{"response_type": {"code"}, "redirect_uri": {redirectURI}, "scope": {"openid"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}},
	}
	spy.reset(t, "GetClient")
	for _, rq := range requests {
		status, body := e.postAs(t, rq.path, e.client.ID, appSecret, rq.form)
		if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
			t.Errorf("%s with the store down: %d %v, want 503 temporarily_unavailable", rq.path, status, body)
		}
	}
	spy.reset(t)
	for _, rq := range requests {
		status, body := e.postAs(t, rq.path, e.client.ID, appSecret, rq.form)
		if status == http.StatusServiceUnavailable || body["error"] == "invalid_client" {
			t.Errorf("%s once the store answers: %d %v", rq.path, status, body)
		}
	}
	if status, body := e.postAs(t, "/oauth2/introspect", e.client.ID, "a wrong secret", url.Values{"token": {"x.y"}}); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("a wrong secret: %d %v, want 401 invalid_client", status, body)
	}
}

// A token that cannot be read is not an inactive one: introspection and
// userinfo answer 503 temporarily_unavailable, so that the resource server
// or app keeps its user signed in and retries, rather than {"active":
// false} or invalid_token.
func TestAnUnreadableTokenIsNotAnInactiveOne(t *testing.T) {
	var spy *spyStore
	e := newEnv(t, withSpy(&spy))
	app := e.signInWithScope(t, "openid")
	spy.reset(t, "GetToken")
	if status, body := e.postAs(t, "/oauth2/introspect", e.client.ID, appSecret, url.Values{"token": {app.accessToken}}); status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Errorf("introspection with the store down: %d %v, want 503 temporarily_unavailable", status, body)
	}
	if resp, body := e.userinfo(t, app.accessToken); resp.StatusCode != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Errorf("userinfo with the store down: %d %v, want 503 temporarily_unavailable", resp.StatusCode, body)
	}
	spy.reset(t)
	if !e.tokenActive(t, app.accessToken) {
		t.Error("once the store answers, the token is not active")
	}
}

// The authorize endpoint, a page, answers an unreadable client with the
// 503 "try again" page: not an invalid request, and never a redirect.
func TestAuthorizeWithTheStoreDownIsATryAgainPage(t *testing.T) {
	var spy *spyStore
	e := newEnv(t, withSpy(&spy))
	spy.reset(t, "GetClient")
	resp := e.get(t, "/oauth2/authorize?"+url.Values{"client_id": {e.client.ID}, "response_type": {"code"},
		"scope": {"openid"}, "redirect_uri": {redirectURI}, "state": {"s"}}.Encode(), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("authorize with the store down: %d, Location %q, Retry-After %q; want 503, none, set",
			resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Retry-After"))
	}
}
