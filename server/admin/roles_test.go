package admin_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/storage"
)

var (
	reNavLink  = regexp.MustCompile(`<nav aria-label="Console">([\s\S]*?)</nav>`)
	rePostForm = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
)

// navOf is the section names of a console page's navigation.
func navOf(t *testing.T, body []byte) []string {
	t.Helper()
	m := reNavLink.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no navigation in %.500s", body)
	}
	var out []string
	for _, l := range regexp.MustCompile(`>([^<]+)</a>`).FindAllSubmatch(m[1], -1) {
		out = append(out, string(l[1]))
	}
	return out
}

// formsOn are the actions of the POST forms of a page.
func formsOn(body []byte) []string {
	var out []string
	for _, m := range rePostForm.FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

func TestWhatEachRoleSees(t *testing.T) {
	in := start(t)
	ctx := t.Context()
	adminUser := in.newUser(t, "admin@example.com", true)
	plain := in.newUser(t, "plain@example.com", false)
	m := in.Manager()
	g, err := m.CreateGroup(ctx, manage.GroupSpec{Name: "support"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "Desk", GrantTypes: []string{"client_credentials"}, AllowedGroups: []string{"support"}})
	if err != nil {
		t.Fatal(err)
	}
	pages := []string{"/admin/users", "/admin/users/" + plain.ID, "/admin/users/" + adminUser.ID, "/admin/groups",
		"/admin/groups/" + g.ID, "/admin/apps", "/admin/apps/" + app.Client.ID, "/admin/audit"}

	for _, tc := range []struct {
		role  string
		nav   []string
		forms map[string][]string // page → the forms it has (nil: none)
		shown []string            // pages that open (the others are 403)
	}{
		{auditor, []string{"Users", "Groups", "Apps", "Audit log"}, nil, pages},
		{helpdesk, []string{"Users", "Groups"}, map[string][]string{
			"/admin/users":             {"/admin/users"},
			"/admin/users/" + plain.ID: {"/admin/users/" + plain.ID + "/reenroll", "/admin/users/" + plain.ID + "/suspend"},
		}, pages[:5]},
		{admin, []string{"Users", "Groups", "Apps", "Audit log"}, map[string][]string{
			"/admin/users": {"/admin/users"},
			"/admin/users/" + plain.ID: {"/admin/users/" + plain.ID + "/groups", "/admin/users/" + plain.ID + "/reenroll",
				"/admin/users/" + plain.ID + "/role", "/admin/users/" + plain.ID + "/suspend", "/admin/users/" + plain.ID + "/delete"},
			"/admin/users/" + adminUser.ID: {"/admin/users/" + adminUser.ID + "/groups", "/admin/users/" + adminUser.ID + "/reenroll",
				"/admin/users/" + adminUser.ID + "/role", "/admin/users/" + adminUser.ID + "/suspend", "/admin/users/" + adminUser.ID + "/delete"},
			"/admin/groups":         {"/admin/groups"},
			"/admin/groups/" + g.ID: {"/admin/groups/" + g.ID + "/members", "/admin/groups/" + g.ID, "/admin/groups/" + g.ID + "/delete"},
			"/admin/apps":           {"/admin/apps"},
			"/admin/apps/" + app.Client.ID: {"/admin/apps/" + app.Client.ID, "/admin/apps/" + app.Client.ID + "/rotate-secret",
				"/admin/apps/" + app.Client.ID + "/disable", "/admin/apps/" + app.Client.ID + "/delete"},
		}, pages},
	} {
		t.Run(tc.role, func(t *testing.T) {
			u := in.withRole(t, tc.role+"-viewer@example.com", tc.role)
			b := in.key(t, u.ID)
			for _, p := range pages {
				r := in.get(t, &b, p)
				if !slices.Contains(tc.shown, p) {
					if r.Status != http.StatusForbidden {
						t.Errorf("%s: %v, want 403", p, r)
					}
					continue
				}
				if r.Status != http.StatusOK {
					t.Errorf("%s: %v", p, r)
					continue
				}
				if me := "Signed in as " + u.Email + " (" + tc.role + ")"; !strings.Contains(string(r.Body), me) {
					t.Errorf("%s does not say %q", p, me)
				}
				if nav := navOf(t, r.Body); !slices.Equal(nav, tc.nav) {
					t.Errorf("%s: the navigation shows %v, want %v", p, nav, tc.nav)
				}
				if forms := formsOn(r.Body); !slices.Equal(forms, tc.forms[p]) {
					t.Errorf("%s: forms %v, want %v", p, forms, tc.forms[p])
				}
			}
			// An error page keeps the role's navigation.
			if r := in.get(t, &b, "/admin/users/u_nosuch"); r.Status != http.StatusNotFound || !slices.Equal(navOf(t, r.Body), tc.nav) {
				t.Errorf("an unknown user: %v, want 404 with the navigation %v", r, tc.nav)
			}
		})
	}
	t.Run("an auditor sees an app's settings, read only", func(t *testing.T) {
		b := in.key(t, in.withRole(t, "auditor-2@example.com", auditor).ID)
		body := string(in.get(t, &b, "/admin/apps/"+app.Client.ID).Body)
		if !strings.Contains(body, `<fieldset disabled id="app-settings">`) || !strings.Contains(body, `value="support" checked`) {
			t.Errorf("%.3000s", body)
		}
	})
}

func TestHelpdeskKeepsToUsersWithoutARole(t *testing.T) {
	in := start(t)
	in.newUser(t, "admin@example.com", true)
	other := in.withRole(t, "auditor@example.com", auditor)
	desk := in.withRole(t, "desk@example.com", helpdesk)
	b := in.key(t, desk.ID)
	m := in.Manager()
	if _, err := m.CreateGroup(t.Context(), manage.GroupSpec{Name: "support"}); err != nil {
		t.Fatal(err)
	}

	var created string
	t.Run("creates a user, issues the link and suspends them", func(t *testing.T) {
		mark := in.AuditMark(t)
		r := in.call(t, &b, "", http.MethodPost, v1+"/users", map[string]any{"email": "new@example.com"})
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %v", r)
		}
		created = servertest.Decode[struct {
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		}](t, r).User.ID
		if r := in.form(t, &b, "/admin/users/"+created+"/reenroll", nil); r.Status != http.StatusOK {
			t.Errorf("reenroll: %v", r)
		}
		if r := in.form(t, &b, "/admin/users/"+created+"/suspend", url.Values{"confirm": {"yes"}}); r.Status != http.StatusSeeOther {
			t.Errorf("suspend: %v", r)
		}
		if r := in.call(t, &b, "", http.MethodPost, v1+"/users/"+created+"/unsuspend", nil); r.Status != http.StatusOK {
			t.Errorf("unsuspend: %v", r)
		}
		for _, typ := range []string{audit.UserCreated, audit.EnrollmentStarted, audit.UserSuspended, audit.UserUnsuspended} {
			if ev := in.Events(t, mark, typ); len(ev) == 0 || ev[0].Actor != desk.ID {
				t.Errorf("%s events %+v, want one by the helpdesk user", typ, ev)
			}
		}
	})
	t.Run("may not grant a role or a group while creating", func(t *testing.T) {
		for _, body := range []map[string]any{
			{"email": "r@example.com", "role": "auditor"},
			{"email": "a@example.com", "admin": true},
			{"email": "g@example.com", "groups": []string{"support"}},
		} {
			if r := in.call(t, &b, "", http.MethodPost, v1+"/users", body); r.Status != http.StatusForbidden {
				t.Errorf("%v: %v, want 403", body, r)
			}
		}
		if r := in.form(t, &b, "/admin/users", url.Values{"email": {"r@example.com"}, "role": {"admin"}}); r.Status != http.StatusForbidden {
			t.Errorf("the form with a role: %v, want 403", r)
		}
		if users, _ := in.DB.ListUsers(t.Context()); len(users) != 4 {
			t.Errorf("%d users, want 4: a refused creation created someone", len(users))
		}
	})
	t.Run("may not touch an account with a role", func(t *testing.T) {
		before, mark := stateOf(t, in), in.AuditMark(t)
		for _, target := range []string{other.ID, desk.ID} {
			for _, path := range []string{"/reenroll", "/suspend", "/revoke-sessions", "/reset-totp"} {
				r := in.form(t, &b, "/admin/users/"+target+path, url.Values{"confirm": {"yes"}})
				if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "console role") {
					t.Errorf("%s%s: %v, want 403", target, path, r)
				}
				r = in.call(t, &b, "", http.MethodPost, v1+"/users/"+target+path, nil)
				if r.Status != http.StatusForbidden || servertest.Decode[map[string]string](t, r)["error"] != "forbidden" {
					t.Errorf("API %s%s: %v, want 403 forbidden", target, path, r)
				}
			}
		}
		unchanged(t, in, before, mark)
		body := in.get(t, &b, "/admin/users/"+other.ID).Body
		if forms := formsOn(body); len(forms) != 0 || !strings.Contains(string(body), `id="protected"`) {
			t.Errorf("the auditor's page shows the helpdesk user forms %v", forms)
		}
	})
}

