package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// introspect answers RFC 7662 for authenticated, confidential clients
// (client_secret_basic or client_secret_post, as discovery says). A client
// learns about a token only if the token was issued to it or names it in
// its audience (an API an app asked a token for, see mayIntrospect); for
// any other token the answer is the same as for a revoked or unknown one:
// {"active": false}.
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	caller, err := h.authenticator.AuthenticateClient(ctx, r, r.PostForm)
	if err == nil && caller.IsPublic() {
		// A public client proves nothing but its id, which anyone knows.
		err = fosite.ErrInvalidClient.WithHint("Public clients cannot introspect tokens.")
	}
	if err != nil {
		// Missing or malformed credentials are unauthenticated too:
		// RFC 7662 §2.3 answers 401.
		rfc := fosite.ErrorToRFC6749Error(err)
		h.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(nil), fosite.ErrInvalidClient.WithHint(rfc.HintField).WithWrap(err))
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		h.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(nil), fosite.ErrInvalidRequest.WithHint("The token parameter is missing."))
		return
	}
	use, ar, err := h.provider.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), NewSession())
	// Every answer is no-store: WriteJSON's and fosite's error writer's.
	if errors.Is(err, storage.ErrUnavailable) {
		// Not "inactive": the resource server would end a live session.
		h.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(nil), err)
		return
	}
	if err != nil || !mayIntrospect(caller.GetID(), ar) {
		httpx.WriteJSON(w, http.StatusOK, inactive)
		return
	}
	out := h.introspection(use, ar)
	if err := h.liveGroups(ctx, out, ar); err != nil {
		h.d.Logger.ErrorContext(ctx, "introspection groups", "err", err)
		h.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(nil), fosite.ErrServerError)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// inactive is the answer for a token that is not active, or that the
// caller may not learn about.
var inactive = struct {
	Active bool `json:"active"`
}{}

// mayIntrospect is the rule of who learns about a token: the client it was
// issued to, and a client its audience names — a resource server, which an
// app may name when it is registered with that audience. Anyone else could
// otherwise read who a token belongs to and what it may do.
func mayIntrospect(callerID string, ar fosite.AccessRequester) bool {
	return ar.GetClient().GetID() == callerID || ar.GetGrantedAudience().Has(callerID)
}

