package login

// The dispatcher: /login/continue reads a flow's state and moves it on.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/notice"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/risk"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// next is the dispatcher's endpoint: the flow named in the query, moved on
// by Continue.
func (h *Handler) next(w http.ResponseWriter, r *http.Request) error {
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	flow, err := session.LoadFlow(r.Context(), h.d.Store, sess, r.URL.Query().Get("flow"), h.d.Now())
	if err != nil {
		return err
	}
	return h.Continue(w, r, sess, flow)
}

// Continue is the dispatcher: it reads the flow's state and sends the
// browser to the step that comes next. When the flow is verified it signs
// the browser session in and hands back to the app (or the account page).
// flow must be bound to sess.
func (h *Handler) Continue(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow) error {
	q := "?flow=" + url.QueryEscape(flow.ID)
	switch flow.State {
	case storage.FlowIdentify:
		http.Redirect(w, r, "/login"+q, http.StatusSeeOther)
	case storage.FlowSecondFactor:
		http.Redirect(w, r, "/mfa/verify"+q, http.StatusSeeOther)
	case storage.FlowSSO:
		return h.sso(w, r, sess, flow)
	case storage.FlowVerified:
		if linkHash, passwordHash, ok := resetOf(flow); ok {
			return h.finishReset(w, r, flow, linkHash, passwordHash)
		}
		return h.verified(w, r, sess, flow)
	case storage.FlowComplete, storage.FlowRefused:
		return h.handBack(w, r, sess, flow)
	default:
		return session.ErrFlowGone
	}
	return nil
}

// verified runs the risk engine on a sign-in that passed its factors:
// it completes, steps up to a stronger factor, or is denied.
func (h *Handler) verified(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow) error {
	if err := h.raiseForGroups(r.Context(), &flow); err != nil {
		return err
	}
	a, err := h.assess(r.Context(), r, flow.UserID, flow.ClientID, "")
	if err != nil {
		return err
	}
	if stop, err := h.applyRisk(w, r, sess, &flow, a); stop || err != nil {
		return err
	}
	if session.ACRRank(flow.ACR) < session.ACRRank(flow.RequiredACR) {
		if a.Outcome == risk.StepUp {
			return h.backToSecondFactor(w, r, flow)
		}
		// Nothing this user can do here reaches the app's level yet.
		return h.insufficient(w, r, flow)
	}
	return h.complete(w, r, sess, flow, a)
}

// backToSecondFactor sends a verified flow back for a stronger factor.
func (h *Handler) backToSecondFactor(w http.ResponseWriter, r *http.Request, flow storage.Flow) error {
	err := h.d.Store.UpdateFlow(r.Context(), flow.ID, func(f *storage.Flow) error {
		f.State = storage.FlowSecondFactor
		return nil
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/mfa/verify?flow="+url.QueryEscape(flow.ID), http.StatusSeeOther)
	return nil
}

// sso decides whether an existing session may answer an app without the
// user doing anything: the same device, a plausible place, no alarms. A
// session presented from another device, or from the other side of the
// world, is stepped up or refused — a stolen cookie is not enough.
func (h *Handler) sso(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow) error {
	ctx := r.Context()
	auth := sess.Auth()
	if auth.UserID != flow.UserID {
		return session.ErrFlowGone
	}
	if err := h.raiseForGroups(ctx, &flow); err != nil {
		return err
	}
	a, err := h.assess(ctx, r, flow.UserID, flow.ClientID, auth.DeviceID)
	if err != nil {
		return err
	}
	// A step-up on a session means verifying again now, whatever level the
	// session already has: that is what makes a stolen cookie worthless.
	// A session below what the user's groups now ask is stepped up too.
	silent := a.Outcome == risk.Allow && session.ACRRank(auth.ACR) >= session.ACRRank(flow.RequiredACR)
	if !silent && promptNone(flow) {
		// No page may be shown: refuse, and let the app start a real sign-in.
		if err := h.refuse(r, flow, a); err != nil {
			return err
		}
		flow.State = storage.FlowRefused
		return h.handBack(w, r, sess, flow)
	}
	if !silent {
		if stop, err := h.applyRisk(w, r, sess, &flow, a); stop || err != nil {
			return err
		}
		return h.backToSecondFactor(w, r, flow)
	}
	if !promptNone(flow) {
		// Without a page (prompt=none) the app is answered access_denied
		// when the code would be issued.
		if stop, err := h.refuseOutsider(w, r, flow); stop || err != nil {
			return err
		}
	}
	err = h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			if f.State != storage.FlowSSO {
				return storage.ErrConflict
			}
			f.State = storage.FlowComplete
			return nil
		}); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.SigninSSO, Actor: flow.UserID,
			UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Success, Details: riskDetails(a)})
	})
	if errors.Is(err, storage.ErrConflict) {
		return session.ErrFlowGone
	}
	if err != nil {
		return err
	}
	flow.State = storage.FlowComplete
	return h.handBack(w, r, sess, flow)
}

// refuse ends, without a page, a single sign-on that the risk engine did
// not allow or that is below what the flow requires (the user's groups).
func (h *Handler) refuse(r *http.Request, flow storage.Flow, a assessment) error {
	return h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			f.State = storage.FlowRefused
			f.Reasons = a.Texts()
			return nil
		}); err != nil {
			return err
		}
		typ, details := audit.RiskStepUp, riskDetails(a)
		switch a.Outcome {
		case risk.Deny:
			typ = audit.SigninDenied
		case risk.Allow:
			// Not the risk engine: the session is below the requirement.
			typ = audit.SigninFailed
			details["reason"], details["have"], details["need"] = "assurance too low", flow.ACR, flow.RequiredACR
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: typ, Actor: flow.UserID,
			UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Denied, Details: details})
	})
}