func TestGrantingARoleAlerts(t *testing.T) {
	hook := "http://127.0.0.1:9/alerts"
	in := &instance{servertest.Start(t, func(c *server.Config) { c.AlertWebhooks = []string{hook} })}
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)
	target := in.newUser(t, "dana@example.com", false)
	mark := in.AuditMark(t)

	r := in.form(t, &adm, "/admin/users/"+target.ID+"/role", url.Values{"role": {"auditor"}})
	if r.Status != http.StatusSeeOther || in.user(t, target.ID).Role != auditor {
		t.Fatalf("grant: %v", r)
	}
	r = in.call(t, &adm, "", http.MethodPut, v1+"/users/"+target.ID+"/role", map[string]string{"role": "helpdesk"})
	if r.Status != http.StatusOK || servertest.Decode[map[string]any](t, r)["user"].(map[string]any)["role"] != helpdesk {
		t.Fatalf("grant through the API: %v", r)
	}
	ev := in.Events(t, mark, audit.RoleGranted)
	if len(ev) != 2 || ev[0].Actor != me.ID || ev[0].Details["role"] != auditor || ev[1].Details["role"] != helpdesk ||
		ev[1].Details["previous"] != auditor {
		t.Fatalf("user.role_granted events %+v", ev)
	}
	// Each grant is queued for the alert webhook in its own transaction.
	msgs, err := storage.PendingOutbox(t.Context(), in.DB, time.Now().Add(24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var alerted []int64
	for _, m := range msgs {
		var a audit.Alert
		if m.Kind == audit.OutboxAlert && m.Target == hook && json.Unmarshal(m.Payload, &a) == nil && a.Type == audit.RoleGranted {
			alerted = append(alerted, a.Seq)
		}
	}
	if !slices.Equal(alerted, []int64{ev[0].Seq, ev[1].Seq}) {
		t.Errorf("alerts queued for events %v, want %d and %d", alerted, ev[0].Seq, ev[1].Seq)
	}

	t.Run("the older admin switch of the API leaves other roles alone", func(t *testing.T) {
		r := in.call(t, &adm, "", http.MethodPut, v1+"/users/"+target.ID+"/admin", map[string]bool{"admin": false})
		if r.Status != http.StatusOK || in.user(t, target.ID).Role != helpdesk {
			t.Errorf("%v: role %q, want helpdesk kept", r, in.user(t, target.ID).Role)
		}
		for _, body := range []map[string]any{{}, {"role": "root"}, {"role": nil}} {
			if r := in.call(t, &adm, "", http.MethodPut, v1+"/users/"+target.ID+"/role", body); r.Status != http.StatusBadRequest {
				t.Errorf("%v: %v, want 400", body, r)
			}
		}
		r = in.call(t, &adm, "", http.MethodPut, v1+"/users/"+target.ID+"/role", map[string]string{"role": "none"})
		if r.Status != http.StatusOK || in.user(t, target.ID).Role != "" {
			t.Errorf("remove: %v", r)
		}
	})
}

func TestBulkReadAlertForEveryRole(t *testing.T) {
	in := start(t)
	in.newUser(t, "admin@example.com", true)
	target := in.newUser(t, "someone@example.com", false)
	for _, role := range []string{helpdesk, auditor} {
		t.Run(role, func(t *testing.T) {
			u := in.withRole(t, role+"@example.com", role)
			b := in.key(t, u.ID)
			mark := in.AuditMark(t)
			for i := range 31 {
				r := in.get(t, &b, "/admin/users/"+target.ID)
				if i%2 == 1 {
					r = in.call(t, &b, "", http.MethodGet, v1+"/users/"+target.ID, nil)
				}
				if r.Status != http.StatusOK {
					t.Fatalf("read %d: %v", i, r)
				}
			}
			ev := in.Events(t, mark, audit.AdminBulkRead)
			if len(ev) != 1 || ev[0].Actor != u.ID || ev[0].Details["reads"] != "31" || ev[0].Details["target"] != target.ID {
				t.Errorf("admin.bulk_read events %+v, want one for the %s user", ev, role)
			}
		})
	}
}
