package fositestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/fositestore"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

const grace = 10 * time.Second

// t0 is the injected clock's start; nothing here reads the wall clock.
var t0 = time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)

// reuses records what OnRefreshReuse was told.
type reuses struct {
	mu   sync.Mutex
	seen []storage.TokenRecord
}

func (r *reuses) record(_ context.Context, rec storage.TokenRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, rec)
}

func (r *reuses) all() []storage.TokenRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// fixture is a fresh SQLite store, the adapter over it and one client.
type fixture struct {
	db     *sqlite.Store
	fs     *fositestore.Store
	clock  *clocktest.Clock
	reuses *reuses
	client *fositestore.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := sqlitetest.Open(t)
	f := &fixture{db: db, clock: clocktest.New(t0), reuses: &reuses{}}
	f.fs = fositestore.New(db, fositestore.Options{
		RefreshGrace:   grace,
		Now:            f.clock.Now,
		OnRefreshReuse: f.reuses.record,
	})
	f.client = f.addClient(t, "c_app", nil)
	// The user the grants below belong to.
	if err := db.CreateUser(t.Context(), storage.User{ID: "u_alice", Email: "alice@example.com", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return f
}

// addClient stores a confidential client and returns it as fosite sees it.
func (f *fixture) addClient(t *testing.T, id string, secretHash []byte) *fositestore.Client {
	t.Helper()
	c := storage.Client{
		ID: id, Name: "App " + id, SecretHash: secretHash,
		RedirectURIs:  []string{"https://app.example/cb"},
		GrantTypes:    []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "email", "offline_access"},
		Audience:      []string{"https://api.example"},
		MinACR:        "mfa", TokenFormat: "opaque",
		CreatedAt: t0, UpdatedAt: t0,
	}
	if err := f.db.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	got, err := f.fs.GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return got.(*fositestore.Client)
}

// newSession is a signed-in user's OpenID session.
func newSession(subject string) *openid.DefaultSession {
	return &openid.DefaultSession{
		Subject: subject,
		Claims: &jwt.IDTokenClaims{
			Subject:                             subject,
			Issuer:                              "https://id.example",
			AuthTime:                            t0.Add(-time.Minute),
			RequestedAt:                         t0,
			AuthenticationContextClassReference: "mfa",
			AuthenticationMethodsReferences:     []string{"pwd", "otp"},
			Extra:                               map[string]any{"sid": "sid-1"},
		},
		Headers:   &jwt.Headers{},
		ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: t0.Add(time.Hour), fosite.RefreshToken: t0.Add(24 * time.Hour)},
	}
}

// emptySession is what fosite hands the store to hydrate.
func emptySession() *openid.DefaultSession {
	return &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
}

// credentials are form values that must never be written to storage.
var credentials = url.Values{
	"client_secret": {"secret-value-must-not-persist"},
	"code_verifier": {"verifier-value-must-not-persist"},
	"refresh_token": {"refresh-value-must-not-persist"},
	"password":      {"password-value-must-not-persist"},
}

// newRequest is a token request the way fosite hands it to storage: the
// whole form, credentials included.
func newRequest(f *fixture, id string) *fosite.AccessRequest {
	ar := fosite.NewAccessRequest(newSession("u_alice"))
	ar.ID = id
	ar.RequestedAt = t0
	ar.Client = f.client
	ar.GrantTypes = fosite.Arguments{"refresh_token"}
	ar.RequestedScope = fosite.Arguments{"openid", "email", "offline_access"}
	ar.GrantedScope = fosite.Arguments{"openid", "offline_access"}
	ar.RequestedAudience = fosite.Arguments{"https://api.example"}
	ar.GrantedAudience = fosite.Arguments{"https://api.example"}
	ar.Form = url.Values{"grant_type": {"refresh_token"}, "nonce": {"n-0S6_WzA2Mj"}, "scope": {"openid email offline_access"}}
	for k, v := range credentials {
		ar.Form[k] = v
	}
	return ar
}

