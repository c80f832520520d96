package postgres

import (
	"cmp"
	"context"
	"slices"
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

// ClaimOutbox takes the undelivered messages due at now, earliest first,
// and leases them until leaseUntil, in one statement; limit <= 0 means
// storage.ClaimOutboxDefault. A zero NextAttemptAt is due.
//
// The statement locks the rows it picks FOR UPDATE SKIP LOCKED: a claim
// running at the same moment on another replica skips them instead of
// waiting, and a claim after this one commits finds them leased. So every
// message is claimed by one deliverer at a time, and replicas polling at
// once each take different messages.
func (s *Store) ClaimOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]storage.OutboxMessage, error) {
	const op = "claim outbox"
	if limit <= 0 {
		limit = storage.ClaimOutboxDefault
	}
	// "delivered_at IS NULL" matches the partial index outbox_message_due.
	rows, err := s.q(ctx).Query(ctx, `
		WITH due AS (
			SELECT id, next_attempt_at FROM outbox_message
			WHERE delivered_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
			ORDER BY next_attempt_at NULLS FIRST, id
			LIMIT $3
			FOR UPDATE SKIP LOCKED)
		UPDATE outbox_message o SET next_attempt_at = $2
		FROM due WHERE o.id = due.id
		RETURNING o.id, o.kind, o.target, o.payload, o.attempts, due.next_attempt_at,
			o.last_error, o.created_at, o.delivered_at`, ts(now), ts(leaseUntil), limit)
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
	if err := rows.Err(); err != nil {
		return nil, wrapErr(op, err)
	}
	// RETURNING keeps no order; a zero time (NULL) sorts first, as above.
	slices.SortFunc(out, func(a, b storage.OutboxMessage) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
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
