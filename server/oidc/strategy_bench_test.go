package oidc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/fositestore"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/web"
)

// Issuing a JWT access token against an opaque one:
//
//	go test ./server/oidc -run '^$' -bench AccessToken
//
// Mint is the strategy alone (ES256 signing against HMAC); Endpoint is a
// client_credentials request through the handler, SQLite and audit
// included; Introspect checks the token (a JWT's signature is verified
// besides the stored record's lookup).

type benchOIDC struct {
	h        *Handler
	mux      http.Handler
	strategy *tokenStrategy
	clients  map[string]*fositestore.Client
}

func newBenchOIDC(tb testing.TB) *benchOIDC {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "k.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	master, err := keys.NewMaster(make([]byte, keys.MasterKeySize))
	if err != nil {
		tb.Fatal(err)
	}
	if err := keys.EnsureSigningKeys(ctx, db, master, time.Now()); err != nil {
		tb.Fatal(err)
	}
	ring, err := keys.NewKeyring(ctx, db, master, time.Hour, nil)
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	renderer, err := render.New(web.Templates(), logger)
	if err != nil {
		tb.Fatal(err)
	}
	hasher := keys.NewSecretHasher(master.Derive("client-secret", 32))
	d := Deps{
		Issuer: issuer, Store: db, Keys: ring, SecretHasher: hasher, HMACSecret: master.Derive("fosite-hmac", 32),
		Render: renderer, Audit: audit.NewRecorder(db, logger, nil, nil), Metrics: metrics.New(), Logger: logger,
		SignOut: signOutWith(db, logger, time.Now),
	}
	h, err := New(d)
	if err != nil {
		tb.Fatal(err)
	}
	r := httpx.NewRouter()
	r.Mount(h)
	hash, err := hasher.Hash(ctx, []byte(svcSecret))
	if err != nil {
		tb.Fatal(err)
	}
	b := &benchOIDC{h: h, mux: r, clients: map[string]*fositestore.Client{}}
	for _, f := range []string{TokenFormatOpaque, TokenFormatJWT} {
		c := storage.Client{ID: "c_" + f, Name: f, SecretHash: hash, GrantTypes: []string{"client_credentials"},
			Scopes: []string{"read"}, MinACR: "mfa", TokenFormat: f, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := db.CreateClient(ctx, c); err != nil {
			tb.Fatal(err)
		}
		b.clients[f] = &fositestore.Client{Client: c}
	}
	_, cfg := newProvider(d, fositestore.New(db, fositestore.Options{}))
	b.strategy = newTokenStrategy(compose.NewOAuth2HMACStrategy(cfg), ring, cfg)
	return b
}

func BenchmarkAccessToken(b *testing.B) {
	s := newBenchOIDC(b)
	for _, f := range []string{TokenFormatOpaque, TokenFormatJWT} {
		b.Run("Mint/"+f, func(b *testing.B) {
			req := fosite.NewAccessRequest(NewSession())
			req.Client = s.clients[f]
			req.GrantScope("read")
			req.GetSession().SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Minute))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.strategy.GenerateAccessToken(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Endpoint/"+f, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.post(b, "/oauth2/token", "c_"+f, "grant_type=client_credentials&scope=read")
			}
		})
		b.Run("Introspect/"+f, func(b *testing.B) {
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(s.post(b, "/oauth2/token", "c_"+f, "grant_type=client_credentials&scope=read"), &tok); err != nil {
				b.Fatal(err)
			}
			form := "token=" + url.QueryEscape(tok.AccessToken)
			b.ReportAllocs()
			for b.Loop() {
				if body := s.post(b, "/oauth2/introspect", "c_"+f, form); !strings.Contains(string(body), `"active":true`) {
					b.Fatalf("%s", body)
				}
			}
		})
	}
}

// post sends form as client id and fails unless the answer is 200.
func (s *benchOIDC) post(tb testing.TB, path, id, form string) []byte {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(id, svcSecret)
	w := httptest.NewRecorder()
	s.mux.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		tb.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
	return w.Body.Bytes()
}
