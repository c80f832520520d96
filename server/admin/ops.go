package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// Operations shared by the pages and the API. Every change is a call to
// manage.Manager acting as the principal, which audits it; what is here
// are the console's own extra checks and the reads.

// userDetail is everything the console shows about one user.
type userDetail struct {
	User          storage.User
	Keys          []storage.WebAuthnCredential
	TOTP          storage.TOTPCredential
	HasTOTP       bool
	RecoveryCodes int
	Devices       []storage.Device
	Sessions      []storage.BrowserSession // live ones only
	SignIns       []storage.SignInRecord
	Groups        []storage.Group
}

// recentSignIns is how many sign-ins the user page lists.
const recentSignIns = 20

// loadUser reads one user's details and counts the read (bulkread.go).
func (h *Handler) loadUser(r *http.Request, p *principal, id string) (userDetail, error) {
	ctx := r.Context()
	var d userDetail
	var err error
	if d.User, err = h.d.Store.GetUser(ctx, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return d, httpx.Errorf(http.StatusNotFound, "No such user.", nil)
		}
		return d, err
	}
	if err := h.countRead(r, p, readUser, id); err != nil {
		return d, err
	}
	if d.Keys, err = h.d.Store.ListWebAuthnCredentials(ctx, id); err != nil {
		return d, err
	}
	d.TOTP, err = h.d.Store.GetTOTP(ctx, id)
	switch {
	case err == nil:
		d.HasTOTP = true
	case !errors.Is(err, storage.ErrNotFound):
		return d, err
	}
	if d.RecoveryCodes, err = h.d.Store.CountRecoveryCodes(ctx, id); err != nil {
		return d, err
	}
	if d.Devices, err = h.d.Store.ListUserDevices(ctx, id); err != nil {
		return d, err
	}
	sessions, err := h.d.Store.ListUserSessions(ctx, id)
	if err != nil {
		return d, err
	}
	now := h.d.Now()
	for _, s := range sessions {
		if s.ExpiresAt.After(now) {
			d.Sessions = append(d.Sessions, s)
		}
	}
	if d.SignIns, err = h.d.Store.RecentSignIns(ctx, id, recentSignIns); err != nil {
		return d, err
	}
	if d.Groups, err = h.d.Store.ListUserGroups(ctx, id); err != nil {
		return d, err
	}
	return d, nil
}

// totpStatus describes the authenticator app: "none", "pending" or
// "confirmed".
func (d userDetail) totpStatus() string {
	switch {
	case !d.HasTOTP:
		return "none"
	case d.TOTP.ConfirmedAt.IsZero():
		return "pending"
	}
	return "confirmed"
}

// createUser refuses a taken email as a conflict before asking manage
// (which would report it as invalid input). Creating a user with a role
// grants it, and with groups changes who gets into which app: each needs
// the permission its own route would.
// createUser adds a user for p; emailed also mails their enrolment link.
func (h *Handler) createUser(r *http.Request, p *principal, spec manage.UserSpec, emailed bool) (manage.NewUser, error) {
	switch {
	case spec.Role != "" && !p.may(setRoles):
		return manage.NewUser{}, httpx.Errorf(http.StatusForbidden, "Your role ("+p.User.Role+") may not grant roles.", nil)
	case len(spec.Groups) > 0 && !p.may(editMembers):
		return manage.NewUser{}, httpx.Errorf(http.StatusForbidden, "Your role ("+p.User.Role+") may not add users to groups.", nil)
	}
	spec.Email, spec.Name = strings.TrimSpace(spec.Email), strings.TrimSpace(spec.Name)
	if _, err := h.d.Store.GetUserByEmail(r.Context(), strings.ToLower(spec.Email)); err == nil {
		return manage.NewUser{}, httpx.Errorf(http.StatusConflict, "A user with email "+strings.ToLower(spec.Email)+" already exists.", nil)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return manage.NewUser{}, err
	}
	m := h.manager(r, p)
	if emailed {
		m = m.Emailing()
	}
	return m.CreateUser(r.Context(), spec)
}

