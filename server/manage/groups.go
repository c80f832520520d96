package manage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// Groups say who may use which app (an app's allowed groups) and how its
// members sign in everywhere (a group's minimum acr). A change to either
// takes effect at once: in the transaction that removes a member, deletes
// a group or narrows an app's groups, the tokens of every user who may no
// longer use an app are revoked and the app is told (back-channel logout).

// GroupSpec describes a group to create or change.
type GroupSpec struct {
	Name        string
	Description string
	MinACR      string // "", "mfa", "phr" or "phrh"
}

func validateGroup(s *GroupSpec) error {
	s.Name = strings.TrimSpace(s.Name)
	s.Description = strings.TrimSpace(s.Description)
	switch {
	case s.Name == "" || len(s.Name) > 64:
		return invalid("a group needs a name of 1 to 64 characters")
	case strings.ContainsAny(s.Name, ",; \t\r\n") || strings.ContainsFunc(s.Name, isControl):
		// Group names travel in claims and CSV files, and apps compare them.
		return invalid("a group name has no spaces, commas or semicolons: %q", s.Name)
	case len(s.Description) > 500:
		return invalid("the description is longer than 500 characters")
	case s.MinACR != "" && !slices.Contains([]string{"mfa", "phr", "phrh"}, s.MinACR):
		return invalid("--min-acr must be mfa, phr or phrh, not %q", s.MinACR)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// CreateGroup adds a group.
func (m *Manager) CreateGroup(ctx context.Context, spec GroupSpec) (storage.Group, error) {
	if err := validateGroup(&spec); err != nil {
		return storage.Group{}, err
	}
	id, err := keys.RandomToken(12)
	if err != nil {
		return storage.Group{}, err
	}
	now := m.Now()
	g := storage.Group{ID: "g_" + id, Name: spec.Name, Description: spec.Description, MinACR: spec.MinACR,
		CreatedAt: now, UpdatedAt: now}
	err = m.Store.InTx(ctx, func(ctx context.Context) error {
		if err := m.Store.CreateGroup(ctx, g); err != nil {
			if errors.Is(err, storage.ErrAlreadyExists) {
				return invalid("a group named %s exists already", g.Name)
			}
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.GroupCreated,
			Details: map[string]string{"group": g.Name, "min_acr": g.MinACR}})
	})
	return g, err
}

// UpdateGroup renames, redescribes or changes a group's minimum acr.
func (m *Manager) UpdateGroup(ctx context.Context, id string, spec GroupSpec) error {
	if err := validateGroup(&spec); err != nil {
		return err
	}
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		var old storage.Group
		err := m.Store.UpdateGroup(ctx, id, func(g *storage.Group) error {
			old = *g
			g.Name, g.Description, g.MinACR, g.UpdatedAt = spec.Name, spec.Description, spec.MinACR, m.Now()
			return nil
		})
		switch {
		case errors.Is(err, storage.ErrAlreadyExists):
			return invalid("a group named %s exists already", spec.Name)
		case err != nil:
			return notFound(err, "no such group")
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.GroupUpdated, Details: map[string]string{
			"group": spec.Name, "previous_name": old.Name, "min_acr": spec.MinACR, "previous_min_acr": old.MinACR}})
	})
}

// DeleteGroup deletes a group: its members lose the apps only it allowed
// them, at once. A group that is the only one allowed to use an app is not
// deleted — the app would then be open to everyone, or to no one, without
// anyone having said so: give the app other groups first. Every app that
// named the group loses it, with a client.updated event as an edit of the
// app would record.
func (m *Manager) DeleteGroup(ctx context.Context, id string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		g, err := m.Store.GetGroup(ctx, id)
		if err != nil {
			return notFound(err, "no such group")
		}
		members, err := m.Store.ListGroupMembers(ctx, id)
		if err != nil {
			return err
		}
		named, err := m.appsNaming(ctx, id)
		if err != nil {
			return err
		}
		var only []string
		for _, c := range named {
			if !slices.ContainsFunc(c.AllowedGroups, func(x string) bool { return x != id }) {
				only = append(only, c.Name)
			}
		}
		if len(only) > 0 {
			return invalid("%s is the only group allowed to use %s; give the app other groups, or none, first",
				g.Name, strings.Join(only, ", "))
		}
		var names map[string]string
		if len(named) > 0 {
			if names, _, err = GroupIndex(ctx, m.Store); err != nil {
				return err
			}
		}
		for i := range named {
			if err := m.Store.UpdateClient(ctx, named[i].ID, func(c *storage.Client) error {
				c.AllowedGroups = slices.DeleteFunc(c.AllowedGroups, func(x string) bool { return x == id })
				c.UpdatedAt = m.Now()
				named[i] = *c
				return nil
			}); err != nil {
				return err
			}
			c := named[i]
			if err := m.record(ctx, storage.AuditEvent{Type: audit.ClientUpdated, ClientID: c.ID,
				Details: map[string]string{"name": c.Name, "grants": strings.Join(c.GrantTypes, " "), "min_acr": c.MinACR,
					"allowed_groups": strings.Join(GroupNames(c.AllowedGroups, names), " "), "group_deleted": g.Name}}); err != nil {
				return err
			}
		}
		if err := m.Store.DeleteGroup(ctx, id); err != nil {
			return err
		}
		ids := make([]string, len(members))
		for i, u := range members {
			ids[i] = u.ID
		}
		// Only the apps that named the group change for its members, and
		// each only for those its other groups leave out.
		if err := m.revokeLostApps(ctx, named, ids); err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.GroupDeleted,
			Details: map[string]string{"group": g.Name, "members": fmt.Sprint(len(members))}})
	})
}

