package storecopy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
)

// auditTable is the table whose rows form the hash chain.
const auditTable = "audit_event"

// chainCheck verifies the audit chain as its rows go by, in the snapshot
// being copied: the copy commits only a chain that verifies, so
// `keygate audit verify` passes on the target whenever it passed on the
// source. PostgreSQL's trigger checks each row's link to the one before;
// this also recomputes each hash from the row's content.
type chainCheck struct {
	v    storage.ChainVerifier
	at   map[string]int // the position of each column in a row
	seq  int64          // the last event checked
	hash []byte
}

// auditColumns are the columns the hash covers, with Seq and the hashes.
// A column the audit table gains must be added here (and to AuditHash),
// or every copy stops: an event this check cannot rebuild in full cannot
// be verified.
var auditColumns = []string{"seq", "time", "type", "actor", "user_id", "client_id", "ip", "user_agent",
	"result", "details", "prev_hash", "hash"}

func newChainCheck(t table) (*chainCheck, error) {
	c := &chainCheck{at: map[string]int{}}
	for i, col := range t.columns {
		c.at[col.name] = i
	}
	if len(c.at) != len(auditColumns) {
		return nil, fmt.Errorf("%w: table %s has %d columns, and the chain check knows %v", ErrSchemaMismatch, t.name, len(c.at), auditColumns)
	}
	for _, name := range auditColumns {
		if _, ok := c.at[name]; !ok {
			return nil, fmt.Errorf("%w: table %s has no column %s", ErrSchemaMismatch, t.name, name)
		}
	}
	return c, nil
}

// check verifies one converted row (see convert).
func (c *chainCheck) check(row []any) error {
	text := func(name string) string { s, _ := row[c.at[name]].(string); return s }
	blob := func(name string) []byte { b, _ := row[c.at[name]].([]byte); return b }
	seq, _ := row[c.at["seq"]].(int64)
	at, _ := row[c.at["time"]].(time.Time)
	details, err := storage.DecodeAuditDetails(text("details"))
	if err != nil {
		return fmt.Errorf("%w: audit event %d: details: %w", ErrAuditChain, seq, err)
	}
	e := storage.AuditEvent{Seq: seq, Time: at, Type: text("type"), Actor: text("actor"), UserID: text("user_id"),
		ClientID: text("client_id"), IP: text("ip"), UserAgent: text("user_agent"), Result: text("result"),
		Details: details, PrevHash: blob("prev_hash"), Hash: blob("hash")}
	if err := c.v.Check(e); err != nil {
		return fmt.Errorf("%w: %w", ErrAuditChain, err)
	}
	c.seq, c.hash = e.Seq, e.Hash
	return nil
}

// The chain's trigger links each new event to the head row audit_head,
// which it locks and moves: in one transaction of many events, every move
// leaves a row version no one may clean up before the commit, and each
// next lookup walks them all. 100,000 events took minutes that way. So
// the copy, which checks every link itself (chainCheck), turns the
// trigger off for its transaction and moves the head once, at the end.
// Only the tables' owner may turn a trigger off; another role copies
// through the trigger, slowly. The DDL is part of the transaction: a
// copy that fails leaves the triggers as they were.

// suspendLinking turns the chain's trigger off until resume, which sets
// the head and turns the triggers back on; it returns a nil resume, and
// leaves the trigger on, when the role may not.
func suspendLinking(ctx context.Context, tx pgx.Tx) (resume func(seq int64, hash []byte) error, err error) {
	var owner bool
	if err := tx.QueryRow(ctx, `SELECT pg_has_role(relowner, 'USAGE') FROM pg_class
		WHERE oid = to_regclass('audit_event') AND relowner = (SELECT relowner FROM pg_class WHERE oid = to_regclass('audit_head'))`).Scan(&owner); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read the audit tables' owner: %w", err)
	}
	if !owner {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE audit_event DISABLE TRIGGER audit_event_link;
		ALTER TABLE audit_head DISABLE TRIGGER audit_head_no_change`); err != nil {
		return nil, fmt.Errorf("suspend the audit chain trigger: %w", err)
	}
	return func(seq int64, hash []byte) error {
		if seq > 0 {
			if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, seq, hash); err != nil {
				return fmt.Errorf("move the audit chain head: %w", err)
			}
		}
		_, err := tx.Exec(ctx, `ALTER TABLE audit_event ENABLE TRIGGER audit_event_link;
			ALTER TABLE audit_head ENABLE TRIGGER audit_head_no_change`)
		if err != nil {
			return fmt.Errorf("restore the audit chain trigger: %w", err)
		}
		return nil
	}, nil
}
