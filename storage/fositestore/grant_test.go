package fositestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/fositestore"
)

// fosite reads a code or refresh token, then opens the transaction that
// writes the new tokens. Each case here ends the grant in between, as a
// kill action racing the request would, and the write must refuse.
func TestWritesRecheckTheGrant(t *testing.T) {
	oldSecret, newSecret := []byte("old-secret-hash"), []byte("new-secret-hash")
	kills := []struct {
		name string
		kill func(ctx context.Context, f *fixture) error
		// live: the grant survives this change.
		live bool
	}{
		{"nothing happened", func(context.Context, *fixture) error { return nil }, true},
		{"the user was suspended", func(ctx context.Context, f *fixture) error {
			return f.db.UpdateUser(ctx, "u_alice", func(u *storage.User) error { u.SuspendedAt = t0; return nil })
		}, false},
		{"the user was deleted", func(ctx context.Context, f *fixture) error { return f.db.DeleteUser(ctx, "u_alice") }, false},
		{"the user's tokens were revoked", func(ctx context.Context, f *fixture) error {
			_, err := f.db.RevokeSubject(ctx, "u_alice")
			return err
		}, false},
		{"the grant was revoked", func(ctx context.Context, f *fixture) error {
			if err := f.db.RevokeRequest(ctx, "req"); err != nil {
				return err
			}
			return f.db.RevokeRequest(ctx, "req-code")
		}, false},
		{"the app was disabled", func(ctx context.Context, f *fixture) error {
			return f.db.UpdateClient(ctx, "c_app", func(c *storage.Client) error { c.Disabled = true; return nil })
		}, false},
		{"the app was deleted", func(ctx context.Context, f *fixture) error { return f.db.DeleteClient(ctx, "c_app") }, false},
		{"the app's secret was rotated without overlap", func(ctx context.Context, f *fixture) error {
			return f.db.UpdateClient(ctx, "c_app", func(c *storage.Client) error {
				c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = newSecret, nil, time.Time{}
				return nil
			})
		}, false},
		{"the app's secret was rotated with an overlap", func(ctx context.Context, f *fixture) error {
			return f.db.UpdateClient(ctx, "c_app", func(c *storage.Client) error {
				c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = newSecret, c.SecretHash, t0.Add(time.Hour)
				return nil
			})
		}, true},
	}
	// setup gives the app its old secret and stores the grant's records.
	setup := func(t *testing.T) (*fixture, context.Context) {
		f := newFixture(t)
		ctx := t.Context()
		if err := f.db.UpdateClient(ctx, "c_app", func(c *storage.Client) error { c.SecretHash = oldSecret; return nil }); err != nil {
			t.Fatal(err)
		}
		refreshFamily(t, f, "req", "at", "rt")
		if err := f.fs.CreateAuthorizeCodeSession(ctx, "code", newRequest(f, "req-code")); err != nil {
			t.Fatal(err)
		}
		// The request authenticated with the old secret.
		ctx, auth := fositestore.WithClientAuth(ctx)
		auth.SecretHash = oldSecret
		return f, ctx
	}
	writes := []struct {
		name  string
		write func(ctx context.Context, f *fixture) error
	}{
		{"a refresh", func(ctx context.Context, f *fixture) error { return f.fs.RotateRefreshToken(ctx, "req", "rt") }},
		{"a code exchange", func(ctx context.Context, f *fixture) error { return f.fs.InvalidateAuthorizeCodeSession(ctx, "code") }},
	}
	for _, w := range writes {
		for _, k := range kills {
			t.Run(w.name+" when "+k.name, func(t *testing.T) {
				f, ctx := setup(t)
				if err := k.kill(ctx, f); err != nil {
					t.Fatal(err)
				}
				tx, err := f.fs.BeginTX(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = f.fs.Rollback(tx) }()
				err = w.write(tx, f)
				switch {
				case k.live && err != nil:
					t.Fatalf("the write failed: %v", err)
				case !k.live && !errors.Is(err, fositestore.ErrGrantEnded):
					t.Fatalf("the write = %v, want ErrGrantEnded", err)
				}
			})
		}
	}

	t.Run("a code used by a concurrent exchange refuses the second", func(t *testing.T) {
		f, ctx := setup(t)
		if err := f.fs.InvalidateAuthorizeCodeSession(ctx, "code"); err != nil {
			t.Fatal(err)
		}
		if err := f.fs.InvalidateAuthorizeCodeSession(ctx, "code"); !errors.Is(err, fositestore.ErrGrantEnded) {
			t.Fatalf("second use = %v, want ErrGrantEnded", err)
		}
	})

	t.Run("a refresh token rotated past the grace window refuses a refresh that read it before", func(t *testing.T) {
		f, ctx := setup(t)
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(grace) // within: a concurrent refresh by the app
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); err != nil {
			t.Fatalf("within the grace window: %v", err)
		}
		f.clock.Advance(time.Second)
		if err := f.fs.RotateRefreshToken(ctx, "req", "rt"); !errors.Is(err, fositestore.ErrGrantEnded) {
			t.Fatalf("past the grace window = %v, want ErrGrantEnded", err)
		}
	})

	t.Run("the overlap of a rotated secret ends with its expiry", func(t *testing.T) {
		f, ctx := setup(t)
		if err := f.db.UpdateClient(ctx, "c_app", func(c *storage.Client) error {
			c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = newSecret, c.SecretHash, t0.Add(time.Minute)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		if err := f.fs.LiveGrant(ctx, "c_app", "u_alice"); !errors.Is(err, fositestore.ErrGrantEnded) {
			t.Fatalf("LiveGrant with the expired old secret = %v, want ErrGrantEnded", err)
		}
	})
}

// LiveUser makes LiveGrant's checks and returns the user and their groups
// as it read them.
func TestLiveUser(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, g := range []storage.Group{{ID: "g_staff", Name: "staff", CreatedAt: t0}, {ID: "g_ops", Name: "ops", CreatedAt: t0}} {
		if err := f.db.CreateGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.db.AddGroupMember(ctx, "g_staff", "u_alice", t0); err != nil {
		t.Fatal(err)
	}
	u, groups, err := f.fs.LiveUser(ctx, "c_app", "u_alice")
	if err != nil || u.Email != "alice@example.com" || len(groups) != 1 || groups[0].ID != "g_staff" {
		t.Fatalf("LiveUser = %+v, %+v, %v; want alice in staff", u, groups, err)
	}
	if err := f.db.UpdateClient(ctx, "c_app", func(c *storage.Client) error { c.AllowedGroups = []string{"g_ops"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.fs.LiveUser(ctx, "c_app", "u_alice"); !errors.Is(err, fositestore.ErrNotInAllowedGroup) || !errors.Is(err, fositestore.ErrGrantEnded) {
		t.Errorf("LiveUser for an app of another group = %v, want ErrGrantEnded and ErrNotInAllowedGroup", err)
	}
	if err := f.db.UpdateUser(ctx, "u_alice", func(u *storage.User) error { u.SuspendedAt = t0; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.fs.LiveUser(ctx, "c_app", "u_alice"); !errors.Is(err, fositestore.ErrUserSuspended) || !errors.Is(err, fositestore.ErrGrantEnded) {
		t.Errorf("LiveUser for a suspended user = %v, want ErrGrantEnded and ErrUserSuspended", err)
	}
	if _, _, err := f.fs.LiveUser(ctx, "c_app", ""); err == nil {
		t.Error("LiveUser without a user succeeded")
	}
}
