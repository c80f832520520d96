package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// principal is who is calling: a user with a console role through a
// browser session, or a service client through a bearer token.
type principal struct {
	Actor    string // the user id, or "client:<id>"
	User     storage.User
	Auth     session.Auth
	Session  *session.Session // nil for service tokens
	ClientID string           // service tokens only
}

func (p *principal) service() bool { return p.Session == nil }

// manager is the manager acting for p from r's address and agent.
func (h *Handler) manager(r *http.Request, p *principal) *manage.Manager {
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	return h.d.Manager.As(p.Actor, clientIP(r), ua)
}

func clientIP(r *http.Request) string {
	if ip := httpx.ClientIPFrom(r.Context()); ip.IsValid() {
		return ip.String()
	}
	return ""
}

// handlerFunc is a guarded handler: p is never nil.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// refusal is why the guard turned a session away.
type refusal int

const (
	allowed   refusal = iota
	signIn            // nobody (or a user who no longer exists) is signed in
	stepUp            // a user with a role, below phr
	forbidden         // signed in, but without a role or suspended
)

// sessionPrincipal decides whether the browser session's user may use the
// console. It is the one place that does.
func (h *Handler) sessionPrincipal(r *http.Request, sess *session.Session) (*principal, refusal, error) {
	auth := sess.Auth()
	if auth.UserID == "" {
		return nil, signIn, nil
	}
	user, err := h.d.Store.GetUser(r.Context(), auth.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, signIn, nil
	}
	if err != nil {
		return nil, signIn, err
	}
	if user.Role == "" || user.Suspended() {
		return nil, forbidden, nil
	}
	if session.ACRRank(auth.ACR) < session.ACRRank(session.ACRPhr) {
		return nil, stepUp, nil
	}
	return &principal{Actor: user.ID, User: user, Auth: auth, Session: sess}, allowed, nil
}

const msgNoRole = "The admin console is only for active users with a console role (admin, helpdesk or auditor)."

// authorize decides whether p may use a route that needs need: the role
// must grant it, and the user lifecycle (supportUsers) reaches only the
// users p may change (mayChange). It returns why not, or "".
func (h *Handler) authorize(r *http.Request, p *principal, need permission) (string, error) {
	if !p.may(need) {
		return "Your role (" + p.User.Role + ") does not allow this.", nil
	}
	id := r.PathValue("id")
	if need != supportUsers || id == "" || p.mayChange(storage.User{Role: storage.RoleAdmin}) {
		// Not a user's lifecycle, or p may change even an administrator:
		// no need to read the user.
		return "", nil
	}
	target, err := h.d.Store.GetUser(r.Context(), id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", nil // the handler answers 404
	case err != nil:
		return "", err
	case !p.mayChange(target):
		return "Only an administrator may change an account that has a console role.", nil
	}
	return "", nil
}

// mayChange reports whether p may change target's account through the
// user lifecycle: one with a console role only if p may set roles —
// otherwise helpdesk could issue an administrator's enrolment link and
// sign in as them, or suspend the administrators.
func (p *principal) mayChange(target storage.User) bool {
	return target.Role == "" || p.may(setRoles)
}

// forgeable reports whether r changes state and carries cookies: what
// another site could make a browser send. Its CSRF token is checked
// before anything else, so a forged request is refused the same way
// whoever the browser belongs to. A request with no cookie carries no
// ambient authority and goes on to be told to sign in.
func forgeable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return r.Header.Get("Cookie") != ""
}

// fresh reports whether the session's key tap is recent enough for a
// sensitive action.
func (h *Handler) fresh(p *principal) bool {
	if p.service() {
		// Service tokens have no user and no key tap; their bound is the
		// token's lifetime, which operators keep short (README).
		return true
	}
	age := h.d.Now().Sub(p.Auth.AuthTime)
	return !p.Auth.AuthTime.IsZero() && age >= -h.d.Freshness && age <= h.d.Freshness
}

