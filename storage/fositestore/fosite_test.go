package fositestore_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/fositestore"
)

// provider is fosite composed over the adapter with the HMAC strategy and
// the refresh grant, as the server composes it (minus the browser flows).
type provider struct {
	fosite.OAuth2Provider
	strategy *oauth2.HMACSHAStrategy
	secret   string
}

func newProvider(t *testing.T, f *fixture) *provider {
	t.Helper()
	hasher := keys.NewSecretHasher([]byte("0123456789abcdef0123456789abcdef"))
	const secret = "client-secret-for-the-refresh-test"
	hash, err := hasher.Hash(t.Context(), []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	f.client = f.addClient(t, "c_refresh", hash)
	cfg := &fosite.Config{
		AccessTokenLifespan:  10 * time.Minute,
		RefreshTokenLifespan: 24 * time.Hour,
		GlobalSecret:         []byte("fosite-hmac-secret-of-32-bytes!!"),
		ClientSecretsHasher:  hasher,
		ScopeStrategy:        fosite.ExactScopeStrategy,
		// Set, as in production: fosite fills an unset one in on first use,
		// racing with concurrent requests.
		AudienceMatchingStrategy: fosite.DefaultAudienceMatchingStrategy,
		RefreshTokenScopes:       []string{"offline_access"},
	}
	strategy := compose.NewOAuth2HMACStrategy(cfg)
	p := compose.Compose(cfg, f.fs, strategy,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
	)
	return &provider{OAuth2Provider: p, strategy: strategy, secret: secret}
}

// grant stores a first access/refresh pair the way the code exchange
// would, and returns the refresh token.
func (p *provider) grant(t *testing.T, f *fixture, requestID string) string {
	t.Helper()
	ctx := t.Context()
	r := newRequest(f, requestID)
	sess := r.Session.(*openid.DefaultSession)
	// fosite validates token lifetimes against its own clock.
	now := time.Now().UTC()
	sess.ExpiresAt = map[fosite.TokenType]time.Time{fosite.AccessToken: now.Add(time.Hour), fosite.RefreshToken: now.Add(24 * time.Hour)}
	_, atSig, err := p.strategy.GenerateAccessToken(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	rt, rtSig, err := p.strategy.GenerateRefreshToken(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.fs.CreateAccessTokenSession(ctx, atSig, r); err != nil {
		t.Fatal(err)
	}
	if err := f.fs.CreateRefreshTokenSession(ctx, rtSig, atSig, r); err != nil {
		t.Fatal(err)
	}
	return rt
}

// refresh runs one refresh_token grant through fosite and returns the new
// refresh token, or the error fosite would answer.
func (p *provider) refresh(ctx context.Context, f *fixture, refreshToken string) (string, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	ctx = fositestore.WithRefreshGrant(ctx) // as the token endpoint does
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(f.client.ID), url.QueryEscape(p.secret))
	ar, err := p.NewAccessRequest(ctx, r, emptySession())
	if err != nil {
		return "", err
	}
	resp, err := p.NewAccessResponse(ctx, ar)
	if err != nil {
		return "", err
	}
	rt, _ := resp.GetExtra("refresh_token").(string)
	if rt == "" || resp.GetAccessToken() == "" {
		return "", errors.New("response without tokens")
	}
	return rt, nil
}

func (p *provider) active(t *testing.T, f *fixture, refreshToken string) bool {
	t.Helper()
	rec, err := f.db.GetToken(t.Context(), storage.KindRefreshToken, p.strategy.RefreshTokenSignature(t.Context(), refreshToken))
	if err != nil {
		t.Fatal(err)
	}
	return rec.Active
}

func TestRefreshThroughFosite(t *testing.T) {
	t.Run("concurrent refreshes within the grace window both succeed", func(t *testing.T) {
		f := newFixture(t)
		p := newProvider(t, f)
		rt := p.grant(t, f, "req")
		var wg sync.WaitGroup
		got := make([]string, 2)
		errs := make([]error, 2)
		for i := range got {
			wg.Go(func() { got[i], errs[i] = p.refresh(t.Context(), f, rt) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("refresh %d: %v", i, fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
			}
		}
		if got[0] == got[1] {
			t.Error("both refreshes returned the same refresh token")
		}
		for _, next := range got {
			if _, err := p.refresh(t.Context(), f, next); err != nil {
				t.Errorf("the rotated-to token does not refresh: %v", err)
			}
		}
		if n := len(f.reuses.all()); n != 0 {
			t.Errorf("OnRefreshReuse called %d times", n)
		}
	})

	t.Run("a reuse after the grace window is refused and revokes the whole family", func(t *testing.T) {
		f := newFixture(t)
		p := newProvider(t, f)
		rt := p.grant(t, f, "req")
		next, err := p.refresh(t.Context(), f, rt)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(grace + time.Second)

		_, err = p.refresh(t.Context(), f, rt)
		if !errors.Is(err, fosite.ErrInvalidGrant) {
			t.Fatalf("reuse: err = %v, want invalid_grant", err)
		}
		if got := f.reuses.all(); len(got) != 1 || got[0].RequestID != "req" {
			t.Fatalf("OnRefreshReuse saw %+v, want one report for request req", got)
		}
		if p.active(t, f, next) {
			t.Error("the token rotated to is still active after the reuse")
		}
		if _, err := p.refresh(t.Context(), f, next); !errors.Is(err, fosite.ErrInvalidGrant) {
			t.Errorf("refresh with the rotated-to token: err = %v, want invalid_grant", err)
		}
	})

	t.Run("a refresh ends the access token issued with the old refresh token", func(t *testing.T) {
		f := newFixture(t)
		p := newProvider(t, f)
		ctx := t.Context()
		r := newRequest(f, "req")
		r.Session.(*openid.DefaultSession).ExpiresAt = map[fosite.TokenType]time.Time{
			fosite.AccessToken: time.Now().Add(time.Hour), fosite.RefreshToken: time.Now().Add(time.Hour)}
		at, atSig, _ := p.strategy.GenerateAccessToken(ctx, r)
		rt, rtSig, _ := p.strategy.GenerateRefreshToken(ctx, r)
		if err := errors.Join(f.fs.CreateAccessTokenSession(ctx, atSig, r), f.fs.CreateRefreshTokenSession(ctx, rtSig, atSig, r)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.IntrospectToken(ctx, at, fosite.AccessToken, emptySession()); err != nil {
			t.Fatalf("access token before the refresh: %v", err)
		}
		if _, err := p.refresh(ctx, f, rt); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.IntrospectToken(ctx, at, fosite.AccessToken, emptySession()); err == nil {
			t.Error("the old access token is still active after the refresh")
		}
	})
}
