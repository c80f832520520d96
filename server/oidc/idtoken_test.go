package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/fositestore"
	"github.com/keygate/keygate/storage/sqlite"
)

// setIDTokenAlg registers the test app for ID tokens signed with alg.
func (e *env) setIDTokenAlg(t *testing.T, alg string) {
	t.Helper()
	if err := e.db.UpdateClient(t.Context(), "c_app", func(c *storage.Client) error { c.IDTokenAlg = alg; return nil }); err != nil {
		t.Fatal(err)
	}
}

// muxTransport answers a relying party's requests to the issuer from the
// env's handler, in process.
type muxTransport struct{ h http.Handler }

func (m muxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	m.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// discoveredVerifier is go-oidc's stock ID token verifier for the test
// app, built from keygate's discovery document: it accepts the algorithms
// discovery lists and fetches keys from its jwks_uri.
func (e *env) discoveredVerifier(t *testing.T) (context.Context, *gooidc.IDTokenVerifier) {
	t.Helper()
	ctx := gooidc.ClientContext(t.Context(), &http.Client{Transport: muxTransport{e.mux}})
	p, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	return ctx, p.Verifier(&gooidc.Config{ClientID: "c_app"})
}

// headerOf is an ID token's JOSE header.
func headerOf(t *testing.T, raw string) jose.Header {
	t.Helper()
	jws, err := jose.ParseSigned(raw)
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("not a single-signature JWS (%v): %.40s…", err, raw)
	}
	return jws.Signatures[0].Header
}

// currentKID is the kid of the key keygate signs with for alg.
func (e *env) currentKID(t *testing.T, alg string) string {
	t.Helper()
	k, err := e.keys.Current().Signing(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k.KeyID
}

// An app's ID tokens, from the code exchange and from every refresh, are
// signed with the algorithm it registered, by that algorithm's current
// key, and verify with go-oidc's verifier as discovery configures it; an
// app that registered none gets RS256.
func TestIDTokensAreSignedWithTheAppsAlgorithm(t *testing.T) {
	for _, tc := range []struct{ registered, want string }{
		{"", "RS256"},
		{"RS256", "RS256"},
		{"ES256", "ES256"},
	} {
		t.Run("registered "+tc.registered+" signs "+tc.want, func(t *testing.T) {
			e := newEnv(t)
			e.setIDTokenAlg(t, tc.registered)
			ctx, verifier := e.discoveredVerifier(t)
			check := func(t *testing.T, idToken, accessToken string) {
				t.Helper()
				if h := headerOf(t, idToken); h.Algorithm != tc.want || h.KeyID != e.currentKID(t, tc.want) {
					t.Errorf("ID token signed with %s by %q, want %s by %q", h.Algorithm, h.KeyID, tc.want, e.currentKID(t, tc.want))
				}
				idt, err := verifier.Verify(ctx, idToken)
				if err != nil {
					t.Fatalf("go-oidc refuses the ID token: %v", err)
				}
				if idt.Subject != e.user.ID {
					t.Errorf("sub %q", idt.Subject)
				}
				// at_hash is the left half of the access token's hash under
				// the signature's hash function: SHA-256 for both.
				if err := idt.VerifyAccessToken(accessToken); err != nil {
					t.Errorf("at_hash: %v", err)
				}
			}
			app := e.signInWithScope(t, "openid offline_access")
			t.Run("code exchange", func(t *testing.T) { check(t, app.idToken, app.accessToken) })
			t.Run("refresh", func(t *testing.T) {
				next := e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {app.refreshToken}})
				if next.status != http.StatusOK || next.IDToken == "" {
					t.Fatalf("refresh: %d %+v", next.status, next)
				}
				check(t, next.IDToken, next.AccessToken)
			})
		})
	}
}

// An app that changes its algorithm gets the new one at its next refresh:
// the client is read anew for every token.
func TestSwitchingAlgorithmAppliesAtTheNextRefresh(t *testing.T) {
	e := newEnv(t)
	app := e.signInWithScope(t, "openid offline_access")
	if alg := headerOf(t, app.idToken).Algorithm; alg != "RS256" {
		t.Fatalf("first ID token %s", alg)
	}
	e.setIDTokenAlg(t, "ES256") // through the store, which drops its cached client
	next := e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {app.refreshToken}})
	if next.status != http.StatusOK {
		t.Fatalf("refresh: %d %+v", next.status, next)
	}
	if alg := headerOf(t, next.IDToken).Algorithm; alg != "ES256" {
		t.Errorf("after switching to ES256 the refresh signed with %s", alg)
	}
}

