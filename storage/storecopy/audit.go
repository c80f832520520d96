package storecopy

import (
	"fmt"
	"time"

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
	v  storage.ChainVerifier
	at map[string]int // the position of each column in a row
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
	return nil
}
