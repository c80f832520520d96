package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
	"github.com/keygate/keygate/web"
)

const (
	issuer      = "https://id.example"
	redirectURI = "https://app.example/cb"
	appSecret   = "app-secret-for-the-authorize-tests"
	verifier    = "a-code-verifier-of-more-than-forty-three-characters-0123456789"
)

// env is the OIDC capability over a real store, with an injected clock.
type env struct {
	db       *sqlite.Store
	clock    *clocktest.Clock
	sessions *session.Store
	keys     *keys.Keyring
	h        *Handler
	mux      http.Handler
	client   storage.Client
	user     storage.User
}

// newEnv builds the env; opts may change the handler's Deps (a store
// that fails, say) before it is made.
func newEnv(t *testing.T, opts ...func(*Deps)) *env {
	t.Helper()
	ctx := t.Context()
	db := sqlitetest.Open(t)
	master, err := keys.NewMaster([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	// fosite checks auth_time against its own clock (it refuses one in the
	// future), so the injected clock starts a little before the present;
	// tests advance it by seconds at most.
	clk := clocktest.New(time.Now().UTC().Truncate(time.Second).Add(-time.Minute))
	if err := keys.EnsureSigningKeys(ctx, db, master, clk.Now()); err != nil {
		t.Fatal(err)
	}
	ring, err := keys.NewKeyring(ctx, db, master, time.Hour, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	renderer, err := render.New(web.Templates(), logger)
	if err != nil {
		t.Fatal(err)
	}
	hasher := keys.NewSecretHasher(master.Derive("client-secret", 32))
	sessions := session.NewStore(db, session.Config{Lifetime: 12 * time.Hour, Now: clk.Now})
	d := Deps{
		Issuer: issuer, Store: db, Keys: ring, SecretHasher: hasher,
		HMACSecret: master.Derive("fosite-hmac", 32), Sessions: sessions, Render: renderer,
		Audit: audit.NewRecorder(db, logger, nil, clk.Now), Metrics: metrics.New(), Logger: logger,
		Now: clk.Now, SignOut: signOutWith(db, logger, clk.Now),
	}
	for _, opt := range opts {
		opt(&d)
	}
	h, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	r := httpx.NewRouter()
	r.Mount(h)

	hash, _ := hasher.Hash(ctx, []byte(appSecret))
	e := &env{db: db, clock: clk, sessions: sessions, keys: ring, h: h, mux: r}
	e.client = storage.Client{
		ID: "c_app", Name: "App", SecretHash: hash, RedirectURIs: []string{redirectURI},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
		GrantTypes:             []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid", "email", "profile", "offline_access"}, MinACR: "mfa", TokenFormat: "opaque",
		CreatedAt: clk.Now(), UpdatedAt: clk.Now(),
	}
	if err := db.CreateClient(ctx, e.client); err != nil {
		t.Fatal(err)
	}
	e.user = storage.User{ID: "u_alice", Email: "alice@example.com", Name: "Alice", CreatedAt: clk.Now(), UpdatedAt: clk.Now()}
	if err := db.CreateUser(ctx, e.user); err != nil {
		t.Fatal(err)
	}
	return e
}

// browser signs a browser in (auth zero: an anonymous session) and returns
// its cookie and the session's sid.
func (e *env) browser(t *testing.T, auth session.Auth) (*http.Cookie, string) {
	t.Helper()
	b := sessiontest.Mint(t, e.sessions, auth)
	return b.Cookie, b.SID
}

func (e *env) do(t *testing.T, r *http.Request, cookie *http.Cookie) *http.Response {
	t.Helper()
	if cookie != nil {
		r.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w.Result()
}

func (e *env) get(t *testing.T, target string, cookie *http.Cookie) *http.Response {
	t.Helper()
	return e.do(t, httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil), cookie)
}

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// authorizeQuery is a valid request of the test app, with extra on top.
func authorizeQuery(extra url.Values) url.Values {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {"c_app"},
		"redirect_uri":          {redirectURI},
		"scope":                 {"openid email"},
		"state":                 {"state-0123456789"},
		"nonce":                 {"nonce-0123456789"},
		"code_challenge":        {challenge(verifier)},
		"code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return q
}

// redirectParams returns the app redirect's query, or fails.
func redirectParams(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d, want a redirect to the app; body: %.300s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirect to %s, want %s", loc, redirectURI)
	}
	return loc.Query()
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	Desc         string `json:"error_description"`
	status       int
}

// token posts form to the token endpoint as the test app.
func (e *env) token(t *testing.T, form url.Values) tokenResponse {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("c_app", appSecret)
	resp := e.do(t, r, nil)
	var tok tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatalf("token: status %d, %v", resp.StatusCode, err)
	}
	tok.status = resp.StatusCode
	return tok
}

// exchange redeems code at the token endpoint.
func (e *env) exchange(t *testing.T, code string) tokenResponse {
	t.Helper()
	tok := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}})
	if tok.status != http.StatusOK || tok.IDToken == "" || tok.AccessToken == "" {
		t.Fatalf("code exchange: status %d, %+v", tok.status, tok)
	}
	return tok
}