var (
	errSuspendSelf = httpx.Errorf(http.StatusBadRequest,
		"You cannot suspend your own account. Ask another administrator.", nil)
	errLastAdmin = httpx.Errorf(http.StatusBadRequest,
		"This is the last active administrator; make someone else an administrator first.", nil)
)

// suspend suspends the user unless that would leave keygate without an
// active administrator (manage refuses that for demotion and deletion
// only). The check and the suspension share one write transaction.
func (h *Handler) suspend(r *http.Request, p *principal, id string) (manage.Suspension, error) {
	if id == p.User.ID {
		return manage.Suspension{}, errSuspendSelf
	}
	var out manage.Suspension
	err := h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		u, err := h.d.Store.GetUser(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return httpx.Errorf(http.StatusNotFound, "No such user.", nil)
		} else if err != nil {
			return err
		}
		if u.IsAdmin() && !u.Suspended() {
			users, err := h.d.Store.ListUsers(ctx)
			if err != nil {
				return err
			}
			active := 0
			for _, x := range users {
				if x.IsAdmin() && !x.Suspended() {
					active++
				}
			}
			if active <= 1 {
				return errLastAdmin
			}
		}
		out, err = h.manager(r, p).SuspendUserID(ctx, id)
		return err
	})
	return out, err
}

// userExists turns an unknown user id into a 404 before an operation
// that would not notice (revoking the sessions of nobody succeeds).
func (h *Handler) userExists(ctx context.Context, id string) error {
	_, err := h.d.Store.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return httpx.Errorf(http.StatusNotFound, "No such user.", nil)
	}
	return err
}

// clientSpec is an app's settings as the forms and the API give them.
type clientSpec struct {
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	Public                 bool
	MinACR                 string
	MaxAuthAge             string
	AccessTokenTTL         string
	RefreshTokenTTL        string
	BackchannelLogoutURI   string
	AdminAPI               bool
	TokenFormat            string
	IDTokenAlg             string
	DenyRisky              bool
	Audience               []string
	// AllowedGroups are group names; nil keeps an app's current ones
	// (the API's PUT without the field), empty means none.
	AllowedGroups []string
}

func (s clientSpec) spec() (manage.ClientSpec, error) {
	out := manage.ClientSpec{Name: s.Name, RedirectURIs: s.RedirectURIs, PostLogoutRedirectURIs: s.PostLogoutRedirectURIs,
		GrantTypes: s.GrantTypes, Public: s.Public, MinACR: s.MinACR,
		BackchannelLogoutURI: strings.TrimSpace(s.BackchannelLogoutURI), AdminAPI: s.AdminAPI,
		TokenFormat: s.TokenFormat, IDTokenAlg: s.IDTokenAlg, DenyRisky: s.DenyRisky, Audience: s.Audience, AllowedGroups: s.AllowedGroups}
	for _, f := range []struct {
		name, value string
		to          *time.Duration
	}{
		{"maximum authentication age", s.MaxAuthAge, &out.MaxAuthAge},
		{"access token lifetime", s.AccessTokenTTL, &out.AccessTokenTTL},
		{"refresh token lifetime", s.RefreshTokenTTL, &out.RefreshTokenTTL},
	} {
		d, ok := duration(f.value)
		if !ok {
			return out, httpx.Errorf(http.StatusBadRequest,
				fmt.Sprintf("The %s %q is not a duration: write e.g. 15m, 8h or 7d.", f.name, f.value), nil)
		}
		*f.to = d
	}
	return out, nil
}

// overlaps are the rotation overlaps the console offers.
var overlaps = []struct {
	Value, Label string
	D            time.Duration
}{
	{"0", "None: the old secret stops now, with the service tokens it obtained (for a leaked secret)", 0},
	{"1h", "1 hour", time.Hour},
	{"24h", "24 hours", 24 * time.Hour},
	{"7d", "7 days", 7 * 24 * time.Hour},
}

// getClient loads an app or answers 404.
func (h *Handler) getClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := h.d.Store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return c, httpx.Errorf(http.StatusNotFound, "No such app.", nil)
	}
	return c, err
}

// roleOf is the role PUT users/{id}/admin means: admin, or none.
func roleOf(admin bool) string {
	if admin {
		return storage.RoleAdmin
	}
	return ""
}
