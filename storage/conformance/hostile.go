package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// testHostileText: a lookup by a value no row can hold — a NUL byte or
// invalid UTF-8, straight from a request — finds nothing, as a lookup of
// any unknown value does, and leaves the transaction usable; a throttle
// key of that kind is counted like any other. (PostgreSQL's text refuses
// such values, and a failed statement would read as a database down.)
func testHostileText(t *testing.T, newStore NewStore) {
	st, ctx := newStore(t), t.Context()
	newUser(t, ctx, st, "u1")
	for i, bad := range []string{"a\x00b@example.com", "\xff\xfe@example.com"} {
		name := fmt.Sprint("after lookup ", i)
		t.Run("lookups", func(t *testing.T) {
			ok(t, st.InTx(ctx, func(ctx context.Context) error {
				if _, err := st.GetUserByEmail(ctx, bad); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("GetUserByEmail(%q) = %v, want ErrNotFound", bad, err)
				}
				if _, err := st.GetUser(ctx, bad); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("GetUser(%q) = %v, want ErrNotFound", bad, err)
				}
				if _, err := st.GetClient(ctx, bad); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("GetClient(%q) = %v, want ErrNotFound", bad, err)
				}
				if _, err := st.GetFlow(ctx, bad, t0); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("GetFlow(%q) = %v, want ErrNotFound", bad, err)
				}
				// The transaction goes on.
				return st.UpdateUser(ctx, "u1", func(u *storage.User) error { u.Name = name; return nil })
			}))
			if u, err := st.GetUser(ctx, "u1"); err != nil || u.Name != name {
				t.Errorf("the write after the lookups: %q, %v", u.Name, err)
			}
		})
		t.Run("throttle keys", func(t *testing.T) {
			for range 2 {
				ok(t, st.RecordAttempt(ctx, "password", bad, t0))
			}
			if n, err := st.CountAttempts(ctx, "password", bad, t0.Add(-time.Hour)); err != nil || n != 2 {
				t.Errorf("CountAttempts(%q) = %d, %v; want 2", bad, n, err)
			}
			ok(t, st.ClearAttempts(ctx, "password", bad))
			if n, err := st.CountAttempts(ctx, "password", bad, t0.Add(-time.Hour)); err != nil || n != 0 {
				t.Errorf("after ClearAttempts(%q): %d, %v; want 0", bad, n, err)
			}
		})
	}
}
