package admin_test

// The console through the whole server, in process: server.New over a
// real SQLite store in a temporary directory, served by httptest with a
// localhost issuer, as server/server_test.go does. Browser sessions are
// minted through a session store over the same database, so the server
// accepts them exactly like ones its sign-in created.

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
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
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
)

type instance struct {
	srv      *server.Server
	issuer   string
	base     string
	db       *sqlite.Store
	master   *keys.Master
	sessions *session.Store
	http     *http.Client // follows no redirect
}

func start(t *testing.T) *instance {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	master, err := keys.NewMaster([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	_, port, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://localhost:" + port
	srv, err := server.New(ctx, server.Config{
		Issuer:   issuer,
		Throttle: server.ThrottleConfig{Window: 15 * time.Minute, PerAccount: 5, PerIP: 50},
	}, db, master, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return &instance{
		srv: srv, issuer: issuer, base: ts.URL, db: db, master: master,
		sessions: session.NewStore(db, session.Config{}),
		http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
}

// manager acts as the CLI does, for fixtures.
func (in *instance) manager() *manage.Manager {
	return &manage.Manager{
		Store: in.db, Audit: audit.NewRecorder(in.db, slog.New(slog.DiscardHandler), nil, time.Now),
		Hasher: keys.NewSecretHasher(in.master.Derive("client-secret", 32)),
		Issuer: in.issuer, Actor: "test", Now: time.Now,
	}
}

func (in *instance) newUser(t *testing.T, email string, admin bool) storage.User {
	t.Helper()
	nu, err := in.manager().CreateUser(t.Context(), email, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	return nu.User
}

func (in *instance) user(t *testing.T, id string) storage.User {
	t.Helper()
	u, err := in.db.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("user %s: %v", id, err)
	}
	return u
}

func (in *instance) client(t *testing.T, id string) storage.Client {
	t.Helper()
	c, err := in.db.GetClient(t.Context(), id)
	if err != nil {
		t.Fatalf("client %s: %v", id, err)
	}
	return c
}

// browser is a browser signed in with a minted session.
type browser struct {
	cookie *http.Cookie
	csrf   string
}

// mint is a session the server accepts, signed in with a.
func (in *instance) mint(t *testing.T, a session.Auth) browser {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	x, err := in.sessions.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	if a.UserID != "" {
		if err := x.SignIn(a); err != nil {
			t.Fatal(err)
		}
	}
	token := x.CSRFToken()
	if err := x.Save(w); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()[0]
	return browser{cookie: &http.Cookie{Name: c.Name, Value: c.Value}, csrf: token}
}

// key is a fresh phr session of user: a key tap just now.
func (in *instance) key(t *testing.T, userID string) browser {
	t.Helper()
	return in.mint(t, session.Auth{UserID: userID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"}, AuthTime: time.Now()})
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) location() string { return r.header.Get("Location") }

func (r reply) String() string { return http.StatusText(r.status) + ": " + string(r.body) }

// send makes one request; b may be nil (no cookie), header may be nil.
func (in *instance) send(t *testing.T, b *browser, method, path, ctype string, body []byte, header http.Header) reply {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequestWithContext(t.Context(), method, in.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		r.Header[k] = v
	}
	if b != nil && b.cookie != nil {
		r.AddCookie(b.cookie)
	}
	resp, err := in.http.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

func (in *instance) get(t *testing.T, b *browser, path string) reply {
	t.Helper()
	return in.send(t, b, http.MethodGet, path, "", nil, nil)
}

// form posts a console form with the browser's CSRF token.
func (in *instance) form(t *testing.T, b *browser, path string, v url.Values) reply {
	t.Helper()
	if v == nil {
		v = url.Values{}
	}
	if _, ok := v["csrf_token"]; !ok && b != nil {
		v.Set("csrf_token", b.csrf)
	}
	return in.send(t, b, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(v.Encode()), nil)
}

// call is a JSON API call from a browser session (with its CSRF header)
// or, with bearer set, from a service.
func (in *instance) call(t *testing.T, b *browser, bearer, method, path string, body any) reply {
	t.Helper()
	h := http.Header{}
	if b != nil && method != http.MethodGet {
		h.Set("X-CSRF-Token", b.csrf)
	}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	var data []byte
	ctype := ""
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		ctype = "application/json"
	}
	return in.send(t, b, method, path, ctype, data, h)
}

func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("status %d, body is not JSON: %v\n%.500s", r.status, err, r.body)
	}
	return v
}

// scrape reads what re captures from a page.
func scrape(t *testing.T, r reply, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("status %d: the page has no %s\n%.1500s", r.status, re, r.body)
	}
	return html.UnescapeString(string(m[1]))
}

var (
	reEnrollURL    = regexp.MustCompile(`<code id="enrollment-url">([^<]*)</code>`)
	reClientID     = regexp.MustCompile(`<code id="client-id">([^<]*)</code>`)
	reClientSecret = regexp.MustCompile(`<code id="client-secret">([^<]*)</code>`)
)

// stepUpTo is the Location of a redirect to tap a key and come back to
// returnTo.
func stepUpTo(returnTo string) string {
	return "/login?step_up=phr&return_to=" + url.QueryEscape(returnTo)
}

// auditMark is the newest audit event's seq.
func (in *instance) auditMark(t *testing.T) int64 {
	t.Helper()
	ev, err := in.db.ListAudit(t.Context(), storage.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) == 0 {
		return 0
	}
	return ev[0].Seq
}

// events lists the events of type typ ("" any) after seq, oldest first.
func (in *instance) events(t *testing.T, after int64, typ string) []storage.AuditEvent {
	t.Helper()
	ev, err := in.db.ListAudit(t.Context(), storage.AuditFilter{Type: typ, AfterSeq: after, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ev)
	return ev
}

// tokenFor gets a client_credentials access token, or "" with the status.
func (in *instance) tokenFor(t *testing.T, id, secret, scope string) (string, int) {
	t.Helper()
	v := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		v.Set("scope", scope)
	}
	r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, in.base+"/oauth2/token", strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := in.http.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.AccessToken, resp.StatusCode
}

// active introspects token as the app with these credentials.
func (in *instance) active(t *testing.T, token string, creds [2]string) bool {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, in.base+"/oauth2/introspect",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(creds[0]), url.QueryEscape(creds[1]))
	resp, err := in.http.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: status %d, %v", resp.StatusCode, err)
	}
	return body.Active
}

// ndjson parses a JSON Lines body.
func ndjson(t *testing.T, r reply) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(r.body), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}
