package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/storage"
)

// Enrolments, TOTP credentials and recovery codes: the secrets a user signs
// in with, all stored as hashes or sealed blobs.

func (s *Store) CreateEnrollment(ctx context.Context, e storage.Enrollment) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO enrollment (token_hash, user_id, created_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?)`,
		e.TokenHash, e.UserID, micros(e.CreatedAt), micros(e.ExpiresAt), micros(e.UsedAt))
	return wrapErr("create enrollment", err)
}

// GetEnrollment reads a usable enrolment without using it up.
func (s *Store) GetEnrollment(ctx context.Context, tokenHash []byte, now time.Time) (storage.Enrollment, error) {
	e := storage.Enrollment{TokenHash: tokenHash}
	err := s.r(ctx).QueryRowContext(ctx, `
		SELECT user_id, created_at, expires_at, used_at FROM enrollment
		WHERE token_hash = ? AND used_at = 0 AND expires_at > ?`,
		tokenHash, micros(now),
	).Scan(&e.UserID, timeCol{&e.CreatedAt}, timeCol{&e.ExpiresAt}, timeCol{&e.UsedAt})
	if err != nil {
		return storage.Enrollment{}, wrapErr("get enrollment", err)
	}
	return e, nil
}

// ConsumeEnrollment is one conditional UPDATE … RETURNING: two requests
// racing with the same link cannot both see it unused.
func (s *Store) ConsumeEnrollment(ctx context.Context, tokenHash []byte, now time.Time) (storage.Enrollment, error) {
	e := storage.Enrollment{TokenHash: tokenHash}
	err := s.writeRow(ctx, `
		UPDATE enrollment SET used_at = ?
		WHERE token_hash = ? AND used_at = 0 AND expires_at > ?
		RETURNING user_id, created_at, expires_at, used_at`,
		[]any{micros(now), tokenHash, micros(now)},
		&e.UserID, timeCol{&e.CreatedAt}, timeCol{&e.ExpiresAt}, timeCol{&e.UsedAt})
	if err != nil {
		return storage.Enrollment{}, wrapErr("consume enrollment", err)
	}
	return e, nil
}

func (s *Store) PutTOTP(ctx context.Context, c storage.TOTPCredential) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO totp_credential (user_id, sealed, last_step, confirmed_at, created_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET
			sealed = excluded.sealed, last_step = excluded.last_step,
			confirmed_at = excluded.confirmed_at, created_at = excluded.created_at`,
		c.UserID, c.Sealed, c.LastStep, micros(c.ConfirmedAt), micros(c.CreatedAt))
	return wrapErr("put totp", err)
}

func (s *Store) GetTOTP(ctx context.Context, userID string) (storage.TOTPCredential, error) {
	c := storage.TOTPCredential{UserID: userID}
	err := s.r(ctx).QueryRowContext(ctx, `
		SELECT sealed, last_step, confirmed_at, created_at
		FROM totp_credential WHERE user_id = ?`, userID,
	).Scan(&c.Sealed, &c.LastStep, timeCol{&c.ConfirmedAt}, timeCol{&c.CreatedAt})
	if err != nil {
		return storage.TOTPCredential{}, wrapErr("get totp", err)
	}
	return c, nil
}

func (s *Store) ConfirmTOTP(ctx context.Context, userID string, at time.Time) error {
	res, err := s.w(ctx).ExecContext(ctx,
		`UPDATE totp_credential SET confirmed_at = ? WHERE user_id = ?`, micros(at), userID)
	return affected("confirm totp", res, err)
}

// UseTOTPStep is a conditional UPDATE, so of two requests presenting the
// same code at once exactly one wins. Only when it matches nothing does a
// second query tell a replay from a missing credential.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	const op = "use totp step"
	q := s.w(ctx)
	res, err := q.ExecContext(ctx,
		`UPDATE totp_credential SET last_step = ? WHERE user_id = ? AND last_step < ?`,
		step, userID, step)
	n, err := count(op, res, err)
	if err != nil || n > 0 {
		return err
	}
	var one int
	err = q.QueryRowContext(ctx, `SELECT 1 FROM totp_credential WHERE user_id = ?`, userID).Scan(&one)
	if err != nil {
		return wrapErr(op, err)
	}
	return fmt.Errorf("%s: %w", op, storage.ErrConflict)
}

func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM totp_credential WHERE user_id = ?`, userID)
	return affected("delete totp", res, err)
}

// ReplaceRecoveryCodes swaps the whole set in one transaction, so a user is
// never left with none, nor with old and new codes mixed.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	const op = "replace recovery codes"
	return s.InTx(ctx, func(ctx context.Context) error {
		q := s.w(ctx)
		if _, err := q.ExecContext(ctx, `DELETE FROM recovery_code WHERE user_id = ?`, userID); err != nil {
			return wrapErr(op, err)
		}
		for _, h := range hashes {
			if _, err := q.ExecContext(ctx,
				`INSERT INTO recovery_code (user_id, code_hash) VALUES (?, ?)`, userID, h); err != nil {
				return wrapErr(op, err)
			}
		}
		return nil
	})
}

func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	res, err := s.w(ctx).ExecContext(ctx, `
		UPDATE recovery_code SET used_at = ?
		WHERE user_id = ? AND code_hash = ? AND used_at = 0`,
		micros(at), userID, hash)
	return affected("use recovery code", res, err)
}

func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.r(ctx).QueryRowContext(ctx,
		`SELECT count(*) FROM recovery_code WHERE user_id = ? AND used_at = 0`, userID).Scan(&n)
	return n, wrapErr("count recovery codes", err)
}