// introspection is RFC 7662's answer for an active token: its members, the
// expiry of the kind of token asked about, and how the user signed in. A
// struct, not a map: encoding a map sorts its keys and reflects over each
// entry, a tenth of an introspection's time.
type introspection struct {
	Active    bool     `json:"active"`
	Issuer    string   `json:"iss"`
	ClientID  string   `json:"client_id"`
	TokenUse  string   `json:"token_use"`
	TokenType string   `json:"token_type,omitempty"`
	Scope     string   `json:"scope,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	signIn
}

// signIn is how the user signed in (RFC 9470) and, with the groups
// scope, their groups; empty for a token with no user.
type signIn struct {
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	Groups   any      `json:"groups,omitempty"`
}

var _ httpx.JSONAppender = (*introspection)(nil)

// AppendJSON writes in as json.Marshal would (introspect_test holds the
// two to the same bytes), without its reflection: every introspection
// writes one.
func (in *introspection) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"active":`...)
	b = strconv.AppendBool(b, in.Active)
	b = appendString(b, "iss", in.Issuer, false)
	b = appendString(b, "client_id", in.ClientID, false)
	b = appendString(b, "token_use", in.TokenUse, false)
	b = appendString(b, "token_type", in.TokenType, true)
	b = appendString(b, "scope", in.Scope, true)
	b = appendString(b, "sub", in.Subject, true)
	b = appendStrings(b, "aud", in.Audience)
	b = appendInt(b, "exp", in.ExpiresAt)
	b = appendInt(b, "iat", in.IssuedAt)
	b = appendString(b, "acr", in.ACR, true)
	b = appendStrings(b, "amr", in.AMR)
	b = appendInt(b, "auth_time", in.AuthTime)
	if in.Groups != nil {
		g, err := json.Marshal(in.Groups)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"groups":`...), g...)
	}
	return append(b, '}'), nil
}

// appendString appends a member; omitEmpty leaves out an empty one.
func appendString(b []byte, key, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	return httpx.AppendJSONString(b, v)
}

// appendStrings appends a member unless v is empty.
func appendStrings(b []byte, key string, v []string) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(append(append(b, ',', '"'), key...), '"', ':', '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = httpx.AppendJSONString(b, s)
	}
	return append(b, ']')
}

// appendInt appends a member unless v is 0.
func appendInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	return strconv.AppendInt(b, v, 10)
}

// introspection is the answer for an active token.
func (h *Handler) introspection(use fosite.TokenUse, ar fosite.AccessRequester) *introspection {
	out := &introspection{Active: true, Issuer: h.d.Issuer, ClientID: ar.GetClient().GetID(),
		TokenUse: string(use), Subject: ar.GetSession().GetSubject()}
	if s, ok := ar.GetSession().(*Session); ok {
		out.signIn = s.signIn()
	}
	expiresAt := ar.GetSession().GetExpiresAt(fosite.AccessToken)
	if use == fosite.RefreshToken {
		expiresAt = ar.GetSession().GetExpiresAt(fosite.RefreshToken)
	} else {
		out.TokenType = fosite.BearerAccessToken
	}
	if !expiresAt.IsZero() {
		out.ExpiresAt = expiresAt.Unix()
	}
	if sc := ar.GetGrantedScopes(); len(sc) > 0 {
		out.Scope = strings.Join(sc, " ")
	}
	if !ar.GetRequestedAt().IsZero() {
		out.IssuedAt = ar.GetRequestedAt().Unix()
	}
	out.Audience = ar.GetGrantedAudience()
	return out
}

// liveGroups replaces an introspection's groups claim with the user's
// groups of now: a resource server deciding access by group must not act
// on a membership ended since the token was issued.
func (h *Handler) liveGroups(ctx context.Context, out *introspection, ar fosite.AccessRequester) error {
	sub := ar.GetSession().GetSubject()
	if sub == "" || !ar.GetGrantedScopes().Has("groups") {
		return nil
	}
	groups, err := h.d.Store.ListUserGroups(ctx, sub)
	if err != nil {
		return err
	}
	out.Groups = groupNames(groups)
	return nil
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
		// RFC 6750 §3.1: a request without credentials gets a bare
		// challenge, no error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="keygate"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	_, ar, err := h.provider.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	if errors.Is(err, storage.ErrUnavailable) {
		// Not invalid_token: the app would sign its user out.
		writeUnavailable(w, err)
		return
	}
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
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.userinfoFailed(w, r, err)
		return
	}
	if err != nil || user.Suspended() {
		bearerError(w, "invalid_token", "The access token is not active.")
		return
	}
	claims := map[string]any{"sub": user.ID}
	if ar.GetGrantedScopes().Has("email") {
		claims["email"] = user.Email
		claims["email_verified"] = true
	}
	if ar.GetGrantedScopes().Has("profile") {
		claims["preferred_username"] = user.Email
		if user.Name != "" {
			claims["name"] = user.Name
		}
	}
	if ar.GetGrantedScopes().Has("groups") {
		groups, err := h.d.Store.ListUserGroups(ctx, user.ID)
		if err != nil {
			h.userinfoFailed(w, r, err)
			return
		}
		claims[claimGroups] = groupNames(groups)
	}
	httpx.WriteJSON(w, http.StatusOK, claims)
}

// userinfoFailed answers a userinfo request the server could not serve (a
// storage error): a server error, never "not active", which would tell
// the app its token is worthless when it is not.
func (h *Handler) userinfoFailed(w http.ResponseWriter, r *http.Request, err error) {
	h.d.Logger.ErrorContext(r.Context(), "userinfo", "err", err)
	httpx.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error",
		"error_description": "The server could not answer the request. Try again later."})
}

// bearerError answers a protected-resource request as RFC 6750 §3.1 says:
// a challenge naming the error, and 400 for a malformed request, 401 for a
// token that is not active.
func bearerError(w http.ResponseWriter, code, desc string) {
	desc = strings.ReplaceAll(desc, `"`, "'")
	status := http.StatusUnauthorized
	if code == "invalid_request" {
		status = http.StatusBadRequest
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+desc+`"`)
	httpx.WriteJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