// stepUpURL sends the browser to sign in (or, signed in, to tap a key) at
// phr, and back to returnTo afterwards.
func stepUpURL(returnTo string) string {
	return "/login?step_up=" + session.ACRPhr + "&return_to=" + url.QueryEscape(returnTo)
}

// formPage is the console page a POST to path comes from: the user's or
// the app's page for actions on one, else the section's list.
func formPage(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/") // admin, users, {id}, ...
	switch {
	case len(parts) >= 3 && (parts[1] == "users" || parts[1] == "apps" || parts[1] == "groups"):
		return "/" + strings.Join(parts[:3], "/")
	case len(parts) >= 2:
		return "/" + strings.Join(parts[:2], "/")
	}
	return "/admin"
}

func withNotice(path, code string) string {
	return path + "?notice=" + url.QueryEscape(code)
}

// page guards a console page. A GET that is refused is sent to sign in and
// comes back to the same URL; a refused POST cannot be replayed through a
// redirect, so it comes back to the page its form is on, with a notice.
func (h *Handler) page(method, pattern string, need permission, sensitive bool, f handlerFunc) httpx.Route {
	mustPermission(pattern, need)
	// who is the principal, once the guard knows it, so that an error
	// page shows the navigation of the caller's role.
	guarded := func(w http.ResponseWriter, r *http.Request, who **principal) error {
		readOnly := r.Method == http.MethodGet || r.Method == http.MethodHead
		back := r.URL.RequestURI()
		if !readOnly {
			back = formPage(r.URL.Path)
		}
		sess, err := h.d.Sessions.Load(r)
		if err != nil {
			return err
		}
		if forgeable(r) && !sess.ValidCSRF(r.PostFormValue("csrf_token")) {
			return session.ErrCSRF
		}
		p, why, err := h.sessionPrincipal(r, sess)
		if err != nil {
			return err
		}
		switch why {
		case signIn:
			http.Redirect(w, r, stepUpURL(back), http.StatusSeeOther)
			return nil
		case stepUp:
			if !readOnly {
				back = withNotice(back, noticeStepUp)
			}
			http.Redirect(w, r, stepUpURL(back), http.StatusSeeOther)
			return nil
		case forbidden:
			h.d.Render.Error(w, r, http.StatusForbidden, msgNoRole)
			return nil
		}
		if refused, err := h.authorize(r, p, need); err != nil || refused != "" {
			if err == nil {
				h.d.Render.Error(w, r, http.StatusForbidden, refused)
			}
			return err
		}
		if sensitive && !h.fresh(p) {
			// Nothing has changed: the administrator taps a key, lands
			// back on the form and repeats the action.
			http.Redirect(w, r, stepUpURL(withNotice(back, noticeStale)), http.StatusSeeOther)
			return nil
		}
		*who = p
		return f(w, r, p)
	}
	return httpx.Route{Method: method, Pattern: pattern, Guard: httpx.GuardAdmin,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var who *principal
			problem := func(w http.ResponseWriter, r *http.Request, status int, public string) {
				h.problem(w, r, who, status, public)
			}
			httpx.Adapt(problem, h.d.Logger, func(w http.ResponseWriter, r *http.Request) error {
				return pageError(guarded(w, r, &who))
			}).ServeHTTP(w, r)
		})}
}

