package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/audit"
)

// groupLink finds a group's page in a list.
func groupLink(body, name string) string {
	m := regexp.MustCompile(`href="/admin/groups/(g_[^"]+)">` + regexp.QuoteMeta(name) + `<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// memberEmails are the emails a group has as members, by email.
func (in *instance) memberEmails(t *testing.T, groupID string) []string {
	t.Helper()
	members, err := in.DB.ListGroupMembers(t.Context(), groupID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range members {
		out = append(out, u.Email)
	}
	return out
}

func TestGroupsThroughThePages(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)
	dana := in.newUser(t, "dana@example.com", false)
	lee := in.newUser(t, "lee@example.com", false)

	var id, danaToken string // the group, and a token its member holds for its app
	t.Run("creating a group", func(t *testing.T) {
		mark := in.AuditMark(t)
		r := in.form(t, &adm, "/admin/groups", url.Values{"name": {"support"}, "description": {"Customer support"}, "min_acr": {"phr"}})
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/admin/groups/g_") {
			t.Fatalf("status %d to %q", r.Status, r.Location())
		}
		id = strings.TrimPrefix(strings.TrimSuffix(r.Location(), "?notice=group-created"), "/admin/groups/")
		g, err := in.DB.GetGroup(t.Context(), id)
		if err != nil || g.Name != "support" || g.Description != "Customer support" || g.MinACR != "phr" {
			t.Errorf("stored %+v, %v", g, err)
		}
		if ev := in.Events(t, mark, audit.GroupCreated); len(ev) != 1 || ev[0].Actor != me.ID {
			t.Errorf("group.created events %+v, want one by the administrator", ev)
		}
		if r := in.form(t, &adm, "/admin/groups", url.Values{"name": {"SUPPORT"}}); r.Status != http.StatusConflict {
			t.Errorf("a second group of the name: %v, want 409", r)
		}
		if r := in.form(t, &adm, "/admin/groups", url.Values{"name": {"two words"}}); r.Status != http.StatusBadRequest ||
			!strings.Contains(string(r.Body), "no spaces") {
			t.Errorf("a name with a space: %v, want 400 with the reason", r)
		}
		if r := in.form(t, &adm, "/admin/groups", url.Values{"name": {"x"}, "min_acr": {"pwd"}}); r.Status != http.StatusBadRequest {
			t.Errorf("an unknown level: %v, want 400", r)
		}
	})

	t.Run("members are added by email and listed with their count", func(t *testing.T) {
		r := in.form(t, &adm, "/admin/groups/"+id+"/members", url.Values{"emails": {"dana@example.com,\nLEE@example.com"}})
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/groups/"+id+"?notice=members-added" {
			t.Fatalf("add: status %d to %q", r.Status, r.Location())
		}
		if got := in.memberEmails(t, id); !slices.Equal(got, []string{"dana@example.com", "lee@example.com"}) {
			t.Errorf("members %v", got)
		}
		if r := in.form(t, &adm, "/admin/groups/"+id+"/members", url.Values{"emails": {"nobody@example.com"}}); r.Status != http.StatusBadRequest ||
			!strings.Contains(string(r.Body), "nobody@example.com") {
			t.Errorf("an unknown email: %v, want 400 naming it", r)
		}
		list := string(in.get(t, &adm, "/admin/groups").Body)
		if groupLink(list, "support") != id || !regexp.MustCompile(`<td>Customer support</td><td>2</td>\s*<td>phr</td>`).MatchString(list) {
			t.Errorf("the list: %.1500s", list)
		}
		page := string(in.get(t, &adm, r.Location()).Body)
		for _, want := range []string{`href="/admin/users/` + dana.ID + `">dana@example.com`, `href="/admin/users/` + lee.ID + `">lee@example.com`,
			`id="member-count">2<`, "phr, in every app", "The members were added."} {
			if !strings.Contains(page, want) {
				t.Errorf("the group page has no %q", want)
			}
		}
	})

	var appID string
	t.Run("an app's form lists the groups, and narrowing it takes the app away at once", func(t *testing.T) {
		r := in.form(t, &adm, "/admin/apps", url.Values{"name": {"Support desk"}, "grant": {"client_credentials"}, "allowed_group": {"support"}})
		if r.Status != http.StatusOK {
			t.Fatalf("register: %v", r)
		}
		appID = scrapeID(t, r.Body)
		if c := in.client(t, appID); !slices.Equal(c.AllowedGroups, []string{id}) {
			t.Fatalf("allowed groups %v, want [%s]", c.AllowedGroups, id)
		}
		page := string(in.get(t, &adm, "/admin/apps/"+appID).Body)
		if !strings.Contains(page, `name="allowed_group" value="support" checked`) || !strings.Contains(page, "members of support") ||
			!strings.Contains(page, "takes the app away from everyone left out at once") {
			t.Errorf("the app page does not show its groups: %.3000s", page)
		}
		group := string(in.get(t, &adm, "/admin/groups/"+id).Body)
		if !strings.Contains(group, `href="/admin/apps/`+appID+`">Support desk`) {
			t.Error("the group page does not list the app it may use")
		}
		danaToken = in.AccessToken(t, appID, dana.ID, "")
		r = in.form(t, &adm, "/admin/apps/"+appID, url.Values{"name": {"Support desk"}, "grant": {"client_credentials"}})
		if r.Status != http.StatusSeeOther || len(in.client(t, appID).AllowedGroups) != 0 {
			t.Fatalf("open to everyone: %v", r)
		}
		if !in.TokenActive(t, danaToken) {
			t.Error("opening an app to everyone revoked a token")
		}
		in.form(t, &adm, "/admin/apps/"+appID, url.Values{"name": {"Support desk"}, "grant": {"client_credentials"}, "allowed_group": {"support"}})
		if c := in.client(t, appID); !slices.Equal(c.AllowedGroups, []string{id}) {
			t.Errorf("allowed groups %v after ticking support again", c.AllowedGroups)
		}
	})

	t.Run("removing a member needs the confirmation and revokes the app's tokens", func(t *testing.T) {
		path := "/admin/groups/" + id + "/members/" + dana.ID + "/remove"
		if r := in.form(t, &adm, path, nil); r.Status != http.StatusBadRequest || len(in.memberEmails(t, id)) != 2 {
			t.Fatalf("without the confirmation: %v", r)
		}
		mark := in.AuditMark(t)
		r := in.form(t, &adm, path, url.Values{"confirm": {"yes"}})
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/groups/"+id+"?notice=member-removed" {
			t.Fatalf("status %d to %q", r.Status, r.Location())
		}
		if got := in.memberEmails(t, id); !slices.Equal(got, []string{"lee@example.com"}) {
			t.Errorf("members %v", got)
		}
		if in.TokenActive(t, danaToken) {
			t.Error("the removed member's token for the app is still active")
		}
		if ev := in.Events(t, mark, audit.GroupMemberRemoved); len(ev) != 1 || ev[0].UserID != dana.ID || ev[0].Actor != me.ID {
			t.Errorf("group.member_removed events %+v", ev)
		}
		if r := in.form(t, &adm, path, url.Values{"confirm": {"yes"}}); r.Status != http.StatusNotFound ||
			!strings.Contains(string(r.Body), "dana@example.com is not a member of support.") {
			t.Errorf("removing a non-member: %v, want 404 saying so", r)
		}
		if r := in.form(t, &adm, "/admin/groups/g_nosuch/members/"+dana.ID+"/remove", url.Values{"confirm": {"yes"}}); r.Status != http.StatusNotFound ||
			!strings.Contains(string(r.Body), "No such group.") {
			t.Errorf("removing from an unknown group: %v, want 404", r)
		}
		if r := in.form(t, &adm, "/admin/groups/g_nosuch/members", url.Values{"emails": {""}}); r.Status != http.StatusNotFound {
			t.Errorf("adding no one to an unknown group: %v, want 404", r)
		}
	})

	t.Run("the user page shows the user's groups and changes them", func(t *testing.T) {
		page := string(in.get(t, &adm, "/admin/users/"+dana.ID).Body)
		if !strings.Contains(page, `<option value="support">support</option>`) {
			t.Errorf("dana's page offers no group to join: %.3000s", page)
		}
		r := in.form(t, &adm, "/admin/users/"+dana.ID+"/groups", url.Values{"group": {"support"}})
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/users/"+dana.ID+"?notice=group-joined" {
			t.Fatalf("join: status %d to %q", r.Status, r.Location())
		}
		page = string(in.get(t, &adm, "/admin/users/"+dana.ID).Body)
		if !strings.Contains(page, `href="/admin/groups/`+id+`">support</a>`) ||
			!strings.Contains(page, `action="/admin/users/`+dana.ID+`/groups/`+id+`/remove"`) {
			t.Errorf("dana's page does not list support with a way out: %.3000s", page)
		}
		if r := in.form(t, &adm, "/admin/users/"+dana.ID+"/groups", url.Values{"group": {"nosuch"}}); r.Status != http.StatusBadRequest ||
			!strings.Contains(string(r.Body), "No group is named nosuch.") {
			t.Errorf("an unknown group: %v, want 400", r)
		}
		if r := in.form(t, &adm, "/admin/users/u_nosuch/groups", url.Values{"group": {""}}); r.Status != http.StatusNotFound {
			t.Errorf("an unknown user joining no group: %v, want 404", r)
		}
		r = in.form(t, &adm, "/admin/users/"+dana.ID+"/groups/"+id+"/remove", url.Values{"confirm": {"yes"}})
		if r.Status != http.StatusSeeOther || slices.Contains(in.memberEmails(t, id), "dana@example.com") {
			t.Errorf("leave: %v", r)
		}
	})

	t.Run("renaming and setting the minimum level", func(t *testing.T) {
		r := in.form(t, &adm, "/admin/groups/"+id, url.Values{"name": {"helpers"}, "description": {""}, "min_acr": {"phrh"}})
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/groups/"+id+"?notice=group-updated" {
			t.Fatalf("status %d to %q", r.Status, r.Location())
		}
		if g, err := in.DB.GetGroup(t.Context(), id); err != nil || g.Name != "helpers" || g.MinACR != "phrh" || g.Description != "" {
			t.Errorf("stored %+v, %v", g, err)
		}
		in.form(t, &adm, "/admin/groups", url.Values{"name": {"other"}})
		if r := in.form(t, &adm, "/admin/groups/"+id, url.Values{"name": {"other"}}); r.Status != http.StatusConflict {
			t.Errorf("renaming to a taken name: %v, want 409", r)
		}
	})

	t.Run("deleting", func(t *testing.T) {
		path := "/admin/groups/" + id + "/delete"
		if r := in.form(t, &adm, path, nil); r.Status != http.StatusBadRequest {
			t.Errorf("without the confirmation: %v, want 400", r)
		}
		r := in.form(t, &adm, path, url.Values{"confirm": {"yes"}})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "only group allowed to use Support desk") {
			t.Errorf("the only group of an app: %v, want 400 naming the app", r)
		}
		in.form(t, &adm, "/admin/apps/"+appID, url.Values{"name": {"Support desk"}, "grant": {"client_credentials"}, "allowed_group": {"helpers", "other"}})
		r = in.form(t, &adm, path, url.Values{"confirm": {"yes"}})
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/groups?notice=group-deleted" {
			t.Fatalf("status %d to %q", r.Status, r.Location())
		}
		if r := in.get(t, &adm, "/admin/groups/"+id); r.Status != http.StatusNotFound {
			t.Errorf("a deleted group's page: %v", r)
		}
		if c := in.client(t, appID); len(c.AllowedGroups) != 1 {
			t.Errorf("the app's groups after the deletion: %v", c.AllowedGroups)
		}
	})
}

// scrapeID reads the client id from the page that shows a new secret.
func scrapeID(t *testing.T, body []byte) string {
	t.Helper()
	m := reClientID.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no client id in %.500s", body)
	}
	return string(m[1])
}
