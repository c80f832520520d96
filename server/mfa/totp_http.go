package mfa

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// CodeData is the view of the recovery-code page.
type CodeData struct {
	CSRF, Flow, Error string
}

// SecondFactorData is the second-factor page's view: what this user can
// use, given what the app requires.
type SecondFactorData struct {
	CSRF, Flow, Error string
	HasKeys           bool // offer "Use your security key"
	TOTP              bool // offer the code form
	Recovery          bool // offer recovery codes
	NeedsKey          bool // the app needs a key and the user has none
	Reasons           []string
}

// codesAllowed: TOTP and recovery codes reach mfa only, so they are not
// offered when the app requires a phishing-resistant sign-in.
func codesAllowed(flow storage.Flow) bool {
	return session.ACRRank(flow.RequiredACR) <= session.ACRRank(session.ACRMFA)
}

func (h *Handler) secondFactorData(ctx context.Context, sess *session.Session, flow storage.Flow, msg string) (SecondFactorData, error) {
	d := SecondFactorData{CSRF: sess.CSRFToken(), Flow: flow.ID, Error: msg, Reasons: flow.Reasons}
	user, err := h.loadWAUser(ctx, flow.UserID)
	if err != nil {
		return d, err
	}
	d.HasKeys = h.d.Passkeys != nil && len(user.WebAuthnCredentials()) > 0
	if codesAllowed(flow) {
		cred, err := h.d.Store.GetTOTP(ctx, flow.UserID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return d, err
		}
		d.TOTP = err == nil && !cred.ConfirmedAt.IsZero()
		d.Recovery = true
	}
	d.NeedsKey = !d.HasKeys && !codesAllowed(flow)
	return d, nil
}

func (h *Handler) showSecondFactor(w http.ResponseWriter, r *http.Request) error {
	return h.showCode(w, r, render.PageSecondFactor)
}

func (h *Handler) showRecovery(w http.ResponseWriter, r *http.Request) error {
	return h.showCode(w, r, render.PageRecovery)
}

// showCode shows a page a second factor is entered on, for the flow
// named in the URL.
func (h *Handler) showCode(w http.ResponseWriter, r *http.Request, page string) error {
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	flow, err := h.factorFlow(r, sess, r.URL.Query().Get("flow"))
	if err != nil {
		return err
	}
	return h.renderCode(w, r, sess, page, flow, "", http.StatusOK)
}

func (h *Handler) renderSecondFactor(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow, msg string, status int) error {
	data, err := h.secondFactorData(r.Context(), sess, flow, msg)
	if err != nil {
		return err
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, status, render.PageSecondFactor, "Confirm it's you", data)
	return nil
}

// factorFlow loads a flow waiting for a second factor, bound to this session.
func (h *Handler) factorFlow(r *http.Request, sess *session.Session, id string) (storage.Flow, error) {
	flow, err := session.LoadFlow(r.Context(), h.d.Store, sess, id, h.d.Now())
	if err != nil {
		return flow, err
	}
	if flow.State != storage.FlowSecondFactor {
		return flow, session.ErrFlowGone
	}
	return flow, nil
}

// renderCode re-renders the page a code was entered on, with msg.
func (h *Handler) renderCode(w http.ResponseWriter, r *http.Request, sess *session.Session, page string, flow storage.Flow, msg string, status int) error {
	if page == render.PageSecondFactor {
		return h.renderSecondFactor(w, r, sess, flow, msg, status)
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, status, page, "Use a recovery code", CodeData{CSRF: sess.CSRFToken(), Flow: flow.ID, Error: msg})
	return nil
}

// codeCheck verifies a submitted code for the flow's user and says which
// method it was, or returns a message for the user.
type codeCheck func(ctx context.Context, userID, code string) (method, userMsg string, err error)

func (h *Handler) submitTOTP(w http.ResponseWriter, r *http.Request) error {
	return h.submitCode(w, r, render.PageSecondFactor, h.checkTOTP)
}