// api guards a JSON API endpoint. A bearer token, when present, is the
// only credential looked at (a cookie riding along is ignored, and no
// other site can make a browser send an Authorization header); otherwise
// the browser session must pass the console's checks, and a state-changing
// request must carry the session's CSRF token in X-CSRF-Token.
func (h *Handler) api(method, pattern string, need permission, sensitive bool, f handlerFunc) httpx.Route {
	mustPermission(pattern, need)
	guarded := func(w http.ResponseWriter, r *http.Request) error {
		p, err := h.apiPrincipal(w, r)
		if err != nil {
			return err
		}
		if refused, err := h.authorize(r, p, need); err != nil || refused != "" {
			if err == nil {
				err = apiErr(http.StatusForbidden, "forbidden", refused)
			}
			return err
		}
		if sensitive && !h.fresh(p) {
			return apiErr(http.StatusForbidden, "fresh_key_tap_required",
				"This action needs a key tap within the last "+words(h.d.Freshness)+": confirm with your security key again.")
		}
		return f(w, r, p)
	}
	return httpx.Route{Method: method, Pattern: pattern, Guard: httpx.GuardAdmin,
		Handler: httpx.Adapt(writeAPIError, h.d.Logger, func(w http.ResponseWriter, r *http.Request) error {
			err := apiError(guarded(w, r))
			if writeCoded(w, err) {
				return nil
			}
			return err
		})}
}

// apiPrincipal is who calls the API: the bearer token's client, or the
// browser session's user, who must pass the console's checks.
func (h *Handler) apiPrincipal(w http.ResponseWriter, r *http.Request) (*principal, error) {
	if authz := r.Header.Get("Authorization"); authz != "" {
		return h.bearerPrincipal(r, authz)
	}
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return nil, err
	}
	if forgeable(r) && !sess.ValidCSRF(r.Header.Get("X-CSRF-Token")) {
		return nil, apiErr(http.StatusForbidden, "invalid_csrf_token", "Send the session's CSRF token in the X-CSRF-Token header.")
	}
	p, why, err := h.sessionPrincipal(r, sess)
	if err != nil {
		return nil, err
	}
	switch why {
	case signIn:
		w.Header().Set("WWW-Authenticate", `Bearer realm="keygate admin API"`)
		return nil, apiErr(http.StatusUnauthorized, "unauthorized",
			"Sign in with a console role, or send a bearer token with scope "+manage.ScopeAdmin+".")
	case stepUp:
		return nil, apiErr(http.StatusForbidden, "step_up_required",
			"The admin API needs a phishing-resistant sign-in (a security key or passkey).")
	case forbidden:
		return nil, apiErr(http.StatusForbidden, "forbidden", msgNoRole)
	}
	return p, nil
}

// bearerPrincipal checks an "Authorization: Bearer" admin token. The
// decision is AdminToken's alone; the token's stored record is read only
// to tell a live token lacking the scope (403) from a dead one (401).
func (h *Handler) bearerPrincipal(r *http.Request, authz string) (*principal, error) {
	scheme, token, ok := strings.Cut(authz, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, apiErr(http.StatusUnauthorized, "invalid_token", "Send Authorization: Bearer <access token>.")
	}
	clientID, err := h.d.Tokens.AdminToken(r.Context(), token, manage.ScopeAdmin)
	if err == nil && clientID != "" {
		return &principal{Actor: "client:" + clientID, ClientID: clientID}, nil
	}
	if h.liveToken(r, token) {
		return nil, apiErr(http.StatusForbidden, "insufficient_scope",
			"The token is not a client_credentials token with scope "+manage.ScopeAdmin+".")
	}
	return nil, apiErr(http.StatusUnauthorized, "invalid_token", "The access token is not active.")
}

// liveToken reports whether token names an active, unexpired access token
// of an enabled app. Opaque tokens are "<key>.<signature>" and storage
// keeps them under the signature; anything else reads as not live.
func (h *Handler) liveToken(r *http.Request, token string) bool {
	i := strings.LastIndexByte(token, '.')
	if i < 0 || i == len(token)-1 {
		return false
	}
	rec, err := h.d.Store.GetToken(r.Context(), storage.KindAccessToken, token[i+1:])
	if err != nil || !rec.Active || !rec.ExpiresAt.After(h.d.Now()) {
		return false
	}
	c, err := h.d.Store.GetClient(r.Context(), rec.ClientID)
	return err == nil && !c.Disabled
}
