package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate/storage"
)

const flowColumns = `id, session_hash, client_id, query, state, user_id, required_acr,
	max_age, force_login, acr, amr, auth_time, reasons, created_at, expires_at`

func scanFlow(sc rowScanner) (storage.Flow, error) {
	var f storage.Flow
	var maxAge int64
	err := sc.Scan(&f.ID, &f.SessionHash, &f.ClientID, &f.Query, &f.State, &f.UserID,
		&f.RequiredACR, &maxAge, &f.ForceLogin, &f.ACR, &f.AMR,
		tsCol{&f.AuthTime}, &f.Reasons, tsCol{&f.CreatedAt}, tsCol{&f.ExpiresAt})
	f.MaxAge = time.Duration(maxAge)
	nilEmpty(&f.AMR, &f.Reasons)
	return f, err
}

// flowArgs are f's values in flowColumns order ($1 is the id).
func flowArgs(f storage.Flow) []any {
	return []any{f.ID, f.SessionHash, f.ClientID, f.Query, f.State, f.UserID, f.RequiredACR,
		int64(f.MaxAge), f.ForceLogin, f.ACR, list(f.AMR), ts(f.AuthTime),
		list(f.Reasons), ts(f.CreatedAt), ts(f.ExpiresAt)}
}

func (s *Store) CreateFlow(ctx context.Context, f storage.Flow) error {
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO flow (`+flowColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT DO NOTHING`,
		flowArgs(f)...)
	return inserted("create flow", tag, err)
}

func (s *Store) GetFlow(ctx context.Context, id string, now time.Time) (storage.Flow, error) {
	if !storage.Storable(id) {
		return storage.Flow{}, fmt.Errorf("get flow: %w", storage.ErrNotFound)
	}
	f, err := scanFlow(s.q(ctx).QueryRow(ctx,
		`SELECT `+flowColumns+` FROM flow WHERE id = $1 AND expires_at > $2`+s.lock(ctx, forUpdate),
		id, ts(now)))
	return f, wrapErr("get flow", err)
}

// UpdateFlow locks the row (FOR UPDATE) before fn sees it, as UpdateUser
// does: two requests advancing one flow queue, and the second's fn sees
// the state the first left. It does not check expiry: the caller read the
// flow with GetFlow just before.
func (s *Store) UpdateFlow(ctx context.Context, id string, fn func(f *storage.Flow) error) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		f, err := scanFlow(s.q(ctx).QueryRow(ctx,
			`SELECT `+flowColumns+` FROM flow WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return wrapErr("update flow", err)
		}
		if err := fn(&f); err != nil {
			return err
		}
		f.ID = id // the row's identity; a change by fn is ignored
		_, err = s.q(ctx).Exec(ctx, `
			UPDATE flow SET session_hash = $2, client_id = $3, query = $4, state = $5,
				user_id = $6, required_acr = $7, max_age = $8, force_login = $9, acr = $10,
				amr = $11, auth_time = $12, reasons = $13, created_at = $14, expires_at = $15
			WHERE id = $1`,
			flowArgs(f)...)
		return wrapErr("update flow", err)
	})
}

func (s *Store) DeleteFlow(ctx context.Context, id string) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM flow WHERE id = $1`, id)
	return affected("delete flow", tag, err)
}

func (s *Store) DeleteExpiredFlows(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired flows", "flow",
		"(expires_at IS NULL OR expires_at <= $1)", ts(now))
}
