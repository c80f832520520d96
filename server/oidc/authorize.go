package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/fositestore"
)

// flowLifetime bounds how long a user may take to sign in.
const flowLifetime = 15 * time.Minute

// authorize validates the request with fosite, then either answers from the
// browser's existing sign-in (single sign-on) or parks the request as a flow
// and sends the browser to /login. The flow carries the requirement — the
// strongest of the client's minimum acr and the RP's acr_values, max_age,
// prompt=login — that the sign-in must meet.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ar, err := h.newAuthorizeRequest(ctx, r)
	if err != nil {
		return h.authorizeError(w, r, ar, err)
	}
	// fosite checks PKCE only when issuing the code; checking now spares
	// the user a sign-in that could only end in an error.
	if err := checkPKCE(ar.GetRequestForm()); err != nil {
		return h.authorizeError(w, r, ar, err)
	}
	client := ar.GetClient().(*fositestore.Client)
	req, err := requirement(ar.GetRequestForm(), client.Client)
	if err != nil {
		return h.authorizeError(w, r, ar, err)
	}
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	now := h.d.Now()
	flowID, err := keys.RandomToken(24)
	if err != nil {
		return err
	}
	flow := storage.Flow{
		ID:          flowID,
		SessionHash: sess.IDHash(),
		ClientID:    client.ID,
		Query:       resumable(ar.GetRequestForm()),
		State:       storage.FlowIdentify,
		RequiredACR: req.ACR,
		MaxAge:      req.MaxAge,
		ForceLogin:  req.ForceLogin,
		CreatedAt:   now,
		ExpiresAt:   now.Add(flowLifetime),
	}
	next := "/login"
	// An existing sign-in is never trusted blindly: the flow starts from it
	// and server/login asks the risk engine whether it still suffices (sso),
	// or whether it only needs a stronger factor now (step-up). What the
	// user's groups ask of their members is server/login's to add (sso, and
	// every step after the password).
	if auth := sess.Auth(); auth.UserID != "" && !req.ForceLogin && req.FreshEnough(auth, now) {
		flow.UserID, flow.ACR, flow.AMR, flow.AuthTime = auth.UserID, auth.ACR, auth.AMR, auth.AuthTime
		flow.State = storage.FlowSecondFactor
		if req.SatisfiedBy(auth, now) {
			flow.State = storage.FlowSSO
		}
		next = "/login/continue"
	}
	// prompt=none: only a flow that may complete without a page (sso, which
	// refuses without one too) goes on. OpenID Connect Core 3.1.2.6: with
	// no sign-in to start from, login_required; with one that needs more
	// (a stronger factor), interaction_required.
	if flow.State != storage.FlowSSO && slices.Contains(strings.Fields(ar.GetRequestForm().Get("prompt")), "none") {
		if flow.State == storage.FlowIdentify {
			return h.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user must sign in, and prompt=none forbids asking."))
		}
		return h.authorizeError(w, r, ar, fosite.ErrInteractionRequired.WithHint("The sign-in needs a stronger factor, and prompt=none forbids asking for it."))
	}
	// The sign-in page's form token is made now, so that the page finds
	// the session unchanged and need not write it again.
	sess.CSRFToken()
	// The flow and the session, one commit.
	if err := h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.d.Store.CreateFlow(ctx, flow); err != nil {
			return err
		}
		return sess.SaveIn(ctx, w)
	}); err != nil {
		return err
	}
	if flow.State != storage.FlowIdentify && h.d.Continue != nil {
		// One request where there were three (here, /login/continue, the
		// resume): a single sign-on is answered with the app's code. The
		// sign-in page keeps its own address, so a reload keeps the flow.
		return h.d.Continue(w, r, sess, flow)
	}
	http.Redirect(w, r, next+"?flow="+url.QueryEscape(flowID), http.StatusSeeOther)
	return nil
}

// resumable is the request as the flow keeps it, to be parsed again when
// the sign-in is done. A pushed request (RFC 9126) arrives as a request_uri
// that fosite has used up by then; its form already holds the pushed
// parameters, so the flow keeps those and drops the reference.
func resumable(form url.Values) string {
	if form.Get("request_uri") == "" {
		return form.Encode()
	}
	q := url.Values{}
	for k, v := range form {
		if k != "request_uri" {
			q[k] = v
		}
	}
	return q.Encode()
}

// checkPKCE requires an S256 code challenge from every client.
func checkPKCE(form url.Values) error {
	if form.Get("code_challenge") == "" {
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge with code_challenge_method=S256.")
	}
	if form.Get("code_challenge_method") != "S256" {
		return fosite.ErrInvalidRequest.WithHint("Only the S256 code_challenge_method is accepted.")
	}
	return nil
}

