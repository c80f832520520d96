package admin_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
)

func isConsole(pattern string) bool {
	return pattern == "/admin" || strings.HasPrefix(pattern, "/admin/") || strings.HasPrefix(pattern, "/api/admin/")
}

func isAPI(pattern string) bool { return strings.HasPrefix(pattern, "/api/") }

// fill turns a route pattern into a path, naming things by kind.
func fill(pattern string, ids map[string]string) string {
	p := strings.TrimSuffix(pattern, "{$}")
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if !strings.HasPrefix(s, "{") {
			continue
		}
		name := strings.Trim(s, "{}.")
		if name == "id" && i > 0 {
			name = parts[i-1] + "." + name // users.id, apps.id, clients.id
		}
		v, ok := ids[name]
		if !ok {
			v = "x_unknown"
		}
		parts[i] = url.PathEscape(v)
	}
	return strings.Join(parts, "/")
}

// formPage is where a refused POST to path sends the browser back to.
func formPage(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 3 && (parts[1] == "users" || parts[1] == "apps") {
		return "/" + strings.Join(parts[:3], "/")
	}
	return "/" + strings.Join(parts[:min(2, len(parts))], "/")
}

func methodOf(rt httpx.Route) string {
	if rt.Method == "" {
		return http.MethodGet
	}
	return rt.Method
}

// TestEveryConsoleRouteIsGuarded walks the server's whole surface, so a
// route added later cannot be forgotten.
func TestEveryConsoleRouteIsGuarded(t *testing.T) {
	in := start(t)
	adminUser := in.newUser(t, "admin@example.com", true)
	plain := in.newUser(t, "plain@example.com", false)
	suspended := in.newUser(t, "gone@example.com", true)
	suspendedAdmin := in.key(t, suspended.ID)
	// The flag alone: a suspension also ends the user's sessions, so this
	// tests the guard's own check, which stands behind that.
	if err := in.DB.UpdateUser(t.Context(), suspended.ID, func(u *storage.User) error { u.SuspendedAt = time.Now(); return nil }); err != nil {
		t.Fatal(err)
	}

	anonymous := in.Mint(t, session.Auth{})
	nonAdmin := in.key(t, plain.ID)
	mfaOnly := in.Mint(t, session.Auth{UserID: adminUser.ID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: time.Now()})
	ids := map[string]string{"users.id": plain.ID}

	var pages, apis int
	for _, rt := range in.Srv.Routes() {
		if !isConsole(rt.Pattern) {
			if strings.Contains(rt.Pattern, "admin") {
				t.Errorf("%s looks like an admin route but is outside /admin and /api/admin", rt)
			}
			continue
		}
		if rt.Guard != httpx.GuardAdmin {
			t.Errorf("%s has guard %q, want admin", rt, rt.Guard)
		}
		method, path := methodOf(rt), fill(rt.Pattern, ids)
		api := isAPI(rt.Pattern)
		if api {
			apis++
		} else {
			pages++
		}
		readOnly := method == http.MethodGet
		// What a refused page request is sent back to after signing in.
		back := path
		if !readOnly {
			back = formPage(path)
		}
		send := func(b *sessiontest.Browser) servertest.Reply {
			if api {
				return in.call(t, b, "", method, path, nil)
			}
			if readOnly {
				return in.get(t, b, path)
			}
			return in.form(t, b, path, url.Values{"csrf_token": {b.CSRF}})
		}

		t.Run(rt.String(), func(t *testing.T) {
			t.Run("anonymous", func(t *testing.T) {
				r := send(&anonymous)
				if api {
					if r.Status != http.StatusUnauthorized || servertest.Decode[map[string]string](t, r)["error"] == "" {
						t.Errorf("%v, want 401 with a JSON error", r)
					}
					return
				}
				if r.Status != http.StatusSeeOther || r.Location() != stepUpTo(back) {
					t.Errorf("status %d to %q, want 303 to %q", r.Status, r.Location(), stepUpTo(back))
				}
			})
			t.Run("signed-in non-administrator", func(t *testing.T) {
				if r := send(&nonAdmin); r.Status != http.StatusForbidden {
					t.Errorf("%v, want 403", r)
				}
			})
			t.Run("suspended administrator", func(t *testing.T) {
				if r := send(&suspendedAdmin); r.Status != http.StatusForbidden {
					t.Errorf("%v, want 403", r)
				}
			})
			t.Run("administrator without a key tap (mfa)", func(t *testing.T) {
				r := send(&mfaOnly)
				if api {
					if r.Status != http.StatusForbidden || servertest.Decode[map[string]string](t, r)["error"] != "step_up_required" {
						t.Errorf("%v, want 403 step_up_required", r)
					}
					return
				}
				want := back
				if !readOnly {
					want += "?notice=step-up"
				}
				if r.Status != http.StatusSeeOther || r.Location() != stepUpTo(want) {
					t.Errorf("status %d to %q, want 303 to %q", r.Status, r.Location(), stepUpTo(want))
				}
			})
		})
	}
	if pages < 20 || apis < 20 {
		t.Errorf("walked %d pages and %d API routes; is the console mounted?", pages, apis)
	}
	// And an administrator with a key tap gets in.
	if r := in.get(t, ptr(in.key(t, adminUser.ID)), "/admin/users"); r.Status != http.StatusOK {
		t.Errorf("an administrator's fresh phr session: %v", r)
	}
}

