package postgres

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

func (s *Store) CreateLink(ctx context.Context, l storage.Link) error {
	const op = "create link"
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO link (user_id, token_hash, purpose, sid, device_id, created_at, expires_at, used_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE `+userExists+`
		ON CONFLICT DO NOTHING`,
		l.UserID, l.TokenHash, l.Purpose, l.SID, l.DeviceID, ts(l.CreatedAt), ts(l.ExpiresAt), ts(l.UsedAt))
	if err != nil || tag.RowsAffected() > 0 {
		return wrapErr(op, err)
	}
	return s.missingUser(ctx, op, l.UserID)
}

const linkColumns = `user_id, sid, device_id, created_at, expires_at, used_at`

func scanLink(sc rowScanner, l *storage.Link) error {
	return sc.Scan(&l.UserID, &l.SID, &l.DeviceID, tsCol{&l.CreatedAt}, tsCol{&l.ExpiresAt}, tsCol{&l.UsedAt})
}

// GetLink reads a usable link without using it up.
func (s *Store) GetLink(ctx context.Context, purpose string, tokenHash []byte, now time.Time) (storage.Link, error) {
	l := storage.Link{TokenHash: tokenHash, Purpose: purpose}
	err := scanLink(s.q(ctx).QueryRow(ctx, `
		SELECT `+linkColumns+` FROM link
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`+s.lock(ctx, forUpdate),
		tokenHash, purpose, ts(now)), &l)
	if err != nil {
		return storage.Link{}, wrapErr("get link", err)
	}
	return l, nil
}

// ConsumeLink is one conditional UPDATE … RETURNING: of two requests
// racing with the same link, the second waits for the first's row lock and
// then re-checks used_at on the row the first left, so exactly one wins.
func (s *Store) ConsumeLink(ctx context.Context, purpose string, tokenHash []byte, now time.Time) (storage.Link, error) {
	l := storage.Link{TokenHash: tokenHash, Purpose: purpose}
	err := scanLink(s.q(ctx).QueryRow(ctx, `
		UPDATE link SET used_at = $4
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
		RETURNING `+linkColumns,
		tokenHash, purpose, ts(now), ts(now)), &l)
	if err != nil {
		return storage.Link{}, wrapErr("consume link", err)
	}
	return l, nil
}

func (s *Store) DeleteExpiredLinks(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired links", "link",
		"(expires_at IS NULL OR expires_at <= $1)", ts(now))
}

func (s *Store) DeleteUserLinks(ctx context.Context, userID, purpose string) (int, error) {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM link WHERE user_id = $1 AND purpose = $2`, userID, purpose)
	if err != nil {
		return 0, wrapErr("delete user links", err)
	}
	return int(tag.RowsAffected()), nil
}
