package oidc

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/fositestore"
)

var supportedGrants = map[string]bool{
	"authorization_code": true,
	"refresh_token":      true,
	"client_credentials": true,
}

// token is the token endpoint. fosite answers an unknown grant_type with
// invalid_request; RFC 6749 §5.2 wants unsupported_grant_type, so the grant
// is checked first.
func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := NewSession()
	// The route parsed the form and refused one that does not decode
	// (withForm).
	if g := r.PostForm.Get("grant_type"); g != "" && !supportedGrants[g] {
		h.provider.WriteAccessError(ctx, w, fosite.NewAccessRequest(sess), fosite.ErrUnsupportedGrantType)
		return
	}
	// The client authentication notes which secret it matched, for the
	// write that issues the token to check it again.
	ctx, _ = fositestore.WithClientAuth(ctx)
	if r.PostForm.Get("grant_type") == "refresh_token" {
		ctx = fositestore.WithRefreshGrant(ctx)
	}
	// A code exchange's deletions of its PKCE and OpenID Connect sessions
	// are made with its audit event, or else on the way out.
	var deletions *fositestore.Deletions
	if r.PostForm.Get("grant_type") == "authorization_code" {
		ctx, deletions = fositestore.WithDeferredDeletes(ctx)
		defer h.applyDeletions(ctx, deletions)
	}
	ar, err := h.provider.NewAccessRequest(ctx, r, sess)
	if err != nil {
		h.tokenFailed(r, ar, err)
		h.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	grant := r.PostForm.Get("grant_type")
	if grant == "client_credentials" {
		// fosite checks the requested scopes against the client's but leaves
		// granting to us.
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
		// A time-ordered request ID: each token's row then extends the
		// request_id index at its end instead of dirtying a random page.
		// (Other grants keep fosite's, which refresh carries over.)
		if id, err := uuid.NewV7(); err == nil {
			ar.SetID(id.String())
		}
	}
	// For client_credentials the token row is written with its audit event
	// in one transaction after fosite is done; other grants let fosite
	// write (it commits revocations on reuse before answering an error).
	respCtx, deferred := ctx, (*fositestore.Deferred)(nil)
	if grant == "client_credentials" {
		respCtx, deferred = fositestore.WithDeferredWrites(ctx)
	}
	event := audit.TokenIssued
	if grant == "refresh_token" {
		event = audit.TokenRefreshed
	}
	record := func(ctx context.Context) error {
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{
			Type: event, Actor: "client:" + ar.GetClient().GetID(), UserID: ar.GetSession().GetSubject(),
			ClientID: ar.GetClient().GetID(), Result: audit.Success,
			Details: map[string]string{"grant_type": grant, "scope": strings.Join(ar.GetGrantedScopes(), " ")},
		})
	}
	// A refresh's event commits with the rotation it records, in fosite's
	// transaction: one commit, not two. (Should the new ID token then fail
	// to sign, the rotation and its event stand, and the app retries
	// within the grace window.)
	var before *fositestore.BeforeCommit
	if grant == "refresh_token" {
		respCtx, before = fositestore.WithBeforeCommit(respCtx, record)
	}
	resp, err := h.provider.NewAccessResponse(respCtx, ar)
	if err != nil {
		err = h.refusedGrant(ctx, grant, ar, err)
		h.tokenFailed(r, ar, err)
		h.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	// A client that hangs up now must not leave a token without its
	// record: the writes finish whatever happens to the request.
	wctx := context.WithoutCancel(ctx)
	if before == nil || !before.Ran() {
		err = h.d.Store.InTx(wctx, func(ctx context.Context) error {
			if deletions != nil {
				if err := deletions.Apply(ctx); err != nil {
					return err
				}
			}
			if deferred != nil {
				// The app may have been disabled, or its secret replaced,
				// since fosite authenticated it.
				if err := h.store.LiveGrant(ctx, ar.GetClient().GetID(), ""); err != nil {
					return err
				}
				for _, rec := range deferred.Records {
					if err := h.d.Store.CreateToken(ctx, rec); err != nil {
						return err
					}
				}
			}
			return record(ctx)
		})
	}
	if errors.Is(err, fositestore.ErrGrantEnded) {
		err = h.refusedGrant(ctx, grant, ar, err)
		h.tokenFailed(r, ar, err)
		h.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	if err != nil {
		// Without its record the token must not be handed out.
		h.d.Logger.ErrorContext(ctx, "store token and audit", "err", err)
		h.provider.WriteAccessError(ctx, w, ar, fosite.ErrServerError)
		return
	}
	if deletions != nil {
		deletions.Done()
	}
	h.d.Metrics.TokenIssued(grant)
	h.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// applyDeletions makes a code exchange's deletions that did not commit
// with its audit event: the exchange failed.
func (h *Handler) applyDeletions(ctx context.Context, d *fositestore.Deletions) {
	if !d.Pending() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := h.d.Store.InTx(ctx, d.Apply); err != nil {
		h.d.Logger.ErrorContext(ctx, "delete a code exchange's sessions", "err", err)
	}
}

// refusedGrant answers a token request whose grant ended while it was in
// flight as a request made a moment later is answered, instead of the
// server_error fosite makes of a failed write: a kill action (suspension,
// sign-out, revocation, a disabled app or a replaced secret) committed
// between fosite's read and its write (see fositestore.ErrGrantEnded), or
// another exchange used the same code first. A code used twice also
// revokes what its first use issued, as fosite does for a later reuse.
func (h *Handler) refusedGrant(ctx context.Context, grant string, ar fosite.AccessRequester, err error) error {
	ended := errors.Is(err, fositestore.ErrGrantEnded)
	// fosite reads the code again before its write; a code (or app) gone
	// since is a server error to fosite.
	codeUsed := grant == "authorization_code" &&
		(errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || errors.Is(err, fosite.ErrNotFound))
	if !ended && !codeUsed {
		return err
	}
	if grant == "client_credentials" {
		return fosite.ErrInvalidClient.WithHint("The app was disabled or its secret replaced.").WithWrap(err)
	}
	if grant == "authorization_code" {
		if rerr := h.d.Store.RevokeRequest(context.WithoutCancel(ctx), ar.GetID(),
			storage.KindAccessToken, storage.KindRefreshToken); rerr != nil {
			h.d.Logger.ErrorContext(ctx, "revoke the tokens of a reused code", "err", rerr)
		}
	}
	return fosite.ErrInvalidGrant.WithHint("The grant was revoked or used while this request was in flight.").WithWrap(err)
}

func (h *Handler) tokenFailed(r *http.Request, ar fosite.AccessRequester, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	clientID := r.PostForm.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		clientID = id
	}
	if ar != nil && ar.GetClient() != nil && ar.GetClient().GetID() != "" {
		clientID = ar.GetClient().GetID()
	}
	if len(clientID) > 128 {
		clientID = clientID[:128]
	}
	// The record is written even if the client hangs up first.
	if rerr := h.failureRecorder(clientAuthenticated(ar))(r.WithContext(context.WithoutCancel(r.Context())), storage.AuditEvent{
		Type: audit.TokenFailed, Actor: "client:" + clientID, ClientID: clientID, Result: audit.Failure,
		Details: map[string]string{"grant_type": r.PostForm.Get("grant_type"), "error": rfc.ErrorField},
	}); rerr != nil {
		h.d.Logger.ErrorContext(r.Context(), "audit token failure", "err", rerr)
	}
}

// auditRefreshReuse records a refresh token presented again after its
// rotation: someone other than the client may hold it. fosite revokes the
// family right after.
func (h *Handler) auditRefreshReuse(ctx context.Context, rec storage.TokenRecord) {
	err := h.d.Audit.Record(ctx, storage.AuditEvent{
		Type: audit.RefreshReused, Actor: "client:" + rec.ClientID, UserID: rec.Subject,
		ClientID: rec.ClientID, Result: audit.Denied,
		Details: map[string]string{"request_id": rec.RequestID, "action": "token family revoked"},
	})
	if err != nil {
		h.d.Logger.ErrorContext(ctx, "audit refresh reuse", "err", err)
	}
}

// refreshGroups names the user's groups of now in a refreshed grant that
// has the groups claim: the new ID token and JWT access token must not
// keep a membership that ended.
func (h *Handler) refreshGroups(ctx context.Context, rec storage.TokenRecord, s fosite.Session) error {
	sess, ok := s.(*Session)
	if !ok || rec.Subject == "" || !sess.hasGroups() {
		return nil
	}
	groups, err := h.d.Store.ListUserGroups(ctx, rec.Subject)
	if err != nil {
		return err
	}
	sess.setGroups(groupNames(groups))
	return nil
}

// par accepts pushed authorization requests (RFC 9126).
func (h *Handler) par(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := h.newPushedAuthorizeRequest(ctx, r)
	if err != nil {
		h.provider.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	resp, err := h.provider.NewPushedAuthorizeResponse(ctx, ar, NewSession())
	if err != nil {
		h.provider.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	h.provider.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}
