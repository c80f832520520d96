package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// The users of the JSON API.

type userJSON struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Name        string     `json:"name,omitempty"`
	Role        string     `json:"role"` // "", "auditor", "helpdesk" or "admin"
	Admin       bool       `json:"admin"`
	Groups      []string   `json:"groups"` // names
	Suspended   bool       `json:"suspended"`
	SuspendedAt *time.Time `json:"suspended_at,omitempty"`
	Enrolled    bool       `json:"enrolled"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func toUserJSON(u storage.User, groups []storage.Group) userJSON {
	out := userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Admin: u.IsAdmin(), Groups: []string{},
		Suspended: u.Suspended(), SuspendedAt: optTime(u.SuspendedAt), Enrolled: u.Enrolled(),
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
	for _, g := range groups {
		out.Groups = append(out.Groups, g.Name)
	}
	return out
}

// userJSON describes u with their groups.
func (h *Handler) userJSON(ctx context.Context, u storage.User) (userJSON, error) {
	groups, err := h.d.Store.ListUserGroups(ctx, u.ID)
	return toUserJSON(u, groups), err
}

type keyJSON struct {
	ID             string     `json:"id"` // base64url
	Name           string     `json:"name"`
	AAGUID         string     `json:"aaguid,omitempty"`
	Kind           string     `json:"kind"` // device-bound or synced passkey
	Attested       bool       `json:"attested"`
	SignCount      uint32     `json:"sign_count"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
}

type deviceJSON struct {
	ID          string    `json:"id"`
	UserAgent   string    `json:"user_agent"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	LastIP      string    `json:"last_ip,omitempty"`
	LastCountry string    `json:"last_country,omitempty"`
	SignIns     int       `json:"sign_ins"`
}

type sessionJSON struct {
	SID        string    `json:"sid"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
}

type signInJSON struct {
	Time     time.Time `json:"time"`
	IP       string    `json:"ip,omitempty"`
	Country  string    `json:"country,omitempty"`
	City     string    `json:"city,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	ACR      string    `json:"acr"`
	Decision string    `json:"decision,omitempty"`
	Reasons  []string  `json:"reasons,omitempty"`
}

type userDetailJSON struct {
	User              userJSON      `json:"user"`
	Keys              []keyJSON     `json:"keys"`
	TOTP              string        `json:"totp"` // none, pending or confirmed
	RecoveryCodesLeft int           `json:"recovery_codes_left"`
	Devices           []deviceJSON  `json:"devices"`
	Sessions          []sessionJSON `json:"sessions"`
	SignIns           []signInJSON  `json:"sign_ins"`
}

func (h *Handler) apiListUsers(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := r.URL.Query()
	page, err := strconv.Atoi(q.Get("page"))
	if q.Get("page") != "" && (err != nil || page < 1) {
		return apiErr(http.StatusBadRequest, "invalid_request", "page is a number from 1.")
	}
	page = max(page, 1)
	perPage := usersPerPage
	if v := q.Get("per_page"); v != "" {
		if perPage, err = strconv.Atoi(v); err != nil || perPage < 1 || perPage > 100 {
			return apiErr(http.StatusBadRequest, "invalid_request", "per_page is a number from 1 to 100.")
		}
	}
	users, total, err := h.d.Store.SearchUsers(r.Context(), strings.TrimSpace(q.Get("q")), perPage, (page-1)*perPage)
	if err != nil {
		return err
	}
	out := struct {
		Users   []userJSON `json:"users"`
		Total   int        `json:"total"`
		Page    int        `json:"page"`
		PerPage int        `json:"per_page"`
	}{Users: []userJSON{}, Total: total, Page: page, PerPage: perPage}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	groups, err := manage.UserGroups(r.Context(), h.d.Store, ids)
	if err != nil {
		return err
	}
	for _, u := range users {
		out.Users = append(out.Users, toUserJSON(u, groups[u.ID]))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) apiCreateUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Email  string   `json:"email"`
		Name   string   `json:"name"`
		Admin  bool     `json:"admin"` // the same as "role": "admin"
		Role   string   `json:"role"`
		Groups []string `json:"groups"`
		// SendEmail mails the enrolment link instead of answering it.
		SendEmail bool `json:"send_email"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	role, ok := parseRole(in.Role)
	switch {
	case !ok:
		return apiErr(http.StatusBadRequest, "invalid_request", `role is "none", "auditor", "helpdesk" or "admin".`)
	case in.Admin && in.Role != "" && role != storage.RoleAdmin:
		return apiErr(http.StatusBadRequest, "invalid_request", `"admin": true contradicts "role": "`+in.Role+`".`)
	case in.Admin:
		role = storage.RoleAdmin
	}
	nu, err := h.createUser(r, p, manage.UserSpec{Email: in.Email, Name: in.Name, Role: role, Groups: in.Groups}, in.SendEmail)
	if err != nil {
		return err
	}
	u, err := h.userJSON(r.Context(), nu.User)
	if err != nil {
		return err
	}
	out := linkJSON(nu, in.SendEmail)
	out["user"] = u
	httpx.WriteJSON(w, http.StatusCreated, out)
	return nil
}

// linkJSON is how an answer carries a new enrolment link: the link, or
// with emailed only that it was queued for email — then nobody but the
// user sees it.
func linkJSON(nu manage.NewUser, emailed bool) map[string]any {
	out := map[string]any{"expires_at": nu.ExpiresAt.UTC()}
	if emailed {
		out["email_queued"] = true
	} else {
		out["enrollment_url"] = nu.EnrollmentURL
	}
	return out
}

