package sqlite

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO signing_key (kid, alg, sealed, public_jwk, created_at, retired_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		k.KID, k.Alg, k.Sealed, k.PublicJWK, micros(k.CreatedAt), micros(k.RetiredAt))
	return wrapErr("create signing key", err)
}

// ListSigningKeys lists every key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	const op = "list signing keys"
	rows, err := s.r(ctx).QueryContext(ctx, `
		SELECT kid, alg, sealed, public_jwk, created_at, retired_at
		FROM signing_key ORDER BY created_at, kid`)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var out []storage.SigningKey
	for rows.Next() {
		var k storage.SigningKey
		if err := rows.Scan(&k.KID, &k.Alg, &k.Sealed, &k.PublicJWK,
			timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt}); err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, k)
	}
	return out, wrapErr(op, rows.Err())
}

func (s *Store) RetireSigningKeys(ctx context.Context, alg string, at time.Time) error {
	_, err := s.w(ctx).ExecContext(ctx,
		`UPDATE signing_key SET retired_at = ? WHERE alg = ? AND retired_at = 0`, micros(at), alg)
	return wrapErr("retire signing keys", err)
}

func (s *Store) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	res, err := s.w(ctx).ExecContext(ctx,
		`DELETE FROM signing_key WHERE retired_at > 0 AND retired_at < ?`, micros(t))
	return count("delete retired signing keys", res, err)
}