func TestStoredRequestRoundTrips(t *testing.T) {
	type kind struct {
		name  string
		kind  string
		key   func(sig string) string // the storage key of sig
		store func(ctx context.Context, f *fixture, sig string, r fosite.Requester) error
		load  func(ctx context.Context, f *fixture, sig string, s fosite.Session) (fosite.Requester, error)
	}
	same := func(sig string) string { return sig }
	kinds := []kind{
		{"an access token's request comes back as it was stored", storage.KindAccessToken, same,
			func(ctx context.Context, f *fixture, sig string, r fosite.Requester) error {
				return f.fs.CreateAccessTokenSession(ctx, sig, r)
			},
			func(ctx context.Context, f *fixture, sig string, s fosite.Session) (fosite.Requester, error) {
				return f.fs.GetAccessTokenSession(ctx, sig, s)
			}},
		{"a refresh token's request comes back as it was stored", storage.KindRefreshToken, same,
			func(ctx context.Context, f *fixture, sig string, r fosite.Requester) error {
				return f.fs.CreateRefreshTokenSession(ctx, sig, "at-sig", r)
			},
			func(ctx context.Context, f *fixture, sig string, s fosite.Session) (fosite.Requester, error) {
				return f.fs.GetRefreshTokenSession(ctx, sig, s)
			}},
		{"an authorization code's request comes back as it was stored", storage.KindAuthorizeCode, same,
			func(ctx context.Context, f *fixture, sig string, r fosite.Requester) error {
				return f.fs.CreateAuthorizeCodeSession(ctx, sig, r)
			},
			func(ctx context.Context, f *fixture, sig string, s fosite.Session) (fosite.Requester, error) {
				return f.fs.GetAuthorizeCodeSession(ctx, sig, s)
			}},
		{"a PKCE request comes back as it was stored", storage.KindPKCE, same,
			func(ctx context.Context, f *fixture, sig string, r fosite.Requester) error {
				return f.fs.CreatePKCERequestSession(ctx, sig, r)
			},
			func(ctx context.Context, f *fixture, sig string, s fosite.Session) (fosite.Requester, error) {
				return f.fs.GetPKCERequestSession(ctx, sig, s)
			}},
		{"an OpenID session comes back as it was stored", storage.KindOIDC, codeKey,
			func(ctx context.Context, f *fixture, sig string, r fosite.Requester) error {
				return f.fs.CreateOpenIDConnectSession(ctx, sig, r)
			},
			func(ctx context.Context, f *fixture, sig string, s fosite.Session) (fosite.Requester, error) {
				return f.fs.GetOpenIDConnectSession(ctx, sig, &fosite.Request{Session: s})
			}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := t.Context()
			const sig = "sig-round-trip"
			stored := newRequest(f, "req-1")
			if err := k.store(ctx, f, sig, stored); err != nil {
				t.Fatalf("store: %v", err)
			}

			sess := emptySession()
			got, err := k.load(ctx, f, sig, sess)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if got.GetID() != "req-1" {
				t.Errorf("ID = %q, want req-1", got.GetID())
			}
			if !got.GetRequestedAt().Equal(t0) {
				t.Errorf("RequestedAt = %v, want %v", got.GetRequestedAt(), t0)
			}
			if got.GetClient().GetID() != f.client.ID {
				t.Errorf("client = %q, want %q", got.GetClient().GetID(), f.client.ID)
			}
			if _, ok := got.GetClient().(*fositestore.Client); !ok {
				t.Errorf("client is %T, want *fositestore.Client", got.GetClient())
			}
			for _, c := range []struct {
				name      string
				got, want fosite.Arguments
			}{
				{"requested scopes", got.GetRequestedScopes(), stored.RequestedScope},
				{"granted scopes", got.GetGrantedScopes(), stored.GrantedScope},
				{"requested audience", got.GetRequestedAudience(), stored.RequestedAudience},
				{"granted audience", got.GetGrantedAudience(), stored.GrantedAudience},
			} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			wantForm := url.Values{"grant_type": {"refresh_token"}, "nonce": {"n-0S6_WzA2Mj"}, "scope": {"openid email offline_access"}}
			if got.GetRequestForm().Encode() != wantForm.Encode() {
				t.Errorf("form = %v, want %v (credentials stripped, the rest kept)", got.GetRequestForm(), wantForm)
			}

			// The session is hydrated into the one the caller passed.
			if got.GetSession() != fosite.Session(sess) {
				t.Errorf("session is %p, want the provided %p", got.GetSession(), sess)
			}
			if sess.Subject != "u_alice" || sess.Claims.Subject != "u_alice" {
				t.Errorf("session subject = %q / claims %q, want u_alice", sess.Subject, sess.Claims.Subject)
			}
			if sess.Claims.AuthenticationContextClassReference != "mfa" ||
				!slices.Equal(sess.Claims.AuthenticationMethodsReferences, []string{"pwd", "otp"}) ||
				!sess.Claims.AuthTime.Equal(t0.Add(-time.Minute)) || sess.Claims.Extra["sid"] != "sid-1" {
				t.Errorf("claims = %+v, not the stored ones", sess.Claims)
			}
			if !sess.GetExpiresAt(fosite.AccessToken).Equal(t0.Add(time.Hour)) {
				t.Errorf("access token expiry = %v, want %v", sess.GetExpiresAt(fosite.AccessToken), t0.Add(time.Hour))
			}

			// The raw row: no credential value, no credential key.
			rec, err := f.db.GetToken(ctx, k.kind, k.key(sig))
			if err != nil {
				t.Fatalf("raw record: %v", err)
			}
			for key, vals := range credentials {
				if bytes.Contains(rec.Request, []byte(vals[0])) {
					t.Errorf("stored request holds the %s value: %s", key, rec.Request)
				}
			}
			var raw struct {
				Form url.Values `json:"form"`
			}
			if err := json.Unmarshal(rec.Request, &raw); err != nil {
				t.Fatal(err)
			}
			for key := range credentials {
				if raw.Form.Has(key) {
					t.Errorf("stored form has %s", key)
				}
			}
			if rec.RequestID != "req-1" || rec.ClientID != f.client.ID || rec.Subject != "u_alice" || !rec.Active {
				t.Errorf("record = %+v, want request req-1, client %s, subject u_alice, active", rec, f.client.ID)
			}
			// The caller's request keeps its form: stripping works on a copy.
			if stored.Form.Get("client_secret") == "" {
				t.Error("storing the request removed client_secret from the caller's form")
			}
		})
	}
}

