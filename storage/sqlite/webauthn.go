package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/keygate/keygate/storage"
)

// WebAuthn credentials (security keys and passkeys) and the challenges of
// their registration and sign-in ceremonies.

const webauthnColumns = `id, user_id, name, aaguid, public_key, attestation_type,
	attestation_format, attested, transports, sign_count, backup_eligible, backup_state,
	discoverable, attachment, created_at, last_used_at, disabled_at, disabled_reason`

func scanWebAuthn(sc rowScanner) (storage.WebAuthnCredential, error) {
	var c storage.WebAuthnCredential
	var signCount int64
	err := sc.Scan(&c.ID, &c.UserID, &c.Name, &c.AAGUID, &c.PublicKey, &c.AttestationType,
		&c.AttestationFormat, &c.Attested, listCol{&c.Transports}, &signCount,
		&c.BackupEligible, &c.BackupState, &c.Discoverable, &c.Attachment,
		timeCol{&c.CreatedAt}, timeCol{&c.LastUsedAt}, timeCol{&c.DisabledAt}, &c.DisabledReason)
	c.SignCount = uint32(signCount) // written from a uint32, so it fits
	return c, err
}

// scanWebAuthns reads every row of rows.
func scanWebAuthns(op string, rows *sql.Rows) ([]storage.WebAuthnCredential, error) {
	defer rows.Close()
	var out []storage.WebAuthnCredential
	for rows.Next() {
		c, err := scanWebAuthn(rows)
		if err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, c)
	}
	return out, wrapErr(op, rows.Err())
}

func (s *Store) CreateWebAuthnCredential(ctx context.Context, c storage.WebAuthnCredential) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO webauthn_credential (`+webauthnColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.UserID, c.Name, c.AAGUID, c.PublicKey, c.AttestationType,
		c.AttestationFormat, c.Attested, listJSON(c.Transports), int64(c.SignCount),
		c.BackupEligible, c.BackupState, c.Discoverable, c.Attachment,
		micros(c.CreatedAt), micros(c.LastUsedAt), micros(c.DisabledAt), c.DisabledReason)
	return wrapErr("create webauthn credential", err)
}

func (s *Store) GetWebAuthnCredential(ctx context.Context, id []byte) (storage.WebAuthnCredential, error) {
	c, err := scanWebAuthn(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+webauthnColumns+` FROM webauthn_credential WHERE id = ?`, id))
	return c, wrapErr("get webauthn credential", err)
}

// ListWebAuthnCredentials lists the user's credentials, disabled ones
// included, oldest first.
func (s *Store) ListWebAuthnCredentials(ctx context.Context, userID string) ([]storage.WebAuthnCredential, error) {
	const op = "list webauthn credentials"
	rows, err := s.r(ctx).QueryContext(ctx,
		`SELECT `+webauthnColumns+` FROM webauthn_credential WHERE user_id = ? ORDER BY created_at, id`,
		userID)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return scanWebAuthns(op, rows)
}

// RecordWebAuthnUse stores what an assertion reported. It does not compare
// sign counts: deciding whether a lower count means a clone is the
// caller's, which read the credential just before.
func (s *Store) RecordWebAuthnUse(ctx context.Context, id []byte, signCount uint32, backupState bool, at time.Time) error {
	res, err := s.w(ctx).ExecContext(ctx, `
		UPDATE webauthn_credential SET sign_count = ?, backup_state = ?, last_used_at = ?
		WHERE id = ?`,
		int64(signCount), backupState, micros(at), id)
	return affected("record webauthn use", res, err)
}

func (s *Store) RenameWebAuthnCredential(ctx context.Context, id []byte, name string) error {
	res, err := s.w(ctx).ExecContext(ctx,
		`UPDATE webauthn_credential SET name = ? WHERE id = ?`, name, id)
	return affected("rename webauthn credential", res, err)
}

// DisableWebAuthnCredential disables an enabled credential. Disabling one
// that is disabled already succeeds and keeps the first time and reason,
// as DisableWebAuthnByAAGUID does: the first reason is the one worth
// knowing. Only when the update matches nothing does a second query tell
// that case from an unknown id.
func (s *Store) DisableWebAuthnCredential(ctx context.Context, id []byte, reason string, at time.Time) error {
	const op = "disable webauthn credential"
	if at.IsZero() {
		return wrapErr(op, storage.ErrZeroTime)
	}
	q := s.w(ctx)
	res, err := q.ExecContext(ctx, `
		UPDATE webauthn_credential SET disabled_at = ?, disabled_reason = ?
		WHERE id = ? AND disabled_at = 0`,
		micros(at), reason, id)
	n, err := count(op, res, err)
	if err != nil || n > 0 {
		return err
	}
	var one int
	err = q.QueryRowContext(ctx, `SELECT 1 FROM webauthn_credential WHERE id = ?`, id).Scan(&one)
	return wrapErr(op, err)
}

// DisableWebAuthnByAAGUID disables and reports in one statement, so a
// credential registered meanwhile is either disabled and reported or left
// alone. The credentials come back oldest first.
func (s *Store) DisableWebAuthnByAAGUID(ctx context.Context, aaguid []byte, reason string, at time.Time) ([]storage.WebAuthnCredential, error) {
	const op = "disable webauthn credentials by aaguid"
	if at.IsZero() {
		return nil, wrapErr(op, storage.ErrZeroTime)
	}
	rows, err := s.w(ctx).QueryContext(ctx, `
		UPDATE webauthn_credential SET disabled_at = ?, disabled_reason = ?
		WHERE aaguid = ? AND disabled_at = 0
		RETURNING `+webauthnColumns,
		micros(at), reason, aaguid)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	out, err := scanWebAuthns(op, rows)
	if err != nil {
		return nil, err
	}
	// RETURNING comes in no promised order.
	slices.SortFunc(out, func(a, b storage.WebAuthnCredential) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (s *Store) DeleteWebAuthnCredential(ctx context.Context, id []byte) error {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM webauthn_credential WHERE id = ?`, id)
	return affected("delete webauthn credential", res, err)
}

