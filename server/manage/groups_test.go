package manage_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// countingStore counts the reads and revocations group changes make.
type countingStore struct {
	storage.Store
	userGroups, groupMembers, subjects, revokes atomic.Int32
}

func (c *countingStore) ListUserGroups(ctx context.Context, userID string) ([]storage.Group, error) {
	c.userGroups.Add(1)
	return c.Store.ListUserGroups(ctx, userID)
}

func (c *countingStore) ListGroupMembers(ctx context.Context, groupID string) ([]storage.User, error) {
	c.groupMembers.Add(1)
	return c.Store.ListGroupMembers(ctx, groupID)
}

func (c *countingStore) ClientSubjects(ctx context.Context, clientID string) ([]string, error) {
	c.subjects.Add(1)
	return c.Store.ClientSubjects(ctx, clientID)
}

func (c *countingStore) RevokeUserClient(ctx context.Context, subject, clientID string) ([]string, error) {
	c.revokes.Add(1)
	return c.Store.RevokeUserClient(ctx, subject, clientID)
}

func (c *countingStore) reset() {
	c.userGroups.Store(0)
	c.groupMembers.Store(0)
	c.subjects.Store(0)
	c.revokes.Store(0)
}

// groupWorld is a manager over a counting store with groups, users and
// apps made by name.
type groupWorld struct {
	t     *testing.T
	m     *manage.Manager
	store *countingStore
	users map[string]storage.User
	apps  map[string]storage.Client
}

