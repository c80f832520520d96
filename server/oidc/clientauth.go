package oidc

import (
	"context"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/storage/fositestore"
)

// recordingHasher is fosite's client-secret hasher, which also notes which
// stored hash a token request's secret matched (the current secret or the
// one a rotation replaced). The transaction that issues the token then
// checks that this secret still works (fositestore.LiveGrant), so a
// request that authenticated just before a rotation without overlap does
// not get a token just after it.
type recordingHasher struct{ fosite.Hasher }

func (h recordingHasher) Compare(ctx context.Context, hash, data []byte) error {
	err := h.Hasher.Compare(ctx, hash, data)
	if a := fositestore.ClientAuthFrom(ctx); err == nil && a != nil {
		a.SecretHash = hash
	}
	return err
}