// requirement turns the client's policy and the RP's request into what the
// sign-in must prove.
func requirement(form url.Values, c storage.Client) (session.Requirement, error) {
	req := session.Requirement{
		ACR:        session.StrongerACR(session.StrongerACR(session.ACRMFA, c.MinACR), session.FirstKnownACR(form.Get("acr_values"))),
		MaxAge:     -1,
		ForceLogin: slices.Contains(strings.Fields(form.Get("prompt")), "login"),
	}
	if v := form.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return req, fosite.ErrInvalidRequest.WithHint("max_age must be a non-negative number of seconds.")
		}
		req.MaxAge = time.Duration(n) * time.Second
	}
	if c.MaxAuthAge > 0 && (req.MaxAge < 0 || c.MaxAuthAge < req.MaxAge) {
		req.MaxAge = c.MaxAuthAge
	}
	return req, nil
}

// resume finishes a flow that server/login marked done: the authorize
// request is parsed again from what was stored (fosite re-validates all of
// it), and the code is issued for the sign-in the flow recorded.
func (h *Handler) resume(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	flow, err := h.d.Store.GetFlow(ctx, r.URL.Query().Get("flow"), h.d.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return httpx.Errorf(http.StatusBadRequest, "This sign-in has expired or was already used. Go back to the app and start again.", err)
	}
	if err != nil {
		return err
	}
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	return h.HandBack(w, r, sess, flow)
}

// HandBack answers the app for flow, finished (complete or refused) by
// the browser session browser: with the code, or with the error the app
// is owed. server/login calls it in the request that finished the flow;
// the resume endpoint, for a browser that comes back to it.
func (h *Handler) HandBack(w http.ResponseWriter, r *http.Request, browser *session.Session, flow storage.Flow) error {
	if flow.State == storage.FlowRefused && slices.Equal(flow.SessionHash, browser.IDHash()) {
		return h.refusedFlow(w, r, flow)
	}
	if !slices.Equal(flow.SessionHash, browser.IDHash()) || flow.State != storage.FlowComplete || browser.Auth().UserID != flow.UserID {
		return httpx.Errorf(http.StatusForbidden, "This sign-in belongs to another browser session. Go back to the app and start again.", nil)
	}
	ar, err := h.storedRequest(r, flow)
	if err != nil {
		return h.authorizeError(w, r, ar, err)
	}
	signIn := session.Auth{UserID: flow.UserID, ACR: flow.ACR, AMR: flow.AMR, AuthTime: flow.AuthTime}
	return h.issue(w, r, ar, flow, signIn, browser)
}

// refusedFlow answers the app for a single sign-on that could not complete
// without a page (prompt=none): the risk engine, or the user's groups,
// asked for more than the session has. The user has a session and must
// act: interaction_required (OpenID Connect Core 3.1.2.6), so the app can
// send them through an interactive sign-in.
func (h *Handler) refusedFlow(w http.ResponseWriter, r *http.Request, flow storage.Flow) error {
	if err := h.d.Store.DeleteFlow(r.Context(), flow.ID); err != nil {
		return err
	}
	ar, err := h.storedRequest(r, flow)
	if err != nil {
		return h.authorizeError(w, r, ar, err)
	}
	return h.authorizeError(w, r, ar, fosite.ErrInteractionRequired.WithHint("The sign-in needs the user's interaction."))
}

// storedRequest is the app's authorize request that flow parked, parsed
// again by fosite as if it arrived now (with r's headers).
func (h *Handler) storedRequest(r *http.Request, flow storage.Flow) (fosite.AuthorizeRequester, error) {
	orig := r.Clone(r.Context())
	orig.Method = http.MethodGet
	orig.URL = &url.URL{Path: "/oauth2/authorize", RawQuery: flow.Query}
	orig.Body, orig.Form, orig.PostForm = http.NoBody, nil, nil
	return h.newAuthorizeRequest(r.Context(), orig)
}

// errBelowRequirement: the sign-in does not meet what the request, or the
// user's groups, require.
var errBelowRequirement = errors.New("the sign-in is below the requirement")

// errFlowUsed is a resume whose flow another resume used first.
var errFlowUsed = errors.New("the sign-in flow was already used")

