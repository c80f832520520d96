package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestDiscoveryTellsTheTruth reads keygate's discovery document and uses
// every member of it: each endpoint, each advertised client authentication
// method at each endpoint that has them, response type and mode, grant,
// code challenge method, scope, claim, acr and prompt value, and each
// capability flag — a true one must work, a false one must be refused
// cleanly or be harmless. A member or value the test does not know fails
// it, so the document cannot promise more than this test checks.
func TestDiscoveryTellsTheTruth(t *testing.T) {
	tr := newTruth(t)
	t.Run("response types and modes", tr.responseTypes)
	t.Run("the token endpoint takes each advertised client authentication", tr.tokenAuth)
	t.Run("grants", tr.grants)
	t.Run("code challenge methods", tr.codeChallenges)
	t.Run("scopes", tr.scopes)
	t.Run("claims, signing and subjects", tr.claimsAndSigning)
	t.Run("acr and prompt values", tr.acrAndPrompt)
	t.Run("userinfo answers GET and POST", tr.userinfo)
	t.Run("introspection takes each advertised client authentication", tr.introspection)
	t.Run("revocation takes each advertised client authentication", tr.revocation)
	t.Run("pushed authorization requests", tr.pushed)
	t.Run("capabilities that are not offered are refused cleanly or harmless", tr.notOffered)
	t.Run("logout ends the session and the app hears of it over the back channel", tr.logout)
	for key := range tr.d.doc {
		if !tr.d.used[key] {
			t.Errorf("discovery advertises %s, which this test does not exercise", key)
		}
	}
}

const (
	truthRedirect    = "http://127.0.0.1:9/callback"
	truthAfterLogout = "http://127.0.0.1:9/bye"
	allScopes        = "openid email profile groups offline_access"
)

// truth is the discovery test's world: a user signed in once in a browser
// (every later authorization there is single sign-on), the apps, the
// endpoints as discovery names them, and the first grant's tokens.
type truth struct {
	kg                     *instance
	d                      *discovered
	ada                    account
	lr                     *logoutReceiver
	conf, other, pub, svc  registered
	es256                  registered // an app registered for ES256 ID tokens
	b                      *browser
	keySet                 *oidc.RemoteKeySet
	authz, tokenEP, userEP string
	endSession, introEP    string
	revokeEP, parEP        string
	first                  authorization
	tokens                 map[string]any // the first grant's, refreshed by grants
	idToken                string         // the first grant's
	claims                 map[string]any // its claims
}

func newTruth(t *testing.T) *truth {
	t.Helper()
	kg := startKeygate(t, t.TempDir(), "")
	tr := &truth{kg: kg, lr: newLogoutReceiver(t, kg.issuer), b: newBrowser(t, kg.issuer)}
	var nu struct {
		EnrollmentURL string `json:"enrollment_url"`
	}
	kg.cli("group", "add", "engineering")
	kg.cliJSON(&nu, "user", "add", "ada@localhost", "--name", "Ada Lovelace", "--group", "engineering")
	tr.ada = enroll(t, newBrowser(t, kg.issuer), nu.EnrollmentURL, "ada@localhost")
	kg.cliJSON(&tr.conf, "client", "add", "--name", "Support tool", "--redirect-uri", truthRedirect,
		"--post-logout-redirect-uri", truthAfterLogout, "--backchannel-logout-uri", tr.lr.url)
	kg.cliJSON(&tr.other, "client", "add", "--name", "Wiki", "--redirect-uri", truthRedirect)
	kg.cliJSON(&tr.pub, "client", "add", "--name", "Desktop app", "--public", "--redirect-uri", truthRedirect)
	kg.cliJSON(&tr.svc, "client", "add", "--name", "Nightly job", "--grant", "client_credentials")
	kg.cliJSON(&tr.es256, "client", "add", "--name", "Dashboard", "--redirect-uri", truthRedirect, "--id-token-alg", "ES256")

	tr.d = discover(t, kg.issuer)
	if iss := tr.d.str(t, "issuer"); iss != kg.issuer {
		t.Fatalf("issuer %q, want %q", iss, kg.issuer)
	}
	tr.authz = tr.d.str(t, "authorization_endpoint")
	tr.tokenEP = tr.d.str(t, "token_endpoint")
	tr.userEP = tr.d.str(t, "userinfo_endpoint")
	tr.endSession = tr.d.str(t, "end_session_endpoint")
	tr.introEP = tr.d.str(t, "introspection_endpoint")
	tr.revokeEP = tr.d.str(t, "revocation_endpoint")
	tr.parEP = tr.d.str(t, "pushed_authorization_request_endpoint")
	tr.keySet = oidc.NewRemoteKeySet(t.Context(), tr.d.str(t, "jwks_uri"))

	tr.first = tr.request(tr.conf, allScopes, nil)
	p := signIn(t, tr.b, authRequest{url: tr.first.url(tr.authz)}, tr.ada, "totp", nextCode(t, tr.ada.totpSecret))
	tr.tokens = tr.redeem(t, "client_secret_basic", tr.conf, tr.first, tr.first.code(t, p))
	tr.idToken, _ = tr.tokens["id_token"].(string)
	tr.claims = tr.verify(t, tr.conf, tr.idToken)
	return tr
}

