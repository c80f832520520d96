package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

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
		&c.AttestationFormat, &c.Attested, &c.Transports, &signCount,
		&c.BackupEligible, &c.BackupState, &c.Discoverable, &c.Attachment,
		tsCol{&c.CreatedAt}, tsCol{&c.LastUsedAt}, tsCol{&c.DisabledAt}, &c.DisabledReason)
	c.SignCount = uint32(signCount) // written from a uint32, so it fits
	nilEmpty(&c.Transports)
	return c, err
}

// scanWebAuthns reads every row of rows.
func scanWebAuthns(op string, rows pgx.Rows, err error) ([]storage.WebAuthnCredential, error) {
	if err != nil {
		return nil, wrapErr(op, err)
	}
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

// CreateWebAuthnCredential inserts if the user exists and the id is free
// (across all users); otherwise it answers ErrNotFound or ErrAlreadyExists
// without an error in the database.
func (s *Store) CreateWebAuthnCredential(ctx context.Context, c storage.WebAuthnCredential) error {
	const op = "create webauthn credential"
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO webauthn_credential (user_id, id, name, aaguid, public_key, attestation_type,
			attestation_format, attested, transports, sign_count, backup_eligible, backup_state,
			discoverable, attachment, created_at, last_used_at, disabled_at, disabled_reason)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18
		WHERE `+userExists+`
		ON CONFLICT DO NOTHING`,
		c.UserID, c.ID, c.Name, c.AAGUID, c.PublicKey, c.AttestationType,
		c.AttestationFormat, c.Attested, list(c.Transports), int64(c.SignCount),
		c.BackupEligible, c.BackupState, c.Discoverable, c.Attachment,
		ts(c.CreatedAt), ts(c.LastUsedAt), ts(c.DisabledAt), c.DisabledReason)
	if err != nil || tag.RowsAffected() > 0 {
		return wrapErr(op, err)
	}
	return s.missingUser(ctx, op, c.UserID)
}

// GetWebAuthnCredential locks the credential inside a transaction, so an
// assertion that reads its sign count and records the new one is ordered
// with another assertion of the same credential.
func (s *Store) GetWebAuthnCredential(ctx context.Context, id []byte) (storage.WebAuthnCredential, error) {
	c, err := scanWebAuthn(s.q(ctx).QueryRow(ctx,
		`SELECT `+webauthnColumns+` FROM webauthn_credential WHERE id = $1`+s.lock(ctx, forUpdate), id))
	return c, wrapErr("get webauthn credential", err)
}

// ListWebAuthnCredentials lists the user's credentials, disabled ones
// included, oldest first.
func (s *Store) ListWebAuthnCredentials(ctx context.Context, userID string) ([]storage.WebAuthnCredential, error) {
	rows, err := s.q(ctx).Query(ctx,
		`SELECT `+webauthnColumns+` FROM webauthn_credential WHERE user_id = $1 ORDER BY created_at NULLS FIRST, id`,
		userID)
	return scanWebAuthns("list webauthn credentials", rows, err)
}

// RecordWebAuthnUse stores what an assertion reported. It does not compare
// sign counts: deciding whether a lower count means a clone is the
// caller's, which read the credential just before.
func (s *Store) RecordWebAuthnUse(ctx context.Context, id []byte, signCount uint32, backupState bool, at time.Time) error {
	tag, err := s.q(ctx).Exec(ctx, `
		UPDATE webauthn_credential SET sign_count = $2, backup_state = $3, last_used_at = $4
		WHERE id = $1`,
		id, int64(signCount), backupState, ts(at))
	return affected("record webauthn use", tag, err)
}

func (s *Store) RenameWebAuthnCredential(ctx context.Context, id []byte, name string) error {
	tag, err := s.q(ctx).Exec(ctx,
		`UPDATE webauthn_credential SET name = $2 WHERE id = $1`, id, name)
	return affected("rename webauthn credential", tag, err)
}

// DisableWebAuthnCredential disables an enabled credential. Disabling one
// that is disabled already succeeds and keeps the first time and reason.
// Only when the update matches nothing does a second query tell that case
// from an unknown id.
func (s *Store) DisableWebAuthnCredential(ctx context.Context, id []byte, reason string, at time.Time) error {
	const op = "disable webauthn credential"
	if at.IsZero() {
		return wrapErr(op, storage.ErrZeroTime)
	}
	q := s.q(ctx)
	tag, err := q.Exec(ctx, `
		UPDATE webauthn_credential SET disabled_at = $2, disabled_reason = $3
		WHERE id = $1 AND disabled_at IS NULL`,
		id, ts(at), reason)
	n, err := count(op, tag, err)
	if err != nil || n > 0 {
		return err
	}
	var one int
	return wrapErr(op, q.QueryRow(ctx, `SELECT 1 FROM webauthn_credential WHERE id = $1`, id).Scan(&one))
}

// DisableWebAuthnByAAGUID disables and reports in one statement, so a
// credential registered meanwhile is either disabled and reported or left
// alone. The credentials come back oldest first.
func (s *Store) DisableWebAuthnByAAGUID(ctx context.Context, aaguid []byte, reason string, at time.Time) ([]storage.WebAuthnCredential, error) {
	const op = "disable webauthn credentials by aaguid"
	if at.IsZero() {
		return nil, wrapErr(op, storage.ErrZeroTime)
	}
	rows, err := s.q(ctx).Query(ctx, `
		WITH disabled AS (
			UPDATE webauthn_credential SET disabled_at = $2, disabled_reason = $3
			WHERE aaguid = $1 AND disabled_at IS NULL
			RETURNING `+webauthnColumns+`)
		SELECT `+webauthnColumns+` FROM disabled ORDER BY created_at NULLS FIRST, id`,
		aaguid, ts(at), reason)
	return scanWebAuthns(op, rows, err)
}

func (s *Store) DeleteWebAuthnCredential(ctx context.Context, id []byte) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM webauthn_credential WHERE id = $1`, id)
	return affected("delete webauthn credential", tag, err)
}

