package admin_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
)

const (
	admin    = storage.RoleAdmin
	helpdesk = storage.RoleHelpdesk
	auditor  = storage.RoleAuditor
)

// rule is who may use a route: the roles, and whether it needs a key tap
// within the freshness window.
type rule struct {
	roles []string
	fresh bool
}

var (
	anyRole   = []string{auditor, helpdesk, admin}
	lifecycle = []string{helpdesk, admin}
	readers   = []string{auditor, admin}
	adminOnly = []string{admin}
)

// access is the permission table as the tests state it, independently of
// the console's own: every admin route and API method, who may use it and
// whether it needs a fresh key tap. A route missing here fails
// TestEveryRouteByRole, so a new route cannot go without saying who may
// use it.
var access = map[string]rule{
	"GET /admin":                                      {anyRole, false},
	"GET /admin/users":                                {anyRole, false},
	"POST /admin/users":                               {lifecycle, true},
	"GET /admin/users/{id}":                           {anyRole, false},
	"POST /admin/users/{id}/suspend":                  {lifecycle, true},
	"POST /admin/users/{id}/unsuspend":                {lifecycle, true},
	"POST /admin/users/{id}/delete":                   {adminOnly, true},
	"POST /admin/users/{id}/role":                     {adminOnly, true},
	"POST /admin/users/{id}/groups":                   {adminOnly, true},
	"POST /admin/users/{id}/groups/{groupID}/remove":  {adminOnly, true},
	"POST /admin/users/{id}/reenroll":                 {lifecycle, true},
	"POST /admin/users/{id}/enrollment-email":         {lifecycle, false},
	"POST /admin/users/{id}/reset-totp":               {lifecycle, false},
	"POST /admin/users/{id}/revoke-sessions":          {lifecycle, false},
	"POST /admin/users/{id}/sessions/{sid}/revoke":    {lifecycle, false},
	"POST /admin/users/{id}/keys/{credID}/rename":     {lifecycle, false},
	"POST /admin/users/{id}/keys/{credID}/revoke":     {lifecycle, true},
	"POST /admin/alert-mail":                          {anyRole, false},
	"GET /admin/groups":                               {anyRole, false},
	"POST /admin/groups":                              {adminOnly, true},
	"GET /admin/groups/{id}":                          {anyRole, false},
	"POST /admin/groups/{id}":                         {adminOnly, true},
	"POST /admin/groups/{id}/delete":                  {adminOnly, true},
	"POST /admin/groups/{id}/members":                 {adminOnly, true},
	"POST /admin/groups/{id}/members/{userID}/remove": {adminOnly, true},
	"GET /admin/apps":                                 {readers, false},
	"POST /admin/apps":                                {adminOnly, true},
	"GET /admin/apps/{id}":                            {readers, false},
	"POST /admin/apps/{id}":                           {adminOnly, true},
	"POST /admin/apps/{id}/rotate-secret":             {adminOnly, true},
	"POST /admin/apps/{id}/disable":                   {adminOnly, true},
	"POST /admin/apps/{id}/enable":                    {adminOnly, true},
	"POST /admin/apps/{id}/delete":                    {adminOnly, true},
	"GET /admin/audit":                                {readers, false},
	"GET /admin/audit/export":                         {readers, false},
	"GET /admin/audit/verify":                         {readers, false},

	"GET /api/admin/v1/users":                            {anyRole, false},
	"POST /api/admin/v1/users":                           {lifecycle, true},
	"GET /api/admin/v1/users/{id}":                       {anyRole, false},
	"DELETE /api/admin/v1/users/{id}":                    {adminOnly, true},
	"POST /api/admin/v1/users/{id}/suspend":              {lifecycle, true},
	"POST /api/admin/v1/users/{id}/unsuspend":            {lifecycle, true},
	"POST /api/admin/v1/users/{id}/reenroll":             {lifecycle, true},
	"POST /api/admin/v1/users/{id}/revoke-sessions":      {lifecycle, false},
	"POST /api/admin/v1/users/{id}/reset-totp":           {lifecycle, false},
	"PUT /api/admin/v1/users/{id}/role":                  {adminOnly, true},
	"PUT /api/admin/v1/users/{id}/admin":                 {adminOnly, true},
	"DELETE /api/admin/v1/users/{id}/sessions/{sid}":     {lifecycle, false},
	"POST /api/admin/v1/users/{id}/keys/{credID}/rename": {lifecycle, false},
	"POST /api/admin/v1/users/{id}/keys/{credID}/revoke": {lifecycle, true},
	"GET /api/admin/v1/groups":                           {anyRole, false},
	"POST /api/admin/v1/groups":                          {adminOnly, true},
	"GET /api/admin/v1/groups/{id}":                      {anyRole, false},
	"PUT /api/admin/v1/groups/{id}":                      {adminOnly, true},
	"DELETE /api/admin/v1/groups/{id}":                   {adminOnly, true},
	"POST /api/admin/v1/groups/{id}/members":             {adminOnly, true},
	"DELETE /api/admin/v1/groups/{id}/members/{userID}":  {adminOnly, true},
	"GET /api/admin/v1/clients":                          {readers, false},
	"POST /api/admin/v1/clients":                         {adminOnly, true},
	"GET /api/admin/v1/clients/{id}":                     {readers, false},
	"PUT /api/admin/v1/clients/{id}":                     {adminOnly, true},
	"DELETE /api/admin/v1/clients/{id}":                  {adminOnly, true},
	"POST /api/admin/v1/clients/{id}/rotate-secret":      {adminOnly, true},
	"POST /api/admin/v1/clients/{id}/disable":            {adminOnly, true},
	"POST /api/admin/v1/clients/{id}/enable":             {adminOnly, true},
	"GET /api/admin/v1/audit":                            {readers, false},
}