// AddMembers makes the users with these emails members of the group; one
// already a member is left as is.
func (m *Manager) AddMembers(ctx context.Context, groupID string, emails []string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		g, err := m.Store.GetGroup(ctx, groupID)
		if err != nil {
			return notFound(err, "no such group")
		}
		for _, email := range emails {
			u, err := m.userByEmail(ctx, email)
			if err != nil {
				return err
			}
			if err := m.addMember(ctx, g, u); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
				return err
			}
		}
		return nil
	})
}

// JoinGroup makes the user userID a member of the group named name; one
// already a member is left as is.
func (m *Manager) JoinGroup(ctx context.Context, userID, name string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := m.Store.GetUser(ctx, userID)
		if err != nil {
			return notFound(err, "no such user")
		}
		g, err := m.GroupByName(ctx, name)
		if err != nil {
			return err
		}
		if err := m.addMember(ctx, g, u); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			return err
		}
		return nil
	})
}

// RemoveMembers ends the memberships of the users with these emails; the
// apps they may no longer use lose them at once.
func (m *Manager) RemoveMembers(ctx context.Context, groupID string, emails []string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		g, err := m.Store.GetGroup(ctx, groupID)
		if err != nil {
			return notFound(err, "no such group")
		}
		var removed []string
		for _, email := range emails {
			u, err := m.userByEmail(ctx, email)
			if err != nil {
				return err
			}
			if err := m.removeMember(ctx, g, u); errors.Is(err, storage.ErrNotFound) {
				return invalid("%s is not a member of %s", u.Email, g.Name)
			} else if err != nil {
				return err
			}
			removed = append(removed, u.ID)
		}
		return m.revokeGroupsApps(ctx, g.ID, removed)
	})
}

// RemoveMember ends the membership of user userID in group groupID; the
// apps they may no longer use lose them at once. An unknown group or user,
// or a user who is not a member, is ErrNotFound.
func (m *Manager) RemoveMember(ctx context.Context, groupID, userID string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		g, err := m.Store.GetGroup(ctx, groupID)
		if err != nil {
			return notFound(err, "no such group")
		}
		u, err := m.Store.GetUser(ctx, userID)
		if err != nil {
			return notFound(err, "no such user")
		}
		if err := m.removeMember(ctx, g, u); errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: %s is not a member of %s", ErrNotFound, u.Email, g.Name)
		} else if err != nil {
			return err
		}
		return m.revokeGroupsApps(ctx, g.ID, []string{u.ID})
	})
}

// GroupByName finds a group by its name, in any case.
func (m *Manager) GroupByName(ctx context.Context, name string) (storage.Group, error) {
	return m.groupByName(ctx, name)
}

func (m *Manager) groupByName(ctx context.Context, name string) (storage.Group, error) {
	g, err := m.Store.GetGroupByName(ctx, strings.TrimSpace(name))
	if errors.Is(err, storage.ErrNotFound) {
		return g, invalid("no group is named %s", name)
	}
	return g, err
}

func (m *Manager) addMember(ctx context.Context, g storage.Group, u storage.User) error {
	if err := m.Store.AddGroupMember(ctx, g.ID, u.ID, m.Now()); err != nil {
		return err
	}
	return m.record(ctx, storage.AuditEvent{Type: audit.GroupMemberAdded, UserID: u.ID,
		Details: map[string]string{"group": g.Name}})
}

// removeMember ends a membership and records it; storage.ErrNotFound if
// there was none. What the user may no longer use is for the caller to
// take (revokeGroupsApps).
func (m *Manager) removeMember(ctx context.Context, g storage.Group, u storage.User) error {
	if err := m.Store.RemoveGroupMember(ctx, g.ID, u.ID); err != nil {
		return err
	}
	return m.record(ctx, storage.AuditEvent{Type: audit.GroupMemberRemoved, UserID: u.ID,
		Details: map[string]string{"group": g.Name}})
}

