package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/storage"
)

// Enrolments, TOTP credentials and recovery codes: the secrets a user signs
// in with, all stored as hashes or sealed blobs.

// userExists is the condition under which a row that belongs to user $1 is
// inserted: the user exists, locked as a foreign key check would lock it,
// so the insert raises no foreign key error when the user is missing.
const userExists = `EXISTS (SELECT 1 FROM "user" WHERE id = $1 FOR KEY SHARE)`

// missingUser answers a conditional insert that inserted nothing: the user
// it names is missing (ErrNotFound), or else the key is taken
// (ErrAlreadyExists).
func (s *Store) missingUser(ctx context.Context, op, userID string) error {
	var ok bool
	if err := s.q(ctx).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM "user" WHERE id = $1)`, userID).Scan(&ok); err != nil {
		return wrapErr(op, err)
	}
	if ok {
		return exists(op)
	}
	return notFound(op)
}

func (s *Store) CreateEnrollment(ctx context.Context, e storage.Enrollment) error {
	const op = "create enrollment"
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO enrollment (user_id, token_hash, created_at, expires_at, used_at)
		SELECT $1, $2, $3, $4, $5 WHERE `+userExists+`
		ON CONFLICT DO NOTHING`,
		e.UserID, e.TokenHash, ts(e.CreatedAt), ts(e.ExpiresAt), ts(e.UsedAt))
	if err != nil || tag.RowsAffected() > 0 {
		return wrapErr(op, err)
	}
	return s.missingUser(ctx, op, e.UserID)
}

// GetEnrollment reads a usable enrolment without using it up.
func (s *Store) GetEnrollment(ctx context.Context, tokenHash []byte, now time.Time) (storage.Enrollment, error) {
	e := storage.Enrollment{TokenHash: tokenHash}
	err := s.q(ctx).QueryRow(ctx, `
		SELECT user_id, created_at, expires_at, used_at FROM enrollment
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`+s.lock(ctx, forUpdate),
		tokenHash, ts(now),
	).Scan(&e.UserID, tsCol{&e.CreatedAt}, tsCol{&e.ExpiresAt}, tsCol{&e.UsedAt})
	if err != nil {
		return storage.Enrollment{}, wrapErr("get enrollment", err)
	}
	return e, nil
}

// ConsumeEnrollment is one conditional UPDATE … RETURNING: of two requests
// racing with the same link, the second waits for the first's row lock and
// then re-checks used_at on the row the first left, so exactly one wins.
func (s *Store) ConsumeEnrollment(ctx context.Context, tokenHash []byte, now time.Time) (storage.Enrollment, error) {
	e := storage.Enrollment{TokenHash: tokenHash}
	err := s.q(ctx).QueryRow(ctx, `
		UPDATE enrollment SET used_at = $3
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING user_id, created_at, expires_at, used_at`,
		tokenHash, ts(now), ts(now),
	).Scan(&e.UserID, tsCol{&e.CreatedAt}, tsCol{&e.ExpiresAt}, tsCol{&e.UsedAt})
	if err != nil {
		return storage.Enrollment{}, wrapErr("consume enrollment", err)
	}
	return e, nil
}

func (s *Store) PutTOTP(ctx context.Context, c storage.TOTPCredential) error {
	const op = "put totp"
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO totp_credential (user_id, sealed, last_step, confirmed_at, created_at)
		SELECT $1, $2, $3, $4, $5 WHERE `+userExists+`
		ON CONFLICT (user_id) DO UPDATE SET
			sealed = excluded.sealed, last_step = excluded.last_step,
			confirmed_at = excluded.confirmed_at, created_at = excluded.created_at`,
		c.UserID, c.Sealed, c.LastStep, ts(c.ConfirmedAt), ts(c.CreatedAt))
	if err != nil || tag.RowsAffected() > 0 {
		return wrapErr(op, err)
	}
	return notFound(op)
}

func (s *Store) GetTOTP(ctx context.Context, userID string) (storage.TOTPCredential, error) {
	c := storage.TOTPCredential{UserID: userID}
	err := s.q(ctx).QueryRow(ctx, `
		SELECT sealed, last_step, confirmed_at, created_at
		FROM totp_credential WHERE user_id = $1`+s.lock(ctx, forUpdate), userID,
	).Scan(&c.Sealed, &c.LastStep, tsCol{&c.ConfirmedAt}, tsCol{&c.CreatedAt})
	if err != nil {
		return storage.TOTPCredential{}, wrapErr("get totp", err)
	}
	return c, nil
}

func (s *Store) ConfirmTOTP(ctx context.Context, userID string, at time.Time) error {
	tag, err := s.q(ctx).Exec(ctx,
		`UPDATE totp_credential SET confirmed_at = $2 WHERE user_id = $1`, userID, ts(at))
	return affected("confirm totp", tag, err)
}

// UseTOTPStep is a conditional UPDATE: of two requests presenting the same
// code at once, the second waits for the first's row lock, re-checks
// last_step on the row the first left, and matches nothing. Only then does
// a second query tell a replay from a missing credential.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	const op = "use totp step"
	q := s.q(ctx)
	tag, err := q.Exec(ctx,
		`UPDATE totp_credential SET last_step = $2 WHERE user_id = $1 AND last_step < $2`, userID, step)
	n, err := count(op, tag, err)
	if err != nil || n > 0 {
		return err
	}
	var one int
	if err := q.QueryRow(ctx, `SELECT 1 FROM totp_credential WHERE user_id = $1`, userID).Scan(&one); err != nil {
		return wrapErr(op, err)
	}
	return fmt.Errorf("%s: %w", op, storage.ErrConflict)
}

func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM totp_credential WHERE user_id = $1`, userID)
	return affected("delete totp", tag, err)
}

// ReplaceRecoveryCodes swaps the whole set in one transaction, so a user is
// never left with none, nor with old and new codes mixed. The new codes go
// in with one statement.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	const op = "replace recovery codes"
	return s.InTx(ctx, func(ctx context.Context) error {
		q := s.q(ctx)
		if _, err := q.Exec(ctx, `DELETE FROM recovery_code WHERE user_id = $1`, userID); err != nil {
			return wrapErr(op, err)
		}
		if len(hashes) == 0 {
			return nil
		}
		tag, err := q.Exec(ctx, `
			INSERT INTO recovery_code (user_id, code_hash)
			SELECT $1, h FROM unnest($2::bytea[]) AS h WHERE `+userExists, userID, hashes)
		if err != nil || tag.RowsAffected() > 0 {
			return wrapErr(op, err)
		}
		return notFound(op)
	})
}

func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	tag, err := s.q(ctx).Exec(ctx, `
		UPDATE recovery_code SET used_at = $3
		WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`,
		userID, hash, ts(at))
	return affected("use recovery code", tag, err)
}

func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.q(ctx).QueryRow(ctx,
		`SELECT count(*) FROM recovery_code WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n)
	return n, wrapErr("count recovery codes", err)
}
