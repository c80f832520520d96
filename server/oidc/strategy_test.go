package oidc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

const (
	svcSecret = "service-secret-for-the-jwt-access-token-tests"
	apiAud    = "https://api.example"
)

// addService registers a confidential client_credentials app.
func (e *env) addService(t *testing.T, id, format string) {
	t.Helper()
	hash, err := keys.NewSecretHasher(testMaster(t).Derive("client-secret", 32)).Hash(t.Context(), []byte(svcSecret))
	if err != nil {
		t.Fatal(err)
	}
	err = e.db.CreateClient(t.Context(), storage.Client{
		ID: id, Name: id, SecretHash: hash, GrantTypes: []string{"client_credentials"},
		Scopes: []string{"read", "write"}, Audience: []string{apiAud}, MinACR: "mfa", TokenFormat: format,
		CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testMaster is newEnv's master key.
func testMaster(t *testing.T) *keys.Master {
	t.Helper()
	m, err := keys.NewMaster([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// setTokenFormat switches the test app's access token format.
func (e *env) setTokenFormat(t *testing.T, format string) {
	t.Helper()
	if err := e.db.UpdateClient(t.Context(), "c_app", func(c *storage.Client) error { c.TokenFormat = format; return nil }); err != nil {
		t.Fatal(err)
	}
}

// postAs posts form to path authenticated as client id and decodes the
// JSON answer.
func (e *env) postAs(t *testing.T, path, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(id, secret)
	resp := e.do(t, r, nil)
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: status %d, %v: %.200s", path, resp.StatusCode, err, body)
		}
	}
	return resp.StatusCode, out
}

func (e *env) serviceToken(t *testing.T, id string, form url.Values) string {
	t.Helper()
	form.Set("grant_type", "client_credentials")
	status, out := e.postAs(t, "/oauth2/token", id, svcSecret, form)
	at, _ := out["access_token"].(string)
	if status != http.StatusOK || at == "" {
		t.Fatalf("client_credentials for %s: status %d, %v", id, status, out)
	}
	return at
}

// introspect introspects token as the test app.
func (e *env) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	return e.introspectAs(t, "c_app", appSecret, token)
}

// introspectSvc introspects token as the service id (see addService).
func (e *env) introspectSvc(t *testing.T, id, token string) map[string]any {
	t.Helper()
	return e.introspectAs(t, id, svcSecret, token)
}

func (e *env) introspectAs(t *testing.T, id, secret, token string) map[string]any {
	t.Helper()
	status, out := e.postAs(t, "/oauth2/introspect", id, secret, url.Values{"token": {token}})
	if status != http.StatusOK {
		t.Fatalf("introspect: status %d, %v", status, out)
	}
	return out
}

// verifyAccessJWT verifies token against the JWKS the server publishes
// and returns its header and claims.
func (e *env) verifyAccessJWT(t *testing.T, token string) (jose.Header, map[string]any) {
	t.Helper()
	resp := e.get(t, "/oauth2/jwks", nil)
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token)
	if err != nil {
		t.Fatalf("the access token is not a JWS: %v", err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("access token signed with kid %q, which the JWKS does not hold", h.KeyID)
	}
	payload, err := jws.Verify(keys[0].Public())
	if err != nil {
		t.Fatalf("access token signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return h, claims
}

// checkAccessJWT checks the RFC 9068 header and the claims every JWT
// access token has, and returns the claims.
func (e *env) checkAccessJWT(t *testing.T, token, clientID string, aud []string, scope string) map[string]any {
	t.Helper()
	h, c := e.verifyAccessJWT(t, token)
	if h.Algorithm != "ES256" || h.ExtraHeaders[jose.HeaderType] != "at+jwt" || h.KeyID == "" {
		t.Errorf("header alg %q typ %v kid %q, want ES256, at+jwt and a kid", h.Algorithm, h.ExtraHeaders[jose.HeaderType], h.KeyID)
	}
	gotScope, _ := c["scope"].(string)
	if c["iss"] != issuer || c["client_id"] != clientID || gotScope != scope {
		t.Errorf("iss %v client_id %v scope %v, want %s %s %q", c["iss"], c["client_id"], c["scope"], issuer, clientID, scope)
	}
	var gotAud []string
	if a, ok := c["aud"].([]any); ok {
		for _, v := range a {
			s, _ := v.(string)
			gotAud = append(gotAud, s)
		}
	}
	if !slices.Equal(gotAud, aud) {
		t.Errorf("aud %v, want %v", c["aud"], aud)
	}
	if jti, _ := c["jti"].(string); len(jti) < 16 {
		t.Errorf("jti %v", c["jti"])
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if now := float64(time.Now().Unix()); math.Abs(iat-now) > 5 {
		t.Errorf("iat %v, now %v", iat, now)
	}
	if d := exp - iat; math.Abs(d-DefaultLifetimes.AccessToken.Seconds()) > 2 {
		t.Errorf("exp - iat = %v s, want the access token lifetime", d)
	}
	if _, ok := c["scp"]; ok {
		t.Error("the token carries fosite's scp besides scope")
	}
	return c
}

func TestJWTAccessTokens(t *testing.T) {
	t.Run("a jwt client's client_credentials token is an RFC 9068 JWT", func(t *testing.T) {
		e := newEnv(t)
		e.addService(t, "c_svc", "jwt")
		at := e.serviceToken(t, "c_svc", url.Values{"scope": {"read write"}, "audience": {apiAud}})
		c := e.checkAccessJWT(t, at, "c_svc", []string{"c_svc", apiAud}, "read write")
		if c["sub"] != "c_svc" {
			t.Errorf("sub %v, want the client's id (RFC 9068 §2.2, no resource owner)", c["sub"])
		}
		for _, k := range []string{"acr", "amr", "auth_time", "sid", "email"} {
			if _, ok := c[k]; ok {
				t.Errorf("a client_credentials token carries %s", k)
			}
		}
		// Without a scope there is no scope claim.
		c = e.checkAccessJWT(t, e.serviceToken(t, "c_svc", url.Values{}), "c_svc", []string{"c_svc"}, "")
		if _, ok := c["scope"]; ok {
			t.Errorf("scope %q for a token granted none", c["scope"])
		}
	})

	t.Run("an opaque client's token is not a JWT", func(t *testing.T) {
		e := newEnv(t)
		e.addService(t, "c_plain", "opaque")
		at := e.serviceToken(t, "c_plain", url.Values{"scope": {"read"}})
		if !strings.HasPrefix(at, "ory_at_") || strings.Count(at, ".") != 1 {
			t.Errorf("access token %q, want fosite's opaque ory_at_KEY.SIG", at)
		}
		if in := e.introspectSvc(t, "c_plain", at); in["active"] != true {
			t.Errorf("introspection %v", in)
		}
	})

	t.Run("introspection sees a JWT until it is revoked", func(t *testing.T) {
		e := newEnv(t)
		e.addService(t, "c_svc", "jwt")
		at := e.serviceToken(t, "c_svc", url.Values{"scope": {"read"}})
		in := e.introspectSvc(t, "c_svc", at)
		if in["active"] != true || in["client_id"] != "c_svc" || in["scope"] != "read" {
			t.Fatalf("introspection of a fresh JWT: %v", in)
		}
		// Another client cannot revoke it; its owner can.
		if status, _ := e.postAs(t, "/oauth2/revoke", "c_app", appSecret, url.Values{"token": {at}}); status == http.StatusOK {
			if in := e.introspectSvc(t, "c_svc", at); in["active"] != true {
				t.Fatal("another client revoked the token")
			}
		}
		status, out := e.postAs(t, "/oauth2/revoke", "c_svc", svcSecret, url.Values{"token": {at}, "token_type_hint": {"access_token"}})
		if status != http.StatusOK {
			t.Fatalf("revoke: status %d, %v", status, out)
		}
		if in := e.introspectSvc(t, "c_svc", at); in["active"] != false {
			t.Errorf("introspection after revocation: %v", in)
		}
	})

	t.Run("a JWT whose claims were altered is inactive", func(t *testing.T) {
		e := newEnv(t)
		e.addService(t, "c_svc", "jwt")
		at := e.serviceToken(t, "c_svc", url.Values{"scope": {"read"}})
		parts := strings.Split(at, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"read"`, `"write"`, 1))) + "." + parts[2]
		if forged == at {
			t.Fatal("the payload was not altered")
		}
		if in := e.introspectSvc(t, "c_svc", forged); in["active"] != false {
			t.Errorf("an altered JWT under a stored signature is active: %v", in)
		}
		if in := e.introspectSvc(t, "c_svc", at); in["active"] != true {
			t.Errorf("the original: %v", in)
		}
	})

	t.Run("a JWT signed before a key rotation stays active while its key is published", func(t *testing.T) {
		e := newEnv(t)
		e.addService(t, "c_svc", "jwt")
		before := e.serviceToken(t, "c_svc", url.Values{})
		oldKid, _ := e.verifyAccessJWT(t, before)
		if _, err := keys.Rotate(t.Context(), e.db, testMaster(t), e.clock.Now(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := e.keys.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		after := e.serviceToken(t, "c_svc", url.Values{})
		newKid, _ := e.verifyAccessJWT(t, after)
		if newKid.KeyID == oldKid.KeyID {
			t.Fatal("the rotation did not change the signing key")
		}
		for _, at := range []string{before, after} {
			if in := e.introspectSvc(t, "c_svc", at); in["active"] != true {
				t.Errorf("introspection: %v", in)
			}
		}
	})

	t.Run("an authorization code flow yields a JWT with the sign-in; refresh rotates it", func(t *testing.T) {
		e := newEnv(t)
		e.setTokenFormat(t, "jwt")
		app := e.signInWithScope(t, "openid offline_access")
		if app.refreshToken == "" || !strings.HasPrefix(app.refreshToken, "ory_rt_") {
			t.Fatalf("refresh token %q, want an opaque one", app.refreshToken)
		}
		c := e.checkAccessJWT(t, app.accessToken, "c_app", []string{"c_app"}, "openid offline_access")
		authTime := e.idTokenClaims(t, app.idToken)["auth_time"]
		if c["sub"] != e.user.ID || c["acr"] != "mfa" || c["auth_time"] != authTime || authTime == nil {
			t.Errorf("sub %v acr %v auth_time %v, want %s mfa %v", c["sub"], c["acr"], c["auth_time"], e.user.ID, authTime)
		}
		if amr, _ := c["amr"].([]any); !slices.Equal(amr, []any{"pwd", "otp"}) {
			t.Errorf("amr %v, want [pwd otp]", c["amr"])
		}
		if _, ok := c["email"]; ok {
			t.Error("the access token carries the ID token's email")
		}
		if !e.tokenActive(t, app.accessToken) {
			t.Error("userinfo refuses the JWT")
		}
		in := e.introspect(t, app.accessToken)
		if in["active"] != true || in["sub"] != e.user.ID || in["acr"] != "mfa" {
			t.Errorf("introspection: %v", in)
		}

		next := e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {app.refreshToken}})
		if next.status != http.StatusOK || next.RefreshToken == "" || next.RefreshToken == app.refreshToken || next.AccessToken == app.accessToken {
			t.Fatalf("refresh: %+v", next)
		}
		c = e.checkAccessJWT(t, next.AccessToken, "c_app", []string{"c_app"}, "openid offline_access")
		if c["sub"] != e.user.ID || c["acr"] != "mfa" || c["auth_time"] != authTime {
			t.Errorf("refreshed: sub %v acr %v auth_time %v", c["sub"], c["acr"], c["auth_time"])
		}
		if e.tokenActive(t, app.accessToken) {
			t.Error("the access token of the rotated refresh token still works")
		}
		if !e.tokenActive(t, next.AccessToken) {
			t.Error("the refreshed access token does not work")
		}
		// Reuse after the grace window revokes the family, JWTs included.
		e.clock.Advance(DefaultLifetimes.RefreshGrace + time.Second)
		if again := e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {app.refreshToken}}); again.status == http.StatusOK {
			t.Fatal("a rotated refresh token was accepted again")
		}
		if in := e.introspect(t, next.AccessToken); in["active"] != false {
			t.Errorf("the family's JWT is active after a refresh-token reuse: %v", in)
		}
	})

	t.Run("suspending the user ends a JWT at introspection", func(t *testing.T) {
		e := newEnv(t)
		e.setTokenFormat(t, "jwt")
		app := e.signInThroughFlow(t)
		if in := e.introspect(t, app.accessToken); in["active"] != true {
			t.Fatalf("introspection: %v", in)
		}
		if _, err := e.manager(t).SuspendUser(t.Context(), e.user.Email); err != nil {
			t.Fatal(err)
		}
		if in := e.introspect(t, app.accessToken); in["active"] != false {
			t.Errorf("introspection after suspension: %v", in)
		}
	})
}

func (e *env) manager(t *testing.T) *manage.Manager {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &manage.Manager{Store: e.db, Audit: audit.NewRecorder(e.db, logger, nil, e.clock.Now),
		Hasher: keys.NewSecretHasher(testMaster(t).Derive("client-secret", 32)), Issuer: issuer, Actor: "cli", Now: e.clock.Now}
}

func TestRegisterTokenFormat(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	ctx := t.Context()
	if _, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "Bad", GrantTypes: []string{"client_credentials"}, TokenFormat: "paseto"}); !errors.Is(err, manage.ErrInvalid) {
		t.Errorf("token format paseto: %v, want invalid", err)
	}
	formats := map[string]string{}
	for _, f := range []string{"", "opaque", "jwt"} {
		nc, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "App " + f, GrantTypes: []string{"client_credentials"}, TokenFormat: f})
		if err != nil {
			t.Fatal(err)
		}
		status, out := e.postAs(t, "/oauth2/token", nc.Client.ID, nc.Secret, url.Values{"grant_type": {"client_credentials"}})
		at, _ := out["access_token"].(string)
		if status != http.StatusOK {
			t.Fatalf("format %q: status %d, %v", f, status, out)
		}
		stored, err := e.db.GetClient(ctx, nc.Client.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := f
		if f == "" {
			want = "opaque"
		}
		if stored.TokenFormat != want || isJWT(at) != (want == "jwt") {
			t.Errorf("format %q: stored %q, token %.20s…", f, stored.TokenFormat, at)
		}
		formats[f] = nc.Client.ID
	}
	// An update that does not name a format keeps it.
	id := formats["jwt"]
	if err := m.UpdateClient(ctx, id, manage.ClientSpec{Name: "Renamed", GrantTypes: []string{"client_credentials"}}); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.db.GetClient(ctx, id); c.TokenFormat != "jwt" {
		t.Errorf("after an update without a format: %q", c.TokenFormat)
	}
}
