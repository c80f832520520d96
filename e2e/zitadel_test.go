package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client"
	zrp "github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/client/rs"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// zitadelApp is a web app built on zitadel/oidc's rp package the way its
// documentation shows: rp's own handlers start the sign-in (state and PKCE
// verifier in its encrypted cookies) and take the callback (code exchange,
// ID token verification, userinfo). Only the nonce is the app's own: rp
// checks one through a callback but does not make one.
type zitadelApp struct {
	url      string
	mux      *http.ServeMux
	rp       zrp.RelyingParty
	nonceKey []byte

	mu       sync.Mutex
	tokens   *oidc.Tokens[*oidc.IDTokenClaims]
	userinfo *oidc.UserInfo
}

type stateKey struct{}

// newZitadelApp starts the app's web server; its address is the redirect
// URI to register before connect.
func newZitadelApp(t *testing.T) *zitadelApp {
	app := &zitadelApp{mux: http.NewServeMux(), nonceKey: randomBytes(t, 32)}
	srv := httptest.NewServer(app.mux)
	t.Cleanup(srv.Close)
	app.url = srv.URL
	return app
}

// connect runs rp's discovery and mounts its handlers: /login starts a
// sign-in with params added to the authorization request, /callback ends it.
func (app *zitadelApp) connect(t *testing.T, issuer, clientID, secret string, scopes []string, params ...zrp.URLParamOpt) {
	t.Helper()
	cookies := httphelper.NewCookieHandler(randomBytes(t, 32), randomBytes(t, 32), httphelper.WithUnsecure())
	relying, err := zrp.NewRelyingPartyOIDC(t.Context(), issuer, clientID, secret, app.url+"/callback", scopes,
		zrp.WithPKCEFromDiscovery(cookies),
		zrp.WithVerifierOpts(zrp.WithNonce(func(ctx context.Context) string {
			// The callback's state names the nonce the sign-in was sent
			// with; a refresh has none, and its ID token must carry none.
			state, _ := ctx.Value(stateKey{}).(string)
			if state == "" {
				return ""
			}
			return app.nonce(state)
		})))
	if err != nil {
		t.Fatalf("zitadel rp discovery: %v", err)
	}
	app.rp = relying

	app.mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		state := rand.Text()
		opts := append([]zrp.URLParamOpt{zrp.WithURLParam("nonce", app.nonce(state))}, params...)
		zrp.AuthURLHandler(func() string { return state }, relying, opts...)(w, r)
	})
	exchange := zrp.CodeExchangeHandler(zrp.UserinfoCallback(
		func(w http.ResponseWriter, r *http.Request, tokens *oidc.Tokens[*oidc.IDTokenClaims], state string, _ zrp.RelyingParty, info *oidc.UserInfo) {
			app.mu.Lock()
			app.tokens, app.userinfo = tokens, info
			app.mu.Unlock()
			fmt.Fprintf(w, "signed in as %s", info.Email)
		}), relying)
	app.mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		exchange(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, r.URL.Query().Get("state"))))
	})
}

func (a *zitadelApp) nonce(state string) string {
	m := hmac.New(sha256.New, a.nonceKey)
	m.Write([]byte(state))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signedIn is what the app's callback got last.
func (a *zitadelApp) signedIn() (*oidc.Tokens[*oidc.IDTokenClaims], *oidc.UserInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokens, a.userinfo
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// zitadelLogoutReceiver is an app's back-channel logout endpoint that
// checks each logout token with zitadel/oidc's parts: the key set from
// discovery, its signature check, its LogoutTokenClaims.
type zitadelLogoutReceiver struct {
	url    string
	mu     sync.Mutex
	tokens []logoutClaims
	errs   []error
}

// logoutClaims lets zitadel's signature check note the algorithm.
type logoutClaims struct {
	oidc.LogoutTokenClaims
	alg jose.SignatureAlgorithm
}

func (c *logoutClaims) SetSignatureAlgorithm(alg jose.SignatureAlgorithm) { c.alg = alg }

func newZitadelLogoutReceiver(t *testing.T, issuer string) *zitadelLogoutReceiver {
	t.Helper()
	disc, err := client.Discover(t.Context(), issuer, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	keySet := zrp.NewRemoteKeySet(http.DefaultClient, disc.JwksURI)
	lr := &zitadelLogoutReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.PostFormValue("logout_token")
		var claims logoutClaims
		payload, err := oidc.ParseToken(raw, &claims)
		if err == nil {
			err = oidc.CheckSignature(r.Context(), raw, payload, &claims, disc.IDTokenSigningAlgValuesSupported, keySet)
		}
		lr.mu.Lock()
		defer lr.mu.Unlock()
		if err != nil {
			lr.errs = append(lr.errs, err)
			http.Error(w, "bad logout token", http.StatusBadRequest)
			return
		}
		lr.tokens = append(lr.tokens, claims)
	}))
	t.Cleanup(srv.Close)
	lr.url = srv.URL + "/backchannel-logout"
	return lr
}

