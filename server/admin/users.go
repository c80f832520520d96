package admin

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/notice"
	"github.com/keygate/keygate/server/render"
)

// usersPerPage is the page size of the user list.
const usersPerPage = 25

// UsersData is the user list and the form to create one.
type UsersData struct {
	Base
	Query            string
	Users            []UserRow
	Total            int
	Page, Pages      int
	PrevURL, NextURL string
	Roles            []Option // shown to those who may set roles
	Groups           []Option // shown to those who may change members
	CanEmail         bool     // enrolment links may be sent by email
	// AlertMail: the signed-in user asked for alert mail; the form to
	// change it is shown when mail can be sent (CanEmail).
	AlertMail bool
}

// UserRow is one user in a list.
type UserRow struct {
	ID, Email, Name, Created, Role string
	Suspended, Enrolled            bool
}

func (h *Handler) usersPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 200 {
		q = q[:200]
	}
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	users, total, err := h.d.Store.SearchUsers(r.Context(), q, usersPerPage, (page-1)*usersPerPage)
	if err != nil {
		return err
	}
	data := UsersData{Base: h.base(r, p, "users"), Query: q, Total: total, Page: page,
		Pages: max(1, (total+usersPerPage-1)/usersPerPage), CanEmail: h.canEmail()}
	for _, u := range users {
		data.Users = append(data.Users, UserRow{ID: u.ID, Email: u.Email, Name: u.Name, Created: when(u.CreatedAt),
			Role: u.Role, Suspended: u.Suspended(), Enrolled: u.Enrolled()})
	}
	if p.Session != nil {
		if data.AlertMail, err = notice.AlertMail(r.Context(), h.d.Store, p.User.ID); err != nil {
			return err
		}
	}
	if data.Can.Roles {
		data.Roles = roleOptions("")
	}
	if data.Can.Members {
		if data.Groups, err = h.groupOptions(r.Context(), nil); err != nil {
			return err
		}
	}
	link := func(n int) string {
		v := url.Values{"page": {strconv.Itoa(n)}}
		if q != "" {
			v.Set("q", q)
		}
		return "/admin/users?" + v.Encode()
	}
	if page > 1 {
		data.PrevURL = link(min(page-1, data.Pages))
	}
	if page < data.Pages {
		data.NextURL = link(page + 1)
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminUsers, "Users", data)
}

// render writes a console page. A GET saves the session (it may have just
// created its CSRF token, and it records when the admin was last seen); a
// POST does not, so an action that ended the admin's own session cannot
// bring it back.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, p *principal, status int, page, title string, data any) error {
	if p.Session != nil && r.Method == http.MethodGet {
		if err := p.Session.Save(w); err != nil {
			return err
		}
	}
	h.d.Render.Page(w, r, status, page, title, data)
	return nil
}

// LinkData shows a single-use enrolment link, once.
type LinkData struct {
	Base
	UserID, Email, URL, Expires string
	New                         bool
	// Token is the link's, for the form that emails it when CanEmail.
	Token    string
	CanEmail bool
}

func (h *Handler) createUserPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := r.ParseForm(); err != nil {
		return httpx.Errorf(http.StatusBadRequest, "The form could not be read.", err)
	}
	role, ok := parseRole(r.PostForm.Get("role"))
	if !ok {
		return httpx.Errorf(http.StatusBadRequest, "Choose none, auditor, helpdesk or admin as the role.", nil)
	}
	emailed := r.PostForm.Get("send") == "email"
	nu, err := h.createUser(r, p, manage.UserSpec{Email: r.PostForm.Get("email"), Name: r.PostForm.Get("name"),
		Role: role, Groups: r.PostForm["group"]}, emailed)
	if err != nil {
		return err
	}
	if emailed {
		return backToUser(w, r, nu.User.ID, "enrollment-emailed")
	}
	// The link is in this response only: it is not stored anywhere it
	// could be shown again (only its hash is kept).
	return h.render(w, r, p, http.StatusOK, render.PageAdminLink, "User created", LinkData{Base: h.base(r, p, "users"),
		UserID: nu.User.ID, Email: nu.User.Email, URL: nu.EnrollmentURL, Expires: when(nu.ExpiresAt), New: true,
		Token: tokenOf(nu.EnrollmentURL), CanEmail: h.canEmail()})
}

