package fositestore

import (
	"context"

	"github.com/keygate/keygate/storage"
)

type deferKey struct{}

// Deferred collects the token records fosite asks to create, instead of
// writing them, so the caller can write them together with their audit
// event in one short transaction: atomic (no token without its record)
// and one commit instead of two on the hottest path.
type Deferred struct {
	Records []storage.TokenRecord
}

// WithDeferredWrites returns a context under which record creation is
// collected into the returned Deferred. Use it only for flows whose
// storage calls are creations alone (client_credentials): fosite commits
// revocations in other flows before returning an error, and those must
// not wait for the caller.
func WithDeferredWrites(ctx context.Context) (context.Context, *Deferred) {
	d := &Deferred{}
	return context.WithValue(ctx, deferKey{}, d), d
}

func deferredFrom(ctx context.Context) *Deferred {
	d, _ := ctx.Value(deferKey{}).(*Deferred)
	return d
}
