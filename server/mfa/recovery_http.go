package mfa

import (
	"context"
	"net/http"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// stepUpForAccount asks a signed-in user for a fresh key tap and brings
// them back to the account page.
const stepUpForAccount = "/login?step_up=" + session.ACRPhr + "&return_to=/account"

// freshKeyTap reports whether the session's user tapped a key (phr or
// better) within freshness: what changing the account's factors needs.
func (h *Handler) freshKeyTap(a session.Auth) bool {
	return a.UserID != "" && session.ACRRank(a.ACR) >= session.ACRRank(session.ACRPhr) && h.d.Now().Sub(a.AuthTime) <= freshness
}

// regenerateRecoveryCodes replaces the user's recovery codes with new
// ones and shows them once. Codes are a way in, so — as with adding a
// key — a session alone is not enough: without a key tap in the last 5
// minutes the browser is sent to tap one, and nothing changes.
func (h *Handler) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request) error {
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	if !sess.ValidCSRF(r.PostFormValue("csrf_token")) {
		return session.ErrCSRF
	}
	a := sess.Auth()
	if !h.freshKeyTap(a) {
		http.Redirect(w, r, stepUpForAccount, http.StatusSeeOther)
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
