// Package clientcache is the storage backends' cache of clients: every
// token request reads its client, and every introspection reads it twice,
// so a primary-key lookup per read was a large part of their cost.
//
// A backend serves reads outside transactions from it and drops an entry
// once a write to the client is visible to other readers. A generation
// counter keeps a read that began before an invalidation from storing the
// row it read after it. A backend that learns of other processes' writes
// only while connected to the database suspends the cache when the
// connection breaks and resumes it, empty, once it hears again: nothing
// read before then is served after.
package clientcache

import (
	"sync"
	"time"

	"github.com/keygate/keygate/storage"
)

// maxEntries bounds the cache; apps number in the dozens, not thousands.
const maxEntries = 1024

// Cache holds recently read clients. The zero value is not usable: see New.
type Cache struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[string]entry
	// gen counts invalidations: a row read before one must not be cached
	// after it (see Read).
	gen uint64
	// suspended: nothing is served or stored (see Suspend).
	suspended bool
}

type entry struct {
	c  storage.Client
	at time.Time
}

// New returns an empty cache whose entries are served for at most ttl,
// which bounds how stale a client may be when a change is not reported.
// A suspended cache serves nothing until Resume.
func New(ttl time.Duration, suspended bool) *Cache {
	return &Cache{ttl: ttl, suspended: suspended}
}

// Read returns the client id from the cache when it holds a fresh entry,
// and otherwise calls read and caches what it returns, unless an
// invalidation came meanwhile. Errors (not found included) are not cached.
func (cc *Cache) Read(id string, now time.Time, read func() (storage.Client, error)) (storage.Client, error) {
	c, gen, hit := cc.get(id, now)
	if hit {
		return c, nil
	}
	c, err := read()
	if err == nil {
		cc.put(c, now, gen)
	}
	return c, err
}

// get returns a copy of a fresh entry, or else the generation a read that
// may be put must be taken at.
func (cc *Cache) get(id string, now time.Time) (storage.Client, uint64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[id]
	if !ok || cc.suspended || now.Sub(e.at) > cc.ttl {
		return storage.Client{}, cc.gen, false
	}
	return clone(e.c), cc.gen, true
}

// put caches c, read when the cache was at generation gen, unless an
// invalidation came since: the row may predate it.
func (cc *Cache) put(c storage.Client, now time.Time, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen || cc.suspended {
		return
	}
	if cc.m == nil || len(cc.m) >= maxEntries {
		cc.m = map[string]entry{}
	}
	cc.m[c.ID] = entry{c: clone(c), at: now}
}

// Invalidate drops the client's entry and refuses the puts of reads that
// began before.
func (cc *Cache) Invalidate(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	delete(cc.m, id)
}

// Clear drops every entry (a change to some client was reported without
// saying which) and refuses the puts of reads that began before.
func (cc *Cache) Clear() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	cc.m = nil
}

// Suspend drops every entry and stops serving and storing: changes may go
// unreported from now on.
func (cc *Cache) Suspend() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	cc.m = nil
	cc.suspended = true
}

// Resume serves and stores again, from empty: reads that began before it
// are not stored.
func (cc *Cache) Resume() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	cc.m = nil
	cc.suspended = false
}

// clone copies the slices too, so no caller can change the cache. Every
// hit is copied, so the lists share one new array and the hashes another:
// two allocations instead of nine. Each part is capped at its own length,
// so appending to one copies it instead of writing over the next.
func clone(c storage.Client) storage.Client {
	lists := [...]*[]string{&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.GrantTypes, &c.ResponseTypes, &c.Scopes, &c.Audience, &c.AllowedGroups}
	n := 0
	for _, l := range lists {
		n += len(*l)
	}
	strs := make([]string, 0, n)
	for _, l := range lists {
		*l = carve(&strs, *l)
	}
	hashes := make([]byte, 0, len(c.SecretHash)+len(c.PreviousSecretHash))
	c.SecretHash = carve(&hashes, c.SecretHash)
	c.PreviousSecretHash = carve(&hashes, c.PreviousSecretHash)
	return c
}

// carve appends s to *all, which has room for it, and returns the copy,
// capped at its length; nil stays nil.
func carve[T any](all *[]T, s []T) []T {
	if s == nil {
		return nil
	}
	start := len(*all)
	*all = append(*all, s...)
	return (*all)[start:len(*all):len(*all)]
}
