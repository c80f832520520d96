package login

import (
	"context"
	"errors"
	"net/http"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/storage"
)

// EnrollData is the set-password page's view.
type EnrollData struct {
	CSRF, Token, Email, Error string
	MinLength                 int
}

// errBadLink answers a link that names no usable enrolment, before anyone
// types a password into it.
var errBadLink = httpx.Errorf(http.StatusGone,
	"This enrolment link cannot be used: it was mistyped or cut short, it has expired (links last 72 hours), "+
		"or the account it set up is finished. Ask your administrator for a new link.", nil)

// linkUser looks the link up without using it: the user it enrols, or
// errBadLink. A suspended user's link is refused too.
func (h *Handler) linkUser(ctx context.Context, token string) (storage.User, []byte, error) {
	return h.tokenUser(ctx, token, errBadLink, func(hash []byte) (string, error) {
		e, err := h.d.Store.GetEnrollment(ctx, hash, h.d.Now())
		return e.UserID, err
	})
}

// tokenUser is the user a mailed or handed-over token names, looked up by
// the token's hash without using it up: bad for a token that names no
// usable link or user, and a refusal for a suspended user.
func (h *Handler) tokenUser(ctx context.Context, token string, bad error, lookup func(hash []byte) (userID string, err error)) (storage.User, []byte, error) {
	hash := keys.HashToken(token)
	userID, err := lookup(hash)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, nil, bad
	}
	if err != nil {
		return storage.User{}, nil, err
	}
	u, err := h.d.Store.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, nil, bad
	}
	if err != nil {
		return storage.User{}, nil, err
	}
	if u.Suspended() {
		return storage.User{}, nil, httpx.Errorf(http.StatusForbidden, "This account is suspended. Contact your administrator.", nil)
	}
	return u, hash, nil
}

// showEnroll shows the set-password form for a usable link. The link is
// not used up here: mail scanners and link previews fetch URLs.
func (h *Handler) showEnroll(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	user, _, err := h.linkUser(r.Context(), token)
	if err != nil {
		return err
	}
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	data := EnrollData{CSRF: sess.CSRFToken(), Token: token, Email: user.Email, MinLength: MinPasswordLength}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageEnrollPassword, "Set up your account", data)
	return nil
}

// submitEnroll sets the password and admits the browser to the factor
// enrolment that follows. The link stays usable until a factor is
// confirmed (server/mfa uses it up then): an enrolment abandoned after the
// password can be finished by opening the link again.
func (h *Handler) submitEnroll(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return err
	}
	token := r.PostFormValue("token")
	user, linkHash, err := h.linkUser(ctx, token)
	if err != nil {
		return err
	}
	password, confirm := r.PostFormValue("password"), r.PostFormValue("confirm")
	data := EnrollData{CSRF: sess.CSRFToken(), Token: token, Email: user.Email, MinLength: MinPasswordLength}
	if msg := newPasswordProblem(password, confirm); msg != "" {
		data.Error = msg
		if err := sess.Save(w); err != nil {
			return err
		}
		h.d.Render.Page(w, r, http.StatusBadRequest, render.PageEnrollPassword, "Set up your account", data)
		return nil
	}
	hash, err := h.hashPassword(ctx, w, password)
	if err != nil {
		return err
	}
	err = h.d.Store.InTx(ctx, func(ctx context.Context) error {
		// Still usable now, in the transaction that sets the password.
		if _, err := h.d.Store.GetEnrollment(ctx, linkHash, h.d.Now()); err != nil {
			return err
		}
		if err := h.d.Store.UpdateUser(ctx, user.ID, func(u *storage.User) error {
			u.PasswordHash = hash
			u.UpdatedAt = h.d.Now()
			return nil
		}); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.PasswordSet,
			Actor: user.ID, UserID: user.ID, Result: audit.Success, Details: map[string]string{"via": "enrollment link"}})
	})
	if errors.Is(err, storage.ErrNotFound) {
		return errBadLink
	}
	if err != nil {
		return err
	}
	if err := sess.SetEnrolling(user.ID, linkHash); err != nil {
		return err
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	http.Redirect(w, r, "/mfa/enroll", http.StatusSeeOther)
	return nil
}
