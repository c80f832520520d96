package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testTransactions(t *testing.T, newStore NewStore) {
	boom := errors.New("boom")

	// writeSome writes to several roles, so that a rollback is seen to undo
	// all of them.
	writeSome := func(ctx context.Context, st storage.Store) error {
		if err := st.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com", CreatedAt: t0}); err != nil {
			return err
		}
		if err := st.SetMeta(ctx, "k", "v"); err != nil {
			return err
		}
		if _, err := st.AppendAudit(ctx, event(0, "user.created", "u", "", "success")); err != nil {
			return err
		}
		_, err := st.EnqueueOutbox(ctx, storage.OutboxMessage{Kind: "alert", Target: "t", CreatedAt: t0})
		return err
	}
	// wrote reports whether writeSome's writes are there, and fails the
	// test if only some are. Looking at the outbox claims (and rolls the
	// claim back), which waits for a transaction the caller has open on
	// a backend with one writer; withOutbox false leaves it out.
	wrote := func(t *testing.T, st storage.Store, withOutbox bool) bool {
		t.Helper()
		ctx := t.Context()
		var found []bool
		_, err := st.GetUser(ctx, "u")
		found = append(found, err == nil)
		_, err = st.GetMeta(ctx, "k")
		found = append(found, err == nil)
		events, err := st.ListAudit(ctx, storage.AuditFilter{})
		ok(t, err)
		found = append(found, len(events) == 1)
		if withOutbox {
			due, err := storage.PendingOutbox(ctx, st, t0, 10)
			ok(t, err)
			found = append(found, len(due) == 1)
		}
		for _, f := range found[1:] {
			if f != found[0] {
				t.Fatalf("only some writes of one transaction are there: %v", found)
			}
		}
		return found[0]
	}

	t.Run("InTx commits when fn succeeds", func(t *testing.T) {
		st := newStore(t)
		ok(t, st.InTx(t.Context(), func(ctx context.Context) error { return writeSome(ctx, st) }))
		if !wrote(t, st, true) {
			t.Fatal("committed writes are missing")
		}
	})

	t.Run("an error in InTx rolls back every write and is returned", func(t *testing.T) {
		st := newStore(t)
		err := st.InTx(t.Context(), func(ctx context.Context) error {
			if err := writeSome(ctx, st); err != nil {
				return err
			}
			return boom
		})
		wantErr(t, err, boom)
		if wrote(t, st, true) {
			t.Fatal("writes of a failed transaction are there")
		}
		// The audit chain carries on from where it was.
		e, err := st.AppendAudit(t.Context(), event(1, "x", "", "", "success"))
		ok(t, err)
		if e.Seq != 1 {
			t.Fatalf("the first event after a rolled-back one has Seq %d, want 1", e.Seq)
		}
	})

	t.Run("a panic in InTx rolls back", func(t *testing.T) {
		st := newStore(t)
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the panic did not propagate")
				}
			}()
			_ = st.InTx(t.Context(), func(ctx context.Context) error {
				if err := writeSome(ctx, st); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		if wrote(t, st, true) {
			t.Fatal("writes of a panicked transaction are there")
		}
		// And the store is still usable.
		ok(t, st.SetMeta(t.Context(), "after", "panic"))
	})

	t.Run("reads in a transaction see its own writes", func(t *testing.T) {
		st := newStore(t)
		ok(t, st.InTx(t.Context(), func(ctx context.Context) error {
			if err := writeSome(ctx, st); err != nil {
				return err
			}
			// wrote reads with t.Context(), outside the transaction,
			// where the writes must not be visible yet.
			if wrote(t, st, false) {
				t.Error("uncommitted writes are visible outside the transaction")
			}
			u, err := st.GetUserByEmail(ctx, "U@example.com")
			if err != nil {
				return err
			}
			if u.ID != "u" {
				t.Errorf("read %q in the transaction, want u", u.ID)
			}
			v, err := st.GetMeta(ctx, "k")
			if err != nil {
				return err
			}
			if v != "v" {
				t.Errorf("read meta %q in the transaction, want v", v)
			}
			return nil
		}))
	})

	t.Run("BeginTx then Commit persists", func(t *testing.T) {
		st := newStore(t)
		ctx, err := st.BeginTx(t.Context())
		ok(t, err)
		ok(t, writeSome(ctx, st))
		ok(t, st.Commit(ctx))
		if !wrote(t, st, true) {
			t.Fatal("committed writes are missing")
		}
		// A Rollback after Commit, as a deferred cleanup does, changes nothing.
		_ = st.Rollback(ctx)
		if !wrote(t, st, true) {
			t.Fatal("a Rollback after Commit undid the writes")
		}
	})

	t.Run("BeginTx then Rollback discards", func(t *testing.T) {
		st := newStore(t)
		ctx, err := st.BeginTx(t.Context())
		ok(t, err)
		ok(t, writeSome(ctx, st))
		ok(t, st.Rollback(ctx))
		if wrote(t, st, true) {
			t.Fatal("rolled-back writes are there")
		}
	})

	t.Run("a nested InTx joins the outer transaction", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			outerErr error
			want     bool
		}{
			{"and commits with it", nil, true},
			{"and rolls back with it", boom, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st := newStore(t)
				err := st.InTx(t.Context(), func(ctx context.Context) error {
					if err := st.InTx(ctx, func(ctx context.Context) error { return writeSome(ctx, st) }); err != nil {
						return err
					}
					// The inner writes are not committed on their own.
					if wrote(t, st, false) {
						t.Error("the inner InTx committed before the outer one")
					}
					return tc.outerErr
				})
				wantErr(t, err, tc.outerErr)
				if got := wrote(t, st, true); got != tc.want {
					t.Fatalf("writes there: %v, want %v", got, tc.want)
				}
			})
		}
	})

	t.Run("InTx inside BeginTx joins it", func(t *testing.T) {
		st := newStore(t)
		ctx, err := st.BeginTx(t.Context())
		ok(t, err)
		ok(t, st.InTx(ctx, func(ctx context.Context) error { return writeSome(ctx, st) }))
		ok(t, st.Rollback(ctx))
		if wrote(t, st, true) {
			t.Fatal("writes of the joined InTx survived the Rollback")
		}
	})

	t.Run("update closures join the caller's transaction", func(t *testing.T) {
		st := newStore(t)
		newUser(t, t.Context(), st, "u")
		err := st.InTx(t.Context(), func(ctx context.Context) error {
			if err := st.UpdateUser(ctx, "u", func(u *storage.User) error {
				u.Name = "changed"
				u.UpdatedAt = at(time.Minute)
				return nil
			}); err != nil {
				return err
			}
			return boom
		})
		wantErr(t, err, boom)
		u, err := st.GetUser(t.Context(), "u")
		ok(t, err)
		if u.Name == "changed" {
			t.Fatal("an update in a rolled-back transaction persisted")
		}
	})
}