func (h *Handler) submitRecovery(w http.ResponseWriter, r *http.Request) error {
	return h.submitCode(w, r, render.PageRecovery, h.checkRecovery)
}

// submitCode is the shared second-factor step: throttle, check, audit,
// advance the flow to verified.
func (h *Handler) submitCode(w http.ResponseWriter, r *http.Request, page string, check codeCheck) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return err
	}
	flow, err := h.factorFlow(r, sess, r.PostFormValue("flow"))
	if err != nil {
		return err
	}
	if !codesAllowed(flow) {
		return h.renderCode(w, r, sess, page, flow, "This app requires a security key or passkey; a code is not enough.", http.StatusForbidden)
	}
	ip := clientIP(r)
	if ok, err := h.d.Throttle.Allowed(ctx, flow.UserID, ip); err != nil {
		return err
	} else if !ok {
		if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.SigninThrottled, Actor: flow.UserID,
			UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Denied,
			Details: map[string]string{"step": "second factor"}}); err != nil {
			return err
		}
		h.d.Metrics.SignIn("throttled")
		return h.renderCode(w, r, sess, page, flow, "Too many failed attempts. Wait 15 minutes and try again.", http.StatusTooManyRequests)
	}
	method, msg, err := check(ctx, flow.UserID, r.PostFormValue("code"))
	if err != nil {
		return err
	}
	if msg != "" {
		if err := h.d.Throttle.Fail(ctx, flow.UserID, ip); err != nil {
			return err
		}
		if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.SigninFailed, Actor: flow.UserID,
			UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Failure,
			Details: map[string]string{"step": "second factor", "method": method, "reason": msg}}); err != nil {
			return err
		}
		h.d.Metrics.SignIn("failure")
		return h.renderCode(w, r, sess, page, flow, msg, http.StatusUnauthorized)
	}
	now := h.d.Now()
	err = h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if method == "recovery_code" {
			if err := h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.RecoveryCodeUsed,
				Actor: flow.UserID, UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Success}); err != nil {
				return err
			}
		}
		return h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			if f.State != storage.FlowSecondFactor {
				return storage.ErrConflict
			}
			if !slices.Contains(f.AMR, "otp") {
				f.AMR = append(f.AMR, "otp")
			}
			f.ACR = session.ACRMFA
			f.AuthTime = now
			f.State = storage.FlowVerified
			return nil
		})
	})
	if errors.Is(err, storage.ErrConflict) {
		return session.ErrFlowGone
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/login/continue?flow="+url.QueryEscape(flow.ID), http.StatusSeeOther)
	return nil
}

// checkTOTP accepts a code once: its time step must be above the last one
// used, recorded atomically, so a code relayed by a phishing page after the
// user typed it is refused.
func (h *Handler) checkTOTP(ctx context.Context, userID, code string) (string, string, error) {
	const method = "totp"
	cred, err := h.d.Store.GetTOTP(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && cred.ConfirmedAt.IsZero()) {
		return method, "No authenticator app is set up for this account. Use a recovery code, or ask your administrator for a new enrolment link.", nil
	}
	if err != nil {
		return method, "", err
	}
	key, err := h.openKey(cred)
	if err != nil {
		return method, "", err
	}
	step, ok := matchTOTP(key.Secret(), code, h.d.Now())
	if !ok {
		return method, "That code is not correct. Check your authenticator app and try again.", nil
	}
	err = h.d.Store.UseTOTPStep(ctx, userID, step)
	if errors.Is(err, storage.ErrConflict) {
		return method, "That code was already used. Wait for the next code and enter it.", nil
	}
	return method, "", err
}

func (h *Handler) checkRecovery(ctx context.Context, userID, code string) (string, string, error) {
	const method = "recovery_code"
	norm := normalizeRecoveryCode(code)
	if len(norm) != 10 {
		return method, "That recovery code is not correct.", nil
	}
	err := h.d.Store.UseRecoveryCode(ctx, userID, hashRecoveryCode(h.d.RecoveryKey, norm), h.d.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return method, "That recovery code is not correct, or was already used.", nil
	}
	return method, "", err
}
