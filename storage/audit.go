package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
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
