// Package admin is keygate's admin console (server-rendered pages under
// /admin) and its JSON admin API (under /api/admin/v1/). It is the most
// sensitive surface keygate has — an admin tool is how the Mailchimp breach
// happened — so every route goes through one guard (guard.go):
//
//   - pages and browser calls need a session of an existing, unsuspended
//     user with a console role (admin, helpdesk or auditor) at assurance
//     phr or above; anyone else is sent to sign in (or tap a key), and
//     signed-in users without a role get 403;
//   - every route names the one permission it needs (roles.go); a role
//     that does not grant it gets 403, and helpdesk reaches only users
//     without a role;
//   - every state-changing request from a browser carries the session's
//     CSRF token (a form field, or the X-CSRF-Token header for JSON);
//   - sensitive actions also need a key tap no older than Freshness;
//   - service clients call the API with a client_credentials access token
//     of scope keygate:admin, act as "client:<id>" and have every
//     permission.
//
// Every change goes through manage.Manager, which records it in the audit
// log with the signed-in user (or the service client) as the actor. Reads
// of user details and audit exports are counted per actor, whatever the
// role, and a burst writes an alerting admin.bulk_read event (bulkread.go).
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
// marked GuardAdmin, with the permission it needs (roles.go) and whether
// it is sensitive: an action that needs a fresh key tap.
func (h *Handler) Routes() []httpx.Route {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		sensitive, routine  = true, false
	)
	const api = "/api/admin/v1"
	return []httpx.Route{
		// Console pages.
		h.page(get, "/admin", readUsers, routine, h.home),
		h.page(get, "/admin/users", readUsers, routine, h.usersPage),
		h.page(post, "/admin/users", supportUsers, sensitive, h.createUserPage),
		h.page(get, "/admin/users/{id}", readUsers, routine, h.userPage),
		h.page(post, "/admin/users/{id}/suspend", supportUsers, sensitive, h.suspendPage),
		h.page(post, "/admin/users/{id}/unsuspend", supportUsers, sensitive, h.unsuspendPage),
		h.page(post, "/admin/users/{id}/delete", deleteUsers, sensitive, h.deleteUserPage),
		h.page(post, "/admin/users/{id}/role", setRoles, sensitive, h.setRolePage),
		h.page(post, "/admin/users/{id}/groups", editMembers, sensitive, h.joinGroupPage),
		h.page(post, "/admin/users/{id}/groups/{groupID}/remove", editMembers, sensitive, h.leaveGroupPage),
		h.page(post, "/admin/users/{id}/reenroll", supportUsers, sensitive, h.reenrollPage),
		h.page(post, "/admin/users/{id}/enrollment-email", supportUsers, routine, h.emailLinkPage),
		h.page(post, "/admin/users/{id}/reset-totp", supportUsers, routine, h.resetTOTPPage),
		h.page(post, "/admin/users/{id}/revoke-sessions", supportUsers, routine, h.revokeSessionsPage),
		h.page(post, "/admin/users/{id}/sessions/{sid}/revoke", supportUsers, routine, h.revokeSessionPage),
		h.page(post, "/admin/users/{id}/keys/{credID}/rename", supportUsers, routine, h.renameKeyPage),
		h.page(post, "/admin/users/{id}/keys/{credID}/revoke", supportUsers, sensitive, h.revokeKeyPage),
		h.page(post, "/admin/alert-mail", readUsers, routine, h.alertMailPage),
		h.page(get, "/admin/groups", readGroups, routine, h.groupsPage),
		h.page(post, "/admin/groups", editGroups, sensitive, h.createGroupPage),
		h.page(get, "/admin/groups/{id}", readGroups, routine, h.groupPage),
		h.page(post, "/admin/groups/{id}", editGroups, sensitive, h.updateGroupPage),
		h.page(post, "/admin/groups/{id}/delete", editGroups, sensitive, h.deleteGroupPage),
		h.page(post, "/admin/groups/{id}/members", editMembers, sensitive, h.addMembersPage),
		h.page(post, "/admin/groups/{id}/members/{userID}/remove", editMembers, sensitive, h.removeMemberPage),
		h.page(get, "/admin/apps", readApps, routine, h.appsPage),
		h.page(post, "/admin/apps", editApps, sensitive, h.registerAppPage),
		h.page(get, "/admin/apps/{id}", readApps, routine, h.appPage),
		h.page(post, "/admin/apps/{id}", editApps, sensitive, h.updateAppPage),
		h.page(post, "/admin/apps/{id}/rotate-secret", editApps, sensitive, h.rotateSecretPage),
		h.page(post, "/admin/apps/{id}/disable", editApps, sensitive, h.disableAppPage),
		h.page(post, "/admin/apps/{id}/enable", editApps, sensitive, h.enableAppPage),
		h.page(post, "/admin/apps/{id}/delete", editApps, sensitive, h.deleteAppPage),
		h.page(get, "/admin/audit", readAuditLog, routine, h.auditPage),
		h.page(get, "/admin/audit/export", readAuditLog, routine, h.auditExport),
		h.page(get, "/admin/audit/verify", readAuditLog, routine, h.verifyPage),

		// JSON API.
		h.api(get, api+"/users", readUsers, routine, h.apiListUsers),
		h.api(post, api+"/users", supportUsers, sensitive, h.apiCreateUser),
		h.api(get, api+"/users/{id}", readUsers, routine, h.apiGetUser),
		h.api(del, api+"/users/{id}", deleteUsers, sensitive, h.apiDeleteUser),
		h.api(post, api+"/users/{id}/suspend", supportUsers, sensitive, h.apiSuspend),
		h.api(post, api+"/users/{id}/unsuspend", supportUsers, sensitive, h.apiUnsuspend),
		h.api(post, api+"/users/{id}/reenroll", supportUsers, sensitive, h.apiReenroll),
		h.api(post, api+"/users/{id}/revoke-sessions", supportUsers, routine, h.apiRevokeSessions),
		h.api(post, api+"/users/{id}/reset-totp", supportUsers, routine, h.apiResetTOTP),
		h.api(put, api+"/users/{id}/role", setRoles, sensitive, h.apiSetRole),
		h.api(put, api+"/users/{id}/admin", setRoles, sensitive, h.apiSetAdmin),
		h.api(del, api+"/users/{id}/sessions/{sid}", supportUsers, routine, h.apiRevokeSession),
		h.api(post, api+"/users/{id}/keys/{credID}/rename", supportUsers, routine, h.apiRenameKey),
		h.api(post, api+"/users/{id}/keys/{credID}/revoke", supportUsers, sensitive, h.apiRevokeKey),
		h.api(get, api+"/groups", readGroups, routine, h.apiListGroups),
		h.api(post, api+"/groups", editGroups, sensitive, h.apiCreateGroup),
		h.api(get, api+"/groups/{id}", readGroups, routine, h.apiGetGroup),
		h.api(put, api+"/groups/{id}", editGroups, sensitive, h.apiUpdateGroup),
		h.api(del, api+"/groups/{id}", editGroups, sensitive, h.apiDeleteGroup),
		h.api(post, api+"/groups/{id}/members", editMembers, sensitive, h.apiAddMembers),
		h.api(del, api+"/groups/{id}/members/{userID}", editMembers, sensitive, h.apiRemoveMember),
		h.api(get, api+"/clients", readApps, routine, h.apiListClients),
		h.api(post, api+"/clients", editApps, sensitive, h.apiRegisterClient),
		h.api(get, api+"/clients/{id}", readApps, routine, h.apiGetClient),
		h.api(put, api+"/clients/{id}", editApps, sensitive, h.apiUpdateClient),
		h.api(del, api+"/clients/{id}", editApps, sensitive, h.apiDeleteClient),
		h.api(post, api+"/clients/{id}/rotate-secret", editApps, sensitive, h.apiRotateSecret),
		h.api(post, api+"/clients/{id}/disable", editApps, sensitive, h.apiDisableClient),
		h.api(post, api+"/clients/{id}/enable", editApps, sensitive, h.apiEnableClient),
		h.api(get, api+"/audit", readAuditLog, routine, h.apiAudit),
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
