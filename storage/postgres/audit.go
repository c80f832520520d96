package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/keygate/keygate/storage"
)

// The audit log is append-only: this file has no UPDATE or DELETE of
// audit_event, and triggers in the schema make PostgreSQL refuse them (and
// TRUNCATE, and any change to the chain head but the insert trigger's)
// whoever runs them.

const auditColumns = `seq, time, type, actor, user_id, client_id, ip, user_agent,
	result, details, prev_hash, hash`

func scanAudit(sc rowScanner) (storage.AuditEvent, error) {
	var e storage.AuditEvent
	var details *string
	err := sc.Scan(&e.Seq, tsCol{&e.Time}, &e.Type, &e.Actor, &e.UserID, &e.ClientID,
		&e.IP, &e.UserAgent, &e.Result, &details, &e.PrevHash, &e.Hash)
	if err == nil && details != nil {
		e.Details, err = storage.DecodeAuditDetails(*details)
	}
	return e, err
}

// AppendAudit links e to the newest event, in the caller's transaction if
// ctx carries one. It locks the chain head (audit_head, FOR UPDATE) to
// learn the predecessor, and the lock lasts until the transaction ends: a
// concurrent append, from this process or another, waits and then reads
// the head this one left, so seqs follow commit order with no gap even
// when an appending transaction rolls back. The insert trigger checks the
// link and moves the head.
//
// The event is prepared with storage.PrepareAudit before hashing, so the
// hash still verifies after the round trip. PostgreSQL's text refuses a
// NUL byte or invalid UTF-8 in any field: such an event is refused with
// an error rather than stored altered.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) (storage.AuditEvent, error) {
	const op = "append audit"
	e, details, err := storage.PrepareAudit(e, time.Now())
	if err != nil {
		return storage.AuditEvent{}, wrapErr(op, err)
	}
	var detailsArg *string // NULL when there are none
	if details != "" {
		detailsArg = &details
	}
	err = s.InTx(ctx, func(ctx context.Context) error {
		q := s.q(ctx)
		var last int64
		var prev []byte
		if err := q.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&last, &prev); err != nil {
			return wrapErr(op, err)
		}
		e.Seq, e.PrevHash = last+1, prev
		e.Hash = storage.AuditHash(e.PrevHash, e)
		_, err := q.Exec(ctx, `
			INSERT INTO audit_event (`+auditColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			e.Seq, ts(e.Time), e.Type, e.Actor, e.UserID, e.ClientID, e.IP, e.UserAgent,
			e.Result, detailsArg, e.PrevHash, e.Hash)
		return wrapErr(op, err)
	})
	if err != nil {
		return storage.AuditEvent{}, err
	}
	return e, nil
}

// ListAudit returns the newest events matching f, newest first. Since is
// inclusive and Until exclusive; AfterSeq and BeforeSeq are exclusive, so
// the next older page is BeforeSeq set to the last Seq of this one. See
// storage.PageLimit for the limit.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	where, args := storage.AuditConditions(f, func(t time.Time) any { return ts(t) })
	for i := range where {
		where[i] = strings.Replace(where[i], "?", "$"+itoa(i+1), 1)
	}
	limit := storage.PageLimit(f.Limit, storage.AuditPageDefault, storage.AuditPageMax)
	q := `SELECT ` + auditColumns + ` FROM audit_event`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq DESC LIMIT ` + itoa(limit)
	return s.queryAudit(ctx, "list audit", q, args...)
}

func (s *Store) queryAudit(ctx context.Context, op, q string, args ...any) ([]storage.AuditEvent, error) {
	rows, err := s.q(ctx).Query(ctx, q, args...)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer rows.Close()
	var out []storage.AuditEvent
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, wrapErr(op, err)
		}
		out = append(out, e)
	}
	return out, wrapErr(op, rows.Err())
}

// walkPage is how many events WalkAudit reads per query.
const walkPage = 500

// WalkAudit calls fn for every event, oldest first. It reads a page at a
// time by seq rather than holding one cursor open: memory stays bounded,
// fn may itself use the store, and a long walk (verifying a large log)
// never holds one snapshot for its whole length. Events appended during
// the walk are visited too.
func (s *Store) WalkAudit(ctx context.Context, fn func(storage.AuditEvent) error) error {
	var after int64
	for {
		page, err := s.queryAudit(ctx, "walk audit",
			`SELECT `+auditColumns+` FROM audit_event WHERE seq > $1 ORDER BY seq LIMIT `+itoa(walkPage), after)
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < walkPage {
			return nil
		}
		after = page[len(page)-1].Seq
	}
}
