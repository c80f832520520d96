package sqlite

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

const sessionColumns = `id_hash, sid, user_id, data, ip, user_agent, created_at, last_seen_at, expires_at`

func scanSession(sc rowScanner) (storage.BrowserSession, error) {
	var bs storage.BrowserSession
	err := sc.Scan(&bs.IDHash, &bs.SID, &bs.UserID, &bs.Data, &bs.IP, &bs.UserAgent,
		timeCol{&bs.CreatedAt}, timeCol{&bs.LastSeenAt}, timeCol{&bs.ExpiresAt})
	return bs, err
}

// mayHoldSession is true for a session before sign-in (no user) and for
// one whose user exists and is not suspended. Writes test it in the same
// statement, so they are ordered with a suspension by the database.
const mayHoldSession = `(?1 = '' OR EXISTS (SELECT 1 FROM user WHERE id = ?1 AND suspended_at = 0))`

func (s *Store) CreateSession(ctx context.Context, bs storage.BrowserSession) error {
	const op = "create session"
	res, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO browser_session (`+sessionColumns+`)
		SELECT ?2, ?3, ?1, ?4, ?5, ?6, ?7, ?8, ?9 WHERE `+mayHoldSession,
		bs.UserID, bs.IDHash, bs.SID, bs.Data, bs.IP, bs.UserAgent,
		micros(bs.CreatedAt), micros(bs.LastSeenAt), micros(bs.ExpiresAt))
	return affected(op, res, err)
}

// UpdateSession never inserts: a session ended while a request that
// loaded it was in flight stays ended when that request saves it.
func (s *Store) UpdateSession(ctx context.Context, bs storage.BrowserSession) error {
	res, err := s.w(ctx).ExecContext(ctx, `
		UPDATE browser_session SET user_id = ?1, data = ?3, ip = ?4, user_agent = ?5,
			last_seen_at = ?6, expires_at = ?7
		WHERE id_hash = ?2 AND `+mayHoldSession,
		bs.UserID, bs.IDHash, bs.Data, bs.IP, bs.UserAgent, micros(bs.LastSeenAt), micros(bs.ExpiresAt))
	return affected("update session", res, err)
}

func (s *Store) GetSession(ctx context.Context, idHash []byte, now time.Time) (storage.BrowserSession, error) {
	bs, err := scanSession(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM browser_session WHERE id_hash = ? AND expires_at > ?`,
		idHash, micros(now)))
	return bs, wrapErr("get session", err)
}

func (s *Store) SessionStands(ctx context.Context, idHash []byte, userID string, now time.Time) error {
	var one int
	err := s.r(ctx).QueryRowContext(ctx, `
		SELECT 1 FROM browser_session
		WHERE id_hash = ?2 AND user_id = ?1 AND expires_at > ?3 AND `+mayHoldSession,
		userID, idHash, micros(now)).Scan(&one)
	return wrapErr("session stands", err)
}

func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM browser_session WHERE id_hash = ?`, idHash)
	return affected("delete session", res, err)
}

// DeleteSessionBySID deletes the session with this public id and returns
// its user ("" for a session not signed in), in one statement that the
// index on sid serves. SIDs are random, so there is at most one; were
// there more, all would go and one's user would be returned.
func (s *Store) DeleteSessionBySID(ctx context.Context, sid string) (string, error) {
	const op = "delete session by sid"
	if sid == "" {
		// An empty sid names no session; it would match any saved without one.
		return "", wrapErr(op, storage.ErrEmptySID)
	}
	var userID string
	err := s.writeRow(ctx,
		`DELETE FROM browser_session WHERE sid = ? RETURNING user_id`, []any{sid}, &userID)
	return userID, wrapErr(op, err)
}

// ListUserSessions lists every session of the user, expired ones included
// until the sweep removes them, oldest first.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]storage.BrowserSession, error) {
	if userID == "" {
		return nil, nil // sessions before sign-in belong to nobody
	}
	rows, err := s.r(ctx).QueryContext(ctx,
		`SELECT `+sessionColumns+` FROM browser_session WHERE user_id = ? ORDER BY created_at, sid`,
		userID)
	if err != nil {
		return nil, wrapErr("list user sessions", err)
	}
	defer rows.Close()
	var out []storage.BrowserSession
	for rows.Next() {
		bs, err := scanSession(rows)
		if err != nil {
			return nil, wrapErr("list user sessions", err)
		}
		out = append(out, bs)
	}
	return out, wrapErr("list user sessions", rows.Err())
}

// DeleteUserSessions deletes and reports in one statement, so a session
// created meanwhile is either deleted and reported or left alone.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) ([]string, error) {
	const op = "delete user sessions"
	if userID == "" {
		// An empty id would match every session not yet signed in.
		return nil, wrapErr(op, storage.ErrEmptyUserID)
	}
	sids, err := queryStrings(ctx, s.w(ctx), `DELETE FROM browser_session WHERE user_id = ? RETURNING sid`, userID)
	return sids, wrapErr(op, err)
}

func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired sessions", "browser_session", "expires_at <= ?", micros(now))
}