func newGroupWorld(t *testing.T, groups ...string) *groupWorld {
	t.Helper()
	m, s := newManager(t)
	w := &groupWorld{t: t, m: m, store: &countingStore{Store: s}, users: map[string]storage.User{}, apps: map[string]storage.Client{}}
	m.Store = w.store
	for _, g := range groups {
		if _, err := m.CreateGroup(t.Context(), manage.GroupSpec{Name: g}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *groupWorld) user(name string, groups ...string) storage.User {
	w.t.Helper()
	nu, err := w.m.CreateUser(w.t.Context(), manage.UserSpec{Email: name + "@example.com", Groups: groups})
	if err != nil {
		w.t.Fatal(err)
	}
	w.users[name] = nu.User
	return nu.User
}

func (w *groupWorld) app(name string, groups ...string) storage.Client {
	w.t.Helper()
	nc, err := w.m.RegisterClient(w.t.Context(), manage.ClientSpec{Name: name, GrantTypes: []string{"client_credentials"},
		AllowedGroups: groups})
	if err != nil {
		w.t.Fatal(err)
	}
	w.apps[name] = nc.Client
	return nc.Client
}

// token gives the user an active access token of the app, named sig.
func (w *groupWorld) token(sig, app, user string) {
	w.t.Helper()
	if err := w.store.CreateToken(w.t.Context(), storage.TokenRecord{Kind: storage.KindAccessToken, Signature: sig,
		RequestID: "req-" + sig, ClientID: w.apps[app].ID, Subject: w.users[user].ID, Active: true, Request: []byte("{}"),
		RequestedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *groupWorld) active(sig string) bool {
	w.t.Helper()
	tok, err := w.store.GetToken(w.t.Context(), storage.KindAccessToken, sig)
	if err != nil {
		w.t.Fatal(err)
	}
	return tok.Active
}

func (w *groupWorld) group(name string) storage.Group {
	w.t.Helper()
	g, err := w.m.GroupByName(w.t.Context(), name)
	if err != nil {
		w.t.Fatal(err)
	}
	return g
}

func TestDeleteGroupTakesOnlyTheAppsThatNamedIt(t *testing.T) {
	w := newGroupWorld(t, "support", "ops", "sales")
	w.user("ann", "support", "ops")
	w.user("bob", "support")
	w.user("cat", "support")
	w.user("dan", "sales")
	w.app("desk", "support", "ops")
	w.app("crm", "sales")
	w.app("wiki")
	w.token("ann-desk", "desk", "ann")
	w.token("bob-desk", "desk", "bob")
	w.token("bob-crm", "crm", "bob") // bob never could use the CRM
	w.token("cat-wiki", "wiki", "cat")
	w.token("dan-crm", "crm", "dan")
	support := w.group("support")

	w.store.reset()
	if err := w.m.DeleteGroup(t.Context(), support.ID); err != nil {
		t.Fatal(err)
	}
	for sig, want := range map[string]bool{"ann-desk": true, "bob-desk": false, "bob-crm": true, "cat-wiki": true, "dan-crm": true} {
		if got := w.active(sig); got != want {
			t.Errorf("token %s active %v, want %v", sig, got, want)
		}
	}
	// One app named the group: its holders are read once, and only the
	// two members among them have their groups read.
	if n, g, r := w.store.subjects.Load(), w.store.userGroups.Load(), w.store.revokes.Load(); n != 1 || g != 2 || r != 1 {
		t.Errorf("%d holder reads, %d group reads, %d revocations; want 1, 2, 1", n, g, r)
	}
	ev := events(t, w.store, audit.ClientUpdated)
	last := ev[len(ev)-1]
	if last.ClientID != w.apps["desk"].ID || last.Details["allowed_groups"] != "ops" || last.Details["group_deleted"] != "support" {
		t.Errorf("the last client.updated event %+v, want the desk's, now allowing ops", last)
	}
	if n := len(events(t, w.store, audit.ClientUpdated)); n != 1 {
		t.Errorf("%d client.updated events, want the desk's one", n)
	}
}

func TestDeleteGroupNamedByNoAppReadsNoMember(t *testing.T) {
	w := newGroupWorld(t, "support")
	for _, name := range []string{"ann", "bob", "cat"} {
		w.user(name, "support")
	}
	w.app("wiki")
	w.token("ann-wiki", "wiki", "ann")
	w.store.reset()
	if err := w.m.DeleteGroup(t.Context(), w.group("support").ID); err != nil {
		t.Fatal(err)
	}
	if n, g, r := w.store.subjects.Load(), w.store.userGroups.Load(), w.store.revokes.Load(); n+g+r != 0 {
		t.Errorf("%d holder reads, %d group reads, %d revocations for a group no app named", n, g, r)
	}
	if !w.active("ann-wiki") {
		t.Error("an app open to everyone lost a member of the deleted group")
	}
}

func TestRemoveMember(t *testing.T) {
	w := newGroupWorld(t, "support", "ops")
	w.user("ann", "support", "ops")
	w.user("bob", "support")
	w.app("desk", "support")
	w.app("ops-only", "ops")
	w.token("ann-desk", "desk", "ann")
	w.token("bob-desk", "desk", "bob")
	support := w.group("support")

	t.Run("a member loses the apps the group alone allowed them", func(t *testing.T) {
		if err := w.m.RemoveMember(t.Context(), support.ID, w.users["bob"].ID); err != nil {
			t.Fatal(err)
		}
		if w.active("bob-desk") || !w.active("ann-desk") {
			t.Errorf("bob's token active %v, ann's %v; want false, true", w.active("bob-desk"), w.active("ann-desk"))
		}
	})
	t.Run("a non-member, an unknown user or group is not found", func(t *testing.T) {
		err := w.m.RemoveMember(t.Context(), support.ID, w.users["bob"].ID)
		if !errors.Is(err, manage.ErrNotFound) || !strings.Contains(err.Error(), "bob@example.com is not a member of support") {
			t.Errorf("removing a non-member = %v", err)
		}
		if err := w.m.RemoveMember(t.Context(), support.ID, "u_nosuch"); !errors.Is(err, manage.ErrNotFound) || !strings.Contains(err.Error(), "no such user") {
			t.Errorf("removing an unknown user = %v", err)
		}
		if err := w.m.RemoveMember(t.Context(), "g_nosuch", w.users["ann"].ID); !errors.Is(err, manage.ErrNotFound) || !strings.Contains(err.Error(), "no such group") {
			t.Errorf("removing from an unknown group = %v", err)
		}
	})
	t.Run("RemoveMembers reads the apps once and each member's groups only where it matters", func(t *testing.T) {
		w.user("cat", "support")
		w.user("dan", "support")
		w.token("cat-desk", "desk", "cat")
		w.store.reset()
		if err := w.m.RemoveMembers(t.Context(), support.ID, []string{"ann@example.com", "cat@example.com", "dan@example.com"}); err != nil {
			t.Fatal(err)
		}
		if w.active("ann-desk") || w.active("cat-desk") {
			t.Error("a removed member kept the desk")
		}
		if n, g := w.store.subjects.Load(), w.store.userGroups.Load(); n != 1 || g != 2 {
			t.Errorf("%d holder reads and %d group reads, want 1 and 2 (ann and cat hold tokens, dan none)", n, g)
		}
	})
}

func TestJoinGroup(t *testing.T) {
	w := newGroupWorld(t, "support")
	ann := w.user("ann")
	for range 2 { // the second time changes nothing
		if err := w.m.JoinGroup(t.Context(), ann.ID, " SUPPORT "); err != nil {
			t.Fatal(err)
		}
	}
	if gs, _ := w.store.ListUserGroups(t.Context(), ann.ID); len(gs) != 1 || gs[0].Name != "support" {
		t.Errorf("ann's groups %v", gs)
	}
	if err := w.m.JoinGroup(t.Context(), "u_nosuch", "support"); !errors.Is(err, manage.ErrNotFound) {
		t.Errorf("an unknown user = %v, want ErrNotFound", err)
	}
	if err := w.m.JoinGroup(t.Context(), ann.ID, "nosuch"); !errors.Is(err, manage.ErrInvalid) || !strings.Contains(err.Error(), "no group is named nosuch") {
		t.Errorf("an unknown group = %v, want ErrInvalid naming it", err)
	}
}

func TestUpdateClientGroups(t *testing.T) {
	w := newGroupWorld(t, "support", "ops")
	w.user("ann", "support")
	w.user("bob", "ops")
	desk := w.app("desk", "support", "ops")
	w.token("ann-desk", "desk", "ann")
	w.token("bob-desk", "desk", "bob")
	update := func(t *testing.T, groups []string) {
		t.Helper()
		if err := w.m.UpdateClient(t.Context(), desk.ID, manage.ClientSpec{Name: "Desk", GrantTypes: []string{"client_credentials"},
			AllowedGroups: groups}); err != nil {
			t.Fatal(err)
		}
	}
	allowed := func(t *testing.T) []string {
		t.Helper()
		c, err := w.store.GetClient(t.Context(), desk.ID)
		if err != nil {
			t.Fatal(err)
		}
		return c.AllowedGroups
	}
	ids := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, w.group(n).ID)
		}
		return out
	}

	t.Run("nil keeps the groups, and an edit that drops none reads no holder", func(t *testing.T) {
		w.store.reset()
		update(t, nil)
		if got := allowed(t); !slices.Equal(got, ids("support", "ops")) {
			t.Errorf("allowed groups %v", got)
		}
		update(t, []string{"ops", "support"})
		if n := w.store.subjects.Load(); n != 0 {
			t.Errorf("%d holder reads for edits that left everyone in", n)
		}
		ev := events(t, w.store, audit.ClientUpdated)
		if len(ev) != 2 || ev[0].Details["allowed_groups"] != "support ops" {
			t.Errorf("client.updated events %+v, want two, the first naming the kept groups", ev)
		}
	})
	t.Run("dropping a group takes the app from those left out", func(t *testing.T) {
		update(t, []string{"support"})
		if !w.active("ann-desk") || w.active("bob-desk") {
			t.Errorf("ann's token active %v, bob's %v; want true, false", w.active("ann-desk"), w.active("bob-desk"))
		}
	})
	t.Run("an empty list opens the app to everyone", func(t *testing.T) {
		update(t, []string{})
		if got := allowed(t); len(got) != 0 {
			t.Errorf("allowed groups %v, want none", got)
		}
	})
	t.Run("from everyone to a group takes the app from the rest", func(t *testing.T) {
		w.token("bob-desk-2", "desk", "bob")
		update(t, []string{"support"})
		if w.active("bob-desk-2") || !w.active("ann-desk") {
			t.Errorf("bob's new token active %v, ann's %v; want false, true", w.active("bob-desk-2"), w.active("ann-desk"))
		}
	})
}

func TestUserGroups(t *testing.T) {
	w := newGroupWorld(t, "a", "b", "c")
	w.user("ann", "c", "a")
	w.user("bob", "b")
	w.user("cat")
	w.user("dan", "a", "b", "c")
	all := []string{w.users["ann"].ID, w.users["bob"].ID, w.users["cat"].ID, w.users["dan"].ID}
	check := func(t *testing.T, ids []string, byGroup bool) {
		t.Helper()
		w.store.reset()
		got, err := manage.UserGroups(t.Context(), w.store, ids)
		if err != nil {
			t.Fatal(err)
		}
		if byGroup && (w.store.groupMembers.Load() != 3 || w.store.userGroups.Load() != 0) ||
			!byGroup && (w.store.userGroups.Load() != int32(len(ids)) || w.store.groupMembers.Load() != 0) {
			t.Errorf("%d users: %d member reads, %d group reads", len(ids), w.store.groupMembers.Load(), w.store.userGroups.Load())
		}
		if len(got) > len(ids) {
			t.Errorf("%d users asked, %d answered", len(ids), len(got))
		}
		for _, id := range ids {
			want, err := w.store.Store.ListUserGroups(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got[id], want, func(a, b storage.Group) bool { return a.ID == b.ID }) {
				t.Errorf("%s: %v, want %v", id, got[id], want)
			}
		}
	}
	check(t, all, true)      // more users than groups: one read a group
	check(t, all[:2], false) // fewer: one read a user
	if got, err := manage.UserGroups(t.Context(), w.store, nil); err != nil || len(got) != 0 {
		t.Errorf("no users: %v, %v", got, err)
	}
}
