package sqlite

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

func (s *Store) CreateLink(ctx context.Context, l storage.Link) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO link (token_hash, purpose, user_id, sid, device_id, created_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		l.TokenHash, l.Purpose, l.UserID, l.SID, l.DeviceID, micros(l.CreatedAt), micros(l.ExpiresAt), micros(l.UsedAt))
	return wrapErr("create link", err)
}

const linkColumns = `user_id, sid, device_id, created_at, expires_at, used_at`

func scanLink(sc rowScanner, l *storage.Link) error {
	return sc.Scan(&l.UserID, &l.SID, &l.DeviceID, timeCol{&l.CreatedAt}, timeCol{&l.ExpiresAt}, timeCol{&l.UsedAt})
}

// GetLink reads a usable link without using it up.
func (s *Store) GetLink(ctx context.Context, purpose string, tokenHash []byte, now time.Time) (storage.Link, error) {
	l := storage.Link{TokenHash: tokenHash, Purpose: purpose}
	err := scanLink(s.r(ctx).QueryRowContext(ctx, `
		SELECT `+linkColumns+` FROM link
		WHERE token_hash = ? AND purpose = ? AND used_at = 0 AND expires_at > ?`,
		tokenHash, purpose, micros(now)), &l)
	if err != nil {
		return storage.Link{}, wrapErr("get link", err)
	}
	return l, nil
}

// ConsumeLink is one conditional UPDATE … RETURNING: two requests racing
// with the same link cannot both see it unused.
func (s *Store) ConsumeLink(ctx context.Context, purpose string, tokenHash []byte, now time.Time) (storage.Link, error) {
	l := storage.Link{TokenHash: tokenHash, Purpose: purpose}
	err := scanLink(s.w(ctx).QueryRowContext(ctx, `
		UPDATE link SET used_at = ?
		WHERE token_hash = ? AND purpose = ? AND used_at = 0 AND expires_at > ?
		RETURNING `+linkColumns,
		micros(now), tokenHash, purpose, micros(now)), &l)
	if err != nil {
		return storage.Link{}, wrapErr("consume link", err)
	}
	return l, nil
}

func (s *Store) DeleteExpiredLinks(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired links", "link", "expires_at <= ?", micros(now))
}

func (s *Store) DeleteUserLinks(ctx context.Context, userID, purpose string) (int, error) {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM link WHERE user_id = ? AND purpose = ?`, userID, purpose)
	return count("delete user links", res, err)
}
