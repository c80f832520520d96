package oidc

import (
	"context"
	"errors"

	"github.com/ory/fosite"
)

// ErrNotAdminToken: the bearer token is inactive or lacks the admin scope.
var ErrNotAdminToken = errors.New("oidc: not an active admin API token")

// AdminToken checks a bearer token for the admin API: an active access
// token granted scope (keygate:admin), issued to a client by
// client_credentials (no user behind it). It returns the client's id.
func (h *Handler) AdminToken(ctx context.Context, token, scope string) (string, error) {
	_, ar, err := h.provider.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	if err != nil {
		return "", ErrNotAdminToken
	}
	if !ar.GetGrantedScopes().Has(scope) || ar.GetSession().GetSubject() != "" {
		return "", ErrNotAdminToken
	}
	return ar.GetClient().GetID(), nil
}