func TestRecordExpiry(t *testing.T) {
	t.Run("a token record expires when its session says", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		if err := f.fs.CreateAccessTokenSession(ctx, "at", newRequest(f, "r")); err != nil {
			t.Fatal(err)
		}
		rec, err := f.db.GetToken(ctx, storage.KindAccessToken, "at")
		if err != nil {
			t.Fatal(err)
		}
		if !rec.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("ExpiresAt = %v, want %v", rec.ExpiresAt, t0.Add(time.Hour))
		}
	})
	t.Run("a record without a lifespan expires 30 days after the injected now", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		r := newRequest(f, "r")
		r.Session.(*openid.DefaultSession).ExpiresAt = nil
		if err := f.fs.CreateAuthorizeCodeSession(ctx, "code", r); err != nil {
			t.Fatal(err)
		}
		rec, err := f.db.GetToken(ctx, storage.KindAuthorizeCode, "code")
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(30 * 24 * time.Hour); !rec.ExpiresAt.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", rec.ExpiresAt, want)
		}
	})
}

func TestAuthorizeCode(t *testing.T) {
	t.Run("a used code answers ErrInvalidatedAuthorizeCode together with its request", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		if err := f.fs.CreateAuthorizeCodeSession(ctx, "code-sig", newRequest(f, "req-code")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.fs.GetAuthorizeCodeSession(ctx, "code-sig", emptySession()); err != nil {
			t.Fatalf("before use: %v", err)
		}
		if err := f.fs.InvalidateAuthorizeCodeSession(ctx, "code-sig"); err != nil {
			t.Fatal(err)
		}
		req, err := f.fs.GetAuthorizeCodeSession(ctx, "code-sig", emptySession())
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			t.Fatalf("err = %v, want ErrInvalidatedAuthorizeCode", err)
		}
		// fosite revokes what the code issued by this request's id.
		if req == nil || req.GetID() != "req-code" {
			t.Fatalf("request = %v, want the stored one (id req-code)", req)
		}
	})
	t.Run("an unknown code is not found", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.fs.GetAuthorizeCodeSession(t.Context(), "nope", emptySession())
		if !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

// refreshFamily stores an access token and the refresh token issued with
// it under requestID.
func refreshFamily(t *testing.T, f *fixture, requestID, access, refresh string) {
	t.Helper()
	ctx := t.Context()
	r := newRequest(f, requestID)
	if err := f.fs.CreateAccessTokenSession(ctx, access, r); err != nil {
		t.Fatal(err)
	}
	if err := f.fs.CreateRefreshTokenSession(ctx, refresh, access, r); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshRotation(t *testing.T) {
	t.Run("a rotated token is still accepted at the very end of the grace window", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		refreshFamily(t, f, "req", "at", "rt")
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(grace)
		if _, err := f.fs.GetRefreshTokenSession(ctx, "rt", emptySession()); err != nil {
			t.Fatalf("within grace: %v", err)
		}
		if n := len(f.reuses.all()); n != 0 {
			t.Errorf("OnRefreshReuse called %d times within the grace window", n)
		}
	})

	t.Run("two concurrent refreshes with one token both succeed", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		refreshFamily(t, f, "req", "at", "rt")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				// What fosite does per refresh: load, then rotate and store
				// the new pair in one transaction.
				req, err := f.fs.GetRefreshTokenSession(ctx, "rt", emptySession())
				if err != nil {
					errs[i] = err
					return
				}
				tx, err := f.fs.BeginTX(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				n := string(rune('a' + i))
				err = errors.Join(
					f.fs.RotateRefreshToken(tx, req.GetID(), "rt"),
					f.fs.CreateAccessTokenSession(tx, "at-"+n, req),
					f.fs.CreateRefreshTokenSession(tx, "rt-"+n, "at-"+n, req),
				)
				if err != nil {
					errs[i] = errors.Join(err, f.fs.Rollback(tx))
					return
				}
				errs[i] = f.fs.Commit(tx)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("refresh %d: %v", i, err)
			}
		}
		for _, sig := range []string{"rt-a", "rt-b"} {
			if _, err := f.fs.GetRefreshTokenSession(ctx, sig, emptySession()); err != nil {
				t.Errorf("new refresh token %s: %v", sig, err)
			}
		}
		if n := len(f.reuses.all()); n != 0 {
			t.Errorf("OnRefreshReuse called %d times", n)
		}
	})

	t.Run("after the grace window the token is inactive and the reuse is reported once", func(t *testing.T) {
		f := newFixture(t)
		ctx := fositestore.WithRefreshGrant(t.Context())
		refreshFamily(t, f, "req", "at", "rt")
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(grace + time.Microsecond)
		req, err := f.fs.GetRefreshTokenSession(ctx, "rt", emptySession())
		if !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("err = %v, want ErrInactiveToken", err)
		}
		// fosite revokes the family by the request's id.
		if req == nil || req.GetID() != "req" {
			t.Fatalf("request = %v, want the stored one (id req)", req)
		}
		got := f.reuses.all()
		if len(got) != 1 {
			t.Fatalf("OnRefreshReuse called %d times, want 1", len(got))
		}
		if got[0].RequestID != "req" || got[0].Signature != "rt" || got[0].ClientID != f.client.ID || got[0].Subject != "u_alice" {
			t.Errorf("reported record = %+v, want request req, signature rt, client %s, subject u_alice", got[0], f.client.ID)
		}
	})

	t.Run("the grace window runs from the first rotation, not the last", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		refreshFamily(t, f, "req", "at", "rt")
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(grace - time.Second)
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Second)
		if _, err := f.fs.GetRefreshTokenSession(ctx, "rt", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("err = %v, want ErrInactiveToken", err)
		}
	})

	t.Run("rotation deactivates the access token issued with the refresh token", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		refreshFamily(t, f, "req", "at", "rt")
		refreshFamily(t, f, "other", "at-other", "rt-other")
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.fs.GetAccessTokenSession(ctx, "at", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("rotated pair's access token: err = %v, want ErrNotFound", err)
		}
		if _, err := f.fs.GetAccessTokenSession(ctx, "at-other", emptySession()); err != nil {
			t.Errorf("another grant's access token: %v", err)
		}
	})

	t.Run("reading a reused token outside the refresh grant reports nothing", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context() // introspection, revocation
		refreshFamily(t, f, "req", "at", "rt")
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(grace + time.Second)
		if _, err := f.fs.GetRefreshTokenSession(ctx, "rt", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("err = %v, want ErrInactiveToken", err)
		}
		if n := len(f.reuses.all()); n != 0 {
			t.Errorf("OnRefreshReuse called %d times, want none", n)
		}
	})

	t.Run("rotating an unknown token refuses the grant", func(t *testing.T) {
		f := newFixture(t)
		if err := f.fs.RotateRefreshToken(t.Context(), "req", "nope"); !errors.Is(err, fositestore.ErrGrantEnded) {
			t.Fatalf("err = %v, want ErrGrantEnded", err)
		}
	})

	t.Run("a revoked refresh token that was never used is not found and raises no alarm", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		refreshFamily(t, f, "req", "at", "rt")
		// A suspension or a sign-out revokes the family; the app then
		// presents its newest token, which it never used.
		if _, err := f.db.RevokeSubject(ctx, "u_alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.fs.GetRefreshTokenSession(ctx, "rt", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if n := len(f.reuses.all()); n != 0 {
			t.Errorf("OnRefreshReuse called %d times, want none", n)
		}
	})

	t.Run("a used token presented after the grace window is reported even when revoked since", func(t *testing.T) {
		f := newFixture(t)
		ctx := fositestore.WithRefreshGrant(t.Context())
		refreshFamily(t, f, "req", "at", "rt")
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.RevokeSubject(ctx, "u_alice"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(grace + time.Second)
		if _, err := f.fs.GetRefreshTokenSession(ctx, "rt", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("err = %v, want ErrInactiveToken", err)
		}
		if n := len(f.reuses.all()); n != 1 {
			t.Errorf("OnRefreshReuse called %d times, want 1", n)
		}
	})
}

