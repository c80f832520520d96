package oidc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/fositestore"
)

// Deps is everything the OIDC capability needs.
type Deps struct {
	Issuer       string // no trailing slash
	Store        storage.Store
	Keys         *keys.Keyring
	SecretHasher fosite.Hasher
	HMACSecret   []byte // fosite's token HMAC key, 32 bytes
	Sessions     *session.Store
	Render       *render.Renderer
	Audit        *audit.Recorder
	Metrics      *metrics.Metrics
	Logger       *slog.Logger
	Lifetimes    Lifetimes
	Now          func() time.Time
	// SignOut ends the user's browser session sid at the request of app
	// clientID ("" for none): the session, its tokens, the back-channel
	// logouts and the audit event in one transaction. ended is false when
	// the session had ended already.
	SignOut func(r *http.Request, userID, sid, clientID string) (ended bool, err error)
	// Continue moves on, in the authorize request itself, a flow that it
	// has just started from the browser's sign-in (server/login's
	// dispatcher): the single sign-on decision and the code it allows, or
	// the step-up. nil: redirect to /login/continue.
	Continue func(w http.ResponseWriter, r *http.Request, browser *session.Session, flow storage.Flow) error
}

// Handler serves the OAuth2/OIDC endpoints on fosite.
type Handler struct {
	d         Deps
	provider  fosite.OAuth2Provider
	store     *fositestore.Store
	discovery []byte
	// authenticator is the provider's client authentication, which the
	// provider interface does not expose (introspection uses it).
	authenticator interface {
		AuthenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error)
	}
}

func New(d Deps) (*Handler, error) {
	if d.SignOut == nil {
		return nil, errors.New("oidc: Deps.SignOut is required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Lifetimes == (Lifetimes{}) {
		d.Lifetimes = DefaultLifetimes
	}
	h := &Handler{d: d}
	store := fositestore.New(d.Store, fositestore.Options{
		RefreshGrace:   d.Lifetimes.RefreshGrace,
		NewSession:     func() fosite.Session { return NewSession() },
		OnRefreshReuse: h.auditRefreshReuse,
		OnRefresh:      h.refreshGroups,
		Now:            d.Now,
	})
	h.store = store
	f, _ := newProvider(d, store)
	h.provider = provider{f}
	h.authenticator = f.(*fosite.Fosite)
	var err error
	if h.discovery, err = discoveryJSON(d.Issuer); err != nil {
		return nil, err
	}
	return h, nil
}

// Routes lists the endpoints; guards say who authenticates the caller.
// Every endpoint that reads parameters has its query and form body parsed
// first (withForm), and a malformed one refused in its own error style.
func (h *Handler) Routes() []httpx.Route {
	page := func(f httpx.HandlerFunc) http.Handler { return httpx.Adapt(h.d.Render.Error, h.d.Logger, f) }
	authorize := withForm(page(h.authorizeRedirectChecked(h.authorize)),
		h.pageRefusal("The app's sign-in request is not valid (invalid_request): its parameters are not validly percent-encoded."))
	userinfo := withForm(http.HandlerFunc(h.userinfo), h.userinfoRefusal)
	logout := withForm(page(h.logout), h.pageRefusal("The sign-out request is malformed."))
	return []httpx.Route{
		{Method: http.MethodGet, Pattern: "/.well-known/openid-configuration", Guard: httpx.GuardPublic, Handler: http.HandlerFunc(h.serveDiscovery)},
		{Method: http.MethodGet, Pattern: "/oauth2/jwks", Guard: httpx.GuardPublic, Handler: http.HandlerFunc(h.serveJWKS)},
		{Method: http.MethodGet, Pattern: "/oauth2/authorize", Guard: httpx.GuardPublic, Handler: authorize},
		{Method: http.MethodPost, Pattern: "/oauth2/authorize", Guard: httpx.GuardPublic, Handler: authorize},
		{Method: http.MethodGet, Pattern: "/oauth2/authorize/resume", Guard: httpx.GuardUser, Handler: page(h.resume)},
		{Method: http.MethodPost, Pattern: "/oauth2/par", Guard: httpx.GuardClient, Handler: withForm(h.parRedirectChecked(h.par), h.parRefusal)},
		{Method: http.MethodPost, Pattern: "/oauth2/token", Guard: httpx.GuardClient, Handler: withForm(http.HandlerFunc(h.token), h.tokenRefusal)},
		{Method: http.MethodPost, Pattern: "/oauth2/introspect", Guard: httpx.GuardClient, Handler: withForm(http.HandlerFunc(h.introspect), h.introspectRefusal)},
		{Method: http.MethodPost, Pattern: "/oauth2/revoke", Guard: httpx.GuardClient, Handler: withForm(http.HandlerFunc(h.revoke), h.revokeRefusal)},
		{Method: http.MethodGet, Pattern: "/oauth2/userinfo", Guard: httpx.GuardClient, Handler: userinfo},
		{Method: http.MethodPost, Pattern: "/oauth2/userinfo", Guard: httpx.GuardClient, Handler: userinfo},
		{Method: http.MethodGet, Pattern: "/oauth2/logout", Guard: httpx.GuardPublic, Handler: logout},
		{Method: http.MethodPost, Pattern: "/oauth2/logout", Guard: httpx.GuardPublic, Handler: logout},
	}
}
