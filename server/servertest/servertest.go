// Package servertest runs the whole keygate server in process for tests:
// server.New over a fresh SQLite store (package sqlitetest) with a fixed
// test master key, served by httptest under a localhost issuer. Sessions
// minted through the Instance are accepted by the server exactly like ones
// its sign-in created, so a test can start from a signed-in browser.
//
// It is a test helper: only _test.go files may import it (the architecture
// test in internal/archtest checks that no other package depends on it).
// It imports package server and so all of its sub-packages: their
// in-package tests (package oidc, package mfa, ...) cannot import it
// without an import cycle; they can use sqlitetest, sessiontest and
// clocktest, which sit lower.
package servertest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

// masterKey is the master key every Instance runs with.
const masterKey = "0123456789abcdef0123456789abcdef"

// Instance is the whole server in process over a fresh SQLite store.
type Instance struct {
	Srv      *server.Server
	Issuer   string // as configured; what documents and tokens name
	Base     string // where requests go (the listener's address)
	DB       *sqlite.Store
	Master   *keys.Master
	Sessions *session.Store // mints browser sessions the server accepts
	HTTP     *http.Client   // follows no redirect
}

// Start builds the server over a fresh store and serves it until t is
// done. The configuration has the issuer and a sign-in throttle of 5
// failures per account and 50 per IP in 15 minutes; opts may change it
// further. The server logs to nowhere. It fails t on any error.
func Start(t testing.TB, opts ...func(*server.Config)) *Instance {
	t.Helper()
	return StartLogged(t, slog.New(slog.DiscardHandler), opts...)
}

// StartLogged is Start with the server logging to logger.
func StartLogged(t testing.TB, logger *slog.Logger, opts ...func(*server.Config)) *Instance {
	t.Helper()
	db := sqlitetest.Open(t)
	master, err := keys.NewMaster([]byte(masterKey))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	// A host name, not an IP: WebAuthn derives its RP ID from the issuer.
	// Requests go to the listener's address (Base) all the same.
	_, port, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://localhost:" + port
	cfg := server.Config{
		Issuer:   issuer,
		Throttle: server.ThrottleConfig{Window: 15 * time.Minute, PerAccount: 5, PerIP: 50},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	srv, err := server.New(t.Context(), cfg, db, master, logger)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return &Instance{
		Srv: srv, Issuer: issuer, Base: ts.URL, DB: db, Master: master,
		Sessions: session.NewStore(db, session.Config{}),
		HTTP: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
}

// Manager acts on the instance's store as the CLI does (actor "test"), for
// fixtures: users, clients.
func (in *Instance) Manager() *manage.Manager {
	return &manage.Manager{
		Store: in.DB, Audit: audit.NewRecorder(in.DB, slog.New(slog.DiscardHandler), nil, time.Now),
		Hasher: keys.NewSecretHasher(in.Master.Derive("client-secret", 32)),
		Issuer: in.Issuer, Actor: "test", Now: time.Now,
	}
}

// Mint is a browser session the server accepts, signed in with a (a zero
// a.UserID: an anonymous session).
func (in *Instance) Mint(t testing.TB, a session.Auth) sessiontest.Browser {
	t.Helper()
	return sessiontest.Mint(t, in.Sessions, a)
}

// ---- requests ----

// Request is a request to target, a URL or a path under Base (one that
// starts with "/"), with body (nil: none) of content type ctype ("": no
// Content-Type) and the fields of header (nil: none) on top.
func (in *Instance) Request(t testing.TB, method, target, ctype string, body []byte, header http.Header) *http.Request {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = in.Base + target
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequestWithContext(t.Context(), method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	maps.Copy(r.Header, header)
	return r
}

// Reply is a response read whole.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Location is the reply's Location header.
func (r Reply) Location() string { return r.Header.Get("Location") }

// String is the status and the body, for failure messages.
func (r Reply) String() string { return http.StatusText(r.Status) + ": " + string(r.Body) }

// Read sends r with c and reads the whole response. It fails t if the
// request cannot be sent or the body not read.
func Read(t testing.TB, c *http.Client, r *http.Request) Reply {
	t.Helper()
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// Decode is r's body decoded as JSON into a T; it fails t if the body is
// not JSON.
func Decode[T any](t testing.TB, r Reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("status %d, body is not JSON: %v\n%.500s", r.Status, err, r.Body)
	}
	return v
}

// Scrape is what re's first group captures from a rendered page, HTML
// entities decoded; it fails t if the page has no match.
func Scrape(t testing.TB, r Reply, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("status %d: the page has no %s\n%.1500s", r.Status, re, r.Body)
	}
	return html.UnescapeString(string(m[1]))
}

// ---- tokens ----

// AccessToken stores an active opaque access token that app clientID
// holds for userID, issued in browser session sid ("": none) and valid for
// an hour, and returns its signature.
func (in *Instance) AccessToken(t testing.TB, clientID, userID, sid string) string {
	t.Helper()
	sig := "sig-" + rand.Text()
	now := time.Now()
	if err := in.DB.CreateToken(t.Context(), storage.TokenRecord{Kind: storage.KindAccessToken, Signature: sig,
		RequestID: "req-" + sig, ClientID: clientID, Subject: userID, SID: sid, Active: true, Request: []byte("{}"),
		RequestedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return sig
}

// TokenActive is whether the access token with signature sig is still
// active.
func (in *Instance) TokenActive(t testing.TB, sig string) bool {
	t.Helper()
	tok, err := in.DB.GetToken(t.Context(), storage.KindAccessToken, sig)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Active
}

// ---- the audit trail ----

// AuditMark is the newest audit event's seq: what comes after it is new.
func (in *Instance) AuditMark(t testing.TB) int64 {
	t.Helper()
	ev, err := in.DB.ListAudit(t.Context(), storage.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) == 0 {
		return 0
	}
	return ev[0].Seq
}

// Events lists the events of type typ ("": any) after seq, oldest first.
func (in *Instance) Events(t testing.TB, after int64, typ string) []storage.AuditEvent {
	t.Helper()
	ev, err := in.DB.ListAudit(t.Context(), storage.AuditFilter{Type: typ, AfterSeq: after, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ev)
	return ev
}