func TestRevokeByRequestID(t *testing.T) {
	// Two generations of one grant and an unrelated grant.
	setup := func(t *testing.T) *fixture {
		f := newFixture(t)
		refreshFamily(t, f, "req", "at-1", "rt-1")
		refreshFamily(t, f, "req", "at-2", "rt-2")
		refreshFamily(t, f, "other", "at-x", "rt-x")
		return f
	}
	t.Run("revoking access tokens by request id ends every access token of the grant", func(t *testing.T) {
		f := setup(t)
		ctx := t.Context()
		if err := f.fs.RevokeAccessToken(ctx, "req"); err != nil {
			t.Fatal(err)
		}
		for _, sig := range []string{"at-1", "at-2"} {
			if _, err := f.fs.GetAccessTokenSession(ctx, sig, emptySession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", sig, err)
			}
		}
		if _, err := f.fs.GetAccessTokenSession(ctx, "at-x", emptySession()); err != nil {
			t.Errorf("unrelated grant's access token: %v", err)
		}
		// Only access tokens: the grant's refresh tokens still work.
		if _, err := f.fs.GetRefreshTokenSession(ctx, "rt-2", emptySession()); err != nil {
			t.Errorf("refresh token after revoking access tokens: %v", err)
		}
	})
	t.Run("revoking refresh tokens by request id ends every refresh token of the grant", func(t *testing.T) {
		f := setup(t)
		ctx := t.Context()
		if err := f.fs.RevokeRefreshToken(ctx, "req"); err != nil {
			t.Fatal(err)
		}
		for _, sig := range []string{"rt-1", "rt-2"} {
			if _, err := f.fs.GetRefreshTokenSession(ctx, sig, emptySession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", sig, err)
			}
		}
		if _, err := f.fs.GetRefreshTokenSession(ctx, "rt-x", emptySession()); err != nil {
			t.Errorf("unrelated grant's refresh token: %v", err)
		}
		if _, err := f.fs.GetAccessTokenSession(ctx, "at-2", emptySession()); err != nil {
			t.Errorf("access token after revoking refresh tokens: %v", err)
		}
	})
}

