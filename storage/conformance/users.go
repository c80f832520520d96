package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testUsers(t *testing.T, newStore NewStore) {
	full := storage.User{
		ID:           "u1",
		Email:        "ada@example.com",
		Name:         "Ada Lovelace",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Admin:        true,
		SuspendedAt:  at(2 * time.Minute),
		CreatedAt:    t0,
		UpdatedAt:    at(time.Minute),
	}

	t.Run("a created user reads back unchanged", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateUser(ctx, full))
		got, err := st.GetUser(ctx, full.ID)
		ok(t, err)
		same(t, "user", got, full)
		if !got.Suspended() {
			t.Error("a user with SuspendedAt set is not Suspended")
		}
	})

	t.Run("email is stored lower-case and found in any case", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		u := full
		u.Email = "Ada@Example.COM"
		ok(t, st.CreateUser(ctx, u))
		for _, email := range []string{"ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.COM"} {
			got, err := st.GetUserByEmail(ctx, email)
			ok(t, err)
			if got.ID != u.ID || got.Email != "ada@example.com" {
				t.Errorf("GetUserByEmail(%q) = %q <%s>, want %q <ada@example.com>", email, got.ID, got.Email, u.ID)
			}
		}
	})

	t.Run("a taken id or email is refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			u    storage.User
		}{
			{"same id", storage.User{ID: full.ID, Email: "other@example.com"}},
			{"same email", storage.User{ID: "u2", Email: full.Email}},
			{"same email in another case", storage.User{ID: "u2", Email: "ADA@example.com"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, ctx := newStore(t), t.Context()
				ok(t, st.CreateUser(ctx, full))
				wantErr(t, st.CreateUser(ctx, tc.u), storage.ErrAlreadyExists)
			})
		}
	})

	t.Run("an unknown user is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateUser(ctx, full))
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"get", func() error { _, err := st.GetUser(ctx, "nobody"); return err }},
			{"get by email", func() error { _, err := st.GetUserByEmail(ctx, "nobody@example.com"); return err }},
			{"update", func() error { return st.UpdateUser(ctx, "nobody", func(*storage.User) error { return nil }) }},
			{"delete", func() error { return st.DeleteUser(ctx, "nobody") }},
		} {
			t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), storage.ErrNotFound) })
		}
	})

	t.Run("users are listed", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		newUser(t, ctx, st, "b")
		newUser(t, ctx, st, "a")
		us, err := st.ListUsers(ctx)
		ok(t, err)
		ids := map[string]bool{}
		for _, u := range us {
			ids[u.ID] = true
		}
		if len(us) != 2 || !ids["a"] || !ids["b"] {
			t.Fatalf("ListUsers = %+v, want users a and b", us)
		}
	})

	t.Run("an update applies the closure's changes", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateUser(ctx, full))
		ok(t, st.UpdateUser(ctx, full.ID, func(u *storage.User) error {
			u.Name = "Augusta Ada King"
			u.Email = "AUGUSTA@example.com"
			u.SuspendedAt = time.Time{}
			u.UpdatedAt = at(10 * time.Minute)
			return nil
		}))
		got, err := st.GetUser(ctx, full.ID)
		ok(t, err)
		want := full
		want.Name, want.Email, want.SuspendedAt, want.UpdatedAt = "Augusta Ada King", "augusta@example.com", time.Time{}, at(10*time.Minute)
		same(t, "updated user", got, want)
		if got.Suspended() {
			t.Error("the user is still suspended")
		}
		_, err = st.GetUserByEmail(ctx, "Augusta@Example.com")
		ok(t, err)
	})

	t.Run("an update whose closure fails changes nothing and returns its error", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateUser(ctx, full))
		boom := errors.New("boom")
		err := st.UpdateUser(ctx, full.ID, func(u *storage.User) error {
			u.Name = "changed"
			return boom
		})
		wantErr(t, err, boom)
		got, err := st.GetUser(ctx, full.ID)
		ok(t, err)
		same(t, "user", got, full)
	})

	t.Run("an update cannot take another user's email", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		newUser(t, ctx, st, "a")
		newUser(t, ctx, st, "b")
		err := st.UpdateUser(ctx, "b", func(u *storage.User) error {
			u.Email = "A@example.com"
			return nil
		})
		wantErr(t, err, storage.ErrAlreadyExists)
	})

	t.Run("a deleted user is gone", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateUser(ctx, full))
		ok(t, st.DeleteUser(ctx, full.ID))
		_, err := st.GetUser(ctx, full.ID)
		wantErr(t, err, storage.ErrNotFound)
		// The email is free again.
		ok(t, st.CreateUser(ctx, storage.User{ID: "u2", Email: full.Email}))
	})
}

// userCtx is a store with one user "u" and a context, for the credential
// tests.
func userCtx(t *testing.T, newStore NewStore) (storage.Store, context.Context) {
	t.Helper()
	st, ctx := newStore(t), t.Context()
	newUser(t, ctx, st, "u")
	return st, ctx
}
