package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
)

const userColumns = `id, email, name, password_hash, role, suspended_at, enrolled_at, created_at, updated_at`

// scanUser scans userColumns, then extra.
func scanUser(sc rowScanner, extra ...any) (storage.User, error) {
	var u storage.User
	err := sc.Scan(append([]any{&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.Role,
		tsCol{&u.SuspendedAt}, tsCol{&u.EnrolledAt}, tsCol{&u.CreatedAt}, tsCol{&u.UpdatedAt}}, extra...)...)
	return u, err
}

// CreateUser inserts unless the id or the email is taken, and then answers
// ErrAlreadyExists without an error in the database.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO "user" (`+userColumns+`, admin)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT DO NOTHING`,
		u.ID, storage.NormalizeEmail(u.Email), u.Name, u.PasswordHash, u.Role,
		ts(u.SuspendedAt), ts(u.EnrolledAt), ts(u.CreatedAt), ts(u.UpdatedAt), u.IsAdmin())
	return inserted("create user", tag, err)
}

func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	if !storage.Storable(id) {
		return storage.User{}, fmt.Errorf("get user: %w", storage.ErrNotFound)
	}
	var u storage.User
	err := s.keyLocked(ctx, lockKey("subject", id), false, func(r pgx.Row) (err error) {
		u, err = scanUser(r)
		return err
	}, `SELECT `+userColumns+` FROM "user" WHERE id = $1`+s.lock(ctx, forKeyShare), id)
	return u, wrapErr("get user", err)
}

func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	if !storage.Storable(email) {
		return storage.User{}, fmt.Errorf("get user by email: %w", storage.ErrNotFound)
	}
	u, err := scanUser(s.q(ctx).QueryRow(ctx,
		`SELECT `+userColumns+` FROM "user" WHERE email = $1`+s.lock(ctx, forKeyShare),
		storage.NormalizeEmail(email)))
	return u, wrapErr("get user by email", err)
}

func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	return s.queryUsers(ctx, "list users", `SELECT `+userColumns+` FROM "user" ORDER BY email`)
}

func (s *Store) queryUsers(ctx context.Context, op, q string, args ...any) ([]storage.User, error) {
	rows, err := s.q(ctx).Query(ctx, q, args...)
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

// SearchUsers returns a page of the users whose email or name contains
// query, ordered by email, and how many match in all; see
// storage.PageLimit for the limit. Emails are stored lower-case and matched
// against the lower-cased query; names with ILIKE, which folds case as the
// database's locale does (every letter in a UTF-8 locale, where SQLite
// folds ASCII only). The page and the total come from one statement.
func (s *Store) SearchUsers(ctx context.Context, query string, limit, offset int) ([]storage.User, int, error) {
	const op = "search users"
	limit = storage.PageLimit(limit, storage.SearchUsersDefault, storage.SearchUsersMax)
	offset = max(offset, 0)
	where := ``
	var args []any
	if query != "" {
		where = ` WHERE email LIKE $1 ESCAPE '\' OR name ILIKE $2 ESCAPE '\'`
		args = append(args, storage.ContainsPattern(storage.NormalizeEmail(query)), storage.ContainsPattern(query))
	}
	// count(*) OVER () is the number of matches before LIMIT and OFFSET.
	n := len(args)
	rows, err := s.q(ctx).Query(ctx,
		`SELECT `+userColumns+`, count(*) OVER () FROM "user"`+where+
			` ORDER BY email LIMIT $`+itoa(n+1)+` OFFSET $`+itoa(n+2),
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, wrapErr(op, err)
	}
	defer rows.Close()
	var us []storage.User
	total := 0
	for rows.Next() {
		u, err := scanUser(rows, &total)
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
		if err := s.q(ctx).QueryRow(ctx, `SELECT count(*) FROM "user"`+where, args...).Scan(&total); err != nil {
			return nil, 0, wrapErr(op, err)
		}
	}
	return us, total, nil
}

// UpdateUser locks the row (FOR UPDATE) before fn sees it, so concurrent
// updates, from any process, queue and each sees the last one's result:
// fn runs once. A new email that another user has is ErrAlreadyExists,
// found by the update's own condition rather than by an error in the
// database, so the caller's transaction may go on.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *storage.User) error) error {
	const op = "update user"
	return s.InTx(ctx, func(ctx context.Context) error {
		var u storage.User
		err := s.keyLocked(ctx, lockKey("subject", id), true, func(r pgx.Row) (err error) {
			u, err = scanUser(r)
			return err
		}, `SELECT `+userColumns+` FROM "user" WHERE id = $1 FOR UPDATE`, id)
		if err != nil {
			return wrapErr(op, err)
		}
		if err := fn(&u); err != nil {
			return err
		}
		// The id is the row's identity, so a changed u.ID is ignored.
		tag, err := s.q(ctx).Exec(ctx, `
			UPDATE "user" SET email = $2, name = $3, password_hash = $4, role = $5, admin = $6,
				suspended_at = $7, enrolled_at = $8, created_at = $9, updated_at = $10
			WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM "user" o WHERE o.email = $2 AND o.id <> $1)`,
			id, storage.NormalizeEmail(u.Email), u.Name, u.PasswordHash, u.Role, u.IsAdmin(),
			ts(u.SuspendedAt), ts(u.EnrolledAt), ts(u.CreatedAt), ts(u.UpdatedAt))
		return inserted(op, tag, err)
	})
}

// DeleteUser deletes the user and, by foreign key, their enrolments, TOTP
// credential, recovery codes, WebAuthn credentials, devices, sign-ins and
// memberships. Sessions and tokens are the caller's to end, so that it can
// learn which SIDs to log out.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM "user" WHERE id = $1`, id)
	return affected("delete user", tag, err)
}
