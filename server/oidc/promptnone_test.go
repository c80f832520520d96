package oidc_test

// prompt=none through the whole server (package servertest): the
// authorize endpoint and server/login's single sign-on together.

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
)

const appCallback = "https://app.example/cb"

// silentSignIn sends an authorization request with prompt=none from a
// browser holding cookie and returns keygate's answer, which must come in
// that one request: a redirect to a hop of keygate's own (/oauth2/…,
// /login/continue…) fails t.
func silentSignIn(t *testing.T, in *servertest.Instance, cookie *http.Cookie, clientID string) servertest.Reply {
	t.Helper()
	sum := sha256.Sum256([]byte("a-code-verifier-of-more-than-forty-three-characters-0123456789"))
	q := url.Values{"client_id": {clientID}, "redirect_uri": {appCallback}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"}, "prompt": {"none"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	r := in.Request(t, http.MethodGet, "/oauth2/authorize?"+q.Encode(), "", nil, nil)
	r.AddCookie(cookie)
	reply := servertest.Read(t, in.HTTP, r)
	if to := reply.Location(); strings.HasPrefix(to, "/oauth2/") || strings.HasPrefix(to, "/login/continue") {
		t.Fatalf("prompt=none took another request, to %s", to)
	}
	return reply
}

// A signed-in user whose session is below what the app or their groups
// require cannot be answered without a page: with prompt=none the app is
// told interaction_required, and the browser is never shown a page.
func TestPromptNoneNeverShowsAPage(t *testing.T) {
	in := servertest.Start(t)
	ctx := t.Context()
	m := in.Manager()
	if _, err := m.CreateGroup(ctx, manage.GroupSpec{Name: "support", MinACR: session.ACRPhr}); err != nil {
		t.Fatal(err)
	}
	app, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "App", RedirectURIs: []string{appCallback}})
	if err != nil {
		t.Fatal(err)
	}
	keyApp, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "Key app", RedirectURIs: []string{appCallback}, MinACR: session.ACRPhr})
	if err != nil {
		t.Fatal(err)
	}
	// browser is a user in groups, signed in with two factors (mfa).
	browser := func(t *testing.T, email string, groups ...string) *http.Cookie {
		t.Helper()
		nu, err := m.CreateUser(ctx, manage.UserSpec{Email: email, Groups: groups})
		if err != nil {
			t.Fatal(err)
		}
		return in.Mint(t, session.Auth{UserID: nu.User.ID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"},
			AuthTime: time.Now().Add(-time.Minute)}).Cookie
	}

	for _, tc := range []struct {
		name, clientID, email string
		groups                []string
		wantErr               string // "": a code
	}{
		{"a member of a group that asks for a key, signed in with a code", app.Client.ID, "support@example.com", []string{"support"}, "interaction_required"},
		{"a user signed in with a code, at an app that asks for a key", keyApp.Client.ID, "plain@example.com", nil, "interaction_required"},
		{"a user whose sign-in is enough", app.Client.ID, "enough@example.com", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cookie := browser(t, tc.email, tc.groups...)
			mark := in.AuditMark(t)
			reply := silentSignIn(t, in, cookie, tc.clientID)
			loc, err := url.Parse(reply.Location())
			if reply.Status != http.StatusSeeOther && reply.Status != http.StatusFound || err != nil ||
				loc.Scheme+"://"+loc.Host+loc.Path != appCallback {
				t.Fatalf("%v (Location %q), want a redirect to the app", reply, reply.Location())
			}
			q := loc.Query()
			if q.Get("error") != tc.wantErr || (tc.wantErr == "") != (q.Get("code") != "") {
				t.Errorf("the app was answered %v, want error %q", q, tc.wantErr)
			}
			if len(tc.groups) > 0 {
				// The group's level refused the single sign-on, not the risk engine.
				ev := in.Events(t, mark, audit.SigninFailed)
				if len(ev) != 1 || ev[0].Details["reason"] != "assurance too low" || ev[0].Details["need"] != session.ACRPhr {
					t.Errorf("audit events %+v, want one signin.failed for too low an assurance", ev)
				}
			}
		})
	}
}
