package mfa

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// EnrollFactorData is the factor-choice page's view during enrolment.
type EnrollFactorData struct {
	CSRF      string
	AllowTOTP bool
	// Role: the user's role in keygate's admin console ("" for none),
	// which takes a security key or passkey and nothing else.
	Role string
}

// showEnrollFactor offers a security key first and an authenticator app
// as the alternative.
func (h *Handler) showEnrollFactor(w http.ResponseWriter, r *http.Request) error {
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	user, err := h.enrollingUser(r, sess)
	if err != nil {
		return err
	}
	if h.d.Passkeys == nil {
		http.Redirect(w, r, "/mfa/totp/enroll", http.StatusSeeOther)
		return nil
	}
	data := EnrollFactorData{CSRF: sess.CSRFToken(), AllowTOTP: h.mayEnrollTOTP(user), Role: user.Role}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageEnrollFactor, "Add your second factor", data)
	return nil
}

// ownedKey loads the key named by the form's id, checking it belongs to
// the signed-in user and that their key tap is fresh.
func (h *Handler) ownedKey(r *http.Request) (*session.Session, storage.WebAuthnCredential, error) {
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return nil, storage.WebAuthnCredential{}, err
	}
	uid, _, err := h.registrant(sess)
	if err != nil {
		return nil, storage.WebAuthnCredential{}, err
	}
	id, err := base64.RawURLEncoding.DecodeString(r.PostFormValue("id"))
	if err != nil {
		return nil, storage.WebAuthnCredential{}, httpx.Errorf(http.StatusBadRequest, "Unknown key.", err)
	}
	c, err := h.d.Store.GetWebAuthnCredential(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.UserID != uid) {
		return nil, storage.WebAuthnCredential{}, httpx.Errorf(http.StatusNotFound, "Unknown key.", err)
	}
	return sess, c, err
}

func (h *Handler) renameKey(w http.ResponseWriter, r *http.Request) error {
	_, c, err := h.ownedKey(r)
	if err != nil {
		return err
	}
	name := cleanName(r.PostFormValue("name"))
	if name == "" {
		return httpx.Errorf(http.StatusBadRequest, "Give the key a name.", nil)
	}
	err = h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := h.d.Store.RenameWebAuthnCredential(ctx, c.ID, name); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.WebAuthnRenamed, Actor: c.UserID,
			UserID: c.UserID, Result: audit.Success, Details: map[string]string{"from": c.Name, "to": name}})
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
	return nil
}

// removeKey deletes a key, refusing to remove the user's last way in.
func (h *Handler) removeKey(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	_, c, err := h.ownedKey(r)
	if err != nil {
		return err
	}
	user, err := h.loadWAUser(ctx, c.UserID)
	if err != nil {
		return err
	}
	_, totpErr := h.d.Store.GetTOTP(ctx, c.UserID)
	if len(user.WebAuthnCredentials()) <= 1 && c.DisabledAt.IsZero() && totpErr != nil {
		return httpx.Errorf(http.StatusConflict, "This is your only key. Add another key before removing it.", nil)
	}
	err = h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.d.Store.DeleteWebAuthnCredential(ctx, c.ID); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.WebAuthnRemoved, Actor: c.UserID,
			UserID: c.UserID, Result: audit.Success, Details: map[string]string{"name": c.Name, "aaguid": aaguidString(c.AAGUID)}})
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
	return nil
}
