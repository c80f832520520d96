package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testClients(t *testing.T, newStore NewStore) {
	full := storage.Client{
		ID:                     "app",
		Name:                   "The App",
		SecretHash:             []byte("$2a$10$secret-hash"),
		RedirectURIs:           []string{"https://app.example.com/cb", "https://app.example.com/cb2"},
		PostLogoutRedirectURIs: []string{"https://app.example.com/"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		ResponseTypes:          []string{"code"},
		Scopes:                 []string{"openid", "email", "offline_access"},
		Audience:               []string{"https://api.example.com"},
		MinACR:                 "mfa",
		MaxAuthAge:             12 * time.Hour,
		TokenFormat:            "jwt",
		BackchannelLogoutURI:   "https://app.example.com/bcl",
		// A rotation in progress, and lifetimes of its own.
		PreviousSecretHash:      []byte("$2a$10$old-secret-hash"),
		PreviousSecretExpiresAt: at(24 * time.Hour),
		AccessTokenTTL:          15 * time.Minute,
		RefreshTokenTTL:         30 * 24 * time.Hour,
		DenyRisky:               true,
		IDTokenAlg:              "ES256",
		AllowedGroups:           []string{"g_support", "g_ops"},
		CreatedAt:               t0,
		UpdatedAt:               at(time.Minute),
	}
	// public leaves every optional field zero: no previous secret, the
	// server's default lifetimes and ID token algorithm.
	public := storage.Client{
		ID:           "spa",
		Name:         "Single-page app",
		RedirectURIs: []string{"http://localhost:5173/"},
		Public:       true,
		MinACR:       "phr",
		TokenFormat:  "opaque",
		Disabled:     true,
		CreatedAt:    t0,
	}

	t.Run("clients read back unchanged", func(t *testing.T) {
		for _, c := range []storage.Client{full, public} {
			t.Run(c.ID, func(t *testing.T) {
				st, ctx := newStore(t), t.Context()
				ok(t, st.CreateClient(ctx, c))
				got, err := st.GetClient(ctx, c.ID)
				ok(t, err)
				same(t, "client", got, c)
				if c.SecretHash == nil && len(got.SecretHash) != 0 {
					t.Errorf("a public client came back with secret hash %q", got.SecretHash)
				}
				if c.PreviousSecretHash == nil && len(got.PreviousSecretHash) != 0 {
					t.Errorf("a client without a rotation came back with previous secret hash %q", got.PreviousSecretHash)
				}
			})
		}
	})

	t.Run("a taken id is refused", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateClient(ctx, full))
		wantErr(t, st.CreateClient(ctx, storage.Client{ID: full.ID, Name: "impostor"}), storage.ErrAlreadyExists)
	})

	t.Run("clients are listed", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateClient(ctx, full))
		ok(t, st.CreateClient(ctx, public))
		cs, err := st.ListClients(ctx)
		ok(t, err)
		if len(cs) != 2 {
			t.Fatalf("ListClients returned %d clients, want 2", len(cs))
		}
		for _, c := range cs {
			want := full
			if c.ID == public.ID {
				want = public
			}
			same(t, "listed client", c, want)
		}
	})

	t.Run("an unknown client is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateClient(ctx, full))
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"get", func() error { _, err := st.GetClient(ctx, "nope"); return err }},
			{"update", func() error { return st.UpdateClient(ctx, "nope", func(*storage.Client) error { return nil }) }},
			{"delete", func() error { return st.DeleteClient(ctx, "nope") }},
		} {
			t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), storage.ErrNotFound) })
		}
	})

	t.Run("an update applies the closure's changes", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateClient(ctx, full))
		ok(t, st.UpdateClient(ctx, full.ID, func(c *storage.Client) error {
			c.RedirectURIs = append(c.RedirectURIs, "https://app.example.com/cb3")
			c.Scopes = nil
			c.Disabled = true
			c.IDTokenAlg = "RS256"
			c.UpdatedAt = at(time.Hour)
			return nil
		}))
		got, err := st.GetClient(ctx, full.ID)
		ok(t, err)
		want := full
		want.RedirectURIs = append(append([]string(nil), full.RedirectURIs...), "https://app.example.com/cb3")
		want.Scopes, want.Disabled, want.IDTokenAlg, want.UpdatedAt = nil, true, "RS256", at(time.Hour)
		same(t, "updated client", got, want)
	})

	t.Run("the ID token algorithm is kept as written, empty meaning RS256", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateClient(ctx, public))
		got, err := st.GetClient(ctx, public.ID)
		ok(t, err)
		if got.IDTokenAlg != "" || got.IDTokenSignedResponseAlg() != "RS256" {
			t.Errorf("a client registered without one reads back %q (signed with %s), want \"\" (RS256)",
				got.IDTokenAlg, got.IDTokenSignedResponseAlg())
		}
		ok(t, st.UpdateClient(ctx, public.ID, func(c *storage.Client) error { c.IDTokenAlg = "ES256"; return nil }))
		got, err = st.GetClient(ctx, public.ID)
		ok(t, err)
		if got.IDTokenAlg != "ES256" || got.IDTokenSignedResponseAlg() != "ES256" {
			t.Errorf("after switching to ES256 it reads back %q", got.IDTokenAlg)
		}
	})

	t.Run("an update rotates the secret, and a later one ends the rotation", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateClient(ctx, public))
		rotate := func(c *storage.Client) {
			c.PreviousSecretHash, c.SecretHash = c.SecretHash, []byte("$2a$10$new-secret-hash")
			c.PreviousSecretExpiresAt = at(2 * time.Hour)
			c.AccessTokenTTL, c.RefreshTokenTTL = time.Hour, 90*time.Minute
		}
		ok(t, st.CreateClient(ctx, full))
		ok(t, st.UpdateClient(ctx, full.ID, func(c *storage.Client) error { rotate(c); return nil }))
		got, err := st.GetClient(ctx, full.ID)
		ok(t, err)
		want := full
		rotate(&want)
		same(t, "rotated client", got, want)

		// Back to zero values: the rotation is over, the defaults apply.
		ok(t, st.UpdateClient(ctx, full.ID, func(c *storage.Client) error {
			c.PreviousSecretHash, c.PreviousSecretExpiresAt = nil, time.Time{}
			c.AccessTokenTTL, c.RefreshTokenTTL = 0, 0
			return nil
		}))
		got, err = st.GetClient(ctx, full.ID)
		ok(t, err)
		want.PreviousSecretHash, want.PreviousSecretExpiresAt = nil, time.Time{}
		want.AccessTokenTTL, want.RefreshTokenTTL = 0, 0
		same(t, "client after the rotation", got, want)
		if len(got.PreviousSecretHash) != 0 || !got.PreviousSecretExpiresAt.IsZero() {
			t.Errorf("the ended rotation left %q until %v", got.PreviousSecretHash, got.PreviousSecretExpiresAt)
		}

		// The other client was not touched.
		other, err := st.GetClient(ctx, public.ID)
		ok(t, err)
		same(t, "other client", other, public)
	})

	t.Run("an update whose closure fails changes nothing and returns its error", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateClient(ctx, full))
		boom := errors.New("boom")
		wantErr(t, st.UpdateClient(ctx, full.ID, func(c *storage.Client) error {
			c.Name = "changed"
			return boom
		}), boom)
		got, err := st.GetClient(ctx, full.ID)
		ok(t, err)
		same(t, "client", got, full)
	})

	t.Run("a deleted client is gone", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateClient(ctx, full))
		ok(t, st.DeleteClient(ctx, full.ID))
		_, err := st.GetClient(ctx, full.ID)
		wantErr(t, err, storage.ErrNotFound)
	})
}
