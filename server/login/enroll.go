package login

import (
	"context"
	"errors"
	"net/http"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// EnrollData is the set-password page's view.
type EnrollData struct {
	CSRF, Token, Email, Error string
	MinLength                 int
}

// showEnroll shows the set-password form. The link is not consumed on GET:
// mail scanners and link previews fetch URLs, and must not burn the link.
func (h *Handler) showEnroll(w http.ResponseWriter, r *http.Request) error {
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	data := EnrollData{CSRF: sess.CSRFToken(), Token: r.URL.Query().Get("token"), MinLength: MinPasswordLength}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageEnrollPassword, "Set up your account", data)
	return nil
}

// submitEnroll consumes the link, sets the password and admits the browser
// to the factor enrolment that follows. A password and its check that fail
// validation leave the link unused.
func (h *Handler) submitEnroll(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	if !sess.ValidCSRF(r.PostFormValue("csrf_token")) {
		return session.ErrCSRF
	}
	token := r.PostFormValue("token")
	password, confirm := r.PostFormValue("password"), r.PostFormValue("confirm")
	data := EnrollData{CSRF: sess.CSRFToken(), Token: token, MinLength: MinPasswordLength}
	fail := func(msg string) error {
		data.Error = msg
		if err := sess.Save(w); err != nil {
			return err
		}
		h.d.Render.Page(w, r, http.StatusBadRequest, render.PageEnrollPassword, "Set up your account", data)
		return nil
	}
	switch {
	case len(password) < MinPasswordLength:
		return fail("Use at least 12 characters.")
	case len(password) > 1024:
		return fail("That password is too long.")
	case password != confirm:
		return fail("The two passwords differ.")
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	var user storage.User
	err = h.d.Store.InTx(ctx, func(ctx context.Context) error {
		e, err := h.d.Store.ConsumeEnrollment(ctx, keys.HashToken(token), h.d.Now())
		if err != nil {
			return err
		}
		if err := h.d.Store.UpdateUser(ctx, e.UserID, func(u *storage.User) error {
			u.PasswordHash = hash
			u.UpdatedAt = h.d.Now()
			user = *u
			return nil
		}); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.PasswordSet,
			Actor: e.UserID, UserID: e.UserID, Result: audit.Success, Details: map[string]string{"via": "enrollment link"}})
	})
	if errors.Is(err, storage.ErrNotFound) {
		h.d.Render.Page(w, r, http.StatusGone, render.PageMessage, "Link expired",
			render.MessageData{Message: "This enrolment link has expired or was already used. Ask your administrator for a new one."})
		return nil
	}
	if err != nil {
		return err
	}
	if user.Suspended() {
		return httpx.Errorf(http.StatusForbidden, "This account is suspended. Contact your administrator.", nil)
	}
	if err := sess.SetEnrolling(user.ID); err != nil {
		return err
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	http.Redirect(w, r, "/mfa/enroll", http.StatusSeeOther)
	return nil
}
