package oidc

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// Authorization requests without state.
//
// fosite refuses a request whose state is shorter than eight characters,
// a missing one included. RFC 6749 makes state optional, and RFC 9700
// §2.1 lets PKCE, which keygate requires of every client, carry the CSRF
// protection instead; openid-client (Node.js), for one, sends no state to
// a server that advertises PKCE S256, as its documentation shows. So
// keygate accepts a request without state but still refuses a short one,
// and answers it without a state parameter (RFC 6749 §4.1.2: only "if the
// state parameter was present"), where fosite would add an empty one that
// such clients reject as a state they did not send.

// newAuthorizeRequest is fosite's NewAuthorizeRequest with state optional.
func (h *Handler) newAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	ar, err := h.provider.NewAuthorizeRequest(ctx, r)
	return ar, stateOptional(ar, err)
}

// newPushedAuthorizeRequest is fosite's NewPushedAuthorizeRequest with
// state optional. The forgiven error skipped fosite's one check after the
// state's, which is made here.
func (h *Handler) newPushedAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	ar, err := h.provider.NewPushedAuthorizeRequest(ctx, r)
	if err = stateOptional(ar, err); err != nil {
		return ar, err
	}
	if ar.GetRequestedScopes().Has("openid") && r.Form.Get("redirect_uri") == "" {
		return ar, fosite.ErrInvalidRequest.WithHint("Query parameter 'redirect_uri' is required when performing an OpenID Connect flow.")
	}
	return ar, nil
}

// stateOptional forgives fosite's invalid_state for a request that sent
// no state. fosite checks state last, after every other parameter, so the
// request it returns with that error has been validated in full.
func stateOptional(ar fosite.AuthorizeRequester, err error) error {
	if err != nil && ar != nil && ar.GetState() == "" && errors.Is(err, fosite.ErrInvalidState) {
		return nil
	}
	return err
}

// noEmptyState writes an authorization response, code or error, without
// the empty state parameter fosite adds when the request had none.
type noEmptyState struct{ http.ResponseWriter }

func (w noEmptyState) WriteHeader(status int) {
	if loc := w.Header().Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			if q := u.Query(); q.Has("state") && q.Get("state") == "" {
				q.Del("state")
				u.RawQuery = q.Encode()
				w.Header().Set("Location", u.String())
			}
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

// authorizeWriter is w, made to drop an empty state when ar sent none.
func authorizeWriter(w http.ResponseWriter, ar fosite.AuthorizeRequester) http.ResponseWriter {
	if ar == nil || ar.GetState() == "" {
		return noEmptyState{w}
	}
	return w
}
