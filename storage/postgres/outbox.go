package postgres

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
	err := s.q(ctx).QueryRow(ctx, `
		INSERT INTO outbox_message (kind, target, payload, attempts, next_attempt_at,
			last_error, created_at, delivered_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING id`,
		m.Kind, m.Target, m.Payload, m.Attempts, ts(m.NextAttemptAt),
		m.LastError, ts(m.CreatedAt), ts(m.DeliveredAt)).Scan(&id)
	return id, wrapErr("enqueue outbox", err)
}

// DueOutbox lists undelivered messages due at now, earliest first; limit
// <= 0 means storage.DueOutboxDefault. A zero NextAttemptAt is due.
//
// The messages are locked FOR UPDATE SKIP LOCKED: called inside a
// transaction, they stay locked until it ends, and a DueOutbox of another
// replica meanwhile skips them rather than waiting. So deliverers that
// each take a batch, deliver it and mark it in one transaction never send
// a message twice. Outside a transaction the locks end with the
// statement, and two deliverers polling at once may both read a message.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]storage.OutboxMessage, error) {
	const op = "due outbox"
	if limit <= 0 {
		limit = storage.DueOutboxDefault
	}
	// "delivered_at IS NULL" matches the partial index outbox_message_due.
	rows, err := s.q(ctx).Query(ctx, `
		SELECT id, kind, target, payload, attempts, next_attempt_at, last_error,
			created_at, delivered_at
		FROM outbox_message
		WHERE delivered_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
		ORDER BY next_attempt_at NULLS FIRST, id
		LIMIT $2
		FOR UPDATE SKIP LOCKED`, ts(now), limit)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var out []storage.OutboxMessage
	for rows.Next() {
		var m storage.OutboxMessage
		if err := rows.Scan(&m.ID, &m.Kind, &m.Target, &m.Payload, &m.Attempts,
			tsCol{&m.NextAttemptAt}, &m.LastError, tsCol{&m.CreatedAt}, tsCol{&m.DeliveredAt}); err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, m)
	}
	return out, wrapErr(op, rows.Err())
}

func (s *Store) MarkOutboxDelivered(ctx context.Context, id int64, at time.Time) error {
	tag, err := s.q(ctx).Exec(ctx,
		`UPDATE outbox_message SET delivered_at = $2 WHERE id = $1`, id, ts(at))
	return affected("mark outbox delivered", tag, err)
}

// MarkOutboxFailed counts the attempt and schedules the next one.
func (s *Store) MarkOutboxFailed(ctx context.Context, id int64, next time.Time, lastError string) error {
	tag, err := s.q(ctx).Exec(ctx, `
		UPDATE outbox_message
		SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3
		WHERE id = $1`, id, ts(next), lastError)
	return affected("mark outbox failed", tag, err)
}
