package sqlite

import (
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/storage"
)

// clientCacheTTL bounds how stale a cached client may be. Changes made
// through this Store drop the entry when they commit; a change made by
// another process (the CLI) is seen within this time. What must hold at
// once does not rely on the cache: writes that issue tokens re-read the
// client in their transaction, and disabling an app revokes its tokens.
const clientCacheTTL = time.Second

// clientCacheMax bounds the cache; apps number in the dozens, not thousands.
const clientCacheMax = 1024

// clientCache holds recently read clients: every token request and every
// introspection reads its client (twice, for introspection), and those
// reads were a quarter of an introspection's cost.
type clientCache struct {
	mu sync.Mutex
	m  map[string]cachedClient
	// gen counts invalidations: a row read before one must not be cached
	// after it (see GetClient).
	gen uint64
}

type cachedClient struct {
	c  storage.Client
	at time.Time
}

func (cc *clientCache) get(id string, now time.Time) (storage.Client, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[id]
	if !ok || now.Sub(e.at) > clientCacheTTL {
		return storage.Client{}, false
	}
	return cloneClient(e.c), true
}

// generation is taken before a read whose result may be put.
func (cc *clientCache) generation() uint64 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.gen
}

// put caches c, read when the cache was at generation gen, unless an
// invalidation came since: the row may predate it.
func (cc *clientCache) put(c storage.Client, now time.Time, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen {
		return
	}
	if cc.m == nil || len(cc.m) >= clientCacheMax {
		cc.m = map[string]cachedClient{}
	}
	cc.m[c.ID] = cachedClient{c: cloneClient(c), at: now}
}

// invalidate drops the client's entry and refuses the puts of reads that
// began before.
func (cc *clientCache) invalidate(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	delete(cc.m, id)
}

// cloneClient copies the slices too, so no caller can change the cache.
func cloneClient(c storage.Client) storage.Client {
	c.SecretHash = slices.Clone(c.SecretHash)
	c.PreviousSecretHash = slices.Clone(c.PreviousSecretHash)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.Scopes = slices.Clone(c.Scopes)
	c.Audience = slices.Clone(c.Audience)
	c.AllowedGroups = slices.Clone(c.AllowedGroups)
	return c
}
