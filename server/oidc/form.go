package oidc

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/server/httpx"
)

// errMalformedForm: a query or form body that does not decode (a stray
// "%zz"). Go's parser drops such a parameter and goes on, and a request
// with a parameter mangled in transit must not be served without it.
var errMalformedForm = errors.New("the request's query or form body is not validly percent-encoded")

// refusal answers a request an endpoint refuses before it runs, with err,
// as that endpoint answers its own errors.
type refusal func(w http.ResponseWriter, r *http.Request, err error)

// withForm parses the request's query and form body once, before the
// endpoint reads either (only the first ParseForm of a request reports a
// malformed one), and answers a malformed one with refuse: invalid_request
// wrapping errMalformedForm.
func withForm(next http.Handler, refuse refusal) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			refuse(w, r, fosite.ErrInvalidRequest.WithHint("The request's query or form body is not validly percent-encoded.").
				WithWrap(fmt.Errorf("%w: %w", errMalformedForm, err)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// pageRefusal answers on an error page saying public, for the endpoints a
// browser is sent to. Never a redirect: for the authorize endpoint the
// redirect_uri itself may be what is mangled.
func (h *Handler) pageRefusal(public string) refusal {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		httpx.Adapt(h.d.Render.Error, h.d.Logger, func(http.ResponseWriter, *http.Request) error {
			return httpx.Errorf(http.StatusBadRequest, public, err)
		}).ServeHTTP(w, r)
	}
}

func (h *Handler) parRefusal(w http.ResponseWriter, r *http.Request, err error) {
	h.provider.WritePushedAuthorizeError(r.Context(), w, fosite.NewAuthorizeRequest(), err)
}

func (h *Handler) tokenRefusal(w http.ResponseWriter, r *http.Request, err error) {
	h.tokenFailed(r, nil, err)
	h.provider.WriteAccessError(r.Context(), w, fosite.NewAccessRequest(NewSession()), err)
}

func (h *Handler) introspectRefusal(w http.ResponseWriter, r *http.Request, err error) {
	h.provider.WriteAccessError(r.Context(), w, fosite.NewAccessRequest(nil), err)
}

func (h *Handler) revokeRefusal(w http.ResponseWriter, r *http.Request, err error) {
	h.provider.WriteRevocationResponse(r.Context(), w, err)
}

func (h *Handler) userinfoRefusal(w http.ResponseWriter, _ *http.Request, _ error) {
	bearerError(w, "invalid_request", "The request is not validly percent-encoded.")
}