const challengeColumns = `id, session_hash, user_id, kind, flow_id, data, created_at, expires_at`

func (s *Store) CreateChallenge(ctx context.Context, c storage.Challenge) error {
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO webauthn_challenge (`+challengeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT DO NOTHING`,
		c.ID, c.SessionHash, c.UserID, c.Kind, c.FlowID, c.Data, ts(c.CreatedAt), ts(c.ExpiresAt))
	return inserted("create challenge", tag, err)
}

// ConsumeChallenge is one DELETE … RETURNING: of two requests presenting
// the same challenge at once, the second waits for the first's delete and
// then finds no row. An expired challenge is deleted as well, since it can
// never be used again, but reported as not found; a NULL (zero) ExpiresAt
// counts as expired. An id PostgreSQL cannot hold as text names no
// challenge.
func (s *Store) ConsumeChallenge(ctx context.Context, id string, now time.Time) (storage.Challenge, error) {
	const op = "consume challenge"
	if !storage.Storable(id) {
		return storage.Challenge{}, notFound(op)
	}
	var c storage.Challenge
	err := s.q(ctx).QueryRow(ctx,
		`DELETE FROM webauthn_challenge WHERE id = $1 RETURNING `+challengeColumns, id).Scan(challengeFields(&c)...)
	return liveChallenge(op, c, err, now)
}

// GetChallenge reads the challenge and deletes nothing, expired or not;
// expiry is judged as ConsumeChallenge judges it. An id PostgreSQL cannot
// hold as text names no challenge.
func (s *Store) GetChallenge(ctx context.Context, id string, now time.Time) (storage.Challenge, error) {
	const op = "get challenge"
	if !storage.Storable(id) {
		return storage.Challenge{}, notFound(op)
	}
	var c storage.Challenge
	err := s.q(ctx).QueryRow(ctx,
		`SELECT `+challengeColumns+` FROM webauthn_challenge WHERE id = $1`, id).Scan(challengeFields(&c)...)
	return liveChallenge(op, c, err, now)
}

// challengeFields are the scan targets of challengeColumns.
func challengeFields(c *storage.Challenge) []any {
	return []any{&c.ID, &c.SessionHash, &c.UserID, &c.Kind, &c.FlowID, &c.Data, tsCol{&c.CreatedAt}, tsCol{&c.ExpiresAt}}
}

// liveChallenge is what a read of c (with error err) answers: c, or not
// found once it expired; a NULL (zero) ExpiresAt counts as expired.
func liveChallenge(op string, c storage.Challenge, err error, now time.Time) (storage.Challenge, error) {
	if err != nil {
		return storage.Challenge{}, wrapErr(op, err)
	}
	if !c.ExpiresAt.After(time.UnixMicro(now.UnixMicro())) { // as SQLite compares: in microseconds
		return storage.Challenge{}, notFound(op)
	}
	return c, nil
}

func (s *Store) DeleteExpiredChallenges(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired challenges", "webauthn_challenge",
		"(expires_at IS NULL OR expires_at <= $1)", ts(now))
}
