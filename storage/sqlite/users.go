package sqlite

import (
	"context"

	"github.com/keygate/keygate/storage"
)

const userColumns = `id, email, name, password_hash, role, suspended_at, enrolled_at, created_at, updated_at`

func scanUser(sc rowScanner) (storage.User, error) {
	var u storage.User
	err := sc.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.Role,
		timeCol{&u.SuspendedAt}, timeCol{&u.EnrolledAt}, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	return u, err
}

func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO user (`+userColumns+`, admin)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, storage.NormalizeEmail(u.Email), u.Name, u.PasswordHash, u.Role,
		micros(u.SuspendedAt), micros(u.EnrolledAt), micros(u.CreatedAt), micros(u.UpdatedAt), u.IsAdmin())
	return wrapErr("create user", err)
}

func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM user WHERE id = ?`, id))
	return u, wrapErr("get user", err)
}

func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := scanUser(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM user WHERE email = ?`, storage.NormalizeEmail(email)))
	return u, wrapErr("get user by email", err)
}

func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.r(ctx).QueryContext(ctx,
		`SELECT `+userColumns+` FROM user ORDER BY email`)
	if err != nil {
		return nil, wrapErr("list users", err)
	}
	defer rows.Close()
	var us []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrapErr("list users", err)
		}
		us = append(us, u)
	}
	return us, wrapErr("list users", rows.Err())
}

// searchWhere selects the users SearchUsers matches; both patterns come
// from storage.ContainsPattern.
const searchWhere = ` WHERE email LIKE ? ESCAPE '\' OR name LIKE ? ESCAPE '\'`

// SearchUsers returns a page of the users whose email or name contains
// query, ordered by email, and how many match in all. limit defaults to
// 50 and is capped at 500; a negative offset counts as 0.
//
// The match is a LIKE scan of the table (see 0004_admin.sql for why no
// index serves it). Emails are stored lower-case, so they are matched
// against the lower-cased query and fold any letter; SQLite's LIKE folds
// ASCII letters only, so in a name a non-ASCII letter matches as typed
// (a query "émile" finds "émile" but not "Émile"). The page and the total
// come from one statement, so they agree even while users are added.
func (s *Store) SearchUsers(ctx context.Context, query string, limit, offset int) ([]storage.User, int, error) {
	const op = "search users"
	limit = storage.PageLimit(limit, storage.SearchUsersDefault, storage.SearchUsersMax)
	offset = max(offset, 0)

	where := ``
	var args []any
	if query != "" {
		where = searchWhere
		args = append(args, storage.ContainsPattern(storage.NormalizeEmail(query)), storage.ContainsPattern(query))
	}
	// count(*) OVER () is the number of matches before LIMIT and OFFSET.
	rows, err := s.r(ctx).QueryContext(ctx,
		`SELECT `+userColumns+`, count(*) OVER () FROM user`+where+
			` ORDER BY email LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, wrapErr(op, err)
	}
	defer rows.Close()
	var us []storage.User
	total := 0
	for rows.Next() {
		u, err := scanUser(withExtra{rows, []any{&total}})
		if err != nil {
			return nil, 0, wrapErr(op, err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrapErr(op, err)
	}
	if len(us) == 0 && offset > 0 {
		// A page past the end has no row to carry the total: count apart.
		err := s.r(ctx).QueryRowContext(ctx, `SELECT count(*) FROM user`+where, args...).Scan(&total)
		if err != nil {
			return nil, 0, wrapErr(op, err)
		}
	}
	return us, total, nil
}

// UpdateUser runs fn once: the write transaction holds the database's
// write lock from its first statement, so nothing can change the row
// between the read and the write and there is never a reason to retry.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *storage.User) error) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		u, err := s.GetUser(ctx, id)
		if err != nil {
			return wrapErr("update user", err)
		}
		if err := fn(&u); err != nil {
			return err
		}
		// The id is the row's identity, so a changed u.ID is ignored.
		_, err = s.w(ctx).ExecContext(ctx, `
			UPDATE user SET email = ?, name = ?, password_hash = ?, role = ?, admin = ?,
				suspended_at = ?, enrolled_at = ?, created_at = ?, updated_at = ?
			WHERE id = ?`,
			storage.NormalizeEmail(u.Email), u.Name, u.PasswordHash, u.Role, u.IsAdmin(),
			micros(u.SuspendedAt), micros(u.EnrolledAt), micros(u.CreatedAt), micros(u.UpdatedAt), id)
		return wrapErr("update user", err)
	})
}

// DeleteUser deletes the user and, by foreign key, their enrolments, TOTP
// credential, recovery codes and WebAuthn credentials. Sessions and tokens
// are the caller's to end, so that it can learn which SIDs to log out.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM user WHERE id = ?`, id)
	return affected("delete user", res, err)
}
