package oidc

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// introspect answers RFC 7662 for authenticated clients. Revoked, rotated
// or suspended users' tokens are simply inactive.
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ir, err := h.provider.NewIntrospectionRequest(ctx, r, NewSession())
	if err != nil {
		h.provider.WriteIntrospectionError(ctx, w, err)
		return
	}
	h.provider.WriteIntrospectionResponse(ctx, w, ir)
}

// revoke implements RFC 7009; fosite checks the token belongs to the client.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := h.provider.NewRevocationRequest(ctx, r)
	clientID, _, _ := r.BasicAuth()
	if clientID == "" {
		clientID = r.PostForm.Get("client_id")
	}
	result := audit.Success
	if err != nil {
		result = audit.Failure
	}
	// fosite answers invalid_request and invalid_client only before the
	// client has authenticated.
	authenticated := !errors.Is(err, fosite.ErrInvalidRequest) && !errors.Is(err, fosite.ErrInvalidClient)
	if aerr := h.failureRecorder(authenticated)(r.WithContext(context.WithoutCancel(ctx)), storage.AuditEvent{
		Type: audit.TokenRevoked, Actor: "client:" + clientID, ClientID: clientID, Result: result,
		Details: map[string]string{"token_type_hint": tokenTypeHint(r.PostForm.Get("token_type_hint"))},
	}); aerr != nil {
		h.d.Logger.ErrorContext(ctx, "audit revoke", "err", aerr)
	}
	h.provider.WriteRevocationResponse(ctx, w, err)
}

// tokenTypeHint is the hint as recorded: one of RFC 7009's values, or
// "other" for whatever else a caller sent.
func tokenTypeHint(hint string) string {
	switch hint {
	case "", "access_token", "refresh_token":
		return hint
	}
	return "other"
}

// clientAuthenticated says whether fosite authenticated the client of ar,
// which it leaves unset, or set to an empty client, when it did not.
func clientAuthenticated(ar fosite.Requester) bool {
	return ar != nil && ar.GetClient() != nil && ar.GetClient().GetID() != ""
}

// failureRecorder audits a refused request: in full if the client proved
// who it is, and otherwise as an anonymous failure, which anyone can
// cause at line rate and so is sampled (audit.Recorder.RecordAnonymous).
func (h *Handler) failureRecorder(authenticated bool) func(*http.Request, storage.AuditEvent) error {
	if authenticated {
		return h.d.Audit.RecordRequest
	}
	return h.d.Audit.RecordAnonymous
}

// userinfo returns the claims the access token's scopes allow, read fresh
// from the user record.
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		bearerError(w, "invalid_request", "An access token is required.")
		return
	}
	_, ar, err := h.provider.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	if err != nil {
		bearerError(w, "invalid_token", "The access token is not active.")
		return
	}
	if !ar.GetGrantedScopes().Has("openid") {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid"`)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	user, err := h.d.Store.GetUser(ctx, ar.GetSession().GetSubject())
	if err != nil || user.Suspended() {
		bearerError(w, "invalid_token", "The access token is not active.")
		return
	}
	claims := map[string]any{"sub": user.ID}
	if ar.GetGrantedScopes().Has("email") {
		claims["email"] = user.Email
		claims["email_verified"] = true
	}
	if ar.GetGrantedScopes().Has("profile") && user.Name != "" {
		claims["name"] = user.Name
	}
	httpx.WriteJSON(w, http.StatusOK, claims)
}

func bearerError(w http.ResponseWriter, code, desc string) {
	desc = strings.ReplaceAll(desc, `"`, "'")
	w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+desc+`"`)
	httpx.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": code, "error_description": desc})
}
