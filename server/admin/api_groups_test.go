package admin_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
)

type groupReply struct {
	Group struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Description string `json:"description"`
		MinACR      string `json:"min_acr"`
		MemberCount int    `json:"member_count"`
	} `json:"group"`
	Members []struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"members"`
}

func (g groupReply) emails() []string {
	var out []string
	for _, m := range g.Members {
		out = append(out, m.Email)
	}
	return out
}

func TestGroupsThroughTheAPI(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)
	dana := in.newUser(t, "dana@example.com", false)
	in.newUser(t, "lee@example.com", false)
	errorOf := func(r servertest.Reply) string { return servertest.Decode[map[string]string](t, r)["error"] }

	r := in.call(t, &adm, "", http.MethodPost, v1+"/groups", map[string]string{"name": "support", "description": "Support", "min_acr": "phr"})
	created := servertest.Decode[groupReply](t, r)
	if r.Status != http.StatusCreated || created.Group.Name != "support" || created.Group.MinACR != "phr" || created.Members == nil {
		t.Fatalf("create: %v", r)
	}
	id := created.Group.ID
	for _, c := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"a taken name", map[string]string{"name": "Support"}, http.StatusConflict, "conflict"},
		{"no name", map[string]string{"description": "x"}, http.StatusBadRequest, "invalid_request"},
		{"an unknown level", map[string]string{"name": "x", "min_acr": "pwd"}, http.StatusBadRequest, "invalid_request"},
		{"an unknown field", map[string]string{"name": "x", "members": "all"}, http.StatusBadRequest, "invalid_request"},
	} {
		if r := in.call(t, &adm, "", http.MethodPost, v1+"/groups", c.body); r.Status != c.status || errorOf(r) != c.code {
			t.Errorf("%s: %v, want %d %s", c.name, r, c.status, c.code)
		}
	}

	t.Run("members", func(t *testing.T) {
		mark := in.AuditMark(t)
		r := in.call(t, &adm, "", http.MethodPost, v1+"/groups/"+id+"/members", map[string][]string{"emails": {"dana@example.com", "lee@example.com"}})
		g := servertest.Decode[groupReply](t, r)
		if r.Status != http.StatusOK || !slices.Equal(g.emails(), []string{"dana@example.com", "lee@example.com"}) || g.Group.MemberCount != 2 {
			t.Fatalf("add: %v", r)
		}
		if ev := in.Events(t, mark, audit.GroupMemberAdded); len(ev) != 2 || ev[0].Actor != me.ID {
			t.Errorf("group.member_added events %+v", ev)
		}
		if r := in.call(t, &adm, "", http.MethodPost, v1+"/groups/"+id+"/members", map[string][]string{"emails": {"nobody@example.com"}}); r.Status != http.StatusBadRequest {
			t.Errorf("an unknown email: %v, want 400", r)
		}
		if r := in.call(t, &adm, "", http.MethodPost, v1+"/groups/"+id+"/members", map[string][]string{"emails": {}}); r.Status != http.StatusBadRequest {
			t.Errorf("no emails: %v, want 400", r)
		}
		if r := in.call(t, &adm, "", http.MethodPost, v1+"/groups/g_nosuch/members", map[string][]string{"emails": {"dana@example.com"}}); r.Status != http.StatusNotFound {
			t.Errorf("an unknown group: %v, want 404", r)
		}
		r = in.call(t, &adm, "", http.MethodGet, v1+"/users/"+dana.ID, nil)
		if u, _ := servertest.Decode[map[string]any](t, r)["user"].(map[string]any); u["role"] != "" || !slices.Equal(anyStrings(u["groups"]), []string{"support"}) {
			t.Errorf("dana's JSON: %v", u)
		}
		r = in.call(t, &adm, "", http.MethodGet, v1+"/users?q=example.com", nil)
		list := servertest.Decode[struct {
			Users []map[string]any `json:"users"`
		}](t, r)
		for _, u := range list.Users {
			want := []string{"support"}
			if u["email"] == "admin@example.com" {
				want = []string{}
			}
			if !slices.Equal(anyStrings(u["groups"]), want) || u["role"] == nil {
				t.Errorf("listed %v, want groups %v and a role", u, want)
			}
		}

		danaToken := in.AccessToken(t, in.appFor(t, "support").Client.ID, dana.ID, "")
		if r := in.call(t, &adm, "", http.MethodDelete, v1+"/groups/"+id+"/members/"+dana.ID, nil); r.Status != http.StatusNoContent {
			t.Fatalf("remove: %v", r)
		}
		if in.TokenActive(t, danaToken) {
			t.Error("the removed member's token for the group's app is still active")
		}
		if r := in.call(t, &adm, "", http.MethodDelete, v1+"/groups/"+id+"/members/"+dana.ID, nil); r.Status != http.StatusNotFound ||
			servertest.Decode[map[string]string](t, r)["error_description"] != "dana@example.com is not a member of support." {
			t.Errorf("removing a non-member: %v, want 404", r)
		}
		if r := in.call(t, &adm, "", http.MethodDelete, v1+"/groups/"+id+"/members/u_nosuch", nil); r.Status != http.StatusNotFound ||
			servertest.Decode[map[string]string](t, r)["error_description"] != "No such user." {
			t.Errorf("removing an unknown user: %v, want 404", r)
		}
	})

	t.Run("read, replace and delete", func(t *testing.T) {
		r := in.call(t, &adm, "", http.MethodGet, v1+"/groups/"+id, nil)
		if g := servertest.Decode[groupReply](t, r); r.Status != http.StatusOK || !slices.Equal(g.emails(), []string{"lee@example.com"}) {
			t.Errorf("get: %v", r)
		}
		r = in.call(t, &adm, "", http.MethodGet, v1+"/groups", nil)
		list := servertest.Decode[struct {
			Groups []map[string]any `json:"groups"`
		}](t, r)
		if r.Status != http.StatusOK || len(list.Groups) != 1 || list.Groups[0]["member_count"] != float64(1) {
			t.Errorf("list: %v", r)
		}
		r = in.call(t, &adm, "", http.MethodPut, v1+"/groups/"+id, map[string]string{"name": "helpers", "min_acr": ""})
		if g := servertest.Decode[groupReply](t, r); r.Status != http.StatusOK || g.Group.Name != "helpers" || g.Group.MinACR != "" || g.Group.Description != "" {
			t.Errorf("replace: %v", r)
		}
		if r := in.call(t, &adm, "", http.MethodPut, v1+"/groups/g_nosuch", map[string]string{"name": "x"}); r.Status != http.StatusNotFound || errorOf(r) != "not_found" {
			t.Errorf("replace an unknown group: %v, want 404", r)
		}
		// The app allows only this group: deleting it is refused until the app has others, or none.
		if r := in.call(t, &adm, "", http.MethodDelete, v1+"/groups/"+id, nil); r.Status != http.StatusBadRequest {
			t.Errorf("delete the only group of an app: %v, want 400", r)
		}
		app := in.appFor(t, "helpers")
		r = in.call(t, &adm, "", http.MethodPut, v1+"/clients/"+app.Client.ID, map[string]any{"name": "Desk",
			"grant_types": []string{"client_credentials"}, "allowed_groups": []string{}})
		if r.Status != http.StatusOK || len(in.client(t, app.Client.ID).AllowedGroups) != 0 {
			t.Fatalf("open the app: %v", r)
		}
		if r := in.call(t, &adm, "", http.MethodDelete, v1+"/groups/"+id, nil); r.Status != http.StatusNoContent {
			t.Errorf("delete: %v", r)
		}
		if r := in.call(t, &adm, "", http.MethodGet, v1+"/groups/"+id, nil); r.Status != http.StatusNotFound {
			t.Errorf("a deleted group: %v", r)
		}
	})
}

// appFor is the one app that allows group name, registered on first use.
func (in *instance) appFor(t *testing.T, name string) manage.NewClient {
	t.Helper()
	clients, err := in.DB.ListClients(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	g, err := in.DB.GetGroupByName(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if slices.Contains(c.AllowedGroups, g.ID) {
			return manage.NewClient{Client: c}
		}
	}
	nc, err := in.Manager().RegisterClient(t.Context(), manage.ClientSpec{Name: "Desk", GrantTypes: []string{"client_credentials"},
		AllowedGroups: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := []string{}
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestAppsAllowedGroupsThroughTheAPI(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)
	for _, name := range []string{"support", "ops"} {
		if _, err := in.Manager().CreateGroup(t.Context(), manage.GroupSpec{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	groupsOf := func(r servertest.Reply) []string {
		t.Helper()
		body := servertest.Decode[map[string]any](t, r)
		if c, ok := body["client"].(map[string]any); ok {
			body = c
		}
		return anyStrings(body["allowed_groups"])
	}

	r := in.call(t, &adm, "", http.MethodPost, v1+"/clients", map[string]any{"name": "Desk", "grant_types": []string{"client_credentials"},
		"allowed_groups": []string{"support", "ops"}})
	if r.Status != http.StatusCreated || !slices.Equal(groupsOf(r), []string{"support", "ops"}) {
		t.Fatalf("register: %v", r)
	}
	id := servertest.Decode[struct {
		Client struct {
			ID string `json:"id"`
		} `json:"client"`
	}](t, r).Client.ID

	t.Run("a PUT without the field keeps the groups", func(t *testing.T) {
		r := in.call(t, &adm, "", http.MethodPut, v1+"/clients/"+id, map[string]any{"name": "Desk 2", "grant_types": []string{"client_credentials"}})
		if r.Status != http.StatusOK || !slices.Equal(groupsOf(r), []string{"support", "ops"}) {
			t.Errorf("%v", r)
		}
	})
	t.Run("a PUT with the field replaces them", func(t *testing.T) {
		r := in.call(t, &adm, "", http.MethodPut, v1+"/clients/"+id, map[string]any{"name": "Desk", "grant_types": []string{"client_credentials"},
			"allowed_groups": []string{"ops"}})
		if r.Status != http.StatusOK || !slices.Equal(groupsOf(r), []string{"ops"}) {
			t.Errorf("%v", r)
		}
		if r := in.call(t, &adm, "", http.MethodGet, v1+"/clients/"+id, nil); !slices.Equal(groupsOf(r), []string{"ops"}) {
			t.Errorf("read back: %v", r)
		}
	})
	t.Run("an unknown group is refused", func(t *testing.T) {
		r := in.call(t, &adm, "", http.MethodPut, v1+"/clients/"+id, map[string]any{"name": "Desk", "grant_types": []string{"client_credentials"},
			"allowed_groups": []string{"nosuch"}})
		if r.Status != http.StatusBadRequest || !slices.Equal(in.client(t, id).AllowedGroups, []string{in.groupID(t, "ops")}) {
			t.Errorf("%v", r)
		}
	})
	t.Run("the list shows every app's groups", func(t *testing.T) {
		r := in.call(t, &adm, "", http.MethodGet, v1+"/clients", nil)
		list := servertest.Decode[struct {
			Clients []map[string]any `json:"clients"`
		}](t, r)
		if len(list.Clients) != 1 || !slices.Equal(anyStrings(list.Clients[0]["allowed_groups"]), []string{"ops"}) {
			t.Errorf("%v", r)
		}
	})
}

func (in *instance) groupID(t *testing.T, name string) string {
	t.Helper()
	g, err := in.DB.GetGroupByName(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

func TestServiceTokenManagesGroups(t *testing.T) {
	in := start(t)
	in.newUser(t, "admin@example.com", true)
	in.newUser(t, "dana@example.com", false)
	svc, err := in.Manager().RegisterClient(t.Context(), manage.ClientSpec{Name: "Provisioner",
		GrantTypes: []string{"client_credentials"}, AdminAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	token, status := in.tokenFor(t, svc.Client.ID, svc.Secret, manage.ScopeAdmin)
	if status != http.StatusOK {
		t.Fatalf("token: %d", status)
	}
	mark := in.AuditMark(t)
	r := in.call(t, nil, token, http.MethodPost, v1+"/groups", map[string]string{"name": "support"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %v", r)
	}
	id := servertest.Decode[groupReply](t, r).Group.ID
	if r := in.call(t, nil, token, http.MethodPost, v1+"/groups/"+id+"/members", map[string][]string{"emails": {"dana@example.com"}}); r.Status != http.StatusOK {
		t.Errorf("add a member: %v", r)
	}
	r = in.call(t, nil, token, http.MethodPost, v1+"/users", map[string]any{"email": "new@example.com", "role": "auditor", "groups": []string{"support"}})
	if r.Status != http.StatusCreated {
		t.Errorf("create a user with a role and a group: %v", r)
	}
	for _, typ := range []string{audit.GroupCreated, audit.GroupMemberAdded, audit.RoleGranted} {
		if ev := in.Events(t, mark, typ); len(ev) == 0 || ev[0].Actor != "client:"+svc.Client.ID {
			t.Errorf("%s events %+v, want them by client:%s", typ, ev, svc.Client.ID)
		}
	}
}