// idTokenClaims verifies an ID token against the published keys.
func (e *env) idTokenClaims(t *testing.T, idToken string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(idToken)
	if err != nil {
		t.Fatal(err)
	}
	set := e.keys.Current().JWKS()
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("ID token signed with kid %q, which the JWKS does not hold", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Public())
	if err != nil {
		t.Fatalf("ID token signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestResume(t *testing.T) {
	type setup struct {
		query    url.Values // extra authorize parameters
		flow     func(now time.Time, f *storage.Flow)
		cookie   func(t *testing.T, e *env) *http.Cookie // nil: the flow's own browser
		later    time.Duration                           // how much longer after the sign-in the browser resumes
		suspend  bool
		wantCode bool
		wantErr  string // an error redirected to the app
		status   int    // or a page with this status
	}
	// The flow's sign-in: mfa, 20 s after the request, resumed 1.5 s later.
	complete := func(now time.Time, f *storage.Flow) {}
	tests := []struct {
		name string
		setup
	}{
		{"a completed sign-in resumes into a code", setup{flow: complete, wantCode: true}},
		{"a sign-in made for a max_age=0 request resumes into a code",
			setup{query: url.Values{"max_age": {"0"}}, flow: func(now time.Time, f *storage.Flow) { f.MaxAge = 0 }, wantCode: true}},
		{"a sign-in made for a max_age=5 request resumes into a code 10 s later: age counts at the request",
			setup{query: url.Values{"max_age": {"5"}}, flow: func(now time.Time, f *storage.Flow) { f.MaxAge = 5 * time.Second },
				later: 10 * time.Second, wantCode: true}},
		{"a sign-in older than max_age is refused",
			setup{query: url.Values{"max_age": {"60"}}, flow: func(now time.Time, f *storage.Flow) {
				f.MaxAge = time.Minute
				f.AuthTime = f.CreatedAt.Add(-2 * time.Minute)
			}, wantErr: "access_denied"}},
		{"a sign-in below the required level is refused",
			setup{flow: func(now time.Time, f *storage.Flow) { f.RequiredACR = session.ACRPhr }, wantErr: "access_denied"}},
		{"a sign-in of an unknown level is refused",
			setup{flow: func(now time.Time, f *storage.Flow) { f.ACR = "" }, wantErr: "access_denied"}},
		{"a suspended user's sign-in is refused", setup{flow: complete, suspend: true, wantErr: "access_denied"}},
		{"a flow not yet complete is refused",
			setup{flow: func(now time.Time, f *storage.Flow) { f.State = storage.FlowVerified }, status: http.StatusForbidden}},
		{"another browser's flow is refused",
			setup{flow: complete, cookie: func(t *testing.T, e *env) *http.Cookie {
				c, _ := e.browser(t, session.Auth{UserID: "u_alice", ACR: "mfa", AuthTime: e.clock.Now()})
				return c
			}, status: http.StatusForbidden}},
		{"an expired flow is gone",
			setup{flow: func(now time.Time, f *storage.Flow) { f.ExpiresAt = now }, status: http.StatusBadRequest}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := t.Context()
			created := e.clock.Now()
			e.clock.Advance(20 * time.Second)
			signIn := session.Auth{UserID: e.user.ID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: e.clock.Now()}
			cookie, sid := e.browser(t, signIn)
			e.clock.Advance(time.Second + 500*time.Millisecond + tc.later)
			now := e.clock.Now()

			f := storage.Flow{
				ID: "flow-1", SessionHash: sha(cookie.Value), ClientID: "c_app",
				Query: authorizeQuery(tc.query).Encode(), State: storage.FlowComplete,
				UserID: e.user.ID, RequiredACR: session.ACRMFA, MaxAge: -1,
				ACR: signIn.ACR, AMR: signIn.AMR, AuthTime: signIn.AuthTime,
				CreatedAt: created, ExpiresAt: created.Add(flowLifetime),
			}
			tc.flow(now, &f)
			if err := e.db.CreateFlow(ctx, f); err != nil {
				t.Fatal(err)
			}
			if tc.suspend {
				if err := e.db.UpdateUser(ctx, e.user.ID, func(u *storage.User) error { u.SuspendedAt = now; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if tc.cookie != nil {
				cookie = tc.cookie(t, e)
			}

			resp := e.get(t, "/oauth2/authorize/resume?flow=flow-1", cookie)
			if tc.status != 0 {
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if loc := resp.Header.Get("Location"); loc != "" {
					t.Errorf("a refused resume redirects to %s", loc)
				}
				return
			}
			q := redirectParams(t, resp)
			if q.Get("state") != "state-0123456789" {
				t.Errorf("state = %q, want the request's", q.Get("state"))
			}
			if !tc.wantCode {
				if q.Get("error") != tc.wantErr || q.Has("code") {
					t.Fatalf("redirect %v, want error=%s and no code", q, tc.wantErr)
				}
				return
			}
			if q.Get("code") == "" {
				t.Fatalf("redirect %v, want a code", q)
			}
			// A flow resumes once.
			if again := e.get(t, "/oauth2/authorize/resume?flow=flow-1", cookie); again.StatusCode != http.StatusBadRequest {
				t.Errorf("second resume: status %d, want 400", again.StatusCode)
			}

			claims := e.idTokenClaims(t, e.exchange(t, q.Get("code")).IDToken)
			want := map[string]any{
				"iss": issuer, "sub": e.user.ID, "aud": []any{"c_app"}, "nonce": "nonce-0123456789",
				"acr": "mfa", "sid": sid, "email": e.user.Email, "email_verified": true,
				"auth_time": float64(signIn.AuthTime.Unix()),
			}
			for k, v := range want {
				got, _ := json.Marshal(claims[k])
				exp, _ := json.Marshal(v)
				if string(got) != string(exp) {
					t.Errorf("ID token %s = %s, want %s", k, got, exp)
				}
			}
			if amr, _ := claims["amr"].([]any); !slices.Equal(amr, []any{"pwd", "otp"}) {
				t.Errorf("ID token amr = %v, want [pwd otp]", claims["amr"])
			}
			if _, ok := claims["name"]; ok {
				t.Error("ID token carries name without the profile scope")
			}
		})
	}
}

func sha(id string) []byte {
	s := sha256.Sum256([]byte(id))
	return s[:]
}

func TestAuthorize(t *testing.T) {
	e := newEnv(t)
	signedIn, _ := e.browser(t, session.Auth{UserID: e.user.ID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"},
		AuthTime: e.clock.Now().Add(-10 * time.Minute)})
	anonymous, _ := e.browser(t, session.Auth{})

	// Every request that needs no error goes to server/login with a flow:
	// a fresh sign-in (/login, identify), the risk check of an existing one
	// (/login/continue, sso), or a step-up of it (/login/continue,
	// second_factor). No code is ever issued from here directly.
	const (
		signIn = "/login"
		check  = "/login/continue"
	)
	tests := []struct {
		name    string
		query   url.Values
		cookie  *http.Cookie
		to      string // where the browser is sent with a flow
		state   string // the flow's state
		appErr  string // an error redirected to the app
		pageErr int    // an error page, never a redirect
	}{
		{"a signed-in browser has its session checked, not a sign-in", authorizeQuery(nil), signedIn, check, storage.FlowSSO, "", 0},
		{"an anonymous browser is sent to sign in", authorizeQuery(nil), anonymous, signIn, storage.FlowIdentify, "", 0},
		{"a browser without a session is sent to sign in", authorizeQuery(nil), nil, signIn, storage.FlowIdentify, "", 0},
		{"prompt=login sends a signed-in browser to sign in", authorizeQuery(url.Values{"prompt": {"login"}}), signedIn, signIn, storage.FlowIdentify, "", 0},
		{"acr_values above the sign-in ask for a stronger factor", authorizeQuery(url.Values{"acr_values": {"phr"}}), signedIn, check, storage.FlowSecondFactor, "", 0},
		{"a max_age shorter than the sign-in's age sends it to sign in", authorizeQuery(url.Values{"max_age": {"60"}}), signedIn, signIn, storage.FlowIdentify, "", 0},
		{"a max_age longer than the sign-in's age has the session checked", authorizeQuery(url.Values{"max_age": {"3600"}}), signedIn, check, storage.FlowSSO, "", 0},
		{"prompt=none without a sign-in answers login_required", authorizeQuery(url.Values{"prompt": {"none"}}), anonymous, "", "", "login_required", 0},
		{"prompt=none with a sign-in below what the request asks answers interaction_required",
			authorizeQuery(url.Values{"prompt": {"none"}, "acr_values": {"phr"}}), signedIn, "", "", "interaction_required", 0},
		{"prompt=none with a sign-in older than max_age answers login_required",
			authorizeQuery(url.Values{"prompt": {"none"}, "max_age": {"60"}}), signedIn, "", "", "login_required", 0},
		{"prompt=none with a sign-in that suffices has the session checked", authorizeQuery(url.Values{"prompt": {"none"}}), signedIn, check, storage.FlowSSO, "", 0},
		{"a request without PKCE is refused before sign-in", authorizeQuery(url.Values{"code_challenge": nil, "code_challenge_method": nil}), anonymous, "", "", "invalid_request", 0},
		{"a plain PKCE challenge is refused before sign-in", authorizeQuery(url.Values{"code_challenge_method": {"plain"}, "code_challenge": {verifier}}), anonymous, "", "", "invalid_request", 0},
		{"a bad max_age is an invalid request", authorizeQuery(url.Values{"max_age": {"-5"}}), anonymous, "", "", "invalid_request", 0},
		{"an unregistered redirect URI gets a page, not a redirect", authorizeQuery(url.Values{"redirect_uri": {"https://evil.example/cb"}}), anonymous, "", "", "", http.StatusBadRequest},
		{"an unknown client gets a page, not a redirect", authorizeQuery(url.Values{"client_id": {"c_nobody"}}), anonymous, "", "", "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.query
			for k, v := range q {
				if v == nil {
					delete(q, k)
				}
			}
			resp := e.get(t, "/oauth2/authorize?"+q.Encode(), tc.cookie)
			switch {
			case tc.pageErr != 0:
				if resp.StatusCode != tc.pageErr || resp.Header.Get("Location") != "" {
					t.Fatalf("status %d, Location %q; want %d and no redirect", resp.StatusCode, resp.Header.Get("Location"), tc.pageErr)
				}
			case tc.to != "":
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != tc.to || loc.Query().Get("flow") == "" {
					t.Fatalf("status %d, Location %q; want 303 to %s?flow=…", resp.StatusCode, resp.Header.Get("Location"), tc.to)
				}
				fl, err := e.db.GetFlow(t.Context(), loc.Query().Get("flow"), e.clock.Now())
				if err != nil {
					t.Fatalf("the flow was not stored: %v", err)
				}
				if fl.ClientID != "c_app" || fl.State != tc.state {
					t.Errorf("flow = %+v, want state %q", fl, tc.state)
				}
				if tc.state != storage.FlowIdentify && (fl.UserID != e.user.ID || fl.ACR != session.ACRMFA) {
					t.Errorf("a flow from a session must carry its sign-in: %+v", fl)
				}
			default:
				p := redirectParams(t, resp)
				if p.Get("code") != "" || p.Get("error") != tc.appErr {
					t.Fatalf("redirect %v, want error %q and no code", p, tc.appErr)
				}
			}
		})
	}
}

// signOutWith is Deps.SignOut as the server wires it: through manage.
func signOutWith(db storage.Store, logger *slog.Logger, now func() time.Time) func(*http.Request, string, string, string) (bool, error) {
	m := &manage.Manager{Store: db, Audit: audit.NewRecorder(db, logger, nil, now), Now: now}
	return func(r *http.Request, userID, sid, clientID string) (bool, error) {
		return m.As(userID, "", "").SignOut(r.Context(), userID, sid, clientID)
	}
}

// joinGroup makes the test user a member of a new group with min acr.
func (e *env) joinGroup(t *testing.T, id, minACR string) storage.Group {
	t.Helper()
	g := storage.Group{ID: id, Name: id, MinACR: minACR, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	if err := e.db.CreateGroup(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	if err := e.db.AddGroupMember(t.Context(), g.ID, e.user.ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return g
}

// A resume reads the user and their groups once, in the transaction that
// writes the code, for every check and claim that needs them.
func TestResumeReadsTheUserOnce(t *testing.T) {
	var spy *spyStore
	e := newEnv(t, withSpy(&spy))
	e.allowScope(t, "groups")
	staff := e.joinGroup(t, "g_staff", session.ACRMFA)
	if err := e.db.UpdateClient(t.Context(), e.client.ID, func(c *storage.Client) error {
		c.AllowedGroups = []string{staff.ID}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	flowID, cookie, _ := e.completedFlow(t, authorizeQuery(url.Values{"scope": {"openid email groups"}}))
	spy.reset(t)
	q := redirectParams(t, e.get(t, "/oauth2/authorize/resume?flow="+flowID, cookie))
	if q.Get("code") == "" {
		t.Fatalf("resume answered %v", q)
	}
	if n := spy.count("GetUser"); n != 1 {
		t.Errorf("the resume read the user %d times, want 1", n)
	}
	if n := spy.count("ListUserGroups"); n != 1 {
		t.Errorf("the resume read the user's groups %d times, want 1", n)
	}
	claims := e.idTokenClaims(t, e.exchange(t, q.Get("code")).IDToken)
	if g, _ := claims["groups"].([]any); !slices.Equal(g, []any{"g_staff"}) || claims["email"] != e.user.Email {
		t.Errorf("ID token groups %v, email %v", claims["groups"], claims["email"])
	}
}

// Resumes of one flow racing each other issue one code: the flow is
// deleted in the transaction that writes the code, and the others find
// nothing to delete.
func TestConcurrentResumesIssueOneCode(t *testing.T) {
	e := newEnv(t)
	flowID, cookie, _ := e.completedFlow(t, authorizeQuery(nil))
	const n = 8
	statuses := make([]int, n)
	codes := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp := e.get(t, "/oauth2/authorize/resume?flow="+flowID, cookie)
			statuses[i] = resp.StatusCode
			if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Query().Get("code") != "" {
				codes[i] = true
			}
		})
	}
	wg.Wait()
	issued := 0
	for i := range n {
		switch {
		case codes[i]:
			issued++
		case statuses[i] != http.StatusBadRequest:
			t.Errorf("resume %d: status %d without a code, want 400", i, statuses[i])
		}
	}
	if issued != 1 {
		t.Errorf("%d resumes issued a code, want exactly 1", issued)
	}
}
