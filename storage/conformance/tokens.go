package conformance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testTokens(t *testing.T, newStore NewStore) {
	// A grant: a code, its PKCE and OIDC sessions, and the access and
	// refresh tokens issued for it, all sharing one request id.
	grant := func(req, subject, sid string) []storage.TokenRecord {
		rec := func(kind, sig string) storage.TokenRecord {
			return storage.TokenRecord{
				Kind:        kind,
				Signature:   req + "-" + sig,
				RequestID:   req,
				ClientID:    "app",
				Subject:     subject,
				SID:         sid,
				Active:      true,
				Request:     []byte(`{"id":"` + req + `"}`),
				RequestedAt: t0,
				ExpiresAt:   at(time.Hour),
			}
		}
		refresh := rec(storage.KindRefreshToken, "rt")
		refresh.AccessSignature = req + "-at"
		refresh.ExpiresAt = at(30 * 24 * time.Hour)
		return []storage.TokenRecord{
			rec(storage.KindAuthorizeCode, "code"),
			rec(storage.KindPKCE, "code"),
			rec(storage.KindOIDC, "code"),
			rec(storage.KindAccessToken, "at"),
			refresh,
		}
	}
	create := func(t *testing.T, st storage.Store, recs ...storage.TokenRecord) {
		t.Helper()
		for _, r := range recs {
			ok(t, st.CreateToken(t.Context(), r))
		}
	}
	// active reports the Active flag of every record, in order.
	active := func(t *testing.T, st storage.Store, recs []storage.TokenRecord) []bool {
		t.Helper()
		var out []bool
		for _, r := range recs {
			got, err := st.GetToken(t.Context(), r.Kind, r.Signature)
			ok(t, err)
			out = append(out, got.Active)
		}
		return out
	}
	g1 := grant("req-1", "u", "sid-1")

	t.Run("every kind of record reads back unchanged", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		create(t, st, g1...)
		for _, want := range g1 {
			got, err := st.GetToken(ctx, want.Kind, want.Signature)
			ok(t, err)
			same(t, want.Kind, got, want)
		}
	})

	t.Run("a taken kind and signature is refused, but another kind may share the signature", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		create(t, st, g1[0])
		wantErr(t, st.CreateToken(ctx, g1[0]), storage.ErrAlreadyExists)
		other := g1[0]
		other.Kind = storage.KindPAR
		ok(t, st.CreateToken(ctx, other))
	})

	t.Run("an unknown record is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		create(t, st, g1...)
		k, sig := storage.KindAccessToken, "req-1-code" // a signature known under another kind
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"get", func() error { _, err := st.GetToken(ctx, k, sig); return err }},
			{"delete", func() error { return st.DeleteToken(ctx, k, sig) }},
			{"deactivate", func() error { return st.DeactivateToken(ctx, k, sig) }},
			{"mark rotated", func() error { return st.MarkRotated(ctx, k, sig, t0) }},
		} {
			t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), storage.ErrNotFound) })
		}
	})

	t.Run("a deactivated record is still returned, inactive", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		create(t, st, g1...)
		ok(t, st.DeactivateToken(ctx, storage.KindAuthorizeCode, "req-1-code"))
		same(t, "active flags", active(t, st, g1), []bool{false, true, true, true, true})
	})

	t.Run("a deleted record is gone", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		create(t, st, g1...)
		ok(t, st.DeleteToken(ctx, storage.KindPKCE, "req-1-code"))
		_, err := st.GetToken(ctx, storage.KindPKCE, "req-1-code")
		wantErr(t, err, storage.ErrNotFound)
		_, err = st.GetToken(ctx, storage.KindAuthorizeCode, "req-1-code")
		ok(t, err)
	})

	t.Run("a refresh token is marked rotated only once", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		create(t, st, g1...)
		ok(t, st.MarkRotated(ctx, storage.KindRefreshToken, "req-1-rt", at(time.Minute)))
		ok(t, st.MarkRotated(ctx, storage.KindRefreshToken, "req-1-rt", at(2*time.Minute)))
		got, err := st.GetToken(ctx, storage.KindRefreshToken, "req-1-rt")
		ok(t, err)
		if !got.RotatedAt.Equal(at(time.Minute)) {
			t.Fatalf("RotatedAt = %v, want the first rotation %v", got.RotatedAt, at(time.Minute))
		}
		if !got.Active {
			t.Fatal("marking a token rotated deactivated it")
		}
	})

	t.Run("revoking a request", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			kinds []string
			want  []bool // code, pkce, oidc, access, refresh
		}{
			{"of some kinds leaves the other kinds active",
				[]string{storage.KindAccessToken, storage.KindRefreshToken},
				[]bool{true, true, true, false, false}},
			{"of one kind revokes just that kind",
				[]string{storage.KindRefreshToken},
				[]bool{true, true, true, true, false}},
			{"of no kinds revokes every kind",
				nil,
				[]bool{false, false, false, false, false}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, ctx := newStore(t), t.Context()
				g2 := grant("req-2", "u", "sid-1")
				create(t, st, g1...)
				create(t, st, g2...)
				ok(t, st.RevokeRequest(ctx, "req-1", tc.kinds...))
				same(t, "revoked grant", active(t, st, g1), tc.want)
				same(t, "other grant", active(t, st, g2), []bool{true, true, true, true, true})
			})
		}
	})

	t.Run("revoking an unknown request is not an error", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.RevokeRequest(ctx, "nope"))
	})

	// Revoking by subject or by session: the same shape, two keys.
	for _, tc := range []struct {
		name   string
		revoke func(ctx context.Context, st storage.Store) (int, error)
	}{
		{"revoking a subject deactivates only that user's active tokens",
			func(ctx context.Context, st storage.Store) (int, error) { return st.RevokeSubject(ctx, "u") }},
		{"revoking a session deactivates only the tokens issued from it",
			func(ctx context.Context, st storage.Store) (int, error) { return st.RevokeSession(ctx, "sid-1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ctx := newStore(t), t.Context()
			mine := grant("req-1", "u", "sid-1")
			theirs := grant("req-2", "v", "sid-2")
			create(t, st, mine...)
			create(t, st, theirs...)
			// One of mine is inactive already and is not counted.
			ok(t, st.DeactivateToken(ctx, storage.KindAuthorizeCode, "req-1-code"))

			n, err := tc.revoke(ctx, st)
			ok(t, err)
			if n != len(mine)-1 {
				t.Errorf("revoked %d tokens, want %d", n, len(mine)-1)
			}
			same(t, "my tokens", active(t, st, mine), []bool{false, false, false, false, false})
			same(t, "their tokens", active(t, st, theirs), []bool{true, true, true, true, true})

			n, err = tc.revoke(ctx, st)
			ok(t, err)
			if n != 0 {
				t.Errorf("revoking again revoked %d tokens, want 0", n)
			}
		})
	}

	t.Run("revoking a client deactivates its own tokens, and with users theirs too", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		users := grant("req-1", "u", "sid-1")
		own := storage.TokenRecord{Kind: storage.KindAccessToken, Signature: "cc-at", RequestID: "req-cc",
			ClientID: "app", Active: true, RequestedAt: t0, ExpiresAt: at(time.Hour)}
		other := own
		other.Signature, other.RequestID, other.ClientID = "other-at", "req-other", "other-app"
		create(t, st, users...)
		create(t, st, own, other)
		all := append(slices.Clone(users), own, other)

		n, err := st.RevokeClient(ctx, "app", false)
		ok(t, err)
		if n != 1 {
			t.Errorf("revoked %d tokens without users, want 1", n)
		}
		same(t, "after the client's own", active(t, st, all), []bool{true, true, true, true, true, false, true})

		n, err = st.RevokeClient(ctx, "app", true)
		ok(t, err)
		if n != len(users) {
			t.Errorf("revoked %d tokens with users, want %d", n, len(users))
		}
		same(t, "after all", active(t, st, all), []bool{false, false, false, false, false, false, true})

		if _, err := st.RevokeClient(ctx, "", true); err == nil {
			t.Error("RevokeClient with an empty client id succeeded")
		}
		same(t, "after an empty id", active(t, st, all)[6:], []bool{true})
	})

	t.Run("revoking a user's tokens at one client leaves the rest and names the sessions", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		mine := append(grant("req-1", "u", "sid-1"), grant("req-2", "u", "sid-2")...)
		other := grant("req-3", "u", "sid-1")
		for i := range other {
			other[i].ClientID = "other-app"
		}
		theirs := grant("req-4", "v", "sid-3")
		create(t, st, mine...)
		create(t, st, other...)
		create(t, st, theirs...)
		sids, err := st.RevokeUserClient(ctx, "u", "app")
		ok(t, err)
		slices.Sort(sids)
		same(t, "sessions", sids, []string{"sid-1", "sid-2"})
		for _, tc := range []struct {
			what string
			recs []storage.TokenRecord
			want bool
		}{{"u at app", mine, false}, {"u at another app", other, true}, {"v at app", theirs, true}} {
			for _, a := range active(t, st, tc.recs) {
				if a != tc.want {
					t.Errorf("%s: active %v, want %v", tc.what, a, tc.want)
				}
			}
		}
		if _, err := st.RevokeUserClient(ctx, "", "app"); err == nil {
			t.Error("RevokeUserClient with an empty subject succeeded")
		}
		if _, err := st.RevokeUserClient(ctx, "v", ""); err == nil {
			t.Error("RevokeUserClient with an empty client succeeded")
		}
		// app holds active tokens for v only now; other-app for u.
		subjects, err := st.ClientSubjects(ctx, "app")
		ok(t, err)
		same(t, "app's subjects", subjects, []string{"v"})
		subjects, err = st.ClientSubjects(ctx, "other-app")
		ok(t, err)
		same(t, "other app's subjects", subjects, []string{"u"})
	})

	t.Run("the sweep deletes only expired records", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		create(t, st, g1...) // the refresh token lives 30 days, the rest an hour
		n, err := st.DeleteExpiredTokens(ctx, at(2*time.Hour))
		ok(t, err)
		if n != 4 {
			t.Fatalf("DeleteExpiredTokens = %d, want 4", n)
		}
		_, err = st.GetToken(ctx, storage.KindRefreshToken, "req-1-rt")
		ok(t, err)
		_, err = st.GetToken(ctx, storage.KindAccessToken, "req-1-at")
		wantErr(t, err, storage.ErrNotFound)
	})
}