// An app sends an ID token back as id_token_hint; fosite reads it at the
// authorization endpoint and again when the code is redeemed. One of
// either algorithm is read — the app's own, or the other one it held
// before it switched — and a token that is not an ID token is refused.
func TestIDTokenHintOfEitherAlgorithm(t *testing.T) {
	e := newEnv(t)
	e.setTokenFormat(t, TokenFormatJWT)
	rs := e.signInThroughFlow(t)
	e.setIDTokenAlg(t, "ES256")
	es := e.signInThroughFlow(t)
	if headerOf(t, rs.idToken).Algorithm != "RS256" || headerOf(t, es.idToken).Algorithm != "ES256" {
		t.Fatal("the sign-ins did not get an RS256 and an ES256 ID token")
	}
	for _, tc := range []struct {
		name, hint, wantErr string
	}{
		{"an ES256 ID token", es.idToken, ""},
		{"an RS256 ID token of before the switch", rs.idToken, ""},
		{"the app's ES256 access token", es.accessToken, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _, _ := e.completeAuthorization(t, authorizeQuery(url.Values{"id_token_hint": {tc.hint}}))
			if q.Get("error") != tc.wantErr {
				t.Fatalf("answered %v, want error %q", q, tc.wantErr)
			}
			if tc.wantErr == "" {
				if tok := e.exchange(t, q.Get("code")); headerOf(t, tok.IDToken).Algorithm != "ES256" {
					t.Errorf("ID token %s", headerOf(t, tok.IDToken).Algorithm)
				}
			}
		})
	}
}

// A back-channel logout token is signed as the app's ID tokens are.
func TestLogoutTokenIsSignedLikeTheAppsIDTokens(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.PostFormValue("logout_token"))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, registered, clientID, want string
	}{
		{"an app registered for none gets RS256", "", "c_app", "RS256"},
		{"an app registered for ES256 gets ES256", "ES256", "c_app", "ES256"},
		{"a deleted app's gets RS256", "ES256", "c_gone", "RS256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.setIDTokenAlg(t, tc.registered)
			payload, _ := json.Marshal(backchannelLogout{ClientID: tc.clientID, Subject: e.user.ID, SID: "sid-1"})
			mu.Lock()
			got = nil
			mu.Unlock()
			if err := e.h.SendBackchannelLogout(t.Context(), storage.OutboxMessage{Target: srv.URL, Payload: payload}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 {
				t.Fatalf("%d logout tokens delivered", len(got))
			}
			h := headerOf(t, got[0])
			if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); h.Algorithm != tc.want || h.KeyID != e.currentKID(t, tc.want) || typ != "logout+jwt" {
				t.Errorf("logout token signed with %s by %q, typ %q; want %s by %q", h.Algorithm, h.KeyID, typ, tc.want, e.currentKID(t, tc.want))
			}
			jws, _ := jose.ParseSigned(got[0])
			set := e.keys.Current().JWKS()
			published := set.Key(h.KeyID)
			if len(published) != 1 {
				t.Fatalf("kid %q is not published", h.KeyID)
			}
			if _, err := jws.Verify(published[0].Public()); err != nil {
				t.Errorf("signature: %v", err)
			}
		})
	}
}

func TestDiscoveryListsBothIDTokenAlgorithms(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(e.get(t, "/.well-known/openid-configuration", nil).Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if strings.Join(doc.Algs, " ") != "RS256 ES256" {
		t.Errorf("id_token_signing_alg_values_supported %q, want RS256 (the default, first) and ES256", doc.Algs)
	}
}

// What signing an ID token costs, by algorithm:
//
//	go test ./server/oidc -run '^$' -bench IDToken
func BenchmarkIDToken(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "k.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	master, err := keys.NewMaster(make([]byte, keys.MasterKeySize))
	if err != nil {
		b.Fatal(err)
	}
	if err := keys.EnsureSigningKeys(ctx, db, master, time.Now()); err != nil {
		b.Fatal(err)
	}
	ring, err := keys.NewKeyring(ctx, db, master, time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &fosite.Config{IDTokenIssuer: issuer, IDTokenLifespan: time.Hour, MinParameterEntropy: fosite.MinParameterEntropy}
	strategy := newIDTokenStrategy(ring, cfg)
	for _, alg := range idTokenAlgs {
		b.Run(alg, func(b *testing.B) {
			sess := NewSession()
			sess.Claims.Subject = "u_alice"
			sess.Claims.AuthTime = time.Now().Add(-time.Minute).Truncate(time.Second)
			sess.Claims.AuthenticationContextClassReference = "mfa"
			sess.Claims.AuthenticationMethodsReferences = []string{"pwd", "otp"}
			req := fosite.NewAccessRequest(sess)
			req.Client = &fositestore.Client{Client: storage.Client{ID: "c_app", IDTokenAlg: alg}}
			req.Form = url.Values{"grant_type": {"refresh_token"}}
			b.ReportAllocs()
			for b.Loop() {
				tok, err := strategy.GenerateIDToken(ctx, time.Hour, req)
				if err != nil {
					b.Fatal(err)
				}
				if !strings.HasPrefix(tok, "ey") {
					b.Fatalf("%.40s", tok)
				}
			}
		})
	}
}