// forSession is the verified logout token for session sid, if one came.
func (lr *zitadelLogoutReceiver) forSession(t *testing.T, sid string) (logoutClaims, bool) {
	t.Helper()
	lr.mu.Lock()
	var err error
	if len(lr.errs) > 0 {
		err = lr.errs[0]
	}
	tokens := slices.Clone(lr.tokens)
	lr.mu.Unlock()
	if err != nil {
		t.Fatalf("a logout token did not verify: %v", err)
	}
	for _, c := range tokens {
		if c.SessionID == sid {
			return c, true
		}
	}
	return logoutClaims{}, false
}

// TestZitadelRelyingParty runs an app built on zitadel/oidc v3's rp
// package, and an API built on its rs package, against keygate: discovery,
// code + PKCE (turned on from discovery), nonce, ID token verification,
// userinfo, refresh, introspection by the API, revocation, RP-initiated
// logout sent from the app's server, and back-channel logout. rp sends no
// pushed authorization requests (v3.52.0 neither reads the PAR endpoint
// from discovery nor has a way to push one); TestDiscoveryTellsTheTruth
// covers PAR.
func TestZitadelRelyingParty(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "")
	ada := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ada@localhost"), "ada@localhost")
	lr := newZitadelLogoutReceiver(t, kg.issuer)

	// The API introspects the tokens the app sends it, so the app asks for
	// tokens meant for it (README: introspection).
	var api, reg registered
	kg.cliJSON(&api, "client", "add", "--name", "Orders API", "--grant", "client_credentials")
	app := newZitadelApp(t)
	kg.cliJSON(&reg, "client", "add", "--name", "Orders", "--redirect-uri", app.url+"/callback",
		"--post-logout-redirect-uri", app.url+"/bye", "--backchannel-logout-uri", lr.url, "--audience", api.ClientID)
	app.connect(t, kg.issuer, reg.ClientID, reg.ClientSecret, []string{"openid", "email", "profile", "offline_access"},
		zrp.WithURLParam("audience", api.ClientID))
	resource, err := rs.NewResourceServerClientCredentials(t.Context(), kg.issuer, api.ClientID, api.ClientSecret)
	if err != nil {
		t.Fatalf("zitadel rs discovery: %v", err)
	}
	introspect := func(t *testing.T, token string) *oidc.IntrospectionResponse {
		t.Helper()
		resp, err := rs.Introspect[*oidc.IntrospectionResponse](t.Context(), resource, token)
		if err != nil {
			t.Fatalf("introspection by the API: %v", err)
		}
		return resp
	}

	t.Run("discovery turns PKCE on and names every endpoint rp uses", func(t *testing.T) {
		if !app.rp.IsPKCE() {
			t.Error("rp did not find S256 in code_challenge_methods_supported")
		}
		for name, got := range map[string]string{
			"authorization": app.rp.OAuthConfig().Endpoint.AuthURL, "token": app.rp.OAuthConfig().Endpoint.TokenURL,
			"userinfo": app.rp.UserinfoEndpoint(), "end session": app.rp.GetEndSessionEndpoint(),
			"revocation": app.rp.GetRevokeEndpoint(), "introspection": resource.IntrospectionURL(),
		} {
			if !strings.HasPrefix(got, kg.issuer+"/oauth2/") {
				t.Errorf("%s endpoint %q", name, got)
			}
		}
	})

	b := newBrowser(t, kg.issuer)
	authURL := b.hopTo(app.url + "/login")
	q := authorizeParams(t, authURL)
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
		t.Fatalf("rp's authorization request lacks PKCE S256 or a nonce: %v", q)
	}
	p := signIn(t, b, authRequest{url: authURL}, ada, "totp", nextCode(t, ada.totpSecret))
	if !strings.HasPrefix(p.location, app.url+"/callback?") {
		t.Fatalf("keygate did not send the browser back to the app: %d %s %q: %s", p.status, p.url, p.location, p.alert())
	}
	if p = b.visit(p.location); p.status != http.StatusOK || p.body != "signed in as "+ada.email {
		t.Fatalf("the app's callback: %d %s", p.status, p.body)
	}
	tokens, info := app.signedIn()
	claims := tokens.IDTokenClaims

	t.Run("the ID token verified, with the nonce and how the user signed in", func(t *testing.T) {
		if claims.Nonce != app.nonce(q.Get("state")) || claims.Issuer != kg.issuer || claims.SignatureAlg != jose.RS256 {
			t.Errorf("nonce %q iss %q alg %s", claims.Nonce, claims.Issuer, claims.SignatureAlg)
		}
		if claims.AuthenticationContextClassReference != "mfa" || !slices.Equal([]string(claims.AuthenticationMethodsReferences), []string{"pwd", "otp"}) {
			t.Errorf("acr %q amr %v", claims.AuthenticationContextClassReference, claims.AuthenticationMethodsReferences)
		}
		if claims.Email != ada.email || !bool(claims.EmailVerified) || claims.SessionID == "" || claims.AuthTime.AsTime().IsZero() {
			t.Errorf("claims %+v", claims)
		}
	})

	t.Run("userinfo names the same user", func(t *testing.T) {
		if info.Subject != claims.Subject || info.Email != ada.email || !bool(info.EmailVerified) {
			t.Errorf("userinfo %+v", info)
		}
	})

	t.Run("the API's introspection, with client_secret_basic, sees the token meant for it", func(t *testing.T) {
		resp := introspect(t, tokens.AccessToken)
		if !resp.Active || resp.Subject != claims.Subject || resp.ClientID != reg.ClientID ||
			!slices.Contains([]string(resp.Audience), api.ClientID) || !slices.Contains([]string(resp.Scope), "openid") {
			t.Errorf("introspection %+v", resp)
		}
	})

	t.Run("refresh rotates the tokens and brings a verified ID token for the same session", func(t *testing.T) {
		next, err := zrp.RefreshTokens[*oidc.IDTokenClaims](t.Context(), app.rp, tokens.RefreshToken, "", "")
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if next.AccessToken == tokens.AccessToken || next.RefreshToken == "" || next.RefreshToken == tokens.RefreshToken {
			t.Fatal("refresh did not rotate the tokens")
		}
		if next.IDTokenClaims == nil || next.IDTokenClaims.Subject != claims.Subject || next.IDTokenClaims.SessionID != claims.SessionID ||
			!next.IDTokenClaims.AuthTime.AsTime().Equal(claims.AuthTime.AsTime()) {
			t.Errorf("refreshed ID token %+v", next.IDTokenClaims)
		}
		if !introspect(t, next.AccessToken).Active {
			t.Error("the refreshed access token is not active")
		}
		if introspect(t, tokens.AccessToken).Active {
			t.Error("the access token the refresh replaced is still active")
		}
		tokens = next
	})

	t.Run("revocation with client_secret_post ends the access and the refresh token", func(t *testing.T) {
		if err := zrp.RevokeToken(t.Context(), app.rp, tokens.AccessToken, "access_token"); err != nil {
			t.Fatalf("revoke the access token: %v", err)
		}
		if introspect(t, tokens.AccessToken).Active {
			t.Error("the revoked access token is still active")
		}
		if err := zrp.RevokeToken(t.Context(), app.rp, tokens.RefreshToken, "refresh_token"); err != nil {
			t.Fatalf("revoke the refresh token: %v", err)
		}
		if _, err := zrp.RefreshTokens[*oidc.IDTokenClaims](t.Context(), app.rp, tokens.RefreshToken, "", ""); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("refresh with the revoked refresh token: %v, want invalid_grant", err)
		}
	})

	t.Run("logout sent from the app's server ends the session its ID token names", func(t *testing.T) {
		// A new grant through single sign-on, in the same browser session.
		p := b.visit(app.url + "/login")
		if !strings.HasPrefix(p.location, app.url+"/callback?") {
			t.Fatalf("single sign-on did not answer the app: %d %s %q", p.status, p.url, p.location)
		}
		if p = b.visit(p.location); p.status != http.StatusOK {
			t.Fatalf("the app's callback: %d %s", p.status, p.body)
		}
		sso, _ := app.signedIn()
		sid := sso.IDTokenClaims.SessionID
		if sid != claims.SessionID {
			t.Fatalf("single sign-on changed the session: %q, was %q", sid, claims.SessionID)
		}

		// zrp.EndSession posts from the app's server: none of the
		// browser's cookies go with it.
		back, err := zrp.EndSession(t.Context(), app.rp, sso.IDToken, app.url+"/bye", "bye-0123456789", "", nil)
		if err != nil {
			t.Fatalf("end session: %v", err)
		}
		if back == nil || back.String() != app.url+"/bye?state=bye-0123456789" {
			t.Errorf("end session sends the user to %v", back)
		}
		if p := b.get(kg.issuer + "/account"); p.url.Path != "/login" {
			t.Errorf("the browser is still signed in to keygate: %s", p.url)
		}
		if introspect(t, sso.AccessToken).Active {
			t.Error("an access token of the ended session is still active")
		}
		if _, err := zrp.RefreshTokens[*oidc.IDTokenClaims](t.Context(), app.rp, sso.RefreshToken, "", ""); err == nil {
			t.Error("a refresh token of the ended session still works")
		}

		var got logoutClaims
		eventually(t, 15*time.Second, "a back-channel logout for the session", func() bool {
			var ok bool
			got, ok = lr.forSession(t, sid)
			return ok
		})
		_, event := got.Events["http://schemas.openid.net/event/backchannel-logout"]
		if got.Issuer != kg.issuer || got.Subject != claims.Subject || !slices.Equal([]string(got.Audience), []string{reg.ClientID}) ||
			!event || got.JWTID == "" || got.alg != jose.RS256 || !got.Expiration.AsTime().After(got.IssuedAt.AsTime()) {
			t.Errorf("logout token %+v", got)
		}
		if _, ok := got.Claims["nonce"]; ok {
			t.Error("the logout token carries a nonce")
		}
	})
}
