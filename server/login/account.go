package login

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// AccountData is the account page's view.
type AccountData struct {
	CSRF, Email, Name, ACR string
	AMR                    []string
	AuthTime               time.Time
	RecoveryCodes          int
	Keys                   []KeyView
}

// KeyView is one security key or passkey as the account page lists it.
type KeyView struct {
	ID, Name, Kind, Disabled string
	CreatedAt, LastUsedAt    time.Time
}

func (h *Handler) account(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	auth := sess.Auth()
	if auth.UserID == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	user, err := h.d.Store.GetUser(ctx, auth.UserID)
	if err != nil {
		return err
	}
	left, err := h.d.Store.CountRecoveryCodes(ctx, user.ID)
	if err != nil {
		return err
	}
	creds, err := h.d.Store.ListWebAuthnCredentials(ctx, user.ID)
	if err != nil {
		return err
	}
	data := AccountData{CSRF: sess.CSRFToken(), Email: user.Email, Name: user.Name, ACR: auth.ACR,
		AMR: auth.AMR, AuthTime: auth.AuthTime, RecoveryCodes: left}
	for _, c := range creds {
		kind := "device-bound"
		if c.BackupEligible {
			kind = "synced passkey"
		}
		data.Keys = append(data.Keys, KeyView{ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name, Kind: kind,
			Disabled: c.DisabledReason, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt})
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageAccount, "Your account", data)
	return nil
}

func (h *Handler) accountLogout(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	if !sess.ValidCSRF(r.PostFormValue("csrf_token")) {
		return session.ErrCSRF
	}
	if auth := sess.Auth(); auth.UserID != "" {
		if _, err := h.d.Store.RevokeSession(ctx, sess.SID()); err != nil {
			return err
		}
		if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.SignedOut, Actor: auth.UserID,
			UserID: auth.UserID, Result: audit.Success}); err != nil {
			return err
		}
	}
	if err := sess.Destroy(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageMessage, "Signed out", render.MessageData{Message: "You are signed out of keygate."})
	return nil
}
