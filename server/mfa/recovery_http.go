package mfa

import (
	"context"
	"net/http"
	"slices"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// freshAt reports whether the session's user proved acr (or better)
// within freshness.
func (h *Handler) freshAt(a session.Auth, acr string) bool {
	return a.UserID != "" && session.ACRRank(a.ACR) >= session.ACRRank(acr) && h.d.Now().Sub(a.AuthTime) <= freshness
}

// hasKey reports whether the user has a usable security key or passkey.
func (h *Handler) hasKey(ctx context.Context, userID string) (bool, error) {
	creds, err := h.d.Store.ListWebAuthnCredentials(ctx, userID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(creds, func(c storage.WebAuthnCredential) bool { return c.DisabledAt.IsZero() }), nil
}

// regenerateRecoveryCodes replaces the user's recovery codes with new
// ones and shows them once. Codes are a way in, so a session alone is not
// enough: the user proves their strongest factor again first. With a
// security key that is a key tap in the last 5 minutes (an authenticator
// code would be a downgrade a phishing page could relay); a user who has
// only an authenticator app enters a fresh code from it. Without that the
// browser is sent to give it, and nothing changes.
func (h *Handler) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request) error {
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return err
	}
	a := sess.Auth()
	need := session.ACRMFA
	if a.UserID != "" {
		withKey, err := h.hasKey(r.Context(), a.UserID)
		if err != nil {
			return err
		}
		if withKey {
			need = session.ACRPhr
		}
	}
	if !h.freshAt(a, need) {
		http.Redirect(w, r, "/login?step_up="+need+"&return_to=/account", http.StatusSeeOther)
		return nil
	}
	codes, hashes, err := newRecoveryCodes(h.d.RecoveryKey)
	if err != nil {
		return err
	}
	err = h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := h.d.Store.ReplaceRecoveryCodes(ctx, a.UserID, hashes); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.RecoveryCodesIssued,
			Actor: a.UserID, UserID: a.UserID, Result: audit.Success, Details: map[string]string{"reason": "regenerated"}})
	})
	if err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageRecoveryCodes, "Save your new recovery codes",
		RecoveryCodesData{Codes: codes, Next: "/account"})
	return nil
}
