package oidc

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// Redirect URIs match exactly, with the one exception RFC 8252 §7.3 asks
// for: a native app listens on whatever loopback port it is given, so a
// public client's http://127.0.0.1 or http://[::1] URI matches on any port.
// fosite's matcher grants that exception to every client; a confidential
// client's loopback callback has a fixed port, and another port on the
// same host may be anyone's. So the endpoints that take a redirect_uri
// check it here first, and fosite's own check then only confirms.

// redirectAllowed says whether c may use uri.
func redirectAllowed(c storage.Client, uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if !c.Public {
		return false
	}
	req, err := url.Parse(uri)
	if err != nil || !isLoopbackHTTP(req) {
		return false
	}
	return slices.ContainsFunc(c.RedirectURIs, func(registered string) bool {
		reg, err := url.Parse(registered)
		return err == nil && isLoopbackHTTP(reg) && reg.Hostname() == req.Hostname() &&
			reg.Path == req.Path && reg.RawQuery == req.RawQuery
	})
}

// isLoopbackHTTP: plain http to a loopback IP literal, nothing else in
// the authority, no fragment.
func isLoopbackHTTP(u *url.URL) bool {
	ip := net.ParseIP(u.Hostname())
	return u.Scheme == "http" && ip != nil && ip.IsLoopback() && u.User == nil && u.Fragment == "" && u.Opaque == ""
}

var errRedirectNotRegistered = fosite.ErrInvalidRequest.WithHint(
	"The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")

// checkRedirect refuses the request's redirect_uri if its client may not
// use it. A request without one, or of an unknown client, is fosite's to
// answer. The route has parsed the form (withForm).
func (h *Handler) checkRedirect(r *http.Request) error {
	uri := r.Form.Get("redirect_uri")
	clientID := r.Form.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		clientID, _ = url.QueryUnescape(id)
	}
	if uri == "" || clientID == "" {
		return nil
	}
	c, err := h.d.Store.GetClient(r.Context(), clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !redirectAllowed(c, uri) {
		return errRedirectNotRegistered
	}
	return nil
}

// authorizeRedirectChecked guards the authorize endpoint: a refused
// redirect_uri gets an error page, never a redirect to it.
func (h *Handler) authorizeRedirectChecked(next httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := h.checkRedirect(r); err != nil {
			return h.authorizeError(w, r, nil, err)
		}
		return next(w, r)
	}
}

// parRedirectChecked guards pushed authorization requests.
func (h *Handler) parRedirectChecked(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h.checkRedirect(r); err != nil {
			h.provider.WritePushedAuthorizeError(r.Context(), w, fosite.NewAuthorizeRequest(), err)
			return
		}
		next(w, r)
	}
}
