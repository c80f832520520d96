package login

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/risk"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/throttle"
	"github.com/keygate/keygate/storage"
)

// Deps is what the sign-in flow needs.
type Deps struct {
	Store    storage.Store
	Sessions *session.Store
	Render   *render.Renderer
	Audit    *audit.Recorder
	Metrics  *metrics.Metrics
	Throttle *throttle.Limiter
	Locator  Locator
	Devices  *session.Devices
	Risk     risk.Policy
	Logger   *slog.Logger
	Now      func() time.Time
}

// Handler runs the first factor and the dispatcher of the sign-in flow.
type Handler struct{ d Deps }

func New(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Handler{d: d}
}

func (h *Handler) Routes() []httpx.Route {
	page := func(f httpx.HandlerFunc) http.Handler { return httpx.Adapt(h.d.Render.Error, h.d.Logger, f) }
	return []httpx.Route{
		{Method: http.MethodGet, Pattern: "/login", Guard: httpx.GuardPublic, Handler: page(h.showLogin)},
		{Method: http.MethodPost, Pattern: "/login", Guard: httpx.GuardPublic, Handler: page(h.submitLogin)},
		{Method: http.MethodGet, Pattern: "/login/continue", Guard: httpx.GuardPublic, Handler: page(h.next)},
		{Method: http.MethodGet, Pattern: "/enroll", Guard: httpx.GuardPublic, Handler: page(h.showEnroll)},
		{Method: http.MethodPost, Pattern: "/enroll", Guard: httpx.GuardPublic, Handler: page(h.submitEnroll)},
		{Method: http.MethodGet, Pattern: "/account", Guard: httpx.GuardUser, Handler: page(h.account)},
		{Method: http.MethodPost, Pattern: "/account/logout", Guard: httpx.GuardUser, Handler: page(h.accountLogout)},
		{Method: http.MethodPost, Pattern: "/account/sessions/revoke", Guard: httpx.GuardUser, Handler: page(h.revokeSession)},
		{Method: http.MethodPost, Pattern: "/account/sessions/revoke-others", Guard: httpx.GuardUser, Handler: page(h.revokeOtherSessions)},
		{Method: http.MethodGet, Pattern: "/{$}", Guard: httpx.GuardPublic, Handler: http.RedirectHandler("/account", http.StatusSeeOther)},
	}
}

// LoginData is the password page's view.
type LoginData struct {
	CSRF, Flow, Email, Error, ClientName string
	Reasons                              []string
}

func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	id := q.Get("flow")
	if id == "" {
		// Signing in to keygate itself (the account page, the console), not
		// to an app; step_up asks a signed-in user for a fresh key tap.
		flow, err := h.startFlow(ctx, sess, q.Get("step_up"), safeReturn(q.Get("return_to")))
		if err != nil {
			return err
		}
		if err := sess.Save(w); err != nil {
			return err
		}
		next := "/login"
		if flow.State != storage.FlowIdentify {
			next = "/login/continue"
		}
		http.Redirect(w, r, next+"?flow="+url.QueryEscape(flow.ID), http.StatusSeeOther)
		return nil
	}
	flow, err := session.LoadFlow(ctx, h.d.Store, sess, id, h.d.Now())
	if err != nil {
		return err
	}
	if flow.State != storage.FlowIdentify {
		return h.redirectNext(w, r, flow)
	}
	return h.renderLogin(w, r, sess, flow, "", "", http.StatusOK)
}

