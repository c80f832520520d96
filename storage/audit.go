package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// AuditHash is the chain link of e: SHA-256 over the previous hash and a
// canonical, length-prefixed encoding of every field but Hash. Backends call
// it inside the append transaction; `keygate audit verify` recomputes it.
func AuditHash(prev []byte, e AuditEvent) []byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], uint64(e.Seq))
	field(prev)
	field(seq[:])
	field([]byte(e.Time.UTC().Format(time.RFC3339Nano)))
	for _, s := range []string{e.Type, e.Actor, e.UserID, e.ClientID, e.IP, e.UserAgent, e.Result} {
		field([]byte(s))
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field([]byte(k))
		field([]byte(e.Details[k]))
	}
	return h.Sum(nil)
}

// ChainVerifier checks events fed in Seq order. The zero value expects the
// chain to start at Seq 1 with an empty previous hash.
type ChainVerifier struct {
	prev  []byte
	seq   int64
	Count int
}

// Check returns an error describing the first break: an edited event (its
// hash no longer matches), a deleted one (a gap in Seq or a PrevHash that
// names another event), or one inserted out of order.
func (v *ChainVerifier) Check(e AuditEvent) error {
	if e.Seq != v.seq+1 {
		return fmt.Errorf("audit event %d follows %d: events are missing", e.Seq, v.seq)
	}
	if !bytes.Equal(e.PrevHash, v.prev) {
		return fmt.Errorf("audit event %d does not link to event %d", e.Seq, v.seq)
	}
	if !bytes.Equal(AuditHash(e.PrevHash, e), e.Hash) {
		return fmt.Errorf("audit event %d was altered: its hash does not match its content", e.Seq)
	}
	v.prev, v.seq = e.Hash, e.Seq
	v.Count++
	return nil
}

// PrepareAudit readies e for AppendAudit: it returns e as it will read
// back, and the JSON text to store for its Details ("" for none). A backend
// hashes the returned event, so the hash still verifies after the round
// trip: Time is set to now if zero and kept in UTC to the microsecond, and
// Details go through their JSON encoding, which would otherwise quietly
// replace invalid UTF-8 in a user-supplied value after hashing.
func PrepareAudit(e AuditEvent, now time.Time) (AuditEvent, string, error) {
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = time.UnixMicro(e.Time.UnixMicro()).UTC()
	if len(e.Details) == 0 {
		e.Details = nil
		return e, "", nil
	}
	b, err := json.Marshal(e.Details)
	if err != nil {
		return e, "", err
	}
	details, err := DecodeAuditDetails(string(b))
	e.Details = details
	return e, string(b), err
}

// DecodeAuditDetails reads back what PrepareAudit encoded; "" is none.
func DecodeAuditDetails(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// AuditConditions are the conditions of the WHERE clause, to be joined with
// AND, that select the events f matches, and their arguments: each
// condition has exactly one ? placeholder, whose argument is args at the
// same index, so a backend with numbered placeholders renumbers them in
// order. timeArg converts Since and Until to the backend's time argument.
// Shared so that every backend reads a filter alike: Since inclusive,
// Until, AfterSeq and BeforeSeq exclusive, zero fields matching all. The
// conditions use only audit_event's columns, named alike in every schema.
// A UserID filter also says that user_id is not empty, which lets the
// partial index audit_event_user_id (migration 0006 of each backend)
// serve it.
func AuditConditions(f AuditFilter, timeArg func(time.Time) any) (conds []string, args []any) {
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if f.UserID != "" {
		add("user_id = ? AND user_id <> ''", f.UserID)
	}
	if f.ClientID != "" {
		add("client_id = ?", f.ClientID)
	}
	if f.Type != "" {
		add("type = ?", f.Type)
	}
	if f.Result != "" {
		add("result = ?", f.Result)
	}
	if !f.Since.IsZero() {
		add("time >= ?", timeArg(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", timeArg(f.Until))
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	return conds, args
}
