package postgres

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

// Attempts: one row per failed sign-in step, counted over a window.

func (s *Store) RecordAttempt(ctx context.Context, scope, key string, at time.Time) error {
	_, err := s.q(ctx).Exec(ctx,
		`INSERT INTO attempt (scope, key, at) VALUES ($1, $2, $3)`, scope, storage.ValidText(key), ts(at))
	return wrapErr("record attempt", err)
}

// CountAttempts counts the attempts at or after since.
func (s *Store) CountAttempts(ctx context.Context, scope, key string, since time.Time) (int, error) {
	q, args := `SELECT count(*) FROM attempt WHERE scope = $1 AND key = $2`, []any{scope, storage.ValidText(key)}
	if !since.IsZero() { // the zero time, stored as NULL, is before every other
		q, args = q+` AND at >= $3`, append(args, ts(since))
	}
	var n int
	err := s.q(ctx).QueryRow(ctx, q, args...).Scan(&n)
	return n, wrapErr("count attempts", err)
}

func (s *Store) ClearAttempts(ctx context.Context, scope, key string) error {
	_, err := s.q(ctx).Exec(ctx, `DELETE FROM attempt WHERE scope = $1 AND key = $2`, scope, storage.ValidText(key))
	return wrapErr("clear attempts", err)
}

func (s *Store) DeleteAttemptsBefore(ctx context.Context, t time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete attempts", "attempt", "(at IS NULL OR at < $1)", ts(t))
}
