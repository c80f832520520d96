package sqlite

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

const flowColumns = `id, session_hash, client_id, query, state, user_id, required_acr,
	max_age, force_login, acr, amr, auth_time, reasons, created_at, expires_at`

func scanFlow(sc rowScanner) (storage.Flow, error) {
	var f storage.Flow
	var maxAge int64
	err := sc.Scan(&f.ID, &f.SessionHash, &f.ClientID, &f.Query, &f.State, &f.UserID,
		&f.RequiredACR, &maxAge, &f.ForceLogin, &f.ACR, listCol{&f.AMR},
		timeCol{&f.AuthTime}, listCol{&f.Reasons}, timeCol{&f.CreatedAt}, timeCol{&f.ExpiresAt})
	f.MaxAge = time.Duration(maxAge)
	return f, err
}

// flowArgs are f's values in flowColumns order but with id last, so one
// list serves INSERT and UPDATE … WHERE id = ?.
func flowArgs(f storage.Flow) []any {
	return []any{f.SessionHash, f.ClientID, f.Query, f.State, f.UserID, f.RequiredACR,
		int64(f.MaxAge), f.ForceLogin, f.ACR, listJSON(f.AMR), micros(f.AuthTime),
		listJSON(f.Reasons), micros(f.CreatedAt), micros(f.ExpiresAt), f.ID}
}

func (s *Store) CreateFlow(ctx context.Context, f storage.Flow) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO flow (session_hash, client_id, query, state, user_id, required_acr,
			max_age, force_login, acr, amr, auth_time, reasons, created_at, expires_at, id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		flowArgs(f)...)
	return wrapErr("create flow", err)
}

func (s *Store) GetFlow(ctx context.Context, id string, now time.Time) (storage.Flow, error) {
	f, err := scanFlow(s.r(ctx).QueryRowContext(ctx,
		`SELECT `+flowColumns+` FROM flow WHERE id = ? AND expires_at > ?`, id, micros(now)))
	return f, wrapErr("get flow", err)
}

// UpdateFlow loads, applies fn and writes in one write transaction; see
// UpdateUser for why fn runs only once. It does not check expiry: the
// caller read the flow with GetFlow just before.
func (s *Store) UpdateFlow(ctx context.Context, id string, fn func(f *storage.Flow) error) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		f, err := scanFlow(s.w(ctx).QueryRowContext(ctx,
			`SELECT `+flowColumns+` FROM flow WHERE id = ?`, id))
		if err != nil {
			return wrapErr("update flow", err)
		}
		if err := fn(&f); err != nil {
			return err
		}
		f.ID = id // the row's identity; a change by fn is ignored
		_, err = s.w(ctx).ExecContext(ctx, `
			UPDATE flow SET session_hash = ?, client_id = ?, query = ?, state = ?,
				user_id = ?, required_acr = ?, max_age = ?, force_login = ?, acr = ?,
				amr = ?, auth_time = ?, reasons = ?, created_at = ?, expires_at = ?
			WHERE id = ?`,
			flowArgs(f)...)
		return wrapErr("update flow", err)
	})
}

func (s *Store) DeleteFlow(ctx context.Context, id string) error {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM flow WHERE id = ?`, id)
	return affected("delete flow", res, err)
}

func (s *Store) DeleteExpiredFlows(ctx context.Context, now time.Time) (int, error) {
	return s.deleteBatched(ctx, "delete expired flows", "flow", "expires_at <= ?", micros(now))
}