const challengeColumns = `id, session_hash, user_id, kind, flow_id, data, created_at, expires_at`

func (s *Store) CreateChallenge(ctx context.Context, c storage.Challenge) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO webauthn_challenge (`+challengeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.SessionHash, c.UserID, c.Kind, c.FlowID, c.Data,
		micros(c.CreatedAt), micros(c.ExpiresAt))
	return wrapErr("create challenge", err)
}

// ConsumeChallenge is one DELETE … RETURNING: of two requests presenting
// the same challenge at once, exactly one gets it. An expired challenge is
// deleted as well, since it can never be used again, but reported as not
// found; as with flows, a zero ExpiresAt counts as expired.
func (s *Store) ConsumeChallenge(ctx context.Context, id string, now time.Time) (storage.Challenge, error) {
	const op = "consume challenge"
	var c storage.Challenge
	err := s.writeRow(ctx,
		`DELETE FROM webauthn_challenge WHERE id = ? RETURNING `+challengeColumns, []any{id}, challengeFields(&c)...)
	return liveChallenge(op, c, err, now)
}

// GetChallenge reads the challenge and deletes nothing, expired or not;
// expiry is judged as ConsumeChallenge judges it.
func (s *Store) GetChallenge(ctx context.Context, id string, now time.Time) (storage.Challenge, error) {
	const op = "get challenge"
	var c storage.Challenge
	err := s.r(ctx).QueryRowContext(ctx,
		`SELECT `+challengeColumns+` FROM webauthn_challenge WHERE id = ?`, id).Scan(challengeFields(&c)...)
	return liveChallenge(op, c, err, now)
}

// challengeFields are the scan targets of challengeColumns.
func challengeFields(c *storage.Challenge) []any {
	return []any{&c.ID, &c.SessionHash, &c.UserID, &c.Kind, &c.FlowID, &c.Data, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt}}
}

// liveChallenge is what a read of c (with error err) answers: c, or not
// found once it expired; as with flows, a zero ExpiresAt counts as expired.
func liveChallenge(op string, c storage.Challenge, err error, now time.Time) (storage.Challenge, error) {
	if err != nil {
		return storage.Challenge{}, wrapErr(op, err)
	}
	if micros(c.ExpiresAt) <= micros(now) {
		return storage.Challenge{}, notFound(op)
	}
	return c, nil
}

func (s *Store) DeleteExpiredChallenges(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired challenges", "webauthn_challenge", "expires_at <= ?", micros(now))
}
