package sqlite

import (
	"context"
	"strings"

	"github.com/keygate/keygate/storage"
)

const userColumns = `id, email, name, password_hash, admin, suspended_at, created_at, updated_at`

func scanUser(sc rowScanner) (storage.User, error) {
	var u storage.User
	err := sc.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.Admin,
		timeCol{&u.SuspendedAt}, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	return u, err
}

// normEmail is how an email is stored and looked up. Lower-casing in Go
// rather than with SQL's lower() covers non-ASCII letters too.
func normEmail(email string) string {
	return strings.ToLower(email)
}

func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO user (`+userColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, normEmail(u.Email), u.Name, u.PasswordHash, u.Admin,
		micros(u.SuspendedAt), micros(u.CreatedAt), micros(u.UpdatedAt))
	return wrapErr("create user", err)
}

func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM user WHERE id = ?`, id))
	return u, wrapErr("get user", err)
}

func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := scanUser(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM user WHERE email = ?`, normEmail(email)))
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
			UPDATE user SET email = ?, name = ?, password_hash = ?, admin = ?,
				suspended_at = ?, created_at = ?, updated_at = ?
			WHERE id = ?`,
			normEmail(u.Email), u.Name, u.PasswordHash, u.Admin,
			micros(u.SuspendedAt), micros(u.CreatedAt), micros(u.UpdatedAt), id)
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
