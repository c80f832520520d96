package postgres

import "context"

// Meta: a small key/value table.

func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.q(ctx).QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	return v, wrapErr("get meta", err)
}

func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.q(ctx).Exec(ctx, `
		INSERT INTO meta (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return wrapErr("set meta", err)
}