func (h *Handler) apiGetUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	d, err := h.loadUser(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := userDetailJSON{User: toUserJSON(d.User, d.Groups), TOTP: d.totpStatus(), RecoveryCodesLeft: d.RecoveryCodes,
		Keys: []keyJSON{}, Devices: []deviceJSON{}, Sessions: []sessionJSON{}, SignIns: []signInJSON{}}
	for _, c := range d.Keys {
		out.Keys = append(out.Keys, keyJSON{ID: credID(c.ID), Name: c.Name, AAGUID: aaguid(c.AAGUID), Kind: keyKind(c),
			Attested: c.Attested, SignCount: c.SignCount, CreatedAt: c.CreatedAt.UTC(), LastUsedAt: optTime(c.LastUsedAt),
			DisabledAt: optTime(c.DisabledAt), DisabledReason: c.DisabledReason})
	}
	for _, x := range d.Devices {
		out.Devices = append(out.Devices, deviceJSON{ID: shortID(x.ID), UserAgent: x.UserAgent, FirstSeen: x.FirstSeen.UTC(),
			LastSeen: x.LastSeen.UTC(), LastIP: x.LastIP, LastCountry: x.LastCountry, SignIns: x.SignIns})
	}
	for _, s := range d.Sessions {
		out.Sessions = append(out.Sessions, sessionJSON{SID: s.SID, CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(),
			ExpiresAt: s.ExpiresAt.UTC(), IP: s.IP, UserAgent: s.UserAgent})
	}
	for _, s := range d.SignIns {
		out.SignIns = append(out.SignIns, signInJSON{Time: s.Time.UTC(), IP: s.IP, Country: s.Country, City: s.City,
			ClientID: s.ClientID, ACR: s.ACR, Decision: s.Decision, Reasons: s.Reasons})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) writeUser(w http.ResponseWriter, r *http.Request, id string, extra map[string]any) error {
	u, err := h.d.Store.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	j, err := h.userJSON(r.Context(), u)
	if err != nil {
		return err
	}
	out := map[string]any{"user": j}
	for k, v := range extra {
		out[k] = v
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) apiDeleteUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := h.manager(r, p).DeleteUser(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) apiSuspend(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	s, err := h.suspend(r, p, id)
	if err != nil {
		return err
	}
	return h.writeUser(w, r, id, map[string]any{"sessions_ended": s.Sessions, "tokens_revoked": s.Tokens})
}

func (h *Handler) apiUnsuspend(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := h.manager(r, p).UnsuspendUser(r.Context(), id); err != nil {
		return err
	}
	return h.writeUser(w, r, id, nil)
}

// apiReenroll issues a new enrolment link; a body {"send_email": true}
// (optional) mails it instead of answering it.
func (h *Handler) apiReenroll(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	var in struct {
		SendEmail bool `json:"send_email"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	m := h.manager(r, p)
	if in.SendEmail {
		m = m.Emailing()
	}
	nu, err := m.IssueEnrollmentFor(r.Context(), id)
	if err != nil {
		return err
	}
	return h.writeUser(w, r, id, linkJSON(nu, in.SendEmail))
}

func (h *Handler) apiRevokeSessions(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := h.userExists(r.Context(), id); err != nil {
		return err
	}
	n, err := h.manager(r, p).RevokeSessions(r.Context(), id)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]int{"sessions_ended": n})
	return nil
}

func (h *Handler) apiResetTOTP(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := h.manager(r, p).ResetTOTP(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiSetRole gives the user a role: {"role": "auditor"}; "none" (or "")
// takes it away.
func (h *Handler) apiSetRole(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Role *string `json:"role"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	var role string
	ok := in.Role != nil
	if ok {
		role, ok = parseRole(*in.Role)
	}
	if !ok {
		return apiErr(http.StatusBadRequest, "invalid_request", `Send {"role": "none"}, "auditor", "helpdesk" or "admin".`)
	}
	id := r.PathValue("id")
	if err := h.manager(r, p).SetRole(r.Context(), id, role); err != nil {
		return err
	}
	return h.writeUser(w, r, id, nil)
}

// apiSetAdmin is the older form of apiSetRole: {"admin": true} gives the
// role admin; {"admin": false} takes it from an administrator, and leaves
// anyone else's role as it is.
func (h *Handler) apiSetAdmin(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Admin *bool `json:"admin"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Admin == nil {
		return apiErr(http.StatusBadRequest, "invalid_request", `Send {"admin": true} or {"admin": false}.`)
	}
	id := r.PathValue("id")
	err := h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		u, err := h.d.Store.GetUser(ctx, id)
		if err != nil || !*in.Admin && !u.IsAdmin() {
			return err
		}
		return h.manager(r, p).SetRole(ctx, id, roleOf(*in.Admin))
	})
	if err != nil {
		return err
	}
	return h.writeUser(w, r, id, nil)
}

func (h *Handler) apiRevokeSession(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := h.manager(r, p).RevokeSession(r.Context(), r.PathValue("id"), r.PathValue("sid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) apiRenameKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	cred, ok := parseCredID(r.PathValue("credID"))
	if !ok {
		return errNoKey
	}
	if err := h.manager(r, p).RenameKey(r.Context(), r.PathValue("id"), cred, in.Name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) apiRevokeKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	cred, ok := parseCredID(r.PathValue("credID"))
	if !ok {
		return errNoKey
	}
	if err := h.manager(r, p).RevokeKey(r.Context(), r.PathValue("id"), cred); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
