package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testGroups(t *testing.T, newStore NewStore) {
	support := storage.Group{ID: "g_support", Name: "Support", Description: "The support desk",
		MinACR: "phrh", CreatedAt: t0, UpdatedAt: at(time.Minute)}
	ops := storage.Group{ID: "g_ops", Name: "ops", CreatedAt: t0, UpdatedAt: t0}
	// withGroups is a store holding users u and v and both groups.
	withGroups := func(t *testing.T) (storage.Store, context.Context) {
		st, ctx := newStore(t), t.Context()
		newUser(t, ctx, st, "u")
		newUser(t, ctx, st, "v")
		ok(t, st.CreateGroup(ctx, support))
		ok(t, st.CreateGroup(ctx, ops))
		return st, ctx
	}
	ids := func(gs []storage.Group) []string {
		out := []string{}
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}

	t.Run("a group reads back by id and by name in any case", func(t *testing.T) {
		st, ctx := withGroups(t)
		got, err := st.GetGroup(ctx, support.ID)
		ok(t, err)
		same(t, "group", got, support)
		got, err = st.GetGroupByName(ctx, "SUPPORT")
		ok(t, err)
		same(t, "group by name", got, support)
		_, err = st.GetGroupByName(ctx, "nobody")
		wantErr(t, err, storage.ErrNotFound)
		all, err := st.ListGroups(ctx)
		ok(t, err)
		same(t, "groups by name", ids(all), []string{"g_ops", "g_support"})
	})

	t.Run("a taken id or name, in any case, is refused", func(t *testing.T) {
		st, ctx := withGroups(t)
		wantErr(t, st.CreateGroup(ctx, storage.Group{ID: "g_other", Name: "SUPPORT"}), storage.ErrAlreadyExists)
		wantErr(t, st.CreateGroup(ctx, storage.Group{ID: support.ID, Name: "new"}), storage.ErrAlreadyExists)
		wantErr(t, st.UpdateGroup(ctx, ops.ID, func(g *storage.Group) error { g.Name = "support"; return nil }), storage.ErrAlreadyExists)
		got, err := st.GetGroup(ctx, ops.ID)
		ok(t, err)
		same(t, "unrenamed group", got, ops)
	})

	t.Run("an update renames and redescribes", func(t *testing.T) {
		st, ctx := withGroups(t)
		ok(t, st.UpdateGroup(ctx, ops.ID, func(g *storage.Group) error {
			g.Name, g.Description, g.MinACR, g.UpdatedAt = "Operations", "On call", "phr", at(time.Hour)
			return nil
		}))
		got, err := st.GetGroupByName(ctx, "operations")
		ok(t, err)
		want := ops
		want.Name, want.Description, want.MinACR, want.UpdatedAt = "Operations", "On call", "phr", at(time.Hour)
		same(t, "group", got, want)
		wantErr(t, st.UpdateGroup(ctx, "g_nope", func(*storage.Group) error { return nil }), storage.ErrNotFound)
	})

	t.Run("members are added once, listed both ways and removed", func(t *testing.T) {
		st, ctx := withGroups(t)
		ok(t, st.AddGroupMember(ctx, support.ID, "u", t0))
		ok(t, st.AddGroupMember(ctx, ops.ID, "u", t0))
		ok(t, st.AddGroupMember(ctx, support.ID, "v", t0))
		wantErr(t, st.AddGroupMember(ctx, support.ID, "u", t0), storage.ErrAlreadyExists)
		wantErr(t, st.AddGroupMember(ctx, "g_nope", "u", t0), storage.ErrNotFound)
		wantErr(t, st.AddGroupMember(ctx, support.ID, "nobody", t0), storage.ErrNotFound)

		members, err := st.ListGroupMembers(ctx, support.ID)
		ok(t, err)
		if len(members) != 2 || members[0].ID != "u" || members[1].ID != "v" {
			t.Fatalf("members %+v, want u and v by email", members)
		}
		gs, err := st.ListUserGroups(ctx, "u")
		ok(t, err)
		same(t, "u's groups", ids(gs), []string{"g_ops", "g_support"})
		counts, err := st.CountGroupMembers(ctx)
		ok(t, err)
		same(t, "counts", counts, map[string]int{"g_support": 2, "g_ops": 1})

		ok(t, st.RemoveGroupMember(ctx, support.ID, "u"))
		wantErr(t, st.RemoveGroupMember(ctx, support.ID, "u"), storage.ErrNotFound)
		gs, err = st.ListUserGroups(ctx, "u")
		ok(t, err)
		same(t, "u's groups after removal", ids(gs), []string{"g_ops"})
	})

	t.Run("deleting a group ends its memberships, deleting a user theirs", func(t *testing.T) {
		st, ctx := withGroups(t)
		ok(t, st.AddGroupMember(ctx, support.ID, "u", t0))
		ok(t, st.AddGroupMember(ctx, ops.ID, "v", t0))
		ok(t, st.DeleteGroup(ctx, support.ID))
		wantErr(t, st.DeleteGroup(ctx, support.ID), storage.ErrNotFound)
		_, err := st.GetGroup(ctx, support.ID)
		wantErr(t, err, storage.ErrNotFound)
		gs, err := st.ListUserGroups(ctx, "u")
		ok(t, err)
		if len(gs) != 0 {
			t.Errorf("u is still in %v", ids(gs))
		}
		ok(t, st.DeleteUser(ctx, "v"))
		members, err := st.ListGroupMembers(ctx, ops.ID)
		ok(t, err)
		if len(members) != 0 {
			t.Errorf("a deleted user is still a member: %+v", members)
		}
		// The name is free again.
		ok(t, st.CreateGroup(ctx, storage.Group{ID: "g_new", Name: "support"}))
	})
}