// caller is one kind of caller the walk sends every request as.
type caller struct {
	name    string
	browser *sessiontest.Browser // nil for the service token
	bearer  string
	role    string // the role whose permissions apply, for those who pass the other checks
}

// TestEveryRouteByRole walks the server's whole surface as every kind of
// caller — anonymous, signed in without a role, auditor, helpdesk,
// administrator, a suspended administrator, an administrator without a
// key tap (mfa), one whose key tap is stale, and (API only) a service
// token — and checks each answer against the access table. Every path
// names things that do not exist, so a request that gets past the guard
// is answered by its handler (a list, a 404, a 400 for an empty form)
// and changes nothing.
func TestEveryRouteByRole(t *testing.T) {
	in := start(t)
	ctx := t.Context()
	adminUser := in.newUser(t, "admin@example.com", true)
	plain := in.newUser(t, "plain@example.com", false)
	suspended := in.newUser(t, "gone@example.com", true)
	suspendedAdmin := in.key(t, suspended.ID)
	// The flag alone: a suspension also ends the user's sessions, so this
	// tests the guard's own check, which stands behind that.
	if err := in.DB.UpdateUser(ctx, suspended.ID, func(u *storage.User) error { u.SuspendedAt = time.Now(); return nil }); err != nil {
		t.Fatal(err)
	}
	svc, err := in.Manager().RegisterClient(ctx, manage.ClientSpec{Name: "Provisioner", GrantTypes: []string{"client_credentials"}, AdminAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	token, status := in.tokenFor(t, svc.Client.ID, svc.Secret, manage.ScopeAdmin)
	if status != http.StatusOK {
		t.Fatalf("service token: %d", status)
	}
	browser := func(b sessiontest.Browser) *sessiontest.Browser { return &b }
	stale := in.Mint(t, session.Auth{UserID: adminUser.ID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"},
		AuthTime: time.Now().Add(-time.Hour)})
	callers := []caller{
		{name: "anonymous", browser: browser(in.Mint(t, session.Auth{}))},
		{name: "signed in without a role", browser: browser(in.key(t, plain.ID))},
		{name: "auditor", browser: browser(in.key(t, in.withRole(t, "auditor@example.com", auditor).ID)), role: auditor},
		{name: "helpdesk", browser: browser(in.key(t, in.withRole(t, "helpdesk@example.com", helpdesk).ID)), role: helpdesk},
		{name: "administrator", browser: browser(in.key(t, adminUser.ID)), role: admin},
		{name: "suspended administrator", browser: &suspendedAdmin},
		{name: "administrator without a key tap (mfa)", browser: browser(in.Mint(t, session.Auth{UserID: adminUser.ID,
			ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: time.Now()}))},
		{name: "administrator with a stale key tap", browser: &stale, role: admin},
		{name: "service token", bearer: token, role: admin},
	}
	state, mark := stateOf(t, in), in.AuditMark(t)

	seen := map[string]bool{}
	cases := 0
	for _, rt := range in.Srv.Routes() {
		if !isConsole(rt.Pattern) {
			if strings.Contains(rt.Pattern, "admin") {
				t.Errorf("%s looks like an admin route but is outside /admin and /api/admin", rt)
			}
			continue
		}
		if rt.Guard != httpx.GuardAdmin {
			t.Errorf("%s has guard %q, want admin", rt, rt.Guard)
		}
		want, ok := access[rt.String()]
		if !ok {
			t.Errorf("%s is not in the access table: say who may use it", rt)
			continue
		}
		seen[rt.String()] = true
		method, path, api := methodOf(rt), fill(rt.Pattern, nil), isAPI(rt.Pattern)
		readOnly := method == http.MethodGet
		// What a refused page request is sent back to after signing in.
		back := path
		if !readOnly {
			back = formPage(path)
		}
		t.Run(rt.String(), func(t *testing.T) {
			for _, c := range callers {
				if c.bearer != "" && !api {
					continue // a service token opens no page (TestServiceTokens)
				}
				cases++
				var r servertest.Reply
				switch {
				case api:
					r = in.call(t, c.browser, c.bearer, method, path, nil)
				case readOnly:
					r = in.get(t, c.browser, path)
				default:
					r = in.form(t, c.browser, path, nil)
				}
				expect(t, c, want, r, api, readOnly, back)
			}
		})
	}
	for route := range access {
		if !seen[route] {
			t.Errorf("the access table names %s, which the server does not have", route)
		}
	}
	if cases < 500 {
		t.Errorf("walked %d cases; is the console mounted?", cases)
	}
	t.Logf("%d routes, %d route × caller cases", len(seen), cases)
	unchanged(t, in, state, mark)
}

// expect checks one answer against the access table.
func expect(t *testing.T, c caller, want rule, r servertest.Reply, api, readOnly bool, back string) {
	t.Helper()
	errCode := func() string { return servertest.Decode[map[string]string](t, r)["error"] }
	switch {
	case c.name == "anonymous":
		if api && (r.Status != http.StatusUnauthorized || errCode() != "unauthorized") {
			t.Errorf("%s: %v, want 401 unauthorized", c.name, r)
		}
		if !api && (r.Status != http.StatusSeeOther || r.Location() != stepUpTo(back)) {
			t.Errorf("%s: status %d to %q, want 303 to %q", c.name, r.Status, r.Location(), stepUpTo(back))
		}
	case c.role == "" && strings.Contains(c.name, "mfa"):
		if api && (r.Status != http.StatusForbidden || errCode() != "step_up_required") {
			t.Errorf("%s: %v, want 403 step_up_required", c.name, r)
		}
		to := back
		if !readOnly {
			to += "?notice=step-up"
		}
		if !api && (r.Status != http.StatusSeeOther || r.Location() != stepUpTo(to)) {
			t.Errorf("%s: status %d to %q, want 303 to %q", c.name, r.Status, r.Location(), stepUpTo(to))
		}
	case c.role == "":
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "console role") {
			t.Errorf("%s: %v, want 403 for want of a console role", c.name, r)
		}
	case !slices.Contains(want.roles, c.role):
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "does not allow this") ||
			api && errCode() != "forbidden" {
			t.Errorf("%s: %v, want 403: the role does not allow it", c.name, r)
		}
	case want.fresh && strings.Contains(c.name, "stale"):
		if api && (r.Status != http.StatusForbidden || errCode() != "fresh_key_tap_required") {
			t.Errorf("%s: %v, want 403 fresh_key_tap_required", c.name, r)
		}
		if !api && (r.Status != http.StatusSeeOther || r.Location() != stepUpTo(back+"?notice=reverify")) {
			t.Errorf("%s: status %d to %q, want 303 to tap a key and repeat", c.name, r.Status, r.Location())
		}
	default:
		// Past the guard: the handler answers, about things that do not
		// exist or an empty request.
		if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden || r.Status >= 500 ||
			strings.HasPrefix(r.Location(), "/login") {
			t.Errorf("%s: %v (Location %q), want the handler's answer", c.name, r, r.Location())
		}
	}
}
