package postgres

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

// Groups and their members. Names are unique in any case (a unique index on
// lower(name)), looked up in any case, and listed in the order of their
// lower-case form.

const groupColumns = `id, name, description, min_acr, created_at, updated_at`

func scanGroup(sc rowScanner) (storage.Group, error) {
	var g storage.Group
	err := sc.Scan(&g.ID, &g.Name, &g.Description, &g.MinACR, tsCol{&g.CreatedAt}, tsCol{&g.UpdatedAt})
	return g, err
}

func (s *Store) CreateGroup(ctx context.Context, g storage.Group) error {
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO user_group (`+groupColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT DO NOTHING`,
		g.ID, g.Name, g.Description, g.MinACR, ts(g.CreatedAt), ts(g.UpdatedAt))
	return inserted("create group", tag, err)
}

func (s *Store) GetGroup(ctx context.Context, id string) (storage.Group, error) {
	g, err := scanGroup(s.q(ctx).QueryRow(ctx,
		`SELECT `+groupColumns+` FROM user_group WHERE id = $1`+s.lock(ctx, forKeyShare), id))
	return g, wrapErr("get group", err)
}

func (s *Store) GetGroupByName(ctx context.Context, name string) (storage.Group, error) {
	g, err := scanGroup(s.q(ctx).QueryRow(ctx,
		`SELECT `+groupColumns+` FROM user_group WHERE lower(name) = lower($1)`+s.lock(ctx, forKeyShare), name))
	return g, wrapErr("get group by name", err)
}

func (s *Store) ListGroups(ctx context.Context) ([]storage.Group, error) {
	return s.queryGroups(ctx, "list groups",
		`SELECT `+groupColumns+` FROM user_group ORDER BY lower(name) COLLATE "C", id`)
}

// ListUserGroups locks the memberships it reads inside a transaction, so
// a token issued in it is ordered with a removal from a group (see lock).
func (s *Store) ListUserGroups(ctx context.Context, userID string) ([]storage.Group, error) {
	return s.queryGroups(ctx, "list user groups", `
		SELECT `+groupColumns+` FROM user_group WHERE id IN (
			SELECT group_id FROM group_member WHERE user_id = $1`+s.lock(ctx, forKeyShare)+`)
		ORDER BY lower(name) COLLATE "C", id`, userID)
}

func (s *Store) queryGroups(ctx context.Context, op, q string, args ...any) ([]storage.Group, error) {
	rows, err := s.q(ctx).Query(ctx, q, args...)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var gs []storage.Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, wrapErr(op, err)
		}
		gs = append(gs, g)
	}
	return gs, wrapErr(op, rows.Err())
}

// UpdateGroup locks the row before fn sees it, as UpdateUser does; a new
// name another group has, in any case, is ErrAlreadyExists.
func (s *Store) UpdateGroup(ctx context.Context, id string, fn func(g *storage.Group) error) error {
	const op = "update group"
	return s.InTx(ctx, func(ctx context.Context) error {
		g, err := scanGroup(s.q(ctx).QueryRow(ctx,
			`SELECT `+groupColumns+` FROM user_group WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return wrapErr(op, err)
		}
		if err := fn(&g); err != nil {
			return err
		}
		tag, err := s.q(ctx).Exec(ctx, `
			UPDATE user_group SET name = $2, description = $3, min_acr = $4, created_at = $5, updated_at = $6
			WHERE id = $1 AND NOT EXISTS (
				SELECT 1 FROM user_group o WHERE lower(o.name) = lower($2) AND o.id <> $1)`,
			id, g.Name, g.Description, g.MinACR, ts(g.CreatedAt), ts(g.UpdatedAt))
		return inserted(op, tag, err)
	})
}

func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM user_group WHERE id = $1`, id)
	return affected("delete group", tag, err)
}

// AddGroupMember inserts only if the group and the user exist (locking
// them as a foreign key check does) and the membership does not; when it
// inserts nothing, a second query tells which, so no error is raised in
// the database.
func (s *Store) AddGroupMember(ctx context.Context, groupID, userID string, at time.Time) error {
	const op = "add group member"
	q := s.q(ctx)
	tag, err := q.Exec(ctx, `
		INSERT INTO group_member (group_id, user_id, added_at)
		SELECT $1, $2, $3
		WHERE EXISTS (SELECT 1 FROM user_group WHERE id = $1 FOR KEY SHARE)
		  AND EXISTS (SELECT 1 FROM "user" WHERE id = $2 FOR KEY SHARE)
		ON CONFLICT DO NOTHING`, groupID, userID, ts(at))
	if err != nil || tag.RowsAffected() > 0 {
		return wrapErr(op, err)
	}
	var member bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM group_member WHERE group_id = $1 AND user_id = $2)`, groupID, userID).Scan(&member); err != nil {
		return wrapErr(op, err)
	}
	if member {
		return exists(op)
	}
	return notFound(op)
}

func (s *Store) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	tag, err := s.q(ctx).Exec(ctx,
		`DELETE FROM group_member WHERE group_id = $1 AND user_id = $2`, groupID, userID)
	return affected("remove group member", tag, err)
}

func (s *Store) ListGroupMembers(ctx context.Context, groupID string) ([]storage.User, error) {
	return s.queryUsers(ctx, "list group members", `
		SELECT `+userColumns+` FROM "user" WHERE id IN (
			SELECT user_id FROM group_member WHERE group_id = $1)
		ORDER BY email`, groupID)
}

func (s *Store) CountGroupMembers(ctx context.Context) (map[string]int, error) {
	const op = "count group members"
	rows, err := s.q(ctx).Query(ctx, `SELECT group_id, count(*) FROM group_member GROUP BY group_id`)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, wrapErr(op, err)
		}
		out[id] = n
	}
	return out, wrapErr(op, rows.Err())
}
