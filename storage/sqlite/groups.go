package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/keygate/keygate/storage"
)

// Groups and their members. Names are UNIQUE COLLATE NOCASE, so "Support"
// and "support" are one group, and lookups by name ignore case (ASCII).

const groupColumns = `id, name, description, min_acr, created_at, updated_at`

func scanGroup(sc rowScanner) (storage.Group, error) {
	var g storage.Group
	err := sc.Scan(&g.ID, &g.Name, &g.Description, &g.MinACR, timeCol{&g.CreatedAt}, timeCol{&g.UpdatedAt})
	return g, err
}

func (s *Store) CreateGroup(ctx context.Context, g storage.Group) error {
	_, err := s.w(ctx).ExecContext(ctx, `INSERT INTO user_group (`+groupColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		g.ID, g.Name, g.Description, g.MinACR, micros(g.CreatedAt), micros(g.UpdatedAt))
	return wrapErr("create group", err)
}

func (s *Store) GetGroup(ctx context.Context, id string) (storage.Group, error) {
	g, err := scanGroup(s.r(ctx).QueryRowContext(ctx, `SELECT `+groupColumns+` FROM user_group WHERE id = ?`, id))
	return g, wrapErr("get group", err)
}

func (s *Store) GetGroupByName(ctx context.Context, name string) (storage.Group, error) {
	g, err := scanGroup(s.r(ctx).QueryRowContext(ctx, `SELECT `+groupColumns+` FROM user_group WHERE name = ?`, name))
	return g, wrapErr("get group by name", err)
}

func (s *Store) ListGroups(ctx context.Context) ([]storage.Group, error) {
	return s.queryGroups(ctx, "list groups", `SELECT `+groupColumns+` FROM user_group ORDER BY name`)
}

func (s *Store) ListUserGroups(ctx context.Context, userID string) ([]storage.Group, error) {
	return s.queryGroups(ctx, "list user groups", `
		SELECT `+prefixed("g.", groupColumns)+` FROM user_group g
		JOIN group_member m ON m.group_id = g.id
		WHERE m.user_id = ? ORDER BY g.name`, userID)
}

func (s *Store) queryGroups(ctx context.Context, op, q string, args ...any) ([]storage.Group, error) {
	rows, err := s.r(ctx).QueryContext(ctx, q, args...)
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

// UpdateGroup runs fn once, as UpdateUser does.
func (s *Store) UpdateGroup(ctx context.Context, id string, fn func(g *storage.Group) error) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		g, err := s.GetGroup(ctx, id)
		if err != nil {
			return wrapErr("update group", err)
		}
		if err := fn(&g); err != nil {
			return err
		}
		_, err = s.w(ctx).ExecContext(ctx, `
			UPDATE user_group SET name = ?, description = ?, min_acr = ?, created_at = ?, updated_at = ?
			WHERE id = ?`, g.Name, g.Description, g.MinACR, micros(g.CreatedAt), micros(g.UpdatedAt), id)
		return wrapErr("update group", err)
	})
}

func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM user_group WHERE id = ?`, id)
	return affected("delete group", res, err)
}

func (s *Store) AddGroupMember(ctx context.Context, groupID, userID string, at time.Time) error {
	_, err := s.w(ctx).ExecContext(ctx,
		`INSERT INTO group_member (group_id, user_id, added_at) VALUES (?, ?, ?)`, groupID, userID, micros(at))
	return wrapErr("add group member", err)
}

func (s *Store) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	res, err := s.w(ctx).ExecContext(ctx,
		`DELETE FROM group_member WHERE group_id = ? AND user_id = ?`, groupID, userID)
	return affected("remove group member", res, err)
}

func (s *Store) ListGroupMembers(ctx context.Context, groupID string) ([]storage.User, error) {
	const op = "list group members"
	rows, err := s.r(ctx).QueryContext(ctx, `
		SELECT `+prefixed("u.", userColumns)+` FROM user u
		JOIN group_member m ON m.user_id = u.id
		WHERE m.group_id = ? ORDER BY u.email`, groupID)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var us []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrapErr(op, err)
		}
		us = append(us, u)
	}
	return us, wrapErr(op, rows.Err())
}

func (s *Store) CountGroupMembers(ctx context.Context) (map[string]int, error) {
	const op = "count group members"
	rows, err := s.r(ctx).QueryContext(ctx, `SELECT group_id, count(*) FROM group_member GROUP BY group_id`)
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

// prefixed qualifies each column of a column list with p ("u.").
func prefixed(p, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
