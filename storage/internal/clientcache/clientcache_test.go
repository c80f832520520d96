package clientcache

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

var t0 = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

// reader counts the reads the cache could not answer and returns the
// client's current row.
type reader struct {
	row   storage.Client
	reads int
}

func (r *reader) read() (storage.Client, error) {
	r.reads++
	return clone(r.row), nil // a new row, as from the database
}

func TestCache(t *testing.T) {
	row := storage.Client{ID: "app", Name: "App", RedirectURIs: []string{"https://app.example/cb"}}

	t.Run("a fresh entry is served, a stale one read again", func(t *testing.T) {
		cc, r := New(time.Second, false), &reader{row: row}
		for _, at := range []time.Time{t0, t0.Add(time.Second), t0.Add(time.Second + time.Microsecond)} {
			if _, err := cc.Read("app", at, r.read); err != nil {
				t.Fatal(err)
			}
		}
		if r.reads != 2 {
			t.Fatalf("%d reads, want 2 (the first, and once the entry is older than the TTL)", r.reads)
		}
	})

	t.Run("a caller changing a returned client does not change the cache", func(t *testing.T) {
		cc, r := New(time.Minute, false), &reader{row: row}
		got, _ := cc.Read("app", t0, r.read)
		got.RedirectURIs[0] = "https://evil.example/cb"
		again, _ := cc.Read("app", t0, r.read)
		if r.reads != 1 || again.RedirectURIs[0] != "https://app.example/cb" {
			t.Fatalf("the cache was changed through a returned client: %v", again.RedirectURIs)
		}
	})

	t.Run("a copy shares nothing with the cache or between its own fields", func(t *testing.T) {
		full := storage.Client{ID: "app", SecretHash: []byte{1, 2}, PreviousSecretHash: []byte{3},
			RedirectURIs: []string{"r"}, PostLogoutRedirectURIs: []string{"p"}, GrantTypes: []string{"g"},
			ResponseTypes: []string{"t"}, Scopes: []string{"s"}, Audience: []string{}, AllowedGroups: []string{"a1", "a2"}}
		cc, r := New(time.Minute, false), &reader{row: full}
		got, _ := cc.Read("app", t0, r.read)
		if !reflect.DeepEqual(got, full) {
			t.Fatalf("the copy differs: %+v", got)
		}
		// Appending to each field must not write over the one after it.
		got.SecretHash = append(got.SecretHash, 9)
		got.RedirectURIs = append(got.RedirectURIs, "x")
		got.Audience = append(got.Audience, "x")
		for _, l := range [][]string{got.RedirectURIs, got.PostLogoutRedirectURIs, got.GrantTypes, got.ResponseTypes, got.Scopes, got.Audience, got.AllowedGroups} {
			l[0] = "changed"
		}
		got.SecretHash[0], got.PreviousSecretHash[0] = 0, 0
		again, _ := cc.Read("app", t0, r.read)
		if r.reads != 1 || !reflect.DeepEqual(again, full) {
			t.Fatalf("the cache was changed through a returned client: %+v", again)
		}
		if got.PostLogoutRedirectURIs[0] != "changed" || got.PreviousSecretHash[0] != 0 || len(got.AllowedGroups) != 2 {
			t.Fatalf("fields of one copy overlap: %+v", got)
		}
		if empty := (storage.Client{ID: "none"}); !reflect.DeepEqual(clone(empty), empty) {
			t.Fatalf("nil slices did not stay nil: %+v", clone(empty))
		}
	})

	t.Run("an error is not cached", func(t *testing.T) {
		cc := New(time.Minute, false)
		reads := 0
		for range 2 {
			_, err := cc.Read("app", t0, func() (storage.Client, error) { reads++; return storage.Client{}, storage.ErrNotFound })
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
		}
		if reads != 2 {
			t.Fatalf("%d reads, want 2", reads)
		}
	})

	// Each change lands while a read is under way: the row that read may
	// predate the change, so it must not be kept.
	for name, change := range map[string]func(cc *Cache){
		"an invalidation of the client": func(cc *Cache) { cc.Invalidate("app") },
		"a clear":                       func(cc *Cache) { cc.Clear() },
		"a suspension and resumption":   func(cc *Cache) { cc.Suspend(); cc.Resume() },
	} {
		t.Run("a row read across "+name+" is not kept", func(t *testing.T) {
			cc, r := New(time.Minute, false), &reader{row: row}
			_, _ = cc.Read("app", t0, func() (storage.Client, error) { change(cc); return r.read() })
			_, _ = cc.Read("app", t0, r.read)
			if r.reads != 2 {
				t.Fatalf("%d reads, want 2: the row read across the change was served", r.reads)
			}
		})
	}

	t.Run("a suspended cache serves and keeps nothing until resumed", func(t *testing.T) {
		cc, r := New(time.Minute, false), &reader{row: row}
		_, _ = cc.Read("app", t0, r.read)
		cc.Suspend()
		for range 2 {
			_, _ = cc.Read("app", t0, r.read)
		}
		if r.reads != 3 {
			t.Fatalf("%d reads, want 3: a suspended cache served an entry", r.reads)
		}
		cc.Resume()
		for range 2 {
			_, _ = cc.Read("app", t0, r.read)
		}
		if r.reads != 4 {
			t.Fatalf("%d reads, want 4: a resumed cache did not start again from empty", r.reads)
		}
	})

	t.Run("an invalidation drops only its client", func(t *testing.T) {
		cc := New(time.Minute, false)
		reads := map[string]int{}
		read := func(id string) {
			_, _ = cc.Read(id, t0, func() (storage.Client, error) { reads[id]++; return storage.Client{ID: id}, nil })
		}
		read("a")
		read("b")
		cc.Invalidate("a")
		read("a")
		read("b")
		if reads["a"] != 2 || reads["b"] != 1 {
			t.Fatalf("reads %v, want a twice and b once", reads)
		}
	})
}

// BenchmarkReadHit is the cost of a cached client: every token request
// pays it once, every introspection twice.
func BenchmarkReadHit(b *testing.B) {
	row := storage.Client{ID: "app", Name: "App", SecretHash: make([]byte, 32),
		RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid", "email", "profile", "offline_access"}}
	cc, r := New(time.Hour, false), &reader{row: row}
	for b.Loop() {
		if _, err := cc.Read("app", t0, r.read); err != nil {
			b.Fatal(err)
		}
	}
}
