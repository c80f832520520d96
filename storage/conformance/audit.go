package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// event is an audit event at t0+min minutes.
func event(min int, typ, userID, clientID, result string) storage.AuditEvent {
	return storage.AuditEvent{
		Time:      at(time.Duration(min) * time.Minute),
		Type:      typ,
		Actor:     "system",
		UserID:    userID,
		ClientID:  clientID,
		IP:        "192.0.2.1",
		UserAgent: "curl/8",
		Result:    result,
	}
}

// verifyChain walks the log through a ChainVerifier and returns how many
// events it checked.
func verifyChain(t *testing.T, ctx context.Context, st storage.Store) int {
	t.Helper()
	var v storage.ChainVerifier
	ok(t, st.WalkAudit(ctx, v.Check))
	return v.Count
}

func testAudit(t *testing.T, newStore NewStore) {
	t.Run("events are numbered from 1, each linked to the one before", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		var prev []byte
		for i := range 3 {
			e := event(i, "signin.succeeded", "u", "app", "success")
			got, err := st.AppendAudit(ctx, e)
			ok(t, err)
			if got.Seq != int64(i+1) {
				t.Fatalf("event %d got Seq %d", i+1, got.Seq)
			}
			if !bytes.Equal(got.PrevHash, prev) {
				t.Fatalf("event %d has PrevHash %x, want %x", got.Seq, got.PrevHash, prev)
			}
			if want := storage.AuditHash(got.PrevHash, got); !bytes.Equal(got.Hash, want) {
				t.Fatalf("event %d has Hash %x, want %x", got.Seq, got.Hash, want)
			}
			prev = got.Hash
		}
		if n := verifyChain(t, ctx, st); n != 3 {
			t.Fatalf("the verifier checked %d events, want 3", n)
		}
	})

	t.Run("an event reads back as AppendAudit returned it", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		e := event(0, "client.updated", "u", "app", "success")
		e.Actor = "cli"
		e.Details = map[string]string{"field": "redirect_uris", "note": "ünïcödé, \"quoted\""}
		stored, err := st.AppendAudit(ctx, e)
		ok(t, err)
		listed, err := st.ListAudit(ctx, storage.AuditFilter{})
		ok(t, err)
		if len(listed) != 1 {
			t.Fatalf("ListAudit returned %d events, want 1", len(listed))
		}
		same(t, "listed event", listed[0], stored)
		want := e
		want.Seq, want.PrevHash, want.Hash = stored.Seq, stored.PrevHash, stored.Hash
		same(t, "stored event", stored, want)
		if n := verifyChain(t, ctx, st); n != 1 {
			t.Fatalf("the verifier checked %d events, want 1", n)
		}
	})

	t.Run("a long log verifies and is walked oldest first", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		const n = 1234 // more than any reasonable page
		for i := range n {
			e := event(i, "token.issued", fmt.Sprint("u", i%7), "app", "success")
			e.Details = map[string]string{"i": fmt.Sprint(i)}
			_, err := st.AppendAudit(ctx, e)
			ok(t, err)
		}
		if got := verifyChain(t, ctx, st); got != n {
			t.Fatalf("the verifier checked %d events, want %d", got, n)
		}

		t.Run("the default limit is 100 and the largest 1000", func(t *testing.T) {
			for _, tc := range []struct{ limit, want int }{{0, 100}, {7, 7}, {5000, 1000}} {
				got, err := st.ListAudit(ctx, storage.AuditFilter{Limit: tc.limit})
				ok(t, err)
				if len(got) != tc.want {
					t.Errorf("Limit %d returned %d events, want %d", tc.limit, len(got), tc.want)
				}
				if len(got) > 0 && got[0].Seq != n {
					t.Errorf("Limit %d: the first event is %d, want the newest, %d", tc.limit, got[0].Seq, n)
				}
			}
		})
	})

	t.Run("paging back with BeforeSeq visits every event once, newest first", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		const n = 250
		for i := range n {
			_, err := st.AppendAudit(ctx, event(i, "token.issued", fmt.Sprint("u", i%3), "app", "success"))
			ok(t, err)
		}
		// page walks back from the newest event in pages of limit and
		// returns the seqs seen, checking that each page is full but the
		// last.
		page := func(t *testing.T, f storage.AuditFilter, limit int) []int64 {
			t.Helper()
			var seqs []int64
			f.Limit = limit
			for {
				got, err := st.ListAudit(ctx, f)
				ok(t, err)
				for _, e := range got {
					seqs = append(seqs, e.Seq)
				}
				if len(got) < limit {
					return seqs
				}
				if len(seqs) > n {
					t.Fatalf("paging in pages of %d visited %d events of %d", limit, len(seqs), n)
				}
				f.BeforeSeq = got[len(got)-1].Seq
			}
		}
		all := make([]int64, n)
		for i := range all {
			all[i] = int64(n - i)
		}
		for _, limit := range []int{1, 7, 100, 125, n, 1000} {
			same(t, fmt.Sprint("seqs in pages of ", limit), page(t, storage.AuditFilter{}, limit), all)
		}
		// With a filter, the pages hold that user's events only.
		var u1 []int64
		for _, seq := range all {
			if (seq-1)%3 == 1 {
				u1 = append(u1, seq)
			}
		}
		same(t, "u1's seqs in pages of 9", page(t, storage.AuditFilter{UserID: "u1"}, 9), u1)
		// Events appended while paging are not visited: they are newer
		// than where the walk started.
		f := storage.AuditFilter{Limit: 100}
		first, err := st.ListAudit(ctx, f)
		ok(t, err)
		_, err = st.AppendAudit(ctx, event(n, "token.issued", "u0", "app", "success"))
		ok(t, err)
		f.BeforeSeq = first[len(first)-1].Seq
		same(t, "seqs after the first page", page(t, f, 100), all[len(first):])
	})

	t.Run("a walk stops at fn's error and returns it", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		for i := range 5 {
			_, err := st.AppendAudit(ctx, event(i, "x", "", "", "success"))
			ok(t, err)
		}
		stop := errors.New("stop")
		var seen []int64
		err := st.WalkAudit(ctx, func(e storage.AuditEvent) error {
			seen = append(seen, e.Seq)
			if e.Seq == 3 {
				return stop
			}
			return nil
		})
		wantErr(t, err, stop)
		same(t, "visited", seen, []int64{1, 2, 3})
	})

	t.Run("listing filters and returns the newest first", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		for _, e := range []storage.AuditEvent{
			event(0, "signin.failed", "u", "app", "failure"),    // 1
			event(1, "signin.succeeded", "u", "app", "success"), // 2
			event(2, "token.issued", "u", "app", "success"),     // 3
			event(3, "signin.failed", "v", "", "failure"),       // 4
			event(4, "client.updated", "", "app", "success"),    // 5
			event(5, "token.issued", "v", "other", "denied"),    // 6
		} {
			_, err := st.AppendAudit(ctx, e)
			ok(t, err)
		}
		for _, tc := range []struct {
			name string
			f    storage.AuditFilter
			want []int64
		}{
			{"nothing", storage.AuditFilter{}, []int64{6, 5, 4, 3, 2, 1}},
			{"a user", storage.AuditFilter{UserID: "u"}, []int64{3, 2, 1}},
			{"a client", storage.AuditFilter{ClientID: "app"}, []int64{5, 3, 2, 1}},
			{"a type", storage.AuditFilter{Type: "signin.failed"}, []int64{4, 1}},
			{"a result", storage.AuditFilter{Result: "success"}, []int64{5, 3, 2}},
			{"a time window", storage.AuditFilter{Since: at(30 * time.Second), Until: at(3*time.Minute + 30*time.Second)}, []int64{4, 3, 2}},
			{"events after a seq", storage.AuditFilter{AfterSeq: 4}, []int64{6, 5}},
			{"events before a seq", storage.AuditFilter{BeforeSeq: 4}, []int64{3, 2, 1}},
			{"events between two seqs", storage.AuditFilter{AfterSeq: 1, BeforeSeq: 5}, []int64{4, 3, 2}},
			{"events before the first", storage.AuditFilter{BeforeSeq: 1}, nil},
			{"events before a seq past the newest", storage.AuditFilter{BeforeSeq: 100}, []int64{6, 5, 4, 3, 2, 1}},
			{"a user's events before a seq", storage.AuditFilter{UserID: "u", BeforeSeq: 3}, []int64{2, 1}},
			{"a limit before a seq", storage.AuditFilter{BeforeSeq: 6, Limit: 2}, []int64{5, 4}},
			{"a limit", storage.AuditFilter{Limit: 2}, []int64{6, 5}},
			{"several fields at once", storage.AuditFilter{UserID: "u", Result: "success", Limit: 1}, []int64{3}},
			{"something absent", storage.AuditFilter{UserID: "nobody"}, nil},
		} {
			t.Run("by "+tc.name, func(t *testing.T) {
				got, err := st.ListAudit(ctx, tc.f)
				ok(t, err)
				var seqs []int64
				for _, e := range got {
					seqs = append(seqs, e.Seq)
				}
				same(t, "seqs", seqs, tc.want)
			})
		}
	})

	// The contract has no way to change the log: check that the store
	// does not offer one either, beyond the interface.
	t.Run("the store offers no way to change or remove an event", func(t *testing.T) {
		st := newStore(t)
		typ := reflect.TypeOf(st)
		for i := range typ.NumMethod() {
			name := typ.Method(i).Name
			if !strings.Contains(name, "Audit") {
				continue
			}
			switch name {
			case "AppendAudit", "ListAudit", "WalkAudit":
			default:
				for _, verb := range []string{"Update", "Delete", "Remove", "Set", "Edit", "Truncate", "Prune", "Purge"} {
					if strings.Contains(name, verb) {
						t.Errorf("%s has method %s", typ, name)
					}
				}
			}
		}
	})

	t.Run("appending never changes earlier events", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		first, err := st.AppendAudit(ctx, event(0, "a", "u", "", "success"))
		ok(t, err)
		for i := range 3 {
			_, err := st.AppendAudit(ctx, event(i+1, "b", "u", "", "success"))
			ok(t, err)
		}
		got, err := st.ListAudit(ctx, storage.AuditFilter{Type: "a"})
		ok(t, err)
		if len(got) != 1 {
			t.Fatalf("got %d events of type a, want 1", len(got))
		}
		same(t, "first event", got[0], first)
	})
}
