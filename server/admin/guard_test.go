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
			name = parts[i-1] + "." + name // users.id, groups.id, apps.id, clients.id
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
	if len(parts) >= 3 && (parts[1] == "users" || parts[1] == "apps" || parts[1] == "groups") {
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
	group        storage.Group // target is its member
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
	if f.group, err = m.CreateGroup(ctx, manage.GroupSpec{Name: "support"}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddMembers(ctx, f.group.ID, []string{f.target.Email}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) credID() string { return base64.RawURLEncoding.EncodeToString(f.cred) }

// state is everything an action could change, but the audit log.
type state struct {
	Users    []storage.User
	Clients  []storage.Client
	Groups   []storage.Group
	Members  map[string][]storage.User
	Keys     map[string][]storage.WebAuthnCredential
	Sessions map[string][]string // the ids of live sessions (reads touch their last-seen time)
}

func stateOf(t *testing.T, in *instance) state {
	t.Helper()
	ctx := t.Context()
	s := state{Members: map[string][]storage.User{}, Keys: map[string][]storage.WebAuthnCredential{},
		Sessions: map[string][]string{}}
	var err error
	if s.Users, err = in.DB.ListUsers(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Clients, err = in.DB.ListClients(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Groups, err = in.DB.ListGroups(ctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range s.Groups {
		if s.Members[g.ID], err = in.DB.ListGroupMembers(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range s.Users {
		if s.Keys[u.ID], err = in.DB.ListWebAuthnCredentials(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		sessions, err := in.DB.ListUserSessions(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range sessions {
			s.Sessions[u.ID] = append(s.Sessions[u.ID], x.SID)
		}
	}
	return s
}

func (f *fixture) state(t *testing.T) state { t.Helper(); return stateOf(t, f.in) }

// unchanged fails unless nothing changed since before and no audit event
// was written after mark.
func unchanged(t *testing.T, in *instance, before state, mark int64) {
	t.Helper()
	if after := stateOf(t, in); !reflect.DeepEqual(before, after) {
		t.Errorf("state changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if ev := in.Events(t, mark, ""); len(ev) != 0 {
		t.Errorf("%d audit events written, e.g. %s", len(ev), ev[0].Type)
	}
}

func (f *fixture) unchanged(t *testing.T, before state, mark int64) {
	t.Helper()
	unchanged(t, f.in, before, mark)
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
	g := "/admin/groups/" + f.group.ID
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
		{"grant a role", u + "/role", url.Values{"role": {"helpdesk"}}, http.MethodPut, v1 + "/users/" + f.target.ID + "/role",
			map[string]string{"role": "helpdesk"}, u},
		{"make administrator", u + "/role", url.Values{"role": {"admin"}}, http.MethodPut, v1 + "/users/" + f.target.ID + "/admin",
			map[string]bool{"admin": true}, u},
		{"unmake administrator", o + "/role", url.Values{"role": {"none"}, "confirm": {"yes"}}, http.MethodPut,
			v1 + "/users/" + f.other.ID + "/role", map[string]string{"role": "none"}, o},
		{"add to a group from the user's page", o + "/groups", url.Values{"group": {"support"}}, http.MethodPost,
			v1 + "/groups/" + f.group.ID + "/members", map[string][]string{"emails": {f.other.Email}}, o},
		{"remove from a group from the user's page", u + "/groups/" + f.group.ID + "/remove", yes, http.MethodDelete,
			v1 + "/groups/" + f.group.ID + "/members/" + f.target.ID, nil, u},
		{"create a group", "/admin/groups", url.Values{"name": {"new"}}, http.MethodPost, v1 + "/groups",
			map[string]string{"name": "new"}, "/admin/groups"},
		{"change a group's minimum level", g, url.Values{"name": {"support"}, "min_acr": {"phrh"}}, http.MethodPut,
			v1 + "/groups/" + f.group.ID, map[string]string{"name": "support", "min_acr": "phrh"}, g},
		{"add a member", g + "/members", url.Values{"emails": {f.other.Email}}, http.MethodPost,
			v1 + "/groups/" + f.group.ID + "/members", map[string][]string{"emails": {f.other.Email}}, g},
		{"remove a member", g + "/members/" + f.target.ID + "/remove", yes, http.MethodDelete,
			v1 + "/groups/" + f.group.ID + "/members/" + f.target.ID, nil, g},
		{"delete a group", g + "/delete", yes, http.MethodDelete, v1 + "/groups/" + f.group.ID, nil, g},
		{"re-issue the enrolment link", u + "/reenroll", nil, http.MethodPost, v1 + "/users/" + f.target.ID + "/reenroll", nil, u},
		{"revoke a key", u + "/keys/" + f.credID() + "/revoke", yes, http.MethodPost,
			v1 + "/users/" + f.target.ID + "/keys/" + f.credID() + "/revoke", nil, u},
		{"register an app", "/admin/apps", appForm, http.MethodPost, v1 + "/clients", appJSON, "/admin/apps"},
		{"edit an app", a, appForm, http.MethodPut, v1 + "/clients/" + f.app.Client.ID, appJSON, a},
		{"narrow an app to a group", a, withField(appForm, "allowed_group", "support"), http.MethodPut, v1 + "/clients/" + f.app.Client.ID,
			map[string]any{"name": "Backend", "grant_types": []string{"client_credentials"}, "allowed_groups": []string{"support"}}, a},
		{"rotate a secret", a + "/rotate-secret", url.Values{"overlap": {"0"}, "confirm": {"yes"}}, http.MethodPost,
			v1 + "/clients/" + f.app.Client.ID + "/rotate-secret", map[string]string{"overlap": "0"}, a},
		{"disable an app", a + "/disable", yes, http.MethodPost, v1 + "/clients/" + f.app.Client.ID + "/disable", nil, a},
		{"enable an app", d + "/enable", nil, http.MethodPost, v1 + "/clients/" + f.disabledApp.Client.ID + "/enable", nil, d},
		{"delete an app", a + "/delete", yes, http.MethodDelete, v1 + "/clients/" + f.app.Client.ID, nil, a},
	}
}

func withField(v url.Values, k, x string) url.Values {
	out := url.Values{k: {x}}
	for key, vals := range v {
		out[key] = vals
	}
	return out
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
		"credID": f.credID(), "sid": f.sid, "groups.id": f.group.ID, "groupID": f.group.ID, "userID": f.target.ID}
	before, mark := f.state(t), in.AuditMark(t)
	body := url.Values{"confirm": {"yes"}, "role": {"admin"}, "name": {"X"}, "email": {"csrf@example.com"},
		"overlap": {"0"}, "grant": {"client_credentials"}, "emails": {f.admin.Email}, "group": {"support"}}

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
						r = in.send(t, &b, method, path, "application/json", []byte(`{"admin":true,"role":"admin","name":"X","email":"csrf@example.com","emails":["admin@example.com"]}`), h)
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
