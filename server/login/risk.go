package login

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/risk"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// Locator places an IP address; server/geo implements it.
type Locator interface {
	Locate(ip netip.Addr) risk.Place
}

// historyDepth is how many past sign-ins inform a decision.
const historyDepth = 50

// assessment is a risk decision with the signals it was made from.
type assessment struct {
	risk.Decision
	Signals risk.Signals
}

// assess gathers this sign-in's signals — place, device, history, failure
// velocity — and asks the risk engine. All I/O happens here; the engine is
// a pure function.
func (h *Handler) assess(ctx context.Context, r *http.Request, userID, clientID, sessionDevice string) (assessment, error) {
	now := h.d.Now()
	ip := httpx.ClientIPFrom(ctx)
	s := risk.Signals{Now: now, UserID: userID, ClientID: clientID, IP: ip, Place: h.d.Locator.Locate(ip),
		DeviceID: h.d.Devices.ID(r), SessionDeviceID: sessionDevice}
	if s.DeviceID != "" {
		_, err := h.d.Store.GetDevice(ctx, userID, s.DeviceID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return assessment{}, err
		}
		s.KnownDevice = err == nil
	}
	recent, err := h.d.Store.RecentSignIns(ctx, userID, historyDepth)
	if err != nil {
		return assessment{}, err
	}
	if len(recent) > 0 {
		last := recent[0]
		s.LastSuccess = &risk.Sighting{Time: last.Time, DeviceID: last.DeviceID, Place: risk.Place{
			Country: last.Country, City: last.City, Lat: last.Lat, Lon: last.Lon, HasCoords: last.HasCoords}}
	}
	for _, si := range recent {
		s.UsualHours = append(s.UsualHours, si.Time.UTC().Hour())
	}
	if s.KnownCountries, err = h.d.Store.SignInCountries(ctx, userID); err != nil {
		return assessment{}, err
	}
	ipText := ""
	if ip.IsValid() {
		ipText = ip.String()
	}
	if s.RecentFailuresUser, s.RecentFailuresIP, err = h.d.Throttle.Failures(ctx, userID, ipText, now.Add(-h.d.Risk.FailureWindow)); err != nil {
		return assessment{}, err
	}
	d := risk.Decide(s, h.d.Risk)
	if d.Outcome == risk.StepUp && clientID != "" {
		// Per-app policy: some apps refuse what others would step up.
		c, err := h.d.Store.GetClient(ctx, clientID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return assessment{}, err
		}
		if err == nil && c.DenyRisky {
			d.Outcome, d.ACR = risk.Deny, ""
			d.Reasons = append(d.Reasons, risk.Reason{Code: "app_denies_risky", Text: "this app refuses sign-ins that need an extra check"})
		}
	}
	return assessment{Decision: d, Signals: s}, nil
}

// riskDetails is what the audit log keeps of a decision.
func riskDetails(a assessment) map[string]string {
	d := map[string]string{
		"decision": string(a.Outcome),
		"reasons":  strings.Join(a.Texts(), "; "),
		"country":  a.Signals.Place.Country,
		"city":     a.Signals.Place.City,
		"network":  a.Signals.Place.Network,
		"device":   shortID(a.Signals.DeviceID),
	}
	if a.Outcome == risk.StepUp {
		d["step_up_to"] = a.ACR
	}
	for k, v := range d {
		if v == "" {
			delete(d, k)
		}
	}
	return d
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// applyRisk acts on a decision for a flow: a step-up raises what the flow
// requires (and says why); a deny ends it. It returns true when the flow
// must stop here (the response has been written).
func (h *Handler) applyRisk(w http.ResponseWriter, r *http.Request, sess *session.Session, flow *storage.Flow, a assessment) (stop bool, err error) {
	switch a.Outcome {
	case risk.Deny:
		return true, h.deny(w, r, sess, *flow, a)
	case risk.StepUp:
		need := session.StrongerACR(flow.RequiredACR, cmpOr(a.ACR, session.ACRPhr))
		if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.RiskStepUp, Actor: flow.UserID,
			UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Denied, Details: riskDetails(a)}); err != nil {
			return false, err
		}
		err := h.d.Store.UpdateFlow(r.Context(), flow.ID, func(f *storage.Flow) error {
			f.RequiredACR = need
			// Keep why the flow asked for more already (a group's rule).
			for _, t := range a.Texts() {
				if !slices.Contains(f.Reasons, t) {
					f.Reasons = append(f.Reasons, t)
				}
			}
			*flow = *f
			return nil
		})
		return false, err
	}
	return false, nil
}

// DenyData is the blocked sign-in page's view.
type DenyData struct {
	Reasons []string
}

// deny refuses the sign-in, says why, alerts, and — when an existing
// session was presented — ends that session, since it may be stolen.
func (h *Handler) deny(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow, a assessment) error {
	ctx := r.Context()
	err := h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			f.State = storage.FlowRefused
			f.Reasons = a.Texts()
			return nil
		}); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.SigninDenied, Actor: flow.UserID,
			UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Denied, Details: riskDetails(a)})
	})
	if err != nil {
		return err
	}
	if sess.Auth().UserID != "" {
		if err := sess.Destroy(w); err != nil {
			return err
		}
	}
	h.d.Metrics.SignIn("denied")
	h.d.Render.Page(w, r, http.StatusForbidden, render.PageDenied, "Sign-in blocked", DenyData{Reasons: a.Texts()})
	return nil
}

// promptNone reports whether the flow's authorize request forbids any page.
func promptNone(flow storage.Flow) bool {
	q, err := url.ParseQuery(flow.Query)
	return err == nil && slices.Contains(strings.Fields(q.Get("prompt")), "none")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