// reenrollPage issues a new enrolment link and shows it, or with
// send=email mails it to the user without showing it to anyone.
func (h *Handler) reenrollPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if r.PostFormValue("send") == "email" {
		if _, err := h.manager(r, p).Emailing().IssueEnrollmentFor(r.Context(), id); err != nil {
			return err
		}
		return backToUser(w, r, id, "enrollment-emailed")
	}
	nu, err := h.manager(r, p).IssueEnrollmentFor(r.Context(), id)
	if err != nil {
		return err
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminLink, "New enrolment link", LinkData{Base: h.base(r, p, "users"),
		UserID: nu.User.ID, Email: nu.User.Email, URL: nu.EnrollmentURL, Expires: when(nu.ExpiresAt),
		Token: tokenOf(nu.EnrollmentURL), CanEmail: h.canEmail()})
}

// UserData is one user's page.
type UserData struct {
	Base
	ID, Email, Name, Created, Updated, SuspendedAt string
	Role                                           string
	Suspended, Enrolled, Self                      bool
	Roles                                          []Option
	Groups                                         []GroupRef
	JoinGroups                                     []Option // groups the user is not in
	Keys                                           []KeyRow
	TOTP                                           string
	TOTPConfirmed                                  string
	RecoveryCodes                                  int
	Devices                                        []DeviceRow
	Sessions                                       []SessionRow
	SignIns                                        []SignInRow
	// Protected: the signed-in user may not change this account
	// (principal.mayChange): helpdesk sees it without the forms.
	Protected bool
	// CanEmail: enrolment links may be sent by email.
	CanEmail bool
}

// KeyRow is a security key or passkey.
type KeyRow struct {
	ID, Name, AAGUID, Kind, Created, LastUsed, Disabled string
	SignCount                                           uint32
}

// DeviceRow is a browser the user signed in from.
type DeviceRow struct {
	ID, UserAgent, FirstSeen, LastSeen, LastIP, LastCountry string
	SignIns                                                 int
}

// SessionRow is a live browser session.
type SessionRow struct {
	SID, Created, LastSeen, Expires, IP, UserAgent string
	Current                                        bool
}

// SignInRow is a sign-in with the risk engine's decision.
type SignInRow struct {
	Time, IP, Place, Client, ACR, Decision string
	Reasons                                []string
}

func (h *Handler) userPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	d, err := h.loadUser(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	u := d.User
	data := UserData{Base: h.base(r, p, "users"), ID: u.ID, Email: u.Email, Name: u.Name, Created: when(u.CreatedAt),
		Updated: when(u.UpdatedAt), Role: u.Role, Suspended: u.Suspended(), SuspendedAt: when(u.SuspendedAt),
		Enrolled: u.Enrolled(), Self: u.ID == p.User.ID, TOTP: d.totpStatus(), RecoveryCodes: d.RecoveryCodes,
		Protected: !p.mayChange(u), Roles: roleOptions(u.Role), CanEmail: h.canEmail()}
	for _, g := range d.Groups {
		data.Groups = append(data.Groups, GroupRef{ID: g.ID, Name: g.Name, MinACR: g.MinACR})
	}
	if data.Can.Members {
		if data.JoinGroups, err = h.groupOptions(r.Context(), d.Groups); err != nil {
			return err
		}
	}
	if d.HasTOTP {
		data.TOTPConfirmed = when(d.TOTP.ConfirmedAt)
	}
	for _, c := range d.Keys {
		data.Keys = append(data.Keys, KeyRow{ID: credID(c.ID), Name: c.Name, AAGUID: aaguid(c.AAGUID), Kind: keyKind(c),
			Created: when(c.CreatedAt), LastUsed: when(c.LastUsedAt), SignCount: c.SignCount, Disabled: c.DisabledReason})
	}
	for _, x := range d.Devices {
		data.Devices = append(data.Devices, DeviceRow{ID: shortID(x.ID), UserAgent: x.UserAgent, FirstSeen: when(x.FirstSeen),
			LastSeen: when(x.LastSeen), LastIP: x.LastIP, LastCountry: x.LastCountry, SignIns: x.SignIns})
	}
	current := p.Session.SID()
	for _, s := range d.Sessions {
		data.Sessions = append(data.Sessions, SessionRow{SID: s.SID, Created: when(s.CreatedAt), LastSeen: when(s.LastSeenAt),
			Expires: when(s.ExpiresAt), IP: s.IP, UserAgent: s.UserAgent, Current: s.SID == current})
	}
	for _, s := range d.SignIns {
		place := strings.Trim(s.City+", "+s.Country, ", ")
		data.SignIns = append(data.SignIns, SignInRow{Time: when(s.Time), IP: s.IP, Place: place, Client: s.ClientID,
			ACR: s.ACR, Decision: s.Decision, Reasons: s.Reasons})
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminUser, u.Email, data)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// confirmed checks the "I understand" box of a destructive form; the
// browser requires it too, this is for forms posted some other way.
func confirmed(r *http.Request) error {
	if r.PostFormValue("confirm") == "" {
		return httpx.Errorf(http.StatusBadRequest, "Tick “I understand” to confirm this action.", nil)
	}
	return nil
}

// backToUser redirects to the user's page with a notice.
func backToUser(w http.ResponseWriter, r *http.Request, id, notice string) error {
	http.Redirect(w, r, withNotice("/admin/users/"+url.PathEscape(id), notice), http.StatusSeeOther)
	return nil
}

func (h *Handler) suspendPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := h.suspend(r, p, id); err != nil {
		return err
	}
	return backToUser(w, r, id, "suspended")
}

