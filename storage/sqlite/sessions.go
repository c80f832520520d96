package sqlite

import (
	"context"
	"errors"
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

func (s *Store) PutSession(ctx context.Context, bs storage.BrowserSession) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO browser_session (`+sessionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id_hash) DO UPDATE SET
			sid = excluded.sid, user_id = excluded.user_id, data = excluded.data,
			ip = excluded.ip, user_agent = excluded.user_agent,
			created_at = excluded.created_at, last_seen_at = excluded.last_seen_at,
			expires_at = excluded.expires_at`,
		bs.IDHash, bs.SID, bs.UserID, bs.Data, bs.IP, bs.UserAgent,
		micros(bs.CreatedAt), micros(bs.LastSeenAt), micros(bs.ExpiresAt))
	return wrapErr("put session", err)
}

func (s *Store) GetSession(ctx context.Context, idHash []byte, now time.Time) (storage.BrowserSession, error) {
	bs, err := scanSession(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM browser_session WHERE id_hash = ? AND expires_at > ?`,
		idHash, micros(now)))
	return bs, wrapErr("get session", err)
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
		return "", wrapErr(op, errEmptySID)
	}
	var userID string
	err := s.w(ctx).QueryRowContext(ctx,
		`DELETE FROM browser_session WHERE sid = ? RETURNING user_id`, sid).Scan(&userID)
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

var errEmptyUser = errors.New("empty user id")

// DeleteUserSessions deletes and reports in one statement, so a session
// created meanwhile is either deleted and reported or left alone.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) ([]string, error) {
	const op = "delete user sessions"
	if userID == "" {
		// An empty id would match every session not yet signed in.
		return nil, wrapErr(op, errEmptyUser)
	}
	rows, err := s.w(ctx).QueryContext(ctx,
		`DELETE FROM browser_session WHERE user_id = ? RETURNING sid`, userID)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var sids []string
	for rows.Next() {
		var sid string
		if err := rows.Scan(&sid); err != nil {
			return nil, wrapErr(op, err)
		}
		sids = append(sids, sid)
	}
	return sids, wrapErr(op, rows.Err())
}

func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired sessions", "browser_session", "expires_at <= ?", micros(now))
}
