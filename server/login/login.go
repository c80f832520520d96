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
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/server/notice"
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
	// Notices tells users of sign-ins that look new; nil tells nobody.
	Notices Notices
	// Mail sends "forgot password" links; nil: passwords are not reset
	// by email. Issuer is what the links are under.
	Mail   *mail.Queue
	Issuer string
	// ResetThrottle bounds "forgot password" requests per address and IP.
	ResetThrottle *throttle.Limiter
	// ResetPassword sets the user's password and ends their sessions
	// (manage.Manager.ResetPassword as the user, from r).
	ResetPassword func(r *http.Request, userID, passwordHash string) error
	// HandBack answers the app for a flow finished in this request
	// (oidc.Handler.HandBack).
	HandBack func(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow) error
	Logger   *slog.Logger
	Now      func() time.Time
}

// Notices is told of every completed sign-in, in the transaction that
// records it; server/notice implements it.
type Notices interface {
	SignedIn(ctx context.Context, s notice.SignIn) error
}

// Handler runs the first factor and the dispatcher of the sign-in flow.
type Handler struct {
	d    Deps
	gate *gate
}

func New(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Handler{d: d, gate: newGate(0, 0, 0)}
}

func (h *Handler) Routes() []httpx.Route {
	page := func(f httpx.HandlerFunc) http.Handler { return httpx.Adapt(h.d.Render.Error, h.d.Logger, f) }
	return []httpx.Route{
		{Method: http.MethodGet, Pattern: "/login", Guard: httpx.GuardPublic, Handler: page(h.showLogin)},
		{Method: http.MethodPost, Pattern: "/login", Guard: httpx.GuardPublic, Handler: page(h.submitLogin)},
		{Method: http.MethodGet, Pattern: "/login/continue", Guard: httpx.GuardPublic, Handler: page(h.next)},
		{Method: http.MethodGet, Pattern: "/login/forgot", Guard: httpx.GuardPublic, Handler: page(h.showForgot)},
		{Method: http.MethodPost, Pattern: "/login/forgot", Guard: httpx.GuardPublic, Handler: page(h.submitForgot)},
		{Method: http.MethodGet, Pattern: "/login/reset", Guard: httpx.GuardPublic, Handler: page(h.showReset)},
		{Method: http.MethodPost, Pattern: "/login/reset", Guard: httpx.GuardPublic, Handler: page(h.submitReset)},
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
	// CanReset: "Forgot password?" is offered (mail is set up).
	CanReset bool
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
			if f.RequiredACR == session.ACRMFA {
				f.Reasons = []string{"Confirm it is you with your second factor to continue."}
			}
		}
	}
	return f, h.d.Store.CreateFlow(ctx, f)
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, sess *session.Session, flow storage.Flow, email, msg string, status int) error {
	h.d.Devices.Ensure(w, r)
	data := LoginData{CSRF: sess.CSRFToken(), Flow: flow.ID, Email: email, Error: msg, Reasons: flow.Reasons,
		CanReset: h.d.Mail != nil}
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
	// During a spray the gate is full most of the time. A post it would
	// turn away is turned away now, before it costs reads of the session,
	// the flow, the account and the throttle and a form to render: the
	// core the checks leave free then serves signed-in users, not refusals.
	if h.gate.full() {
		return h.busy(w, r)
	}
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return err
	}
	flow, err := session.LoadFlow(ctx, h.d.Store, sess, r.PostFormValue("flow"), h.d.Now())
	if err != nil {
		return err
	}
	email := postedEmail(r)
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
		// Refused before any check, so anyone can repeat it at will: the
		// event is sampled per address like other anonymous failures.
		if err := h.d.Audit.RecordAnonymous(r, storage.AuditEvent{Type: audit.SigninThrottled, Actor: account,
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
	var ok bool
	if gerr := h.gate.do(ctx, func() { ok, err = VerifyPassword(hash, password) }); gerr != nil {
		// Not a failed attempt: nothing was checked.
		if !errors.Is(gerr, errBusy) {
			return gerr
		}
		h.d.Metrics.SignIn("busy")
		w.Header().Set("Retry-After", "2")
		return h.renderLogin(w, r, sess, flow, email, errBusy.Public, http.StatusServiceUnavailable)
	}
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
	if !user.Enrolled() {
		// A password without a confirmed factor must not lead anywhere:
		// whoever phished it could otherwise finish the enrolment with a
		// factor of their own. Only the enrolment link finishes it.
		if err := h.d.Audit.RecordRequest(r, storage.AuditEvent{Type: audit.SigninFailed, Actor: user.ID,
			UserID: user.ID, ClientID: flow.ClientID, Result: audit.Denied,
			Details: map[string]string{"step": "password", "reason": "enrolment not finished"}}); err != nil {
			return err
		}
		h.d.Metrics.SignIn("denied")
		return h.renderLogin(w, r, sess, flow, email, "Your account is not set up yet: open your enrolment link again to add a security key, "+
			"passkey or authenticator app, or ask your administrator for a new link.", http.StatusForbidden)
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
	// Before the second factor is asked for: a group may want a key.
	if err := h.raiseForGroups(ctx, &flow); err != nil {
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

// busy answers a post that the full gate turns away before reading
// anything: 503 with Retry-After, and the way back to the sign-in form.
// The flow named in the form is checked when the form is shown again.
func (h *Handler) busy(w http.ResponseWriter, r *http.Request) error {
	h.d.Metrics.SignIn("busy")
	back := "/login"
	if id := r.PostFormValue("flow"); id != "" {
		back += "?flow=" + url.QueryEscape(id)
	}
	w.Header().Set("Retry-After", "2")
	h.d.Render.Page(w, r, http.StatusServiceUnavailable, render.PageMessage, "Try again in a moment",
		render.MessageData{Message: errBusy.Public, Link: back, LinkText: "Back to sign-in"})
	return nil
}

func (h *Handler) redirectNext(w http.ResponseWriter, r *http.Request, flow storage.Flow) error {
	http.Redirect(w, r, "/login/continue?flow="+url.QueryEscape(flow.ID), http.StatusSeeOther)
	return nil
}

// postedEmail is the form's email as accounts are looked up by it.
func postedEmail(r *http.Request) string {
	return storage.NormalizeEmail(strings.TrimSpace(r.PostFormValue("email")))
}

func clientIP(r *http.Request) string {
	if ip := httpx.ClientIPFrom(r.Context()); ip.IsValid() {
		return ip.String()
	}
	return ""
}
