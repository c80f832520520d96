package mfa

import (
	"context"
	"errors"
	"html/template"
	"net/http"

	"github.com/pquerna/otp"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// EnrollTOTPData is the authenticator enrolment page's view.
type EnrollTOTPData struct {
	CSRF, Secret, Error string
	QR, URL             template.URL
}

// RecoveryCodesData is the one-time recovery code page's view.
type RecoveryCodesData struct {
	Codes []string
	Next  string
}

var errNotEnrolling = httpx.Errorf(http.StatusForbidden, "Open your enrolment link first.", nil)

// pendingKey returns the user's unconfirmed TOTP key, creating and storing
// (sealed) a new one when there is none: reloading the page keeps the QR.
func (h *Handler) pendingKey(ctx context.Context, user storage.User) (*otp.Key, error) {
	cred, err := h.d.Store.GetTOTP(ctx, user.ID)
	if err == nil && cred.ConfirmedAt.IsZero() {
		return h.openKey(cred)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	key, err := newTOTPKey(h.d.Issuer, user.Email)
	if err != nil {
		return nil, err
	}
	sealed, err := h.d.Master.Seal([]byte(key.URL()), totpAAD(user.ID))
	if err != nil {
		return nil, err
	}
	return key, h.d.Store.PutTOTP(ctx, storage.TOTPCredential{UserID: user.ID, Sealed: sealed, CreatedAt: h.d.Now()})
}

// openKey unseals a stored key. What is sealed is the key's otpauth URL, so
// the issuer and account shown in the app are kept with the secret.
func (h *Handler) openKey(cred storage.TOTPCredential) (*otp.Key, error) {
	raw, err := h.d.Master.Open(cred.Sealed, totpAAD(cred.UserID))
	if err != nil {
		return nil, err
	}
	return otp.NewKeyFromURL(string(raw))
}

func (h *Handler) enrollingUser(r *http.Request, sess *session.Session) (storage.User, error) {
	uid := sess.Enrolling()
	if uid == "" {
		return storage.User{}, errNotEnrolling
	}
	return h.d.Store.GetUser(r.Context(), uid)
}

// mayEnrollTOTP: a user with a console role (admin, helpdesk, auditor)
// enrols with a security key or passkey, the only factor the admin console
// accepts — enrolled with an authenticator app alone, they could not
// reach it. Where keygate cannot
// offer keys at all (an issuer at an IP address) the app is all there is.
func (h *Handler) mayEnrollTOTP(u storage.User) bool { return u.Role == "" || h.d.Passkeys == nil }

var errAdminNeedsKey = httpx.Errorf(http.StatusForbidden,
	"With a role in the admin console you enrol with a security key or passkey: the console accepts nothing else, because a phishing page cannot use one.", nil)

// errEnrollmentGone: the link that admitted this browser expired, or was
// used by another browser, while the user was setting up their factor.
var errEnrollmentGone = httpx.Errorf(http.StatusGone,
	"Your enrolment link expired or was used meanwhile. Ask your administrator for a new one.", nil)

// completeEnrollment runs in the transaction that confirms the enrolling
// user's factor: it uses up the link that admitted this browser and marks
// the user enrolled. Until then the link works again and the user shows
// as pending, so an enrolment abandoned half-way is no dead end.
func (h *Handler) completeEnrollment(ctx context.Context, r *http.Request, sess *session.Session, userID, factor string) error {
	e, err := h.d.Store.ConsumeEnrollment(ctx, sess.EnrollmentLink(), h.d.Now())
	if errors.Is(err, storage.ErrNotFound) || err == nil && e.UserID != userID {
		return errEnrollmentGone
	}
	if err != nil {
		return err
	}
	now := h.d.Now()
	if err := h.d.Store.UpdateUser(ctx, userID, func(u *storage.User) error {
		if u.EnrolledAt.IsZero() {
			u.EnrolledAt = now
		}
		u.UpdatedAt = now
		return nil
	}); err != nil {
		return err
	}
	return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.EnrollmentCompleted,
		Actor: userID, UserID: userID, Result: audit.Success, Details: map[string]string{"factor": factor}})
}

func (h *Handler) showEnrollTOTP(w http.ResponseWriter, r *http.Request) error {
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	user, err := h.enrollingUser(r, sess)
	if err != nil {
		return err
	}
	if !h.mayEnrollTOTP(user) {
		http.Redirect(w, r, "/mfa/enroll", http.StatusSeeOther)
		return nil
	}
	return h.renderEnroll(w, r, sess, user, "", http.StatusOK)
}

func (h *Handler) renderEnroll(w http.ResponseWriter, r *http.Request, sess *session.Session, user storage.User, msg string, status int) error {
	key, err := h.pendingKey(r.Context(), user)
	if err != nil {
		return err
	}
	qr, err := qrDataURI(key)
	if err != nil {
		return err
	}
	data := EnrollTOTPData{CSRF: sess.CSRFToken(), Secret: key.Secret(), Error: msg,
		// Both are built by us from a fixed scheme; html/template would
		// otherwise refuse the data: and otpauth: schemes.
		QR: template.URL(qr), URL: template.URL(key.URL())}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, status, render.PageEnrollTOTP, "Set up your authenticator app", data)
	return nil
}

// submitEnrollTOTP confirms the app with a code, issues recovery codes and
// signs the browser in: the enrolment link, the new password and the
// confirmed code together are the first sign-in.
func (h *Handler) submitEnrollTOTP(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return err
	}
	user, err := h.enrollingUser(r, sess)
	if err != nil {
		return err
	}
	if !h.mayEnrollTOTP(user) {
		return errAdminNeedsKey
	}
	key, err := h.pendingKey(ctx, user)
	if err != nil {
		return err
	}
	now := h.d.Now()
	step, ok := matchTOTP(key.Secret(), r.PostFormValue("code"), now)
	if !ok {
		return h.renderEnroll(w, r, sess, user, "That code is not correct. Check the app shows keygate, then enter its current code.", http.StatusBadRequest)
	}
	codes, hashes, err := newRecoveryCodes(h.d.RecoveryKey)
	if err != nil {
		return err
	}
	err = h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.d.Store.ConfirmTOTP(ctx, user.ID, now); err != nil {
			return err
		}
		if err := h.d.Store.UseTOTPStep(ctx, user.ID, step); err != nil {
			return err
		}
		if err := h.d.Store.ReplaceRecoveryCodes(ctx, user.ID, hashes); err != nil {
			return err
		}
		// The factor first, then the enrolment it completes, as for a
		// key: a user's first factor is part of enrolling, not news to
		// mail them (server/notice), while one added by a new enrolment
		// link to an enrolled account is.
		rr := r.WithContext(ctx)
		if err := h.d.Audit.RecordRequest(rr, storage.AuditEvent{Type: audit.TOTPEnrolled, Actor: user.ID, UserID: user.ID, Result: audit.Success}); err != nil {
			return err
		}
		if err := h.completeEnrollment(ctx, r, sess, user.ID, "totp"); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(rr, storage.AuditEvent{Type: audit.RecoveryCodesIssued, Actor: user.ID, UserID: user.ID, Result: audit.Success})
	})
	if err != nil {
		return err
	}
	if err := sess.SignIn(session.Auth{UserID: user.ID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: now}); err != nil {
		return err
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageRecoveryCodes, "Save your recovery codes", RecoveryCodesData{Codes: codes, Next: "/account"})
	return nil
}
