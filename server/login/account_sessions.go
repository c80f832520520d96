package login

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// Ending the user's other sessions goes through manage, the path the
// admin console takes: the session row and every token issued from it go
// in one transaction with the back-channel logouts and the audit event.
// A plain signed-in session may do it — it only removes access.

var errNoSuchSession = httpx.Errorf(http.StatusNotFound, "That session has already ended.", nil)

// manager acts for the signed-in user from this request.
func (h *Handler) manager(r *http.Request, userID string) *manage.Manager {
	m := &manage.Manager{Store: h.d.Store, Audit: h.d.Audit, Now: h.d.Now}
	return m.As(userID, clientIP(r), r.UserAgent())
}

// signedInForm loads the session of a form post: the CSRF token first,
// then who is signed in ("" if nobody).
func (h *Handler) signedInForm(r *http.Request) (*session.Session, string, error) {
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return nil, "", err
	}
	return sess, sess.Auth().UserID, nil
}

// revokeSession signs one of the user's other sessions out.
func (h *Handler) revokeSession(w http.ResponseWriter, r *http.Request) error {
	sess, uid, err := h.signedInForm(r)
	if err != nil {
		return err
	}
	if uid == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	sid := r.PostFormValue("sid")
	if sid == "" {
		return httpx.Errorf(http.StatusBadRequest, "Choose a session to sign out.", nil)
	}
	if sid == sess.SID() {
		return httpx.Errorf(http.StatusBadRequest, "That is the session you are using: use Sign out to end it.", nil)
	}
	m := h.manager(r, uid)
	err = h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		// Only a session of this user's: another's sid is as unknown as a
		// made-up one, and nothing is touched.
		active, err := h.activeSessions(ctx, uid)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(active, func(s storage.BrowserSession) bool { return s.SID == sid }) {
			return errNoSuchSession
		}
		return m.RevokeSession(ctx, uid, sid)
	})
	if errors.Is(err, manage.ErrNotFound) || errors.Is(err, manage.ErrInvalid) {
		return errNoSuchSession
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
	return nil
}

// revokeOtherSessions signs out every session of the user but this one,
// each revoked (and audited) on its own.
func (h *Handler) revokeOtherSessions(w http.ResponseWriter, r *http.Request) error {
	sess, uid, err := h.signedInForm(r)
	if err != nil {
		return err
	}
	if uid == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	current := sess.SID()
	m := h.manager(r, uid)
	err = h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		all, err := h.d.Store.ListUserSessions(ctx, uid)
		if err != nil {
			return err
		}
		for _, s := range all {
			if s.SID == current || s.SID == "" {
				continue
			}
			if err := m.RevokeSession(ctx, uid, s.SID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
	return nil
}
