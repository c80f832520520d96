package sqlite

import (
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
