package sqlite

import (
	"context"
	"slices"
	"time"

	"github.com/keygate/keygate/storage"
)

// Token records are the hot path: every authorization code, token and
// refresh writes one and reads a few. Each method is one statement on a
// primary key or an index, and statements are cached per connection.

const tokenColumns = `kind, signature, request_id, client_id, subject, sid, active,
	rotated_at, access_signature, request, requested_at, expires_at`

func (s *Store) CreateToken(ctx context.Context, t storage.TokenRecord) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO token (`+tokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Kind, t.Signature, t.RequestID, t.ClientID, t.Subject, t.SID, t.Active,
		micros(t.RotatedAt), t.AccessSignature, t.Request, micros(t.RequestedAt), micros(t.ExpiresAt))
	return wrapErr("create token", err)
}

// GetToken runs without the caller's cancellation: for a context that
// can end, database/sql watches the query with a goroutine of its own and
// the driver with a callback, which cost a lookup by primary key (every
// introspection's) more than a fifth of its time and buy nothing for a
// statement that takes microseconds.
func (s *Store) GetToken(ctx context.Context, kind, signature string) (storage.TokenRecord, error) {
	t := storage.TokenRecord{Kind: kind, Signature: signature}
	q := s.r(ctx) // a transaction travels in the context's values, kept
	ctx = context.WithoutCancel(ctx)
	err := q.QueryRowContext(ctx, `
		SELECT request_id, client_id, subject, sid, active, rotated_at,
			access_signature, request, requested_at, expires_at
		FROM token WHERE kind = ? AND signature = ?`, kind, signature,
	).Scan(&t.RequestID, &t.ClientID, &t.Subject, &t.SID, &t.Active, timeCol{&t.RotatedAt},
		&t.AccessSignature, &t.Request, timeCol{&t.RequestedAt}, timeCol{&t.ExpiresAt})
	if err != nil {
		return storage.TokenRecord{}, wrapErr("get token", err)
	}
	return t, nil
}

func (s *Store) DeleteToken(ctx context.Context, kind, signature string) error {
	res, err := s.w(ctx).ExecContext(ctx,
		`DELETE FROM token WHERE kind = ? AND signature = ?`, kind, signature)
	return affected("delete token", res, err)
}

func (s *Store) DeactivateToken(ctx context.Context, kind, signature string) error {
	res, err := s.w(ctx).ExecContext(ctx,
		`UPDATE token SET active = 0 WHERE kind = ? AND signature = ?`, kind, signature)
	return affected("deactivate token", res, err)
}

// MarkRotated only ever records the first rotation, so a refresh token's
// grace window runs from its first use. A second call is not an error; a
// missing record is.
func (s *Store) MarkRotated(ctx context.Context, kind, signature string, at time.Time) error {
	const op = "mark rotated"
	q := s.w(ctx)
	res, err := q.ExecContext(ctx,
		`UPDATE token SET rotated_at = ? WHERE kind = ? AND signature = ? AND rotated_at = 0`,
		micros(at), kind, signature)
	n, err := count(op, res, err)
	if err != nil || n > 0 {
		return err
	}
	var one int
	err = q.QueryRowContext(ctx,
		`SELECT 1 FROM token WHERE kind = ? AND signature = ?`, kind, signature).Scan(&one)
	return wrapErr(op, err)
}

// RevokeRequest deactivates the records of a grant; no kinds means all.
func (s *Store) RevokeRequest(ctx context.Context, requestID string, kinds ...string) error {
	q := `UPDATE token SET active = 0 WHERE request_id = ?`
	args := []any{requestID}
	if len(kinds) > 0 {
		q += ` AND kind IN (` + placeholders(len(kinds)) + `)`
		for _, k := range kinds {
			args = append(args, k)
		}
	}
	_, err := s.w(ctx).ExecContext(ctx, q, args...)
	return wrapErr("revoke request", err)
}

// RevokeSubject deactivates the user's active tokens and counts them.
func (s *Store) RevokeSubject(ctx context.Context, subject string) (int, error) {
	if subject == "" {
		// An empty subject would match every client_credentials token.
		return 0, wrapErr("revoke subject", storage.ErrEmptySubject)
	}
	res, err := s.w(ctx).ExecContext(ctx,
		revokeSubjectSQL, subject)
	return count("revoke subject", res, err)
}

// RevokeSession deactivates the active tokens issued from session sid.
func (s *Store) RevokeSession(ctx context.Context, sid string) (int, error) {
	if sid == "" {
		// An empty sid would match every token not issued from a session.
		return 0, wrapErr("revoke session", storage.ErrEmptySID)
	}
	res, err := s.w(ctx).ExecContext(ctx,
		revokeSessionSQL, sid)
	return count("revoke session", res, err)
}

// RevokeClient deactivates the client's active tokens: its own
// (client_credentials, no subject) only, or withUsers all of them.
func (s *Store) RevokeClient(ctx context.Context, clientID string, withUsers bool) (int, error) {
	if clientID == "" {
		return 0, wrapErr("revoke client", storage.ErrEmptyClientID)
	}
	q := revokeClientSQL
	if !withUsers {
		q += ` AND subject = ''`
	}
	res, err := s.w(ctx).ExecContext(ctx, q, clientID)
	return count("revoke client", res, err)
}

// ClientSubjects reads the client's active tokens through the client_id
// index (migration 0007).
func (s *Store) ClientSubjects(ctx context.Context, clientID string) ([]string, error) {
	out, err := queryStrings(ctx, s.r(ctx), `
		SELECT DISTINCT subject FROM token
		WHERE client_id = ? AND active = 1 AND subject != '' ORDER BY subject`, clientID)
	return out, wrapErr("client subjects", err)
}

// RevokeUserClient deactivates the client's tokens for the user (the
// subject index serves it) and returns the sessions they came from.
func (s *Store) RevokeUserClient(ctx context.Context, subject, clientID string) ([]string, error) {
	const op = "revoke user client"
	switch {
	case subject == "":
		return nil, wrapErr(op, storage.ErrEmptySubject)
	case clientID == "":
		return nil, wrapErr(op, storage.ErrEmptyClientID)
	}
	all, err := queryStrings(ctx, s.w(ctx), `
		UPDATE token SET active = 0
		WHERE subject = ? AND client_id = ? AND active = 1
		RETURNING sid`, subject, clientID)
	var sids []string
	for _, sid := range all {
		if sid != "" && !slices.Contains(sids, sid) {
			sids = append(sids, sid)
		}
	}
	return sids, wrapErr(op, err)
}

// DeleteExpiredTokens deletes records expired at now; a zero ExpiresAt
// never expires.
func (s *Store) DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired tokens", "token",
		"expires_at > 0 AND expires_at <= ?", micros(now))
}

// The revocations repeat "!= ”" so SQLite may use the partial indexes of
// migration 0006 (empty subjects and sids are not indexed).
const (
	revokeSubjectSQL = `UPDATE token SET active = 0 WHERE subject = ? AND subject != '' AND active = 1`
	revokeSessionSQL = `UPDATE token SET active = 0 WHERE sid = ? AND sid != '' AND active = 1`
	revokeClientSQL  = `UPDATE token SET active = 0 WHERE client_id = ? AND active = 1`
)
