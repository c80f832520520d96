package admin_test

// The console through the whole server, in process (package servertest):
// server.New over a real SQLite store in a temporary directory, served by
// httptest with a localhost issuer. Browser sessions are minted through a
// session store over the same database, so the server accepts them exactly
// like ones its sign-in created.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
)

// instance is the whole server in process, with the console's helpers.
type instance struct{ *servertest.Instance }

func start(t *testing.T) *instance { return &instance{servertest.Start(t)} }

func (in *instance) newUser(t *testing.T, email string, admin bool) storage.User {
	t.Helper()
	spec := manage.UserSpec{Email: email}
	if admin {
		spec.Role = storage.RoleAdmin
	}
	nu, err := in.Manager().CreateUser(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return nu.User
}

// withRole is a new user with a console role.
func (in *instance) withRole(t *testing.T, email, role string) storage.User {
	t.Helper()
	nu, err := in.Manager().CreateUser(t.Context(), manage.UserSpec{Email: email, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return nu.User
}

func (in *instance) user(t *testing.T, id string) storage.User {
	t.Helper()
	u, err := in.DB.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("user %s: %v", id, err)
	}
	return u
}

func (in *instance) client(t *testing.T, id string) storage.Client {
	t.Helper()
	c, err := in.DB.GetClient(t.Context(), id)
	if err != nil {
		t.Fatalf("client %s: %v", id, err)
	}
	return c
}

// key is a fresh phr session of user: a key tap just now.
func (in *instance) key(t *testing.T, userID string) sessiontest.Browser {
	t.Helper()
	return in.Mint(t, session.Auth{UserID: userID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"}, AuthTime: time.Now()})
}

// send makes one request; b may be nil (no cookie), header may be nil.
func (in *instance) send(t *testing.T, b *sessiontest.Browser, method, path, ctype string, body []byte, header http.Header) servertest.Reply {
	t.Helper()
	r := in.Request(t, method, path, ctype, body, header)
	if b != nil && b.Cookie != nil {
		r.AddCookie(b.Cookie)
	}
	return servertest.Read(t, in.HTTP, r)
}

func (in *instance) get(t *testing.T, b *sessiontest.Browser, path string) servertest.Reply {
	t.Helper()
	return in.send(t, b, http.MethodGet, path, "", nil, nil)
}

// form posts a console form with the browser's CSRF token.
func (in *instance) form(t *testing.T, b *sessiontest.Browser, path string, v url.Values) servertest.Reply {
	t.Helper()
	if v == nil {
		v = url.Values{}
	}
	if _, ok := v["csrf_token"]; !ok && b != nil {
		v.Set("csrf_token", b.CSRF)
	}
	return in.send(t, b, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(v.Encode()), nil)
}

// call is a JSON API call from a browser session (with its CSRF header)
// or, with bearer set, from a service.
func (in *instance) call(t *testing.T, b *sessiontest.Browser, bearer, method, path string, body any) servertest.Reply {
	t.Helper()
	h := http.Header{}
	if b != nil && method != http.MethodGet {
		h.Set("X-CSRF-Token", b.CSRF)
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

// tokenFor gets a client_credentials access token, or "" with the status.
func (in *instance) tokenFor(t *testing.T, id, secret, scope string) (string, int) {
	t.Helper()
	v := url.Values{}
	if scope != "" {
		v.Set("scope", scope)
	}
	return in.tokenWith(t, id, secret, v)
}

// tokenWith is tokenFor with the request's parameters v.
func (in *instance) tokenWith(t *testing.T, id, secret string, v url.Values) (string, int) {
	t.Helper()
	v.Set("grant_type", "client_credentials")
	r := in.Request(t, http.MethodPost, "/oauth2/token", "application/x-www-form-urlencoded", []byte(v.Encode()), nil)
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp := servertest.Read(t, in.HTTP, r)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(resp.Body, &body)
	return body.AccessToken, resp.Status
}

// active introspects token as the app with these credentials.
func (in *instance) active(t *testing.T, token string, creds [2]string) bool {
	t.Helper()
	r := in.Request(t, http.MethodPost, "/oauth2/introspect", "application/x-www-form-urlencoded",
		[]byte(url.Values{"token": {token}}.Encode()), nil)
	r.SetBasicAuth(url.QueryEscape(creds[0]), url.QueryEscape(creds[1]))
	resp := servertest.Read(t, in.HTTP, r)
	var body struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("introspect: status %d, %v", resp.Status, err)
	}
	return body.Active
}

// ndjson parses a JSON Lines body.
func ndjson(t *testing.T, r servertest.Reply) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(r.Body), []byte("\n")) {
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
