package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
)

// Every change to the signing keys sends a notice (changes.go), so every
// replica's keyring reloads at once (storage.ChangeWatcher): a rotation
// on one is served by all.
func (s *Store) keysNotice() string { return s.notice(storage.TopicSigningKeys, "") }

func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO signing_key (kid, alg, sealed, public_jwk, created_at, retired_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT DO NOTHING`+notify(7),
		k.KID, k.Alg, k.Sealed, k.PublicJWK, ts(k.CreatedAt), ts(k.RetiredAt), s.keysNotice())
	return inserted("create signing key", tag, err)
}

// signingKeysLock is the key of the transaction-level advisory lock a
// transaction takes when it lists the signing keys ("kg" "sk" in ASCII).
const signingKeysLock int64 = 0x6b67_736b

// ListSigningKeys lists every key, oldest first. Inside a transaction it
// first takes the signing keys' lock, in a statement of its own so that
// the list is read after any transaction that held the lock committed:
// replicas starting at once each check for missing keys and create them
// (keys.EnsureSigningKeys), and only the first may find none.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	const op = "list signing keys"
	const list = `
		SELECT kid, alg, sealed, public_jwk, created_at, retired_at
		FROM signing_key ORDER BY created_at NULLS FIRST, kid COLLATE "C"`
	var rows pgx.Rows
	if s.txFrom(ctx) != nil {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, signingKeysLock)
		b.Queue(list)
		br := s.q(ctx).SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return nil, wrapErr(op, err)
		}
		var err error
		if rows, err = br.Query(); err != nil {
			return nil, wrapErr(op, err)
		}
	} else {
		var err error
		if rows, err = s.q(ctx).Query(ctx, list); err != nil {
			return nil, wrapErr(op, err)
		}
	}
	defer rows.Close()
	var out []storage.SigningKey
	for rows.Next() {
		var k storage.SigningKey
		if err := rows.Scan(&k.KID, &k.Alg, &k.Sealed, &k.PublicJWK,
			tsCol{&k.CreatedAt}, tsCol{&k.RetiredAt}); err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, k)
	}
	return out, wrapErr(op, rows.Err())
}

func (s *Store) RetireSigningKeys(ctx context.Context, alg string, at time.Time) error {
	_, err := s.q(ctx).Exec(ctx,
		`UPDATE signing_key SET retired_at = $2 WHERE alg = $1 AND retired_at IS NULL`+notify(3),
		alg, ts(at), s.keysNotice())
	return wrapErr("retire signing keys", err)
}

func (s *Store) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM signing_key WHERE retired_at < $1`+notify(2),
		ts(t), s.keysNotice())
	return count("delete retired signing keys", tag, err)
}
