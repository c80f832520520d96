package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
		Role:         storage.RoleHelpdesk,
		SuspendedAt:  at(2 * time.Minute),
		EnrolledAt:   at(time.Second),
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
		if !got.Enrolled() {
			t.Error("a user with EnrolledAt set is not Enrolled")
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

	t.Run("users are searched", func(t *testing.T) { testSearchUsers(t, newStore) })

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

func testSearchUsers(t *testing.T, newStore NewStore) {
	st, ctx := newStore(t), t.Context()
	// Emails sort the same under any collation (they first differ at a
	// lower-case letter or digit), so the expected orders below hold for
	// every backend. The odd.test users carry LIKE's special characters,
	// each beside a user that the query would find if they were not taken
	// literally.
	users := []struct{ email, name string }{
		{"ada@example.com", "Ada Lovelace"},
		{"alan@example.org", "Alan Turing"},
		{"barbara@example.com", "Barbara Liskov"},
		{"grace@navy.mil", "Grace Hopper"},
		{"first_last@odd.test", "First Last"},
		{"tulip@odd.test", "Tulip"}, // "t_l" as a pattern
		{"pct@odd.test", "100% Sure"},
		{"pcx@odd.test", "1000 Sure"}, // "0%" as a pattern
		{"bs1@odd.test", `Back\Slash`},
		{"bs2@odd.test", "BackSlash"}, // `k\S` as a pattern with escape `\`
		{"mixed@odd.test", "MiXeD CaSe"},
	}
	var all []string
	for i, u := range users {
		ok(t, st.CreateUser(ctx, storage.User{ID: fmt.Sprint("s", i), Email: u.email, Name: u.name, CreatedAt: t0}))
		all = append(all, u.email)
	}
	slices.Sort(all)

	search := func(t *testing.T, query string, limit, offset int) ([]string, int) {
		t.Helper()
		us, total, err := st.SearchUsers(ctx, query, limit, offset)
		ok(t, err)
		var emails []string
		for _, u := range us {
			emails = append(emails, u.Email)
		}
		return emails, total
	}

	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"an empty query matches everyone", "", all},
		{"a part of the email", "example.com", []string{"ada@example.com", "barbara@example.com"}},
		{"a part of the email in another case", "EXAMPLE.Com", []string{"ada@example.com", "barbara@example.com"}},
		{"a part of the name", "hopp", []string{"grace@navy.mil"}},
		{"a part of the name in another case", "LOVELACE", []string{"ada@example.com"}},
		{"a name in mixed case", "mixed case", []string{"mixed@odd.test"}},
		{"email and name both matching count once", "alan", []string{"alan@example.org"}},
		{"a match in one's name and another's email", "li", []string{"barbara@example.com", "tulip@odd.test"}},
		{"the whole email", "grace@navy.mil", []string{"grace@navy.mil"}},
		{"an underscore is literal", "t_l", []string{"first_last@odd.test"}},
		{"an underscore alone is literal", "_", []string{"first_last@odd.test"}},
		{"a percent sign is literal", "0%", []string{"pct@odd.test"}},
		{"a percent sign alone is literal", "%", []string{"pct@odd.test"}},
		{"a backslash is literal", `k\S`, []string{"bs1@odd.test"}},
		{"a backslash alone is literal", `\`, []string{"bs1@odd.test"}},
		{"nothing matches", "nobody", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total := search(t, tc.query, 0, 0)
			same(t, fmt.Sprintf("SearchUsers(%q)", tc.query), got, tc.want)
			if total != len(tc.want) {
				t.Fatalf("SearchUsers(%q) total = %d, want %d", tc.query, total, len(tc.want))
			}
		})
	}

	t.Run("non-ASCII letters", func(t *testing.T) {
		// A store of its own: where "é" sorts depends on the collation.
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateUser(ctx, storage.User{ID: "e", Email: "Émile@Exemple.fr", Name: "Émile Zola", CreatedAt: t0}))
		ok(t, st.CreateUser(ctx, storage.User{ID: "z", Email: "zola@example.com", Name: "Zola", CreatedAt: t0}))
		// Emails are stored lower-case, so any case finds them; a name is
		// found at least in its own case.
		for _, q := range []string{"émile@", "ÉMILE@EXEMPLE", "Émile Z"} {
			us, total, err := st.SearchUsers(ctx, q, 0, 0)
			ok(t, err)
			if total != 1 || len(us) != 1 || us[0].ID != "e" {
				t.Errorf("SearchUsers(%q) = %+v, total %d; want user e", q, us, total)
			}
		}
	})

	t.Run("a match reads back as the user", func(t *testing.T) {
		us, total, err := st.SearchUsers(ctx, "lovelace", 10, 0)
		ok(t, err)
		if total != 1 || len(us) != 1 {
			t.Fatalf("SearchUsers = %d users, total %d; want 1, 1", len(us), total)
		}
		u, err := st.GetUser(ctx, us[0].ID)
		ok(t, err)
		same(t, "found user", us[0], u)
	})

	t.Run("pages walk the matches in order, each with the total", func(t *testing.T) {
		var odd []string
		for _, e := range all {
			if strings.HasSuffix(e, "@odd.test") {
				odd = append(odd, e)
			}
		}
		for _, tc := range []struct {
			query string
			want  []string
		}{{"", all}, {"odd.test", odd}} {
			for _, size := range []int{1, 2, 3, len(tc.want), len(tc.want) + 5} {
				var walked []string
				for offset := 0; offset < len(tc.want); offset += size {
					page, total := search(t, tc.query, size, offset)
					if total != len(tc.want) {
						t.Fatalf("query %q, limit %d, offset %d: total %d, want %d", tc.query, size, offset, total, len(tc.want))
					}
					if want := min(size, len(tc.want)-offset); len(page) != want {
						t.Fatalf("query %q, limit %d, offset %d: %d users, want %d", tc.query, size, offset, len(page), want)
					}
					walked = append(walked, page...)
				}
				same(t, fmt.Sprintf("query %q walked in pages of %d", tc.query, size), walked, tc.want)
			}
		}
	})

	t.Run("a page past the end is empty but still counts the matches", func(t *testing.T) {
		for _, offset := range []int{len(all), len(all) + 1, 1000} {
			page, total := search(t, "", 10, offset)
			if len(page) != 0 || total != len(all) {
				t.Fatalf("offset %d: %v, total %d; want none, total %d", offset, page, total, len(all))
			}
		}
		page, total := search(t, "example", 10, 5)
		if len(page) != 0 || total != 3 {
			t.Fatalf("query example, offset 5: %v, total %d; want none, total 3", page, total)
		}
	})

	t.Run("a negative offset counts as 0", func(t *testing.T) {
		page, total := search(t, "", 2, -5)
		same(t, "page", page, all[:2])
		if total != len(all) {
			t.Fatalf("total %d, want %d", total, len(all))
		}
	})

	t.Run("the default limit is 50 and the largest 500", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		const n = 520
		ok(t, st.InTx(ctx, func(ctx context.Context) error {
			for i := range n {
				if err := st.CreateUser(ctx, storage.User{ID: fmt.Sprint("b", i), Email: fmt.Sprintf("bulk%03d@example.net", i)}); err != nil {
					return err
				}
			}
			return nil
		}))
		for _, tc := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {7, 7}, {500, 500}, {5000, 500}} {
			us, total, err := st.SearchUsers(ctx, "bulk", tc.limit, 0)
			ok(t, err)
			if len(us) != tc.want || total != n {
				t.Errorf("limit %d: %d users, total %d; want %d, total %d", tc.limit, len(us), total, tc.want, n)
			}
			if len(us) > 0 && (us[0].Email != "bulk000@example.net" || us[len(us)-1].Email != fmt.Sprintf("bulk%03d@example.net", len(us)-1)) {
				t.Errorf("limit %d: users %s to %s, want the first %d by email", tc.limit, us[0].Email, us[len(us)-1].Email, len(us))
			}
		}
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