// issue grants what the client may have of what it asked for and writes
// the code response for the sign-in auth that flow recorded. The flow's
// CreatedAt is when the request first arrived, which fosite's
// prompt=login and max_age checks compare auth_time against.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, flow storage.Flow, auth session.Auth, browser *session.Session) error {
	ctx := r.Context()
	client := ar.GetClient()
	sid := browser.SID()
	for _, s := range ar.GetRequestedScopes() {
		if slices.Contains(client.GetScopes(), s) {
			ar.GrantScope(s)
		}
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	var resp fosite.AuthorizeResponder
	err := h.d.Store.InTx(ctx, func(ctx context.Context) error {
		// One use: of two resumes of the same flow, the second finds
		// nothing to delete and issues nothing.
		if err := h.d.Store.DeleteFlow(ctx, flow.ID); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return errFlowUsed
			}
			return err
		}
		// The code is written only while the sign-in still stands, checked
		// in the same transaction: a sign-out or a suspension that commits
		// first leaves no code behind; one that commits after finds the
		// code by its user and session and revokes it. The user and their
		// groups read for that check serve the rest.
		user, groups, err := h.liveSignIn(ctx, client.GetID(), auth.UserID, browser.IDHash())
		if err != nil {
			return err
		}
		// Defence in depth: login checks this too, but a token must never
		// claim less than the request, or the user's groups, required.
		// max_age counts back from the request, as fosite's check does: a
		// sign-in made for it is fresh enough however long the redirects
		// took (max_age=0 included).
		groupACR, _ := session.GroupsACR(groups)
		need := session.Requirement{ACR: session.StrongerACR(flow.RequiredACR, groupACR), MaxAge: flow.MaxAge}
		if !need.SatisfiedBy(auth, flow.CreatedAt) {
			return errBelowRequirement
		}
		sess := signedIn(h.d.Issuer, user.ID, sid, auth.ACR, auth.AMR, auth.AuthTime, flow.CreatedAt,
			userClaims(ar.GetGrantedScopes(), user, groups, sid))
		resp, err = h.provider.NewAuthorizeResponse(ctx, ar, sess)
		return err
	})
	switch {
	case errors.Is(err, errFlowUsed):
		return httpx.Errorf(http.StatusBadRequest, "This sign-in has expired or was already used. Go back to the app and start again.", err)
	case errors.Is(err, fositestore.ErrNotInAllowedGroup):
		// Reached only without a page (prompt=none): server/login shows
		// the user a page before it comes to this.
		if aerr := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.AccessRefused, Actor: auth.UserID, UserID: auth.UserID,
			ClientID: client.GetID(), Result: audit.Denied, Details: map[string]string{"reason": "not in an allowed group"}}); aerr != nil {
			return aerr
		}
		return h.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The user is in no group allowed to use this app.").WithWrap(err))
	case errors.Is(err, fositestore.ErrUserSuspended):
		return h.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The account is suspended.").WithWrap(err))
	case errors.Is(err, errBelowRequirement):
		return h.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The sign-in did not reach the assurance this app requires.").WithWrap(err))
	case errors.Is(err, fositestore.ErrGrantEnded):
		return h.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The sign-in was ended while the app was being answered.").WithWrap(err))
	case err != nil:
		return h.authorizeError(w, r, ar, err)
	}
	h.provider.WriteAuthorizeResponse(ctx, authorizeWriter(w, ar), ar, resp)
	return nil
}

// userClaims are the ID token's claims about the user that the granted
// scopes allow, and the browser session's sid.
func userClaims(scopes fosite.Arguments, user storage.User, groups []storage.Group, sid string) map[string]any {
	extra := map[string]any{"sid": sid}
	if scopes.Has("email") {
		extra["email"] = user.Email
		extra["email_verified"] = true // set by an admin, proven by enrolment
	}
	if scopes.Has("profile") {
		extra["preferred_username"] = user.Email
		if user.Name != "" {
			extra["name"] = user.Name
		}
	}
	if scopes.Has("groups") {
		extra[claimGroups] = groupNames(groups)
	}
	return extra
}

// liveSignIn checks, in the transaction that writes a code, that user and
// app may still be used (fositestore.LiveUser, which returns the user and
// their groups as it read them) and that the browser session is still
// signed in as userID.
func (h *Handler) liveSignIn(ctx context.Context, clientID, userID string, sessionHash []byte) (storage.User, []storage.Group, error) {
	user, groups, err := h.store.LiveUser(ctx, clientID, userID)
	if err != nil {
		return user, groups, err
	}
	bs, err := h.d.Store.GetSession(ctx, sessionHash, h.d.Now())
	if errors.Is(err, storage.ErrNotFound) || err == nil && bs.UserID != userID {
		return user, groups, fmt.Errorf("%w: the browser session was ended", fositestore.ErrGrantEnded)
	}
	return user, groups, err
}

// authorizeError redirects the error to the client only when fosite has
// validated the redirect URI; otherwise the user sees a page, never a
// redirect to an unregistered address.
func (h *Handler) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		// Not the app's fault: the error page says so (503 to retry when
		// the database cannot be reached), never a redirect to the app.
		return err
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	h.d.Logger.InfoContext(r.Context(), "authorize refused", "error", rfc.ErrorField, "hint", rfc.HintField, "debug", rfc.DebugField)
	if ar != nil && ar.IsRedirectURIValid() {
		h.provider.WriteAuthorizeError(r.Context(), authorizeWriter(w, ar), ar, err)
		return nil
	}
	msg := rfc.DescriptionField
	if rfc.HintField != "" {
		msg += " " + rfc.HintField
	}
	return httpx.Errorf(rfc.CodeField, fmt.Sprintf("The app's sign-in request is not valid (%s). %s", rfc.ErrorField, msg), err)
}

// groupNames are the names a groups claim carries (never null: an empty
// list says "no groups", which an app can tell from "not asked").
func groupNames(groups []storage.Group) []string {
	names := []string{}
	for _, g := range groups {
		names = append(names, g.Name)
	}
	return names
}
