package login

// Forgot password. The form answers the same whether or not the address
// has an account, and is throttled per address and per IP. The mailed
// link (storage.Link, purpose LinkPasswordReset, hashed at rest) leads to
// a form for the new password, which waits, hashed, in a flow for the
// user's second factor (server/mfa verifies it as for a sign-in). Only
// when that flow is verified does the dispatcher use up the link, set the
// password and end every session of the user (finishReset). Nobody is
// signed in by any of it.

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// ResetLifetime is how long a "forgot password" link works.
const ResetLifetime = 30 * time.Minute

// Query keys of a password reset's flow: the link's hash and the new
// password's hash. A sign-in's flow has neither.
const (
	resetLinkKey = "password_reset"
	resetHashKey = "password_hash"
)

var (
	errBadResetLink = httpx.Errorf(http.StatusGone,
		"This link to choose a new password cannot be used: it was used already, has expired (links last 30 minutes), "+
			"or was cut short. Ask for a new one with “Forgot password?” on the sign-in page.", nil)
	errNoResets = httpx.Errorf(http.StatusNotFound,
		"Passwords cannot be reset by email here. Ask your administrator for a new enrolment link.", nil)
)

// ForgotData is the "forgot password" page's view.
type ForgotData struct {
	CSRF, Error string
	Sent        bool
}

func (h *Handler) showForgot(w http.ResponseWriter, r *http.Request) error {
	if h.d.Mail == nil {
		return errNoResets
	}
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	return h.renderForgot(w, r, sess, ForgotData{}, http.StatusOK)
}

func (h *Handler) renderForgot(w http.ResponseWriter, r *http.Request, sess *session.Session, data ForgotData, status int) error {
	data.CSRF = sess.CSRFToken()
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, status, render.PageForgot, "Forgot your password?", data)
	return nil
}

// submitForgot mails a reset link to the address if it has an account
// that can use one, and answers the same in every case.
func (h *Handler) submitForgot(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return err
	}
	if h.d.Mail == nil {
		return errNoResets
	}
	email := postedEmail(r)
	if email == "" || len(email) > 254 || !strings.Contains(email, "@") {
		return h.renderForgot(w, r, sess, ForgotData{Error: "Enter your email address."}, http.StatusBadRequest)
	}
	// Every request counts, whether or not the address has an account:
	// the limit says nothing about which addresses do.
	account, ip := "reset:"+email, ""
	if a := clientIP(r); a != "" {
		ip = "reset:" + a
	}
	if ok, err := h.d.ResetThrottle.Allowed(ctx, account, ip); err != nil {
		return err
	} else if !ok {
		return h.renderForgot(w, r, sess, ForgotData{Error: "Too many requests for this address or from this network. Wait an hour and try again."},
			http.StatusTooManyRequests)
	}
	if err := h.d.ResetThrottle.Fail(ctx, account, ip); err != nil {
		return err
	}
	if err := h.mailReset(r, email); err != nil {
		return err
	}
	return h.renderForgot(w, r, sess, ForgotData{Sent: true}, http.StatusOK)
}

// mailReset queues the link for an enrolled, active account of email, in
// the transaction that records it. Any other address is only counted in
// the audit log's anonymous failures.
func (h *Handler) mailReset(r *http.Request, email string) error {
	ctx := r.Context()
	u, err := h.d.Store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if u.ID == "" || !u.Enrolled() || u.Suspended() {
		reason := "unknown email"
		if u.ID != "" {
			reason = "account not enrolled or suspended"
		}
		return h.d.Audit.RecordAnonymous(r, storage.AuditEvent{Type: audit.PasswordResetRequested, Actor: email,
			UserID: u.ID, Result: audit.Failure, Details: map[string]string{"reason": reason}})
	}
	token, err := keys.RandomToken(32)
	if err != nil {
		return err
	}
	now := h.d.Now()
	l := storage.Link{TokenHash: keys.HashToken(token), Purpose: storage.LinkPasswordReset, UserID: u.ID,
		CreatedAt: now, ExpiresAt: now.Add(ResetLifetime)}
	msg, err := mail.PasswordReset{Issuer: h.d.Issuer, Email: u.Email, Name: u.Name,
		URL: h.d.Issuer + "/login/reset?token=" + url.QueryEscape(token), Expires: l.ExpiresAt}.Message()
	if err != nil {
		return err
	}
	return h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.d.Store.CreateLink(ctx, l); err != nil {
			return err
		}
		if err := h.d.Mail.Enqueue(ctx, msg); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.PasswordResetRequested,
			Actor: u.ID, UserID: u.ID, Result: audit.Success,
			Details: map[string]string{"expires_at": l.ExpiresAt.UTC().Format(time.RFC3339)}})
	})
}

