package server_test

// The authorization-code flow as this package's tests drive it: one PKCE
// pair, one authorization request, and a signed-in browser's single
// sign-on, answered in that one request.

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/servertest"
)

const (
	// pkceVerifier is the code_verifier of every code these tests ask
	// for: the example of RFC 7636, appendix B.
	pkceVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	// authzState and authzNonce are the state and nonce of every
	// authorization request authorizeQuery builds.
	authzState = "state-0123456789"
	authzNonce = "nonce-0123456789"
)

// pkceChallenge is the S256 code_challenge of pkceVerifier.
var pkceChallenge = s256Challenge(pkceVerifier)

// s256Challenge is the S256 code_challenge of a code_verifier (RFC 7636
// §4.2).
func s256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestPKCEPairIsRFC7636s(t *testing.T) {
	// RFC 7636, appendix B: the challenge of the example verifier.
	if want := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; pkceChallenge != want {
		t.Fatalf("the S256 challenge of %q is %q, want %q", pkceVerifier, pkceChallenge, want)
	}
}

// authorizeQuery is an app's authorization request for a code with PKCE
// S256 (pkceChallenge), state and nonce, for the scopes given ("openid"
// when none are).
func authorizeQuery(clientID, redirect string, scope ...string) url.Values {
	if len(scope) == 0 {
		scope = []string{"openid"}
	}
	return url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {strings.Join(scope, " ")}, "state": {authzState}, "nonce": {authzNonce},
		"code_challenge": {pkceChallenge}, "code_challenge_method": {"S256"}}
}

// followSSO sends a browser holding cookie to target (an authorization
// request) through hc and returns keygate's answer. A single sign-on is
// answered in that one request: a redirect to the app, a redirect to a
// page that asks the user for something (a second factor), or a page. It
// fails t if the answer sends the browser on to a hop of keygate's own
// (/oauth2/…, /login/continue…) instead.
func followSSO(t *testing.T, hc *http.Client, in *servertest.Instance, cookie *http.Cookie, target string) servertest.Reply {
	t.Helper()
	r := in.Request(t, http.MethodGet, target, "", nil, nil)
	r.AddCookie(cookie)
	reply := servertest.Read(t, hc, r)
	if to := reply.Location(); strings.HasPrefix(to, "/oauth2/") || strings.HasPrefix(to, "/login/continue") {
		t.Fatalf("the single sign-on took another request, to %s", to)
	}
	return reply
}

// redirectCode is the code a redirect to the app at redirect carries; it
// fails t if reply is anything else.
func redirectCode(t *testing.T, reply servertest.Reply, redirect string) string {
	t.Helper()
	loc := reply.Location()
	if reply.Status != http.StatusSeeOther && reply.Status != http.StatusFound || !strings.HasPrefix(loc, redirect+"?") {
		t.Fatalf("want a redirect to %s, got %v (Location %q)", redirect, reply, loc)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("the redirect to the app carries no code: %q", loc)
	}
	return u.Query().Get("code")
}