// request is an authorization request of app to the test's redirect URI.
func (tr *truth) request(app registered, scope string, extra url.Values) authorization {
	return newAuthorization(app.ClientID, truthRedirect, scope, extra)
}

// codeFor runs an authorization in the signed-in browser.
func (tr *truth) codeFor(t *testing.T, a authorization) string {
	t.Helper()
	return a.code(t, tr.b.get(a.url(tr.authz)))
}

// grant runs an authorization in the signed-in browser and redeems its
// code, the app authenticating with client_secret_basic.
func (tr *truth) grant(t *testing.T, app registered, scope string, extra url.Values) map[string]any {
	t.Helper()
	a := tr.request(app, scope, extra)
	return tr.redeem(t, "client_secret_basic", app, a, tr.codeFor(t, a))
}

// redeem exchanges a code, the app authenticating as method says.
func (tr *truth) redeem(t *testing.T, method string, app registered, a authorization, code string) map[string]any {
	t.Helper()
	status, body := clientPost(t, tr.tokenEP, method, app.ClientID, app.ClientSecret, url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {a.params.Get("redirect_uri")}, "code_verifier": {a.verifier}})
	if status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("code exchange with %s: %d %v", method, status, body)
	}
	return body
}

func (tr *truth) refresh(t *testing.T, method string, app registered, refreshToken any) (int, map[string]any) {
	t.Helper()
	rt, _ := refreshToken.(string)
	return clientPost(t, tr.tokenEP, method, app.ClientID, app.ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// verify checks an ID token for app with the keys at jwks_uri.
func (tr *truth) verify(t *testing.T, app registered, idToken any) map[string]any {
	t.Helper()
	raw, _ := idToken.(string)
	return idTokenClaims(t, oidc.NewVerifier(tr.kg.issuer, tr.keySet, &oidc.Config{ClientID: app.ClientID}), raw)
}

// publishedAlg is the alg of the key jwks_uri publishes under kid, "" if
// none.
func (tr *truth) publishedAlg(t *testing.T, kid any) string {
	t.Helper()
	resp, err := http.Get(tr.d.str(t, "jwks_uri"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, Alg string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Kid == kid {
			return k.Alg
		}
	}
	return ""
}

// active says what introspection by the confidential app says of token.
func (tr *truth) active(t *testing.T, token string) bool {
	t.Helper()
	status, body := clientPost(t, tr.introEP, "client_secret_basic", tr.conf.ClientID, tr.conf.ClientSecret, url.Values{"token": {token}})
	if status != http.StatusOK {
		t.Fatalf("introspection: %d %v", status, body)
	}
	return body["active"] == true
}
