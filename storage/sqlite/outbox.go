package sqlite

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

// EnqueueOutbox queues m and returns its id. Called with the context of
// the transaction making the change, the message commits or rolls back
// with it. m.ID is ignored: ids are assigned by the database.
func (s *Store) EnqueueOutbox(ctx context.Context, m storage.OutboxMessage) (int64, error) {
	var id int64
	err := s.writeRow(ctx, `
		INSERT INTO outbox_message (kind, target, payload, attempts, next_attempt_at,
			last_error, created_at, delivered_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		[]any{m.Kind, m.Target, m.Payload, m.Attempts, micros(m.NextAttemptAt),
			m.LastError, micros(m.CreatedAt), micros(m.DeliveredAt)}, &id)
	return id, wrapErr("enqueue outbox", err)
}

// ClaimOutbox takes the undelivered messages due at now, earliest first,
// and leases them until leaseUntil, in one write transaction: the single
// writer orders it with every other claim. limit <= 0 means
// storage.ClaimOutboxDefault.
func (s *Store) ClaimOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]storage.OutboxMessage, error) {
	const op = "claim outbox"
	if limit <= 0 {
		limit = storage.ClaimOutboxDefault
	}
	var out []storage.OutboxMessage
	err := s.InTx(ctx, func(ctx context.Context) error {
		out = nil
		// "delivered_at = 0" matches the partial index outbox_message_due.
		rows, err := s.w(ctx).QueryContext(ctx, `
			SELECT id, kind, target, payload, attempts, next_attempt_at, last_error,
				created_at, delivered_at
			FROM outbox_message
			WHERE delivered_at = 0 AND next_attempt_at <= ?
			ORDER BY next_attempt_at, id
			LIMIT ?`, micros(now), limit)
		if err != nil {
			return wrapErr(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var m storage.OutboxMessage
			if err := rows.Scan(&m.ID, &m.Kind, &m.Target, &m.Payload, &m.Attempts,
				timeCol{&m.NextAttemptAt}, &m.LastError, timeCol{&m.CreatedAt}, timeCol{&m.DeliveredAt}); err != nil {
				return wrapErr(op, err)
			}
			out = append(out, m)
		}
		if err := rows.Err(); err != nil || len(out) == 0 {
			return wrapErr(op, err)
		}
		// The same rows: nothing else writes inside this transaction.
		_, err = s.w(ctx).ExecContext(ctx, `
			UPDATE outbox_message SET next_attempt_at = ?
			WHERE id IN (SELECT id FROM outbox_message
				WHERE delivered_at = 0 AND next_attempt_at <= ?
				ORDER BY next_attempt_at, id
				LIMIT ?)`, micros(leaseUntil), micros(now), limit)
		return wrapErr(op, err)
	})
	return out, err
}

func (s *Store) MarkOutboxDelivered(ctx context.Context, id int64, at time.Time) error {
	res, err := s.w(ctx).ExecContext(ctx,
		`UPDATE outbox_message SET delivered_at = ? WHERE id = ?`, micros(at), id)
	return affected("mark outbox delivered", res, err)
}

// MarkOutboxFailed counts the attempt and schedules the next one.
func (s *Store) MarkOutboxFailed(ctx context.Context, id int64, next time.Time, lastError string) error {
	res, err := s.w(ctx).ExecContext(ctx, `
		UPDATE outbox_message
		SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
		WHERE id = ?`, micros(next), lastError, id)
	return affected("mark outbox failed", res, err)
}
