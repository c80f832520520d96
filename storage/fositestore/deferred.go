package fositestore

import (
	"context"
	"errors"
	"sync"

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

type beforeCommitKey struct{}

// BeforeCommit is a write that must commit with fosite's own transaction
// (a refresh grant's audit event, with the token rotation it records),
// instead of in a transaction, and a commit, after it.
type BeforeCommit struct {
	fn             func(ctx context.Context) error
	ran, committed bool
}

// WithBeforeCommit returns a context under which fosite's Commit runs fn
// in its transaction first. Ran reports whether fn ran and the commit
// then succeeded; if not, the caller writes what fn would have.
func WithBeforeCommit(ctx context.Context, fn func(ctx context.Context) error) (context.Context, *BeforeCommit) {
	b := &BeforeCommit{fn: fn}
	return context.WithValue(ctx, beforeCommitKey{}, b), b
}

// Ran reports whether fn committed with fosite's transaction. It is
// read once fosite has answered, by the goroutine that called it.
func (b *BeforeCommit) Ran() bool { return b.committed }

type deletionsKey struct{}

// Deletions collects the deletions fosite makes of a code exchange's
// PKCE and OpenID Connect sessions, each of which would otherwise commit
// on its own, so the caller can make them in the transaction that records
// the exchange. Neither row can be used without the code, which fosite
// invalidates in its own transaction, so deleting them a moment later
// changes nothing but the number of commits.
type Deletions struct {
	mu   sync.Mutex
	fns  []func(context.Context) error
	done bool
}

// WithDeferredDeletes returns a context under which those deletions are
// collected into the returned Deletions. The caller must Apply them
// whether the exchange succeeds or not: fosite deletes a PKCE session
// before it checks the verifier, so a wrong one uses the code up.
func WithDeferredDeletes(ctx context.Context) (context.Context, *Deletions) {
	d := &Deletions{}
	return context.WithValue(ctx, deletionsKey{}, d), d
}

// deleteOrDefer deletes at once, or adds the deletion to the context's
// Deletions.
func deleteOrDefer(ctx context.Context, del func(context.Context) error) error {
	d, _ := ctx.Value(deletionsKey{}).(*Deletions)
	if d == nil {
		return del(ctx)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fns = append(d.fns, del)
	return nil
}

// Apply makes the collected deletions with ctx, a transaction's. A row
// already gone (a concurrent exchange of the same code) is no error.
func (d *Deletions) Apply(ctx context.Context) error {
	d.mu.Lock()
	fns := d.fns
	d.mu.Unlock()
	for _, del := range fns {
		if err := del(ctx); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Done marks the deletions committed; Pending reports whether they are
// not, so that a failed exchange still makes them.
func (d *Deletions) Done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = true
}

func (d *Deletions) Pending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.done && len(d.fns) > 0
}