// resetLinkUser looks a reset link up without using it: its user, or
// errBadResetLink.
func (h *Handler) resetLinkUser(ctx context.Context, token string) (storage.User, []byte, error) {
	return h.tokenUser(ctx, token, errBadResetLink, func(hash []byte) (string, error) {
		l, err := h.d.Store.GetLink(ctx, storage.LinkPasswordReset, hash, h.d.Now())
		return l.UserID, err
	})
}

// showReset shows the new-password form. It changes nothing: mail
// scanners and link previews fetch URLs.
func (h *Handler) showReset(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	user, _, err := h.resetLinkUser(r.Context(), token)
	if err != nil {
		return err
	}
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	return h.renderReset(w, r, sess, EnrollData{Token: token, Email: user.Email}, http.StatusOK)
}

func (h *Handler) renderReset(w http.ResponseWriter, r *http.Request, sess *session.Session, data EnrollData, status int) error {
	data.CSRF, data.MinLength = sess.CSRFToken(), MinPasswordLength
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, status, render.PageResetPassword, "Choose a new password", data)
	return nil
}

// submitReset keeps the new password, hashed, in a flow that waits for the
// user's second factor, and sends the browser there.
func (h *Handler) submitReset(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return err
	}
	token := r.PostFormValue("token")
	user, linkHash, err := h.resetLinkUser(ctx, token)
	if err != nil {
		return err
	}
	if msg := newPasswordProblem(r.PostFormValue("password"), r.PostFormValue("confirm")); msg != "" {
		return h.renderReset(w, r, sess, EnrollData{Token: token, Email: user.Email, Error: msg}, http.StatusBadRequest)
	}
	hash, err := h.hashPassword(ctx, w, r.PostFormValue("password"))
	if err != nil {
		return err
	}
	id, err := keys.RandomToken(24)
	if err != nil {
		return err
	}
	now := h.d.Now()
	flow := storage.Flow{ID: id, SessionHash: sess.IDHash(), UserID: user.ID, State: storage.FlowSecondFactor,
		RequiredACR: session.ACRMFA, MaxAge: -1, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute),
		Query:   url.Values{resetLinkKey: {hex.EncodeToString(linkHash)}, resetHashKey: {hash}}.Encode(),
		Reasons: []string{"Confirm it is you with your security key, passkey or authenticator app: your new password takes effect then."}}
	if err := h.d.Store.CreateFlow(ctx, flow); err != nil {
		return err
	}
	// A group that asks its members for a key asks it here too.
	if err := h.raiseForGroups(ctx, &flow); err != nil {
		return err
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	http.Redirect(w, r, "/mfa/verify?flow="+url.QueryEscape(flow.ID), http.StatusSeeOther)
	return nil
}

// resetOf returns the link hash and new password hash of a password
// reset's flow; ok is false for a sign-in's flow.
func resetOf(flow storage.Flow) (linkHash []byte, passwordHash string, ok bool) {
	q, err := url.ParseQuery(flow.Query)
	if err != nil || q.Get(resetLinkKey) == "" {
		return nil, "", false
	}
	linkHash, err = hex.DecodeString(q.Get(resetLinkKey))
	return linkHash, q.Get(resetHashKey), err == nil && q.Get(resetHashKey) != ""
}

// finishReset sets the new password of a reset flow the second factor
// verified: in one transaction it completes the flow, uses up the link and
// (ResetPassword) sets the password, ends every session and token of the
// user and records it. The browser stays signed out.
func (h *Handler) finishReset(w http.ResponseWriter, r *http.Request, flow storage.Flow, linkHash []byte, passwordHash string) error {
	if session.ACRRank(flow.ACR) < session.ACRRank(flow.RequiredACR) {
		return h.insufficient(w, r, flow)
	}
	err := h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			if f.State != storage.FlowVerified {
				return storage.ErrConflict
			}
			f.State = storage.FlowComplete
			return nil
		}); err != nil {
			return err
		}
		l, err := h.d.Store.ConsumeLink(ctx, storage.LinkPasswordReset, linkHash, h.d.Now())
		if errors.Is(err, storage.ErrNotFound) || (err == nil && l.UserID != flow.UserID) {
			return errBadResetLink
		}
		if err != nil {
			return err
		}
		return h.d.ResetPassword(r.WithContext(ctx), flow.UserID, passwordHash)
	})
	if errors.Is(err, storage.ErrConflict) {
		return session.ErrFlowGone
	}
	if err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageMessage, "Your password has been changed", render.MessageData{
		Message: "Your password has been changed, and every session of your account has been signed out, " +
			"in keygate and in the apps. Sign in with your new password.",
		Link: "/login", LinkText: "Sign in",
	})
	return nil
}