// startFlow starts a sign-in to keygate itself. With stepUp (an acr) and
// a signed-in session it asks only for a fresh second factor of that
// level; returnTo is where to go afterwards (a local path).
func (h *Handler) startFlow(ctx context.Context, sess *session.Session, stepUp, returnTo string) (storage.Flow, error) {
	id, err := keys.RandomToken(24)
	if err != nil {
		return storage.Flow{}, err
	}
	now := h.d.Now()
	f := storage.Flow{ID: id, SessionHash: sess.IDHash(), RequiredACR: session.ACRMFA, MaxAge: -1,
		CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	if returnTo != "" {
		f.Query = url.Values{"return_to": {returnTo}}.Encode()
	}
	if session.ACRRank(stepUp) > 0 {
		f.RequiredACR = session.StrongerACR(f.RequiredACR, stepUp)
		if a := sess.Auth(); a.UserID != "" {
			f.UserID, f.ACR, f.AMR, f.AuthTime = a.UserID, a.ACR, a.AMR, a.AuthTime
			f.State = storage.FlowSecondFactor
			f.Reasons = []string{"Confirm with your security key to continue."}
		}
	}
	return f, h.d.Store.CreateFlow(ctx, f)
}

// safeReturn accepts only a local path, so a crafted link cannot send the
// user elsewhere after sign-in.
func safeReturn(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return ""
	}
	return p
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow, email, msg string, status int) error {
	h.d.Devices.Ensure(w, r)
	data := LoginData{CSRF: sess.CSRFToken(), Flow: flow.ID, Email: email, Error: msg, Reasons: flow.Reasons}
	if flow.ClientID != "" {
		if c, err := h.d.Store.GetClient(r.Context(), flow.ClientID); err == nil {
			data.ClientName = c.Name
		}
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, status, render.PageLogin, "Sign in", data)
	return nil
}

// submitLogin checks the password. Every failure looks the same to the
// user — unknown email, wrong password, no password set — and counts
// against the account and the IP.
func (h *Handler) submitLogin(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	if !sess.ValidCSRF(r.PostFormValue("csrf_token")) {
		return session.ErrCSRF
	}
	flow, err := session.LoadFlow(ctx, h.d.Store, sess, r.PostFormValue("flow"), h.d.Now())
	if err != nil {
		return err
	}
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	password := r.PostFormValue("password")
	if email == "" || password == "" || len(email) > 254 || len(password) > 1024 {
		return h.renderLogin(w, r, sess, flow, email, "Enter your email and password.", http.StatusBadRequest)
	}
	user, err := h.d.Store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	account := email
	if user.ID != "" {
		account = user.ID
	}
	ip := clientIP(r)
	if ok, err := h.d.Throttle.Allowed(ctx, account, ip); err != nil {
		return err
	} else if !ok {
		if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.SigninThrottled, Actor: account,
			UserID: user.ID, ClientID: flow.ClientID, Result: audit.Denied,
			Details: map[string]string{"step": "password"}}); err != nil {
			return err
		}
		h.d.Metrics.SignIn("throttled")
		return h.renderLogin(w, r, sess, flow, email, "Too many failed attempts. Wait 15 minutes and try again.", http.StatusTooManyRequests)
	}
	hash := user.PasswordHash
	if hash == "" {
		hash = dummyHash()
	}
	ok, err := VerifyPassword(hash, password)
	if err != nil {
		return err
	}
	if !ok || user.PasswordHash == "" {
		if err := h.d.Throttle.Fail(ctx, account, ip); err != nil {
			return err
		}
		reason := "wrong password"
		if user.ID == "" {
			reason = "unknown email"
		}
		if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.SigninFailed, Actor: account,
			UserID: user.ID, ClientID: flow.ClientID, Result: audit.Failure,
			Details: map[string]string{"step": "password", "reason": reason}}); err != nil {
			return err
		}
		h.d.Metrics.SignIn("failure")
		return h.renderLogin(w, r, sess, flow, email, "Email or password is incorrect.", http.StatusUnauthorized)
	}
	if user.Suspended() {
		if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.SigninFailed, Actor: user.ID,
			UserID: user.ID, ClientID: flow.ClientID, Result: audit.Denied,
			Details: map[string]string{"step": "password", "reason": "suspended"}}); err != nil {
			return err
		}
		h.d.Metrics.SignIn("denied")
		return h.renderLogin(w, r, sess, flow, email, "This account is suspended. Contact your administrator.", http.StatusForbidden)
	}
	err = h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
		if f.State != storage.FlowIdentify {
			return storage.ErrConflict
		}
		f.UserID = user.ID
		f.AMR = []string{"pwd"}
		f.State = storage.FlowSecondFactor
		flow = *f
		return nil
	})
	if errors.Is(err, storage.ErrConflict) {
		return h.redirectNext(w, r, flow)
	}
	if err != nil {
		return err
	}
	// Assess now, so a risky sign-in is asked for a key straight away
	// rather than after a code that would not be enough.
	a, err := h.assess(ctx, r, user.ID, flow.ClientID, "")
	if err != nil {
		return err
	}
	if stop, err := h.applyRisk(w, r, sess, &flow, a); stop || err != nil {
		return err
	}
	return h.redirectNext(w, r, flow)
}