func TestDisabledClient(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(ctx context.Context, db *sqlite.Store, id string) error
	}{
		{"a disabled client's tokens no longer load", func(ctx context.Context, db *sqlite.Store, id string) error {
			return db.UpdateClient(ctx, id, func(c *storage.Client) error { c.Disabled = true; return nil })
		}},
		{"a deleted client's tokens no longer load", func(ctx context.Context, db *sqlite.Store, id string) error {
			return db.DeleteClient(ctx, id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := t.Context()
			refreshFamily(t, f, "req", "at", "rt")
			if _, err := f.fs.GetAccessTokenSession(ctx, "at", emptySession()); err != nil {
				t.Fatalf("before: %v", err)
			}
			if err := tc.change(ctx, f.db, f.client.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.fs.GetClient(ctx, f.client.ID); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("GetClient: err = %v, want ErrNotFound", err)
			}
			if _, err := f.fs.GetAccessTokenSession(ctx, "at", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("access token: err = %v, want ErrNotFound", err)
			}
			if _, err := f.fs.GetRefreshTokenSession(ctx, "rt", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("refresh token: err = %v, want ErrNotFound", err)
			}
		})
	}
	t.Run("an unknown client is not found", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.fs.GetClient(t.Context(), "c_nobody"); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

func TestOpenIDSession(t *testing.T) {
	t.Run("an OpenID session is stored under a hash of the code, never the code", func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		const code = "ory_ac_raw-code-value.sig"
		if err := f.fs.CreateOpenIDConnectSession(ctx, code, newRequest(f, "req")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.GetToken(ctx, storage.KindOIDC, code); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("lookup by the raw code: err = %v, want ErrNotFound", err)
		}
		rec, err := f.db.GetToken(ctx, storage.KindOIDC, codeKey(code))
		if err != nil {
			t.Fatalf("lookup by the code's SHA-256: %v", err)
		}
		if bytes.Contains(rec.Request, []byte(code)) {
			t.Errorf("stored request holds the code: %s", rec.Request)
		}
		if _, err := f.fs.GetOpenIDConnectSession(ctx, code, &fosite.Request{Session: emptySession()}); err != nil {
			t.Fatalf("GetOpenIDConnectSession: %v", err)
		}
		if err := f.fs.DeleteOpenIDConnectSession(ctx, code); err != nil {
			t.Fatal(err)
		}
		if _, err := f.fs.GetOpenIDConnectSession(ctx, code, &fosite.Request{Session: emptySession()}); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("after delete: err = %v, want ErrNotFound", err)
		}
	})
}