func ptr[T any](v T) *T { return &v }

// fixture is a console with things to act on.
type fixture struct {
	in           *instance
	admin, other storage.User // two active administrators
	target       storage.User // a user with a key and a session
	suspended    storage.User
	cred         []byte
	sid          string
	app          manage.NewClient // confidential, client_credentials
	disabledApp  manage.NewClient
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	in := start(t)
	f := &fixture{in: in}
	f.admin = in.newUser(t, "admin@example.com", true)
	f.other = in.newUser(t, "other-admin@example.com", true)
	f.target = in.newUser(t, "target@example.com", false)
	f.suspended = in.newUser(t, "suspended@example.com", false)
	m := in.Manager()
	ctx := t.Context()
	if _, err := m.SuspendUserID(ctx, f.suspended.ID); err != nil {
		t.Fatal(err)
	}
	f.cred = []byte("credential-of-target")
	if err := in.DB.CreateWebAuthnCredential(ctx, storage.WebAuthnCredential{ID: f.cred, UserID: f.target.ID, Name: "Blue key",
		AAGUID:    []byte{0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a},
		PublicKey: []byte{1}, SignCount: 7, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	in.key(t, f.target.ID)
	sessions, err := in.DB.ListUserSessions(ctx, f.target.ID)
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions of the target: %v, %v", sessions, err)
	}
	f.sid = sessions[0].SID
	if f.app, err = m.RegisterClient(ctx, manage.ClientSpec{Name: "Backend", GrantTypes: []string{"client_credentials"}}); err != nil {
		t.Fatal(err)
	}
	if f.disabledApp, err = m.RegisterClient(ctx, manage.ClientSpec{Name: "Old", GrantTypes: []string{"client_credentials"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetClientDisabled(ctx, f.disabledApp.Client.ID, true); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) credID() string { return base64.RawURLEncoding.EncodeToString(f.cred) }

// state is everything an action could change, but the audit log.
type state struct {
	Users    []storage.User
	Clients  []storage.Client
	Keys     []storage.WebAuthnCredential
	Sessions []storage.BrowserSession
}

func (f *fixture) state(t *testing.T) state {
	t.Helper()
	ctx := t.Context()
	var s state
	var err error
	if s.Users, err = f.in.DB.ListUsers(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Clients, err = f.in.DB.ListClients(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Keys, err = f.in.DB.ListWebAuthnCredentials(ctx, f.target.ID); err != nil {
		t.Fatal(err)
	}
	if s.Sessions, err = f.in.DB.ListUserSessions(ctx, f.target.ID); err != nil {
		t.Fatal(err)
	}
	return s
}

// unchanged fails unless nothing changed since before and no audit event
// was written after mark.
func (f *fixture) unchanged(t *testing.T, before state, mark int64) {
	t.Helper()
	if after := f.state(t); !reflect.DeepEqual(before, after) {
		t.Errorf("state changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if ev := f.in.Events(t, mark, ""); len(ev) != 0 {
		t.Errorf("%d audit events written, e.g. %s", len(ev), ev[0].Type)
	}
}

// action is one sensitive action, as a form and as an API call.
type action struct {
	name         string
	path         string // page form
	form         url.Values
	method, api  string // API call
	body         any
	wantFormPage string
}

func (f *fixture) sensitive() []action {
	u, s, o := "/admin/users/"+f.target.ID, "/admin/users/"+f.suspended.ID, "/admin/users/"+f.other.ID
	a, d := "/admin/apps/"+f.app.Client.ID, "/admin/apps/"+f.disabledApp.Client.ID
	const v1 = "/api/admin/v1"
	appForm := url.Values{"name": {"Renamed"}, "grant": {"client_credentials"}}
	appJSON := map[string]any{"name": "Renamed", "grant_types": []string{"client_credentials"}}
	yes := url.Values{"confirm": {"yes"}}
	return []action{
		{"create a user", "/admin/users", url.Values{"email": {"new@example.com"}}, http.MethodPost, v1 + "/users",
			map[string]any{"email": "new@example.com"}, "/admin/users"},
		{"suspend", u + "/suspend", yes, http.MethodPost, v1 + "/users/" + f.target.ID + "/suspend", nil, u},
		{"unsuspend", s + "/unsuspend", nil, http.MethodPost, v1 + "/users/" + f.suspended.ID + "/unsuspend", nil, s},
		{"delete a user", u + "/delete", yes, http.MethodDelete, v1 + "/users/" + f.target.ID, nil, u},
		{"make administrator", u + "/admin", url.Values{"admin": {"true"}}, http.MethodPut, v1 + "/users/" + f.target.ID + "/admin",
			map[string]bool{"admin": true}, u},
		{"unmake administrator", o + "/admin", url.Values{"admin": {"false"}, "confirm": {"yes"}}, http.MethodPut,
			v1 + "/users/" + f.other.ID + "/admin", map[string]bool{"admin": false}, o},
		{"re-issue the enrolment link", u + "/reenroll", nil, http.MethodPost, v1 + "/users/" + f.target.ID + "/reenroll", nil, u},
		{"revoke a key", u + "/keys/" + f.credID() + "/revoke", yes, http.MethodPost,
			v1 + "/users/" + f.target.ID + "/keys/" + f.credID() + "/revoke", nil, u},
		{"register an app", "/admin/apps", appForm, http.MethodPost, v1 + "/clients", appJSON, "/admin/apps"},
		{"edit an app", a, appForm, http.MethodPut, v1 + "/clients/" + f.app.Client.ID, appJSON, a},
		{"rotate a secret", a + "/rotate-secret", url.Values{"overlap": {"0"}, "confirm": {"yes"}}, http.MethodPost,
			v1 + "/clients/" + f.app.Client.ID + "/rotate-secret", map[string]string{"overlap": "0"}, a},
		{"disable an app", a + "/disable", yes, http.MethodPost, v1 + "/clients/" + f.app.Client.ID + "/disable", nil, a},
		{"enable an app", d + "/enable", nil, http.MethodPost, v1 + "/clients/" + f.disabledApp.Client.ID + "/enable", nil, d},
		{"delete an app", a + "/delete", yes, http.MethodDelete, v1 + "/clients/" + f.app.Client.ID, nil, a},
	}
}

func TestStaleKeyTapIsSentToReverify(t *testing.T) {
	f := newFixture(t)
	in := f.in
	stale := in.Mint(t, session.Auth{UserID: f.admin.ID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"},
		AuthTime: time.Now().Add(-10 * time.Minute)})
	before, mark := f.state(t), in.AuditMark(t)

	for _, a := range f.sensitive() {
		t.Run(a.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range a.form {
				form[k] = v
			}
			r := in.form(t, &stale, a.path, form)
			want := stepUpTo(a.wantFormPage + "?notice=reverify")
			if r.Status != http.StatusSeeOther || r.Location() != want {
				t.Errorf("page: status %d to %q, want 303 to %q", r.Status, r.Location(), want)
			}
			r = in.call(t, &stale, "", a.method, a.api, a.body)
			if r.Status != http.StatusForbidden || servertest.Decode[map[string]string](t, r)["error"] != "fresh_key_tap_required" {
				t.Errorf("API: %v, want 403 fresh_key_tap_required", r)
			}
			f.unchanged(t, before, mark)
		})
	}

	t.Run("the page it returns to says why", func(t *testing.T) {
		r := in.get(t, &stale, "/admin/users/"+f.target.ID+"?notice=reverify")
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "needs a key tap within the last 5 minutes") {
			t.Errorf("%.300v", r)
		}
	})
	t.Run("routine actions do not need a fresh tap", func(t *testing.T) {
		r := in.form(t, &stale, "/admin/users/"+f.target.ID+"/revoke-sessions", nil)
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/users/"+f.target.ID+"?notice=sessions-revoked" {
			t.Errorf("status %d to %q", r.Status, r.Location())
		}
	})
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	in := f.in
	adm := in.key(t, f.admin.ID)
	// A forged request is refused the same way whoever's browser sends it.
	browsers := map[string]sessiontest.Browser{"administrator": adm, "anonymous": in.Mint(t, session.Auth{}),
		"non-administrator": in.key(t, f.target.ID)}
	ids := map[string]string{"users.id": f.target.ID, "apps.id": f.app.Client.ID, "clients.id": f.app.Client.ID,
		"credID": f.credID(), "sid": f.sid}
	before, mark := f.state(t), in.AuditMark(t)
	body := url.Values{"confirm": {"yes"}, "admin": {"true"}, "name": {"X"}, "email": {"csrf@example.com"},
		"overlap": {"0"}, "grant": {"client_credentials"}}

	n := 0
	for _, rt := range in.Srv.Routes() {
		method := methodOf(rt)
		if !isConsole(rt.Pattern) || method == http.MethodGet {
			continue
		}
		n++
		path := fill(rt.Pattern, ids)
		t.Run(rt.String(), func(t *testing.T) {
			for who, b := range browsers {
				for _, token := range []string{"", adm.CSRF + "x", browsers["non-administrator"].CSRF} {
					if token == b.CSRF {
						continue
					}
					var r servertest.Reply
					if isAPI(rt.Pattern) {
						h := http.Header{}
						if token != "" {
							h.Set("X-CSRF-Token", token)
						}
						r = in.send(t, &b, method, path, "application/json", []byte(`{"admin":true,"name":"X","email":"csrf@example.com"}`), h)
						if r.Status == http.StatusForbidden && servertest.Decode[map[string]string](t, r)["error"] != "invalid_csrf_token" {
							t.Errorf("%s, token %q: %s, want invalid_csrf_token", who, token, r.Body)
						}
					} else {
						v := url.Values{"csrf_token": {token}}
						for k, x := range body {
							v[k] = x
						}
						r = in.send(t, &b, method, path, "application/x-www-form-urlencoded", []byte(v.Encode()), nil)
					}
					if r.Status != http.StatusForbidden || r.Location() != "" {
						t.Errorf("%s, token %q: %v (Location %q), want 403", who, token, r, r.Location())
					}
				}
			}
			f.unchanged(t, before, mark)
		})
	}
	if n < 30 {
		t.Errorf("only %d state-changing routes walked", n)
	}
}