// complete signs the browser session in with what the flow proved. The
// session gets a new id, and the flow is re-bound to it.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow, a assessment) error {
	ctx := r.Context()
	device := h.d.Devices.Ensure(w, r)
	if err := sess.SignIn(session.Auth{UserID: flow.UserID, ACR: flow.ACR, AMR: flow.AMR, AuthTime: flow.AuthTime, DeviceID: device}); err != nil {
		return err
	}
	newHash, sid := sess.IDHash(), sess.SID()
	err := h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			if f.State != storage.FlowVerified {
				return storage.ErrConflict
			}
			f.State = storage.FlowComplete
			f.SessionHash = newHash
			return nil
		}); err != nil {
			return err
		}
		if err := h.recordSighting(ctx, r, flow, a, device); err != nil {
			return err
		}
		if err := h.notify(ctx, r, flow, a, sid, device); err != nil {
			return err
		}
		details := riskDetails(a)
		details["acr"], details["amr"] = flow.ACR, strings.Join(flow.AMR, " ")
		if err := h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.SigninSucceeded,
			Actor: flow.UserID, UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Success, Details: details}); err != nil {
			return err
		}
		if err := h.d.Throttle.Succeed(ctx, flow.UserID); err != nil {
			return err
		}
		// The new session, and the old one's end, with the rest: one
		// commit for the whole sign-in's bookkeeping.
		return sess.SaveIn(ctx, w)
	})
	if errors.Is(err, storage.ErrConflict) {
		return session.ErrFlowGone
	}
	if err != nil {
		return err
	}
	h.d.Metrics.SignIn("success")
	// Signed in to keygate; the app itself may still not be theirs.
	if !promptNone(flow) {
		if stop, err := h.refuseOutsider(w, r, flow); stop || err != nil {
			return err
		}
	}
	flow.State, flow.SessionHash = storage.FlowComplete, newHash
	return h.handBack(w, r, sess, flow)
}

// recordSighting keeps where and on what device the user signed in: the
// history the next decision reads.
func (h *Handler) recordSighting(ctx context.Context, r *http.Request, flow storage.Flow, a assessment, device string) error {
	p := a.Signals.Place
	ip := ""
	if a.Signals.IP.IsValid() {
		ip = a.Signals.IP.String()
	}
	now := h.d.Now()
	if _, err := h.d.Store.RecordSignIn(ctx, storage.SignInRecord{UserID: flow.UserID, Time: now, IP: ip,
		Country: p.Country, City: p.City, Lat: p.Lat, Lon: p.Lon, HasCoords: p.HasCoords, DeviceID: device,
		ClientID: flow.ClientID, ACR: flow.ACR, Decision: string(a.Outcome), Reasons: a.Texts()}); err != nil {
		return err
	}
	return h.d.Store.TouchDevice(ctx, storage.Device{ID: device, UserID: flow.UserID, UserAgent: uaFamily(r.UserAgent()),
		FirstSeen: now, LastSeen: now, LastIP: ip, LastCountry: p.Country})
}

// notify tells the user of a sign-in that looks new, with a link to end
// its session (sid) if it was not them.
func (h *Handler) notify(ctx context.Context, r *http.Request, flow storage.Flow, a assessment, sid, device string) error {
	if h.d.Notices == nil {
		return nil
	}
	ip := ""
	if a.Signals.IP.IsValid() {
		ip = a.Signals.IP.String()
	}
	return h.d.Notices.SignedIn(ctx, notice.SignIn{UserID: flow.UserID, ClientID: flow.ClientID, SID: sid, DeviceID: device,
		Time: h.d.Now(), Place: a.Signals.Place, IP: ip, Device: uaFamily(r.UserAgent()), Reasons: a.Reasons})
}

// insufficient tells the user why the app cannot be reached with the
// factors they have, and records the refusal.
func (h *Handler) insufficient(w http.ResponseWriter, r *http.Request, flow storage.Flow) error {
	if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.SigninFailed, Actor: flow.UserID,
		UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Denied,
		Details: map[string]string{"reason": "assurance too low", "have": flow.ACR, "need": flow.RequiredACR}}); err != nil {
		return err
	}
	h.d.Metrics.SignIn("denied")
	h.d.Render.Page(w, r, http.StatusForbidden, render.PageMessage, "A security key is required", render.MessageData{
		Message: "This app requires a phishing-resistant sign-in with a security key or passkey (level " + flow.RequiredACR +
			"). An authenticator app code is not enough. Ask your administrator to enrol a security key for you.",
	})
	return nil
}

// handBack sends a finished flow on: for a sign-in to keygate itself, to
// the page it started from; for an app, to the app, in this request.
func (h *Handler) handBack(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow) error {
	if flow.ClientID == "" {
		to := "/account"
		if q, err := url.ParseQuery(flow.Query); err == nil {
			// Checked again: the flow may predate a stricter check.
			if back := safeReturn(q.Get("return_to")); back != "" {
				to = back
			}
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return nil
	}
	return h.d.HandBack(w, r, sess, flow)
}