func TestPARSession(t *testing.T) {
	t.Run("a pushed authorization request comes back with its redirect, state and response type", func(t *testing.T) {
		db := sqlitetest.Open(t)
		fs := fositestore.New(db, fositestore.Options{
			NewSession: func() fosite.Session { return emptySession() },
			Now:        clocktest.New(t0).Now,
		})
		f := &fixture{db: db, fs: fs}
		f.client = f.addClient(t, "c_par", nil)
		ctx := t.Context()

		ar := fosite.NewAuthorizeRequest()
		ar.ID = "par-req"
		ar.RequestedAt = t0
		ar.Client = f.client
		ar.Session = newSession("u_alice")
		ar.ResponseTypes = fosite.Arguments{"code"}
		ar.RedirectURI, _ = url.Parse("https://app.example/cb")
		ar.State = "state-1234567890"
		ar.ResponseMode = fosite.ResponseModeQuery
		ar.DefaultResponseMode = fosite.ResponseModeQuery
		ar.RequestedScope = fosite.Arguments{"openid"}
		ar.Form = url.Values{"code_challenge": {"abc"}, "client_secret": {"secret-value-must-not-persist"}}
		const uri = "urn:ietf:params:oauth:request_uri:xyz"
		if err := fs.CreatePARSession(ctx, uri, ar); err != nil {
			t.Fatal(err)
		}
		got, err := fs.GetPARSession(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		if got.GetID() != "par-req" || got.GetState() != ar.State || got.GetRedirectURI().String() != "https://app.example/cb" ||
			!slices.Equal(got.GetResponseTypes(), fosite.Arguments{"code"}) || got.GetResponseMode() != fosite.ResponseModeQuery {
			t.Errorf("PAR request = id %q state %q redirect %v types %v mode %q", got.GetID(), got.GetState(),
				got.GetRedirectURI(), got.GetResponseTypes(), got.GetResponseMode())
		}
		if got.GetRequestForm().Get("code_challenge") != "abc" || got.GetRequestForm().Has("client_secret") {
			t.Errorf("PAR form = %v", got.GetRequestForm())
		}
		if s, ok := got.GetSession().(*openid.DefaultSession); !ok || s.Subject != "u_alice" {
			t.Errorf("PAR session = %#v, want the provider's type hydrated", got.GetSession())
		}
		if err := fs.DeletePARSession(ctx, uri); err != nil {
			t.Fatal(err)
		}
		if _, err := fs.GetPARSession(ctx, uri); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("after delete: err = %v, want ErrNotFound", err)
		}
	})
}
