package sqlite

import (
	"context"
	"time"
)

// Attempts: one row per failed sign-in step, counted over a window.

func (s *Store) RecordAttempt(ctx context.Context, scope, key string, at time.Time) error {
	_, err := s.w(ctx).ExecContext(ctx,
		`INSERT INTO attempt (scope, key, at) VALUES (?, ?, ?)`, scope, key, micros(at))
	return wrapErr("record attempt", err)
}

// CountAttempts counts the attempts at or after since.
func (s *Store) CountAttempts(ctx context.Context, scope, key string, since time.Time) (int, error) {
	var n int
	err := s.r(ctx).QueryRowContext(ctx,
		`SELECT count(*) FROM attempt WHERE scope = ? AND key = ? AND at >= ?`,
		scope, key, micros(since)).Scan(&n)
	return n, wrapErr("count attempts", err)
}

func (s *Store) ClearAttempts(ctx context.Context, scope, key string) error {
	_, err := s.w(ctx).ExecContext(ctx,
		`DELETE FROM attempt WHERE scope = ? AND key = ?`, scope, key)
	return wrapErr("clear attempts", err)
}

func (s *Store) DeleteAttemptsBefore(ctx context.Context, t time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete attempts", "attempt", "at < ?", micros(t))
}
