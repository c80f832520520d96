package postgres

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

const sessionColumns = `id_hash, sid, user_id, data, ip, user_agent, created_at, last_seen_at, expires_at`

func scanSession(sc rowScanner) (storage.BrowserSession, error) {
	var bs storage.BrowserSession
	err := sc.Scan(&bs.IDHash, &bs.SID, &bs.UserID, &bs.Data, &bs.IP, &bs.UserAgent,
		tsCol{&bs.CreatedAt}, tsCol{&bs.LastSeenAt}, tsCol{&bs.ExpiresAt})
	return bs, err
}

// mayHoldSession is true for a session before sign-in (no user, $1 = ”)
// and for one whose user exists and is not suspended. Writes test it in
// the same statement, and FOR SHARE makes them wait for a transaction
// that is suspending or deleting the user (UpdateUser locks the row FOR
// UPDATE, a delete likewise) and then read the row it left. So a sign-in
// that races a suspension either writes first, and the suspension's
// DeleteUserSessions, a later statement, sees and ends the session; or
// writes after it, and finds the user suspended.
const mayHoldSession = `($1 = '' OR EXISTS (
	SELECT 1 FROM "user" WHERE id = $1 AND suspended_at IS NULL FOR SHARE))`

// CreateSession inserts only if mayHoldSession holds and the id is free.
// When it inserts nothing, a second query tells which: a taken id is
// ErrAlreadyExists, a missing or suspended user ErrNotFound.
func (s *Store) CreateSession(ctx context.Context, bs storage.BrowserSession) error {
	const op = "create session"
	q := s.q(ctx)
	tag, err := q.Exec(ctx, `
		INSERT INTO browser_session (user_id, id_hash, sid, data, ip, user_agent,
			created_at, last_seen_at, expires_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE `+mayHoldSession+`
		ON CONFLICT DO NOTHING`,
		bs.UserID, bs.IDHash, bs.SID, bs.Data, bs.IP, bs.UserAgent,
		ts(bs.CreatedAt), ts(bs.LastSeenAt), ts(bs.ExpiresAt))
	if err != nil || tag.RowsAffected() > 0 {
		return wrapErr(op, err)
	}
	var may bool
	if err := q.QueryRow(ctx, `SELECT `+mayHoldSession, bs.UserID).Scan(&may); err != nil {
		return wrapErr(op, err)
	}
	if may {
		return exists(op)
	}
	return notFound(op)
}

// UpdateSession never inserts: a session ended while a request that
// loaded it was in flight stays ended when that request saves it.
func (s *Store) UpdateSession(ctx context.Context, bs storage.BrowserSession) error {
	tag, err := s.q(ctx).Exec(ctx, `
		UPDATE browser_session SET user_id = $1, data = $3, ip = $4, user_agent = $5,
			last_seen_at = $6, expires_at = $7
		WHERE id_hash = $2 AND `+mayHoldSession,
		bs.UserID, bs.IDHash, bs.Data, bs.IP, bs.UserAgent, ts(bs.LastSeenAt), ts(bs.ExpiresAt))
	return affected("update session", tag, err)
}

func (s *Store) GetSession(ctx context.Context, idHash []byte, now time.Time) (storage.BrowserSession, error) {
	bs, err := scanSession(s.q(ctx).QueryRow(ctx,
		`SELECT `+sessionColumns+` FROM browser_session WHERE id_hash = $1 AND expires_at > $2`+
			s.lock(ctx, forUpdate), idHash, ts(now)))
	return bs, wrapErr("get session", err)
}

// SessionStands reads without FOR SHARE: it leaves nothing behind for a
// suspension to find, so it need not wait for one.
func (s *Store) SessionStands(ctx context.Context, idHash []byte, userID string, now time.Time) error {
	var one int
	err := s.q(ctx).QueryRow(ctx, `
		SELECT 1 FROM browser_session
		WHERE id_hash = $2 AND user_id = $1 AND expires_at > $3 AND ($1 = '' OR EXISTS (
			SELECT 1 FROM "user" WHERE id = $1 AND suspended_at IS NULL))`,
		userID, idHash, ts(now)).Scan(&one)
	return wrapErr("session stands", err)
}

func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM browser_session WHERE id_hash = $1`, idHash)
	return affected("delete session", tag, err)
}

// DeleteSessionBySID deletes the sessions with this public id and returns
// a user of theirs ("" for a session not signed in), in one statement
// that the index on sid serves. SIDs are random, so there is at most one.
func (s *Store) DeleteSessionBySID(ctx context.Context, sid string) (string, error) {
	const op = "delete session by sid"
	if sid == "" {
		// An empty sid names no session; it would match any saved without one.
		return "", wrapErr(op, storage.ErrEmptySID)
	}
	var userID string
	err := s.q(ctx).QueryRow(ctx, `
		WITH ended AS (DELETE FROM browser_session WHERE sid = $1 RETURNING user_id)
		SELECT user_id FROM ended LIMIT 1`, sid).Scan(&userID)
	return userID, wrapErr(op, err)
}

// ListUserSessions lists every session of the user, expired ones included
// until the sweep removes them, oldest first.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]storage.BrowserSession, error) {
	const op = "list user sessions"
	if userID == "" {
		return nil, nil // sessions before sign-in belong to nobody
	}
	rows, err := s.q(ctx).Query(ctx,
		`SELECT `+sessionColumns+` FROM browser_session WHERE user_id = $1 ORDER BY created_at NULLS FIRST, sid COLLATE "C"`,
		userID)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var out []storage.BrowserSession
	for rows.Next() {
		bs, err := scanSession(rows)
		if err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, bs)
	}
	return out, wrapErr(op, rows.Err())
}

// DeleteUserSessions deletes and reports in one statement, so a session
// created meanwhile is either deleted and reported or left alone.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) ([]string, error) {
	const op = "delete user sessions"
	if userID == "" {
		// An empty id would match every session not yet signed in.
		return nil, wrapErr(op, storage.ErrEmptyUserID)
	}
	sids, err := s.queryStrings(ctx, `DELETE FROM browser_session WHERE user_id = $1 RETURNING sid`, userID)
	return sids, wrapErr(op, err)
}

func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired sessions", "browser_session",
		"(expires_at IS NULL OR expires_at <= $1)", ts(now))
}

// queryStrings runs a query of one text column and returns its values.
func (s *Store) queryStrings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.q(ctx).Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