func (h *Handler) unsuspendPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := h.manager(r, p).UnsuspendUser(r.Context(), id); err != nil {
		return err
	}
	return backToUser(w, r, id, "unsuspended")
}

func (h *Handler) deleteUserPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	if err := h.manager(r, p).DeleteUser(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, withNotice("/admin/users", "deleted"), http.StatusSeeOther)
	return nil
}

// setRolePage gives the user the chosen role. Changing or removing a role
// someone has takes something away, so it needs the confirmation;
// granting one to a user without needs only the fresh key tap.
func (h *Handler) setRolePage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	role, ok := parseRole(r.PostFormValue("role"))
	if !ok {
		return httpx.Errorf(http.StatusBadRequest, "Choose none, auditor, helpdesk or admin as the role.", nil)
	}
	u, err := h.d.Store.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	if u.Role != "" && u.Role != role {
		if err := confirmed(r); err != nil {
			return err
		}
	}
	if err := h.manager(r, p).SetRole(r.Context(), id, role); err != nil {
		return err
	}
	if role == "" {
		return backToUser(w, r, id, "role-removed")
	}
	return backToUser(w, r, id, "role-set")
}

func (h *Handler) resetTOTPPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := h.manager(r, p).ResetTOTP(r.Context(), id); err != nil {
		return err
	}
	return backToUser(w, r, id, "totp-reset")
}

func (h *Handler) revokeSessionsPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := h.userExists(r.Context(), id); err != nil {
		return err
	}
	if _, err := h.manager(r, p).RevokeSessions(r.Context(), id); err != nil {
		return err
	}
	return backToUser(w, r, id, "sessions-revoked")
}

func (h *Handler) revokeSessionPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := h.manager(r, p).RevokeSession(r.Context(), id, r.PathValue("sid")); err != nil {
		return err
	}
	return backToUser(w, r, id, "session-revoked")
}

var errNoKey = httpx.Errorf(http.StatusNotFound, "No such key.", nil)

func (h *Handler) renameKeyPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	cred, ok := parseCredID(r.PathValue("credID"))
	if !ok {
		return errNoKey
	}
	if err := h.manager(r, p).RenameKey(r.Context(), id, cred, r.PostFormValue("name")); err != nil {
		return err
	}
	return backToUser(w, r, id, "key-renamed")
}

func (h *Handler) revokeKeyPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	cred, ok := parseCredID(r.PathValue("credID"))
	if !ok {
		return errNoKey
	}
	if err := h.manager(r, p).RevokeKey(r.Context(), id, cred); err != nil {
		return err
	}
	return backToUser(w, r, id, "key-revoked")
}
