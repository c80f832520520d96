package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keygate/keygate/storage"
)

// Token records are the hot path: every authorization code, token and
// refresh writes one and reads a few. Each method is one statement on a
// primary key or an index (and a revocation one round trip), on
// statements pgx prepares once per connection.
//
// # Revocations and the tokens being issued
//
// At READ COMMITTED a revoking UPDATE sees the tokens committed when it
// began. A token being issued at that moment by another transaction —
// which read its code or refresh token, or its user, before the
// revocation — would be committed after it and stay active. SQLite's one
// writer cannot interleave them; here advisory locks order them. Inside a
// transaction, CreateToken takes a shared transaction-level advisory lock
// on every key a revocation can name the record by (its subject, browser
// session, client and request), and each revocation takes the exclusive
// lock on its key in a statement of its own before its UPDATE. So a
// revocation waits for the transactions issuing tokens under its key to
// commit, and then its UPDATE, a later statement, sees their tokens; and a
// transaction that issues a token after a revocation has begun waits for
// it. A token written outside a transaction read nothing first, so it
// needs no lock: committed after a revocation, it is simply newer than it.
//
// The locks are taken in one order everywhere, the key's advisory lock
// before the row it names, so that a kill and the requests it races never
// wait for each other in a circle (which the server would end by rolling
// back the kill, again and again under a steady load of refreshes):
// inside a transaction GetToken takes the shared locks of the token's keys
// before locking the token, GetUser and GetClient the shared lock of
// their key before the row, and UpdateUser and UpdateClient the exclusive
// one before the row (see keyLocked). A suspension then waits for the
// refreshes in flight to commit, and the refreshes that come after it
// wait for the suspension, holding nothing it needs.

const tokenColumns = `kind, signature, request_id, client_id, subject, sid, active,
	rotated_at, access_signature, request, requested_at, expires_at`

// Revocation lock keys: the kind of key, a colon, the key.
func lockKey(kind, key string) string { return kind + ":" + key }

func tokenLockKeys(t storage.TokenRecord) []string {
	keys := []string{lockKey("client", t.ClientID), lockKey("request", t.RequestID)}
	if t.Subject != "" {
		keys = append(keys, lockKey("subject", t.Subject))
	}
	if t.SID != "" {
		keys = append(keys, lockKey("sid", t.SID))
	}
	return keys
}