// appsNaming lists the apps whose allowed groups include group id.
func (m *Manager) appsNaming(ctx context.Context, id string) ([]storage.Client, error) {
	clients, err := m.Store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	var out []storage.Client
	for _, c := range clients {
		if slices.Contains(c.AllowedGroups, id) {
			out = append(out, c)
		}
	}
	return out, nil
}

// revokeGroupsApps takes from the users who just left group id the apps
// that named it and that their remaining groups do not allow.
func (m *Manager) revokeGroupsApps(ctx context.Context, id string, userIDs []string) error {
	if len(userIDs) == 0 {
		return nil
	}
	named, err := m.appsNaming(ctx, id)
	if err != nil {
		return err
	}
	return m.revokeLostApps(ctx, named, userIDs)
}

// revokeLostApps takes each of apps from those of userIDs whom its
// allowed groups now leave out (see takeLeftOut).
func (m *Manager) revokeLostApps(ctx context.Context, apps []storage.Client, userIDs []string) error {
	if len(apps) == 0 || len(userIDs) == 0 {
		return nil
	}
	among := make(map[string]bool, len(userIDs))
	for _, id := range userIDs {
		among[id] = true
	}
	return m.takeLeftOut(ctx, apps, func(userID string) bool { return among[userID] })
}

// takeLeftOut revokes, for each app, the tokens it holds for users its
// allowed groups leave out (of those concerned says to look at), and tells
// the app which of their sessions they came from. The users' browser
// sessions stay: they may go on using every other app. It reads what it
// must and no more: each app's token holders, then the groups of each
// concerned holder, once whatever the number of apps; an app open to
// every enrolled user leaves no one out.
func (m *Manager) takeLeftOut(ctx context.Context, apps []storage.Client, concerned func(userID string) bool) error {
	groupsOf := map[string][]storage.Group{}
	for _, c := range apps {
		if len(c.AllowedGroups) == 0 {
			continue
		}
		holders, err := m.Store.ClientSubjects(ctx, c.ID)
		if err != nil {
			return err
		}
		for _, userID := range holders {
			if !concerned(userID) {
				continue
			}
			groups, ok := groupsOf[userID]
			if !ok {
				if groups, err = m.Store.ListUserGroups(ctx, userID); err != nil {
					return err
				}
				groupsOf[userID] = groups
			}
			if c.Allows(groups) {
				continue
			}
			if err := m.takeApp(ctx, c, userID); err != nil {
				return err
			}
		}
	}
	return nil
}

// takeApp revokes the app's tokens for a user who may no longer use it,
// and tells the app which of the user's sessions they came from.
func (m *Manager) takeApp(ctx context.Context, c storage.Client, userID string) error {
	sids, err := m.Store.RevokeUserClient(ctx, userID, c.ID)
	if err != nil {
		return err
	}
	return m.queueBackchannelLogoutTo(ctx, c, userID, sids)
}

// GroupIndex reads every group, by name, and maps their ids to their
// names.
func GroupIndex(ctx context.Context, s storage.Groups) (map[string]string, []storage.Group, error) {
	groups, err := s.ListGroups(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := make(map[string]string, len(groups))
	for _, g := range groups {
		names[g.ID] = g.Name
	}
	return names, groups, nil
}

// GroupNames are the names of the groups with these ids (an app's allowed
// groups), in the order given and never nil; an id that names no group is
// shown as it is.
func GroupNames(ids []string, names map[string]string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if n, ok := names[id]; ok {
			out = append(out, n)
		} else {
			out = append(out, id)
		}
	}
	return out
}

// UserGroups maps each of these users' ids to their groups, by name (a
// user in none is left out). It reads the groups, then every group's
// members when there are fewer groups than users, else each user's
// groups: one query and the fewer of the two counts.
func UserGroups(ctx context.Context, s storage.Groups, userIDs []string) (map[string][]storage.Group, error) {
	out := map[string][]storage.Group{}
	if len(userIDs) == 0 {
		return out, nil
	}
	groups, err := s.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return out, nil
	}
	if len(groups) >= len(userIDs) {
		for _, id := range userIDs {
			gs, err := s.ListUserGroups(ctx, id)
			if err != nil {
				return nil, err
			}
			if len(gs) > 0 {
				out[id] = gs
			}
		}
		return out, nil
	}
	wanted := make(map[string]bool, len(userIDs))
	for _, id := range userIDs {
		wanted[id] = true
	}
	for _, g := range groups {
		members, err := s.ListGroupMembers(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		for _, u := range members {
			if wanted[u.ID] {
				out[u.ID] = append(out[u.ID], g)
			}
		}
	}
	return out, nil
}
