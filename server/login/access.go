package login

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// Groups decide two things in a sign-in: whether the app may be used at
// all (its allowed groups), and how strongly its members sign in
// everywhere (a group's minimum acr). server/oidc checks both again when
// the code is written.

// raiseForGroups raises the flow's required level to what the user's
// groups ask of their members, and says why.
func (h *Handler) raiseForGroups(ctx context.Context, flow *storage.Flow) error {
	groups, err := h.d.Store.ListUserGroups(ctx, flow.UserID)
	if err != nil {
		return err
	}
	acr, group := session.GroupsACR(groups)
	if session.ACRRank(acr) <= session.ACRRank(flow.RequiredACR) {
		return nil
	}
	reason := session.GroupReason(acr, group)
	return h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
		f.RequiredACR = acr
		if !slices.Contains(f.Reasons, reason) {
			f.Reasons = append(f.Reasons, reason)
		}
		*flow = *f
		return nil
	})
}

// refuseOutsider shows the no-access page, and records the refusal, when
// the flow's app names allowed groups and the user is in none of them.
func (h *Handler) refuseOutsider(w http.ResponseWriter, r *http.Request, flow storage.Flow) (bool, error) {
	if flow.ClientID == "" {
		return false, nil
	}
	ctx := r.Context()
	c, err := h.d.Store.GetClient(ctx, flow.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil // HandBack answers for an app that is gone
	}
	if err != nil {
		return false, err
	}
	groups, err := h.d.Store.ListUserGroups(ctx, flow.UserID)
	if err != nil {
		return false, err
	}
	if c.Allows(groups) {
		return false, nil
	}
	if err := h.d.Store.DeleteFlow(ctx, flow.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, err
	}
	if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.AccessRefused, Actor: flow.UserID,
		UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Denied,
		Details: map[string]string{"reason": "not in an allowed group"}}); err != nil {
		return false, err
	}
	h.d.Metrics.SignIn("denied")
	h.d.Render.Page(w, r, http.StatusForbidden, render.PageMessage, "No access to "+c.Name, render.MessageData{
		Message: "You are signed in, but your account may not use " + c.Name + ": only members of certain groups may. " +
			"If you need it for your work, ask your administrator to add you to one of them.",
	})
	return true, nil
}
