package server_test

// Benchmarks of the hot machine-to-machine endpoints through the whole
// handler (middleware, router, metrics, fosite, SQLite), in process and
// without the network, so a CPU profile shows the server's own costs:
//
//	go test ./server -run '^$' -bench . -benchtime 3s -cpuprofile cpu.out
//	go tool pprof -top -nodecount 40 server.test cpu.out
//
// The *Parallel variants run GOMAXPROCS×4 goroutines, closer to a loaded
// server (and to SQLite's single writer contention).

import (
	"context"
	"encoding/base64"
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

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/oidc"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

const benchIssuer = "http://localhost:8080"

// benchServer is a server on a fresh SQLite file with one confidential
// client_credentials client.
type benchServer struct {
	h     http.Handler
	basic string // Authorization header value
}

// newBenchServer builds the server as `keygate serve` does (see
// cmd/keygate), logging at level to nowhere.
func newBenchServer(tb testing.TB, level slog.Level) *benchServer {
	tb.Helper()
	return newBenchServerOn(tb, sqlitetest.Open(tb), level)
}

// newBenchServerOn is newBenchServer on store.
func newBenchServerOn(tb testing.TB, store storage.Store, level slog.Level) *benchServer {
	tb.Helper()
	ctx := context.Background()
	master, err := keys.NewMaster(make([]byte, keys.MasterKeySize))
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(httpx.NewLogHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level})))
	srv, err := server.New(ctx, server.Config{
		Issuer: benchIssuer, Listen: "127.0.0.1:0",
		Lifetimes: oidc.DefaultLifetimes, SessionTTL: 12 * time.Hour, KeyRetention: 48 * time.Hour,
		Throttle: server.ThrottleConfig{Window: 15 * time.Minute, PerAccount: 5, PerIP: 50},
	}, store, master, logger)
	if err != nil {
		tb.Fatal(err)
	}
	m := &manage.Manager{Store: store, Audit: audit.NewRecorder(store, logger, nil, nil),
		Hasher: keys.NewSecretHasher(master.Derive("client-secret", 32)),
		Issuer: benchIssuer, Actor: "cli", Now: time.Now}
	nc, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "bench", GrantTypes: []string{"client_credentials"}})
	if err != nil {
		tb.Fatal(err)
	}
	cred := url.QueryEscape(nc.Client.ID) + ":" + url.QueryEscape(nc.Secret)
	return &benchServer{h: srv.Handler(), basic: "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))}
}

func (s *benchServer) post(path, form string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form))
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", s.basic)
	r.Header.Set("User-Agent", "bench")
	return r
}

func (s *benchServer) get(path string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("User-Agent", "bench")
	return r
}

// do serves r and fails unless the answer is 200 and contains want.
func (s *benchServer) do(tb testing.TB, r *http.Request, want string) []byte {
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want) {
		tb.Fatalf("%s %s: %d %s", r.Method, r.URL.Path, w.Code, w.Body.String())
	}
	return w.Body.Bytes()
}

func (s *benchServer) token(tb testing.TB) string {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(s.do(tb, s.post("/oauth2/token", "grant_type=client_credentials"), "access_token"), &tok); err != nil {
		tb.Fatal(err)
	}
	return tok.AccessToken
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	s := newBenchServer(b, slog.LevelWarn)
	b.ReportAllocs()
	for b.Loop() {
		s.do(b, s.post("/oauth2/token", "grant_type=client_credentials"), "access_token")
	}
}

func BenchmarkTokenClientCredentialsParallel(b *testing.B) {
	s := newBenchServer(b, slog.LevelWarn)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.do(b, s.post("/oauth2/token", "grant_type=client_credentials"), "access_token")
		}
	})
}

// BenchmarkTokenClientCredentialsInfoLog is the default --log-level info:
// the access log and the audit mirror are written (to io.Discard).
func BenchmarkTokenClientCredentialsInfoLog(b *testing.B) {
	s := newBenchServer(b, slog.LevelInfo)
	b.ReportAllocs()
	for b.Loop() {
		s.do(b, s.post("/oauth2/token", "grant_type=client_credentials"), "access_token")
	}
}

func BenchmarkIntrospect(b *testing.B) {
	s := newBenchServer(b, slog.LevelWarn)
	form := "token=" + url.QueryEscape(s.token(b))
	b.ReportAllocs()
	for b.Loop() {
		s.do(b, s.post("/oauth2/introspect", form), `"active":true`)
	}
}

func BenchmarkIntrospectParallel(b *testing.B) {
	s := newBenchServer(b, slog.LevelWarn)
	form := "token=" + url.QueryEscape(s.token(b))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.do(b, s.post("/oauth2/introspect", form), `"active":true`)
		}
	})
}

func BenchmarkDiscovery(b *testing.B) {
	s := newBenchServer(b, slog.LevelWarn)
	b.ReportAllocs()
	for b.Loop() {
		s.do(b, s.get("/.well-known/openid-configuration"), `"issuer"`)
	}
}

func BenchmarkJWKS(b *testing.B) {
	s := newBenchServer(b, slog.LevelWarn)
	b.ReportAllocs()
	for b.Loop() {
		s.do(b, s.get("/oauth2/jwks"), `"keys"`)
	}
}

// BenchmarkNewOnExistingData is the in-process part of start-up on an
// existing data directory: open SQLite (migrations already applied), load
// the signing keys, build every handler.
func BenchmarkNewOnExistingData(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "keygate.db")
	master, err := keys.NewMaster(make([]byte, keys.MasterKeySize))
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := server.Config{Issuer: benchIssuer, Lifetimes: oidc.DefaultLifetimes, KeyRetention: 48 * time.Hour}
	build := func() {
		store, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		if _, err := server.New(ctx, cfg, store, master, logger); err != nil {
			b.Fatal(err)
		}
	}
	build() // first run creates the schema and the signing keys
	b.ReportAllocs()
	for b.Loop() {
		build()
	}
}
