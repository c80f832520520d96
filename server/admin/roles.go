package admin

import (
	"fmt"
	"slices"

	"github.com/keygate/keygate/storage"
)

// permission is what a route needs. Every route in Routes names exactly
// one; a role grants a fixed set of them (grants), and the guard checks
// the route's permission against the caller's role before the handler
// runs. A handler asks again (principal.may) only for the optional parts
// of a request, such as a role given when creating a user.
type permission string

const (
	// readUsers: list and search users, read a user's details (profile,
	// groups, keys, sessions, devices, sign-ins).
	readUsers permission = "users:read"
	// supportUsers: the user lifecycle — create users, issue enrolment
	// links, suspend and unsuspend, end sessions, remove an authenticator
	// app, rename and revoke keys. Without setRoles it reaches only users
	// who hold no role (see guard.go).
	supportUsers permission = "users:support"
	// deleteUsers: delete a user with their keys and history.
	deleteUsers permission = "users:delete"
	// setRoles: grant and remove console roles.
	setRoles permission = "roles:write"
	// readGroups: list groups, read a group and its members.
	readGroups permission = "groups:read"
	// editGroups: create, rename, describe, set the minimum acr of and
	// delete groups.
	editGroups permission = "groups:write"
	// editMembers: add users to groups and remove them.
	editMembers permission = "groups:members"
	// readApps: list apps and read their settings.
	readApps permission = "apps:read"
	// editApps: register, edit, rotate the secret of, disable, enable and
	// delete apps (their allowed groups included).
	editApps permission = "apps:write"
	// readAuditLog: the audit log, its export and the hash chain check.
	readAuditLog permission = "audit:read"
)

// permissions lists every permission, for the admin role and service
// clients.
var permissions = []permission{readUsers, supportUsers, deleteUsers, setRoles, readGroups, editGroups,
	editMembers, readApps, editApps, readAuditLog}

// grants is what each role may do. Helpdesk is the user lifecycle and no
// more: not apps, not roles, not groups or their members (membership
// decides who gets into which app, which is an administrator's call), and
// not the audit log beyond each user's own sign-ins. Auditor reads and
// changes nothing.
var grants = map[string][]permission{
	storage.RoleAdmin:    permissions,
	storage.RoleHelpdesk: {readUsers, supportUsers, readGroups},
	storage.RoleAuditor:  {readUsers, readGroups, readApps, readAuditLog},
}

func (p permission) valid() bool { return slices.Contains(permissions, p) }

// mustPermission panics on a route declared without a known permission:
// keygate refuses to start rather than serve an unguarded route.
func mustPermission(pattern string, need permission) {
	if !need.valid() {
		panic(fmt.Sprintf("admin: route %s needs a permission, not %q", pattern, need))
	}
}

// may reports whether p's role (or service token) grants need. Service
// clients with scope keygate:admin have every permission: a token is
// granted to an app an administrator registered with "may call the admin
// API", and it is how automation provisions users, apps and groups.
func (p *principal) may(need permission) bool {
	if p.service() {
		return true
	}
	return slices.Contains(grants[p.User.Role], need)
}

// Can is what the signed-in user may do, for the navigation and for
// showing only the forms that would be accepted.
type Can struct {
	Users, Support, DeleteUsers, Roles bool
	Groups, EditGroups, Members        bool
	Apps, EditApps, Audit              bool
}

func (p *principal) can() Can {
	return Can{Users: p.may(readUsers), Support: p.may(supportUsers), DeleteUsers: p.may(deleteUsers),
		Roles: p.may(setRoles), Groups: p.may(readGroups), EditGroups: p.may(editGroups), Members: p.may(editMembers),
		Apps: p.may(readApps), EditApps: p.may(editApps), Audit: p.may(readAuditLog)}
}

// roleOptions are the choices of the role selector, with what each means.
func roleOptions(selected string) []Option {
	return []Option{
		{"", "None: no access to the console", selected == ""},
		{storage.RoleAuditor, "Auditor: reads users, groups, apps and the audit log; changes nothing", selected == storage.RoleAuditor},
		{storage.RoleHelpdesk, "Helpdesk: creates users, enrolment links, suspensions, sessions and factors of users without a role", selected == storage.RoleHelpdesk},
		{storage.RoleAdmin, "Administrator: everything", selected == storage.RoleAdmin},
	}
}

// parseRole reads a role as forms and the API give it: "none" or "" for
// none, else one of storage.Roles.
func parseRole(s string) (string, bool) {
	if s == "" || s == "none" {
		return "", true
	}
	return s, slices.Contains(storage.Roles, s)
}