func (h *Handler) redirectNext(w http.ResponseWriter, r *http.Request, flow storage.Flow) error {
	http.Redirect(w, r, "/login/continue?flow="+url.QueryEscape(flow.ID), http.StatusSeeOther)
	return nil
}

// next is the dispatcher: it reads the flow's state and sends the browser
// to the step that comes next. When the flow is verified it signs the
// browser session in and hands back to the app (or the account page).
func (h *Handler) next(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	flow, err := session.LoadFlow(ctx, h.d.Store, sess, r.URL.Query().Get("flow"), h.d.Now())
	if err != nil {
		return err
	}
	q := "?flow=" + url.QueryEscape(flow.ID)
	switch flow.State {
	case storage.FlowIdentify:
		http.Redirect(w, r, "/login"+q, http.StatusSeeOther)
	case storage.FlowSecondFactor:
		http.Redirect(w, r, "/mfa/verify"+q, http.StatusSeeOther)
	case storage.FlowSSO:
		return h.sso(w, r, sess, flow)
	case storage.FlowVerified:
		return h.verified(w, r, sess, flow)
	case storage.FlowComplete, storage.FlowRefused:
		h.handBack(w, r, flow)
	default:
		return session.ErrFlowGone
	}
	return nil
}

// verified runs the risk engine on a sign-in that passed its factors:
// it completes, steps up to a stronger factor, or is denied.
func (h *Handler) verified(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow) error {
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
	a, err := h.assess(ctx, r, flow.UserID, flow.ClientID, auth.DeviceID)
	if err != nil {
		return err
	}
	// A step-up on a session means verifying again now, whatever level the
	// session already has: that is what makes a stolen cookie worthless.
	silent := a.Outcome == risk.Allow
	if !silent && promptNone(flow) {
		// No page may be shown: refuse, and let the app start a real sign-in.
		if err := h.refuse(r, flow, a); err != nil {
			return err
		}
		h.handBack(w, r, flow)
		return nil
	}
	if !silent {
		if stop, err := h.applyRisk(w, r, sess, &flow, a); stop || err != nil {
			return err
		}
		return h.backToSecondFactor(w, r, flow)
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
	h.handBack(w, r, flow)
	return nil
}

// refuse ends a flow the risk engine did not allow, without a page.
func (h *Handler) refuse(r *http.Request, flow storage.Flow, a assessment) error {
	return h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			f.State = storage.FlowRefused
			f.Reasons = a.Texts()
			return nil
		}); err != nil {
			return err
		}
		typ := audit.RiskStepUp
		if a.Outcome == risk.Deny {
			typ = audit.SigninDenied
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: typ, Actor: flow.UserID,
			UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Denied, Details: riskDetails(a)})
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
	newHash := sess.IDHash()
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
		details := riskDetails(a)
		details["acr"], details["amr"] = flow.ACR, strings.Join(flow.AMR, " ")
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.SigninSucceeded,
			Actor: flow.UserID, UserID: flow.UserID, ClientID: flow.ClientID, Result: audit.Success, Details: details})
	})
	if errors.Is(err, storage.ErrConflict) {
		return session.ErrFlowGone
	}
	if err != nil {
		return err
	}
	if err := h.d.Throttle.Succeed(ctx, flow.UserID); err != nil {
		return err
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Metrics.SignIn("success")
	h.handBack(w, r, flow)
	return nil
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

func (h *Handler) handBack(w http.ResponseWriter, r *http.Request, flow storage.Flow) {
	if flow.ClientID == "" {
		to := "/account"
		if q, err := url.ParseQuery(flow.Query); err == nil && safeReturn(q.Get("return_to")) != "" {
			to = q.Get("return_to")
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/oauth2/authorize/resume?flow="+url.QueryEscape(flow.ID), http.StatusSeeOther)
}

func clientIP(r *http.Request) string {
	if ip := httpx.ClientIPFrom(r.Context()); ip.IsValid() {
		return ip.String()
	}
	return ""
}
