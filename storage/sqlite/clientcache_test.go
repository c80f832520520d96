package sqlite

import (
	"context"
	"errors"
	"testing"

	"github.com/keygate/keygate/storage"
)

func TestClientCache(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	c := storage.Client{ID: "c1", Name: "App", RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{"authorization_code"}}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}

	t.Run("a caller changing a returned client does not change the cache", func(t *testing.T) {
		got, err := s.GetClient(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		got.RedirectURIs[0] = "https://evil.example/cb"
		again, err := s.GetClient(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if again.RedirectURIs[0] != "https://app.example/cb" {
			t.Fatalf("the cache was changed through a returned client: %v", again.RedirectURIs)
		}
	})

	t.Run("an update through the store is seen at once", func(t *testing.T) {
		if _, err := s.GetClient(ctx, "c1"); err != nil { // cached
			t.Fatal(err)
		}
		if err := s.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Disabled = true; return nil }); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetClient(ctx, "c1")
		if err != nil || !got.Disabled {
			t.Fatalf("after disabling: %+v, %v", got.Disabled, err)
		}
	})

	t.Run("a deleted client is gone at once", func(t *testing.T) {
		if err := s.DeleteClient(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetClient(ctx, "c1"); err == nil {
			t.Fatal("a deleted client is still returned")
		}
	})
}

// A change made inside a caller's longer transaction is invisible to other
// readers until it commits; a read in that window must not leave the old
// row cached for after the commit.
func TestClientCacheAfterACallersTransaction(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context) error
		check func(t *testing.T, got storage.Client, err error)
	}{
		{"disabled", func(ctx context.Context) error {
			return s.UpdateClient(ctx, "c1", func(c *storage.Client) error { c.Disabled = true; return nil })
		}, func(t *testing.T, got storage.Client, err error) {
			if err != nil || !got.Disabled {
				t.Fatalf("after the commit: disabled %v, %v", got.Disabled, err)
			}
		}},
		{"deleted", func(ctx context.Context) error { return s.DeleteClient(ctx, "c1") },
			func(t *testing.T, _ storage.Client, err error) {
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("after the commit: %v, want ErrNotFound", err)
				}
			}},
	} {
		t.Run("a client "+tc.name+" in a longer transaction is not served stale after it", func(t *testing.T) {
			if err := s.CreateClient(ctx, storage.Client{ID: "c1", Name: "App"}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.DeleteClient(ctx, "c1") })
			err := s.InTx(ctx, func(txCtx context.Context) error {
				if err := tc.write(txCtx); err != nil {
					return err
				}
				// Another request reads (and caches) the committed row.
				got, err := s.GetClient(ctx, "c1")
				if err != nil || got.Disabled {
					t.Fatalf("a read before the commit: %+v, %v; want the old, enabled row", got, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.GetClient(ctx, "c1")
			tc.check(t, got, err)
		})
	}
}
