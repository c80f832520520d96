package oidc

import (
	"context"
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// provider is fosite's, with one correction to every error it writes: a
// client or token that could not be read because the database cannot be
// reached (storage.ErrUnavailable) is answered 503
// temporarily_unavailable. fosite reports any failure of the client
// lookup as invalid_client (401) and of a token read as an inactive token,
// which would tell an app that its credentials are wrong, or sign its user
// out, while nothing is wrong with them and a retry in a moment succeeds.
type provider struct{ fosite.OAuth2Provider }

// unavailable is err as it must be answered.
func unavailable(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		// Not wrapped: fosite's writers test the chain for
		// invalid_client, which the lookup's failure carries.
		return fosite.ErrTemporarilyUnavailable.
			WithHint("keygate cannot reach its database just now; try again shortly.").WithDebug(err.Error())
	}
	return err
}

func (p provider) WriteAccessError(ctx context.Context, rw http.ResponseWriter, req fosite.AccessRequester, err error) {
	p.OAuth2Provider.WriteAccessError(ctx, rw, req, unavailable(err))
}

// WriteRevocationResponse answers 503 itself: fosite answers every error
// but invalid_request and invalid_client with 200, and RFC 7009 §2.2.1
// has a client that gets 503 keep the token as still valid and retry.
func (p provider) WriteRevocationResponse(ctx context.Context, rw http.ResponseWriter, err error) {
	if errors.Is(err, storage.ErrUnavailable) {
		writeUnavailable(rw, err)
		return
	}
	p.OAuth2Provider.WriteRevocationResponse(ctx, rw, err)
}

// writeUnavailable answers 503 temporarily_unavailable for err, a
// database that cannot be reached.
func writeUnavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusServiceUnavailable, fosite.ErrorToRFC6749Error(unavailable(err)))
}

func (p provider) WritePushedAuthorizeError(ctx context.Context, rw http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	p.OAuth2Provider.WritePushedAuthorizeError(ctx, rw, ar, unavailable(err))
}
