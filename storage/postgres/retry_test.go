package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// Two transactions that lock two users in opposite orders deadlock; the
// server rolls one back, and InTx runs it again, so both succeed and
// neither caller sees the conflict. Run inside another InTx, the joined
// function is not retried on its own: the owner is.
func TestInTxRunsADeadlockedTransactionAgain(t *testing.T) {
	s := openFresh(t)
	now := time.Now().UTC()
	for _, id := range []string{"u_a", "u_b"} {
		if err := s.CreateUser(t.Context(), storage.User{ID: id, Email: id + "@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	var runs atomic.Int32
	var bothLockedFirst sync.WaitGroup
	bothLockedFirst.Add(2)
	var once [2]sync.Once
	touch := func(ctx context.Context, id string) error {
		return s.UpdateUser(ctx, id, func(u *storage.User) error { u.Name += "x"; return nil })
	}
	lockInOrder := func(i int, first, second string) error {
		return s.InTx(t.Context(), func(ctx context.Context) error {
			runs.Add(1)
			if err := touch(ctx, first); err != nil {
				return err
			}
			// The first run of each waits until both hold their first
			// lock, so that they deadlock; a rerun goes straight on.
			once[i].Do(func() { bothLockedFirst.Done(); bothLockedFirst.Wait() })
			return touch(ctx, second)
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = lockInOrder(0, "u_a", "u_b") })
	wg.Go(func() { errs[1] = lockInOrder(1, "u_b", "u_a") })
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("InTx answered %v and %v, want both to succeed", errs[0], errs[1])
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("the functions ran %d times, want 3 (one deadlock victim run again)", n)
	}
	for _, id := range []string{"u_a", "u_b"} {
		if u, err := s.GetUser(t.Context(), id); err != nil || u.Name != "xx" {
			t.Errorf("%s: name %q (%v), want each transaction's change once", id, u.Name, err)
		}
	}
}

// A function's own storage.ErrConflict (a flow another request moved on)
// is its answer, not the server's rollback: InTx does not run it again.
func TestInTxDoesNotRetryAConflictItsFunctionReturns(t *testing.T) {
	s := openFresh(t)
	runs := 0
	err := s.InTx(t.Context(), func(context.Context) error { runs++; return storage.ErrConflict })
	if runs != 1 || err != storage.ErrConflict {
		t.Errorf("ran %d times, answered %v; want once, ErrConflict", runs, err)
	}
}
