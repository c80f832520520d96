package sqlite

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/storage"
)

// The audit log is append-only: this file has no UPDATE or DELETE of
// audit_event, and triggers in the schema make SQLite refuse them (and an
// INSERT OR REPLACE over an existing event) whoever runs them.

// auditTail remembers the last event this Store appended. It is only a
// guess at the predecessor of the next one: that transaction may have
// rolled back, or another process appended since. The insert checks it
// against the newest row's hash, which covers the sequence number too,
// and on a mismatch reads the newest row as if there were no guess.
type auditTail struct {
	mu   sync.Mutex
	last *auditLink // nil until this Store appends
}

type auditLink struct {
	seq  int64
	hash []byte
}

func (t *auditTail) get() (auditLink, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		return auditLink{}, false
	}
	return *t.last, true
}

func (t *auditTail) set(seq int64, hash []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = &auditLink{seq: seq, hash: hash}
}

const auditColumns = `seq, time, type, actor, user_id, client_id, ip, user_agent,
	result, details, prev_hash, hash`

func scanAudit(sc rowScanner) (storage.AuditEvent, error) {
	var e storage.AuditEvent
	err := sc.Scan(&e.Seq, timeCol{&e.Time}, &e.Type, &e.Actor, &e.UserID, &e.ClientID,
		&e.IP, &e.UserAgent, &e.Result, mapCol{&e.Details}, &e.PrevHash, &e.Hash)
	return e, err
}

// AppendAudit links e to the newest event inside a write transaction, which
// holds the database's write lock from its first statement: two appends,
// even from two processes, cannot read the same predecessor.
//
// Fields are normalised to what will read back before hashing, so the hash
// still verifies after the round trip: Time to UTC microseconds (a zero
// Time is set to now), and Details through its JSON encoding, which would
// otherwise quietly replace invalid UTF-8 in a user-supplied value.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) (storage.AuditEvent, error) {
	const op = "append audit"
	e, text, err := storage.PrepareAudit(e, time.Now())
	if err != nil {
		return storage.AuditEvent{}, wrapErr(op, err)
	}
	var details any // NULL when there are none
	if text != "" {
		details = text
	}
	err = s.InTx(ctx, func(ctx context.Context) error {
		q := s.w(ctx)
		// Guess the predecessor from the last append, and insert only if
		// it is still the newest event: one statement instead of two.
		if tail, ok := s.auditTail.get(); ok {
			e.Seq, e.PrevHash = tail.seq+1, tail.hash
			e.Hash = storage.AuditHash(e.PrevHash, e)
			res, err := q.ExecContext(ctx, `
				INSERT INTO audit_event (`+auditColumns+`)
				SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
				WHERE (SELECT hash FROM audit_event ORDER BY seq DESC LIMIT 1) IS ?`,
				e.Seq, micros(e.Time), e.Type, e.Actor, e.UserID, e.ClientID, e.IP, e.UserAgent,
				e.Result, details, e.PrevHash, e.Hash, tail.hash)
			if err != nil {
				return wrapErr(op, err)
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				s.auditTail.set(e.Seq, e.Hash)
				return nil
			}
		}
		var last int64
		var prev []byte
		err := q.QueryRowContext(ctx,
			`SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !isNoRows(err) {
			return wrapErr(op, err)
		}
		e.Seq, e.PrevHash = last+1, prev
		e.Hash = storage.AuditHash(e.PrevHash, e)
		_, err = q.ExecContext(ctx, `
			INSERT INTO audit_event (`+auditColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, micros(e.Time), e.Type, e.Actor, e.UserID, e.ClientID, e.IP, e.UserAgent,
			e.Result, details, e.PrevHash, e.Hash)
		if err != nil {
			return wrapErr(op, err)
		}
		s.auditTail.set(e.Seq, e.Hash)
		return nil
	})
	if err != nil {
		return storage.AuditEvent{}, err
	}
	return e, nil
}

// ListAudit returns the newest events matching f, newest first. Since is
// inclusive and Until exclusive; AfterSeq and BeforeSeq are exclusive, so
// the next older page is BeforeSeq set to the last Seq of this one. Limit
// defaults to 100 and is capped at 1000.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	where, args := storage.AuditConditions(f, func(t time.Time) any { return micros(t) })
	limit := storage.PageLimit(f.Limit, storage.AuditPageDefault, storage.AuditPageMax)

	q := `SELECT ` + auditColumns + ` FROM audit_event`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq DESC LIMIT ` + strconv.Itoa(limit)

	rows, err := s.r(ctx).QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrapErr("list audit", err)
	}
	defer rows.Close()
	var out []storage.AuditEvent
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, wrapErr("list audit", err)
		}
		out = append(out, e)
	}
	return out, wrapErr("list audit", rows.Err())
}

// walkPage is how many events WalkAudit reads per query.
const walkPage = 500

// WalkAudit calls fn for every event, oldest first. It reads a page at a
// time by seq rather than holding one cursor open: memory stays bounded,
// fn may itself use the store, and a long walk (verifying a large log)
// never holds a read snapshot that would stop the WAL from being
// checkpointed. Events appended during the walk are visited too.
func (s *Store) WalkAudit(ctx context.Context, fn func(storage.AuditEvent) error) error {
	const op = "walk audit"
	page := make([]storage.AuditEvent, 0, walkPage)
	var after int64
	for {
		page = page[:0]
		rows, err := s.r(ctx).QueryContext(ctx,
			`SELECT `+auditColumns+` FROM audit_event WHERE seq > ? ORDER BY seq LIMIT `+strconv.Itoa(walkPage),
			after)
		if err != nil {
			return wrapErr(op, err)
		}
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				rows.Close()
				return wrapErr(op, err)
			}
			page = append(page, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrapErr(op, err)
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
