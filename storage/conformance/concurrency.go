package conformance

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// concurrently runs fn(i) for i in [0, n) on n goroutines released
// together, and returns their errors.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrency(t *testing.T, newStore NewStore) {
	t.Run("concurrent appends produce one unbroken chain", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		const writers, each = 8, 25
		errs := concurrently(writers, func(w int) error {
			for i := range each {
				if _, err := st.AppendAudit(ctx, event(i, "token.issued", fmt.Sprint("u", w), "app", "success")); err != nil {
					return err
				}
			}
			return nil
		})
		ok(t, errors.Join(errs...))
		if n := verifyChain(t, ctx, st); n != writers*each {
			t.Fatalf("the chain has %d events, want %d", n, writers*each)
		}
	})

	t.Run("of concurrent uses of one TOTP step exactly one wins", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.PutTOTP(ctx, storage.TOTPCredential{UserID: "u", Sealed: []byte("seed"), CreatedAt: t0}))
		errs := concurrently(8, func(int) error { return st.UseTOTPStep(ctx, "u", 1000) })
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, storage.ErrConflict):
				t.Errorf("a losing use failed with %v, want ErrConflict", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d uses of the same step won, want exactly 1", wins)
		}
	})

	t.Run("of concurrent consumptions of one enrolment exactly one wins", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		hash := []byte("link")
		ok(t, st.CreateEnrollment(ctx, storage.Enrollment{TokenHash: hash, UserID: "u", CreatedAt: t0, ExpiresAt: at(time.Hour)}))
		errs := concurrently(8, func(int) error { _, err := st.ConsumeEnrollment(ctx, hash, t0); return err })
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, storage.ErrNotFound):
				t.Errorf("a losing consumption failed with %v, want ErrNotFound", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d consumptions won, want exactly 1", wins)
		}
	})

	t.Run("concurrent updates of one user lose nothing", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.UpdateUser(ctx, "u", func(u *storage.User) error { u.Name = "0"; return nil }))
		const n = 16
		errs := concurrently(n, func(int) error {
			return st.UpdateUser(ctx, "u", func(u *storage.User) error {
				v, err := strconv.Atoi(u.Name)
				u.Name = strconv.Itoa(v + 1)
				return err
			})
		})
		ok(t, errors.Join(errs...))
		u, err := st.GetUser(ctx, "u")
		ok(t, err)
		if u.Name != strconv.Itoa(n) {
			t.Fatalf("after %d increments the counter is %s", n, u.Name)
		}
	})
}
