// Package admin is keygate's admin console (server-rendered pages under
// /admin) and its JSON admin API (under /api/admin/v1/). It is the most
// sensitive surface keygate has — an admin tool is how the Mailchimp breach
// happened — so every route goes through one guard (guard.go):
//
//   - pages and browser calls need a session of an existing, unsuspended
//     administrator at assurance phr or above; anyone else is sent to sign
//     in (or tap a key), and signed-in non-administrators get 403;
//   - every state-changing request from a browser carries the session's
//     CSRF token (a form field, or the X-CSRF-Token header for JSON);
//   - sensitive actions also need a key tap no older than Freshness;
//   - service clients call the API with a client_credentials access token
//     of scope keygate:admin and act as "client:<id>".
//
// Every change goes through manage.Manager, which records it in the audit
// log with the administrator as the actor. Reads of user details and audit
// exports are counted per actor, and a burst writes an alerting
// admin.bulk_read event (bulkread.go).
package admin

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// TokenChecker checks a bearer token for the admin API and returns the
// client it was issued to. (*oidc.Handler).AdminToken implements it: an
// active client_credentials access token (no user behind it) granted scope.
type TokenChecker interface {
	AdminToken(ctx context.Context, token, scope string) (clientID string, err error)
}

// Deps is what the console needs.
type Deps struct {
	Store    storage.Store
	Sessions *session.Store
	Render   *render.Renderer
	// Manager performs every change; the console uses a per-request copy
	// acting as the administrator (or service client) who asked.
	Manager *manage.Manager
	Tokens  TokenChecker
	Audit   *audit.Recorder
	Logger  *slog.Logger
	Now     func() time.Time

	// Freshness is how old the key tap of a session may be for sensitive
	// actions; default 5 minutes.
	Freshness time.Duration
	// BulkReadLimit reads (user details, audit exports) per actor within
	// BulkReadWindow are normal; the next one writes an admin.bulk_read
	// alert. Defaults: 30 within 10 minutes.
	BulkReadLimit  int
	BulkReadWindow time.Duration
}

// Handler serves the console and the API.
type Handler struct {
	d     Deps
	chain chainCache
}

// New fills in defaults.
func New(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Freshness <= 0 {
		d.Freshness = 5 * time.Minute
	}
	if d.BulkReadLimit <= 0 {
		d.BulkReadLimit = 30
	}
	if d.BulkReadWindow <= 0 {
		d.BulkReadWindow = 10 * time.Minute
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Handler{d: d}
}

// Routes lists every page and API endpoint, each wrapped in the guard and
// marked GuardAdmin. sensitive marks the actions that need a fresh key tap.
func (h *Handler) Routes() []httpx.Route {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		sensitive, routine  = true, false
	)
	const api = "/api/admin/v1"
	return []httpx.Route{
		// Console pages.
		h.page(get, "/admin", routine, h.home),
		h.page(get, "/admin/users", routine, h.usersPage),
		h.page(post, "/admin/users", sensitive, h.createUserPage),
		h.page(get, "/admin/users/{id}", routine, h.userPage),
		h.page(post, "/admin/users/{id}/suspend", sensitive, h.suspendPage),
		h.page(post, "/admin/users/{id}/unsuspend", sensitive, h.unsuspendPage),
		h.page(post, "/admin/users/{id}/delete", sensitive, h.deleteUserPage),
		h.page(post, "/admin/users/{id}/admin", sensitive, h.setAdminPage),
		h.page(post, "/admin/users/{id}/reenroll", sensitive, h.reenrollPage),
		h.page(post, "/admin/users/{id}/reset-totp", routine, h.resetTOTPPage),
		h.page(post, "/admin/users/{id}/revoke-sessions", routine, h.revokeSessionsPage),
		h.page(post, "/admin/users/{id}/sessions/{sid}/revoke", routine, h.revokeSessionPage),
		h.page(post, "/admin/users/{id}/keys/{credID}/rename", routine, h.renameKeyPage),
		h.page(post, "/admin/users/{id}/keys/{credID}/revoke", sensitive, h.revokeKeyPage),
		h.page(get, "/admin/apps", routine, h.appsPage),
		h.page(post, "/admin/apps", sensitive, h.registerAppPage),
		h.page(get, "/admin/apps/{id}", routine, h.appPage),
		h.page(post, "/admin/apps/{id}", sensitive, h.updateAppPage),
		h.page(post, "/admin/apps/{id}/rotate-secret", sensitive, h.rotateSecretPage),
		h.page(post, "/admin/apps/{id}/disable", sensitive, h.disableAppPage),
		h.page(post, "/admin/apps/{id}/enable", sensitive, h.enableAppPage),
		h.page(post, "/admin/apps/{id}/delete", sensitive, h.deleteAppPage),
		h.page(get, "/admin/audit", routine, h.auditPage),
		h.page(get, "/admin/audit/export", routine, h.auditExport),
		h.page(get, "/admin/audit/verify", routine, h.verifyPage),

		// JSON API.
		h.api(get, api+"/users", routine, h.apiListUsers),
		h.api(post, api+"/users", sensitive, h.apiCreateUser),
		h.api(get, api+"/users/{id}", routine, h.apiGetUser),
		h.api(del, api+"/users/{id}", sensitive, h.apiDeleteUser),
		h.api(post, api+"/users/{id}/suspend", sensitive, h.apiSuspend),
		h.api(post, api+"/users/{id}/unsuspend", sensitive, h.apiUnsuspend),
		h.api(post, api+"/users/{id}/reenroll", sensitive, h.apiReenroll),
		h.api(post, api+"/users/{id}/revoke-sessions", routine, h.apiRevokeSessions),
		h.api(post, api+"/users/{id}/reset-totp", routine, h.apiResetTOTP),
		h.api(put, api+"/users/{id}/admin", sensitive, h.apiSetAdmin),
		h.api(del, api+"/users/{id}/sessions/{sid}", routine, h.apiRevokeSession),
		h.api(post, api+"/users/{id}/keys/{credID}/rename", routine, h.apiRenameKey),
		h.api(post, api+"/users/{id}/keys/{credID}/revoke", sensitive, h.apiRevokeKey),
		h.api(get, api+"/clients", routine, h.apiListClients),
		h.api(post, api+"/clients", sensitive, h.apiRegisterClient),
		h.api(get, api+"/clients/{id}", routine, h.apiGetClient),
		h.api(put, api+"/clients/{id}", sensitive, h.apiUpdateClient),
		h.api(del, api+"/clients/{id}", sensitive, h.apiDeleteClient),
		h.api(post, api+"/clients/{id}/rotate-secret", sensitive, h.apiRotateSecret),
		h.api(post, api+"/clients/{id}/disable", sensitive, h.apiDisableClient),
		h.api(post, api+"/clients/{id}/enable", sensitive, h.apiEnableClient),
		h.api(get, api+"/audit", routine, h.apiAudit),
	}
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request, _ *principal) error {
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
	return nil
}

// chainCache remembers the last audit chain check; see verifyChain.
type chainCache struct {
	mu     sync.Mutex
	at     time.Time
	result chainResult
}