// CreateToken inserts the record unless its kind and signature are taken
// (ErrAlreadyExists, without an error in the database). Inside a
// transaction the same statement takes the shared revocation locks.
func (s *Store) CreateToken(ctx context.Context, t storage.TokenRecord) error {
	args := []any{t.Kind, t.Signature, t.RequestID, t.ClientID, t.Subject, t.SID, t.Active,
		ts(t.RotatedAt), t.AccessSignature, t.Request, ts(t.RequestedAt), ts(t.ExpiresAt)}
	values := `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
	if s.txFrom(ctx) != nil {
		values = `SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
			FROM (SELECT count(pg_advisory_xact_lock_shared(hashtextextended(k, 0)))
				FROM unnest($13::text[]) AS k) AS locked`
		args = append(args, tokenLockKeys(t))
	}
	tag, err := s.q(ctx).Exec(ctx, `INSERT INTO token (`+tokenColumns+`) `+values+` ON CONFLICT DO NOTHING`, args...)
	return inserted("create token", tag, err)
}

// GetToken locks the record inside a transaction (FOR UPDATE): a code
// being exchanged or a refresh token being rotated is read in order to be
// changed, and a second exchange of it waits, then reads it as the first
// left it.
func (s *Store) GetToken(ctx context.Context, kind, signature string) (storage.TokenRecord, error) {
	t := storage.TokenRecord{Kind: kind, Signature: signature}
	const query = `
		SELECT request_id, client_id, subject, sid, active, rotated_at,
			access_signature, request, requested_at, expires_at
		FROM token WHERE kind = $1 AND signature = $2`
	scan := func(r pgx.Row) error {
		return r.Scan(&t.RequestID, &t.ClientID, &t.Subject, &t.SID, &t.Active, tsCol{&t.RotatedAt},
			&t.AccessSignature, &t.Request, tsCol{&t.RequestedAt}, tsCol{&t.ExpiresAt})
	}
	var err error
	if s.txFrom(ctx) == nil {
		err = scan(s.q(ctx).QueryRow(ctx, query, kind, signature))
	} else {
		// The shared locks of the keys tokenLockKeys names, read off the
		// row without locking it, then the row.
		err = s.afterLock(ctx, `
			SELECT count(pg_advisory_xact_lock_shared(hashtextextended(k, 0)))
			FROM token t, unnest(ARRAY['client:' || t.client_id, 'request:' || t.request_id,
				CASE WHEN t.subject <> '' THEN 'subject:' || t.subject END,
				CASE WHEN t.sid <> '' THEN 'sid:' || t.sid END]) AS k
			WHERE t.kind = $1 AND t.signature = $2 AND k IS NOT NULL`, []any{kind, signature},
			scan, query+forUpdate, kind, signature)
	}
	if err != nil {
		return storage.TokenRecord{}, wrapErr("get token", err)
	}
	return t, nil
}

func (s *Store) DeleteToken(ctx context.Context, kind, signature string) error {
	tag, err := s.q(ctx).Exec(ctx,
		`DELETE FROM token WHERE kind = $1 AND signature = $2`, kind, signature)
	return affected("delete token", tag, err)
}

func (s *Store) DeactivateToken(ctx context.Context, kind, signature string) error {
	tag, err := s.q(ctx).Exec(ctx,
		`UPDATE token SET active = false WHERE kind = $1 AND signature = $2`, kind, signature)
	return affected("deactivate token", tag, err)
}

// MarkRotated only ever records the first rotation, so a refresh token's
// grace window runs from its first use. A second call is not an error; a
// missing record is.
func (s *Store) MarkRotated(ctx context.Context, kind, signature string, at time.Time) error {
	const op = "mark rotated"
	q := s.q(ctx)
	tag, err := q.Exec(ctx,
		`UPDATE token SET rotated_at = $3 WHERE kind = $1 AND signature = $2 AND rotated_at IS NULL`,
		kind, signature, ts(at))
	n, err := count(op, tag, err)
	if err != nil || n > 0 {
		return err
	}
	var one int
	return wrapErr(op, q.QueryRow(ctx,
		`SELECT 1 FROM token WHERE kind = $1 AND signature = $2`, kind, signature).Scan(&one))
}

// keyLocked runs scan on the row query returns once the advisory lock of
// key is held: shared for a reader of the row, exclusive for a writer (see
// the top of this file). Outside a transaction it just runs the query.
func (s *Store) keyLocked(ctx context.Context, key string, exclusive bool, scan func(pgx.Row) error, query string, args ...any) error {
	if s.txFrom(ctx) == nil {
		return scan(s.q(ctx).QueryRow(ctx, query, args...))
	}
	lock := `SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))`
	if exclusive {
		lock = `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`
	}
	return s.afterLock(ctx, lock, []any{key}, scan, query, args...)
}

// afterLock runs the locking statement, then scans the row of query, in
// one round trip: the two are pipelined, and the query's snapshot is taken
// once the locks are held.
func (s *Store) afterLock(ctx context.Context, lock string, lockArgs []any, scan func(pgx.Row) error, query string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue(lock, lockArgs...)
	b.Queue(query, args...)
	br := s.q(ctx).SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = scan(br.QueryRow())
	}
	return errors.Join(err, br.Close())
}

// revoke runs a revoking statement after taking the exclusive revocation
// lock on key (see the top of this file), in one round trip: the lock and
// the statement are pipelined, and the statement's snapshot is taken once
// the lock is held. Outside a transaction both run in one implicit
// transaction, which holds the lock until the statement commits.
func (s *Store) revoke(ctx context.Context, key string, fn func(br pgx.BatchResults) error, sql string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key)
	b.Queue(sql, args...)
	br := s.q(ctx).SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = fn(br)
	}
	return errors.Join(err, br.Close())
}

// revokeCount runs a revoking UPDATE under key's lock and counts its rows.
func (s *Store) revokeCount(ctx context.Context, op, key, sql string, args ...any) (int, error) {
	var tag pgconn.CommandTag
	err := s.revoke(ctx, key, func(br pgx.BatchResults) error {
		var err error
		tag, err = br.Exec()
		return err
	}, sql, args...)
	return count(op, tag, err)
}

// RevokeRequest deactivates the records of a grant; no kinds means all.
func (s *Store) RevokeRequest(ctx context.Context, requestID string, kinds ...string) error {
	q := `UPDATE token SET active = false WHERE request_id = $1`
	args := []any{requestID}
	if len(kinds) > 0 {
		q += ` AND kind = ANY ($2)`
		args = append(args, kinds)
	}
	_, err := s.revokeCount(ctx, "revoke request", lockKey("request", requestID), q, args...)
	return err
}

// RevokeSubject deactivates the user's active tokens and counts them.
func (s *Store) RevokeSubject(ctx context.Context, subject string) (int, error) {
	if subject == "" {
		// An empty subject would match every client_credentials token.
		return 0, wrapErr("revoke subject", storage.ErrEmptySubject)
	}
	return s.revokeCount(ctx, "revoke subject", lockKey("subject", subject),
		`UPDATE token SET active = false WHERE subject = $1 AND subject <> '' AND active`, subject)
}

// RevokeSession deactivates the active tokens issued from session sid.
func (s *Store) RevokeSession(ctx context.Context, sid string) (int, error) {
	if sid == "" {
		// An empty sid would match every token not issued from a session.
		return 0, wrapErr("revoke session", storage.ErrEmptySID)
	}
	return s.revokeCount(ctx, "revoke session", lockKey("sid", sid),
		`UPDATE token SET active = false WHERE sid = $1 AND sid <> '' AND active`, sid)
}

// RevokeClient deactivates the client's active tokens: its own
// (client_credentials, no subject) only, or withUsers all of them.
func (s *Store) RevokeClient(ctx context.Context, clientID string, withUsers bool) (int, error) {
	if clientID == "" {
		return 0, wrapErr("revoke client", storage.ErrEmptyClientID)
	}
	q := `UPDATE token SET active = false WHERE client_id = $1 AND active`
	if !withUsers {
		q += ` AND subject = ''`
	}
	return s.revokeCount(ctx, "revoke client", lockKey("client", clientID), q, clientID)
}

// ClientSubjects lists the users the client holds active tokens for.
func (s *Store) ClientSubjects(ctx context.Context, clientID string) ([]string, error) {
	out, err := s.queryStrings(ctx, `
		SELECT subject FROM token
		WHERE client_id = $1 AND active AND subject <> ''
		GROUP BY subject ORDER BY subject COLLATE "C"`, clientID)
	return out, wrapErr("client subjects", err)
}

// RevokeUserClient deactivates the client's tokens for the user (under the
// user's revocation lock) and returns the sessions they came from.
func (s *Store) RevokeUserClient(ctx context.Context, subject, clientID string) ([]string, error) {
	const op = "revoke user client"
	switch {
	case subject == "":
		return nil, wrapErr(op, storage.ErrEmptySubject)
	case clientID == "":
		return nil, wrapErr(op, storage.ErrEmptyClientID)
	}
	var sids []string
	err := s.revoke(ctx, lockKey("subject", subject), func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		sids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}, `
		WITH revoked AS (
			UPDATE token SET active = false
			WHERE subject = $1 AND client_id = $2 AND active
			RETURNING sid)
		SELECT sid FROM revoked WHERE sid <> '' GROUP BY sid ORDER BY sid COLLATE "C"`, subject, clientID)
	return sids, wrapErr(op, err)
}

// DeleteExpiredTokens deletes records expired at now; a zero (NULL)
// ExpiresAt never expires.
func (s *Store) DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired tokens", "token", "expires_at <= $1", ts(now))
}
