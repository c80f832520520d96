// Package manage holds the operations an administrator performs — create a
// user and their enrolment link, suspend, register an app — so that the CLI
// and (later) the console and the JSON API behave identically. Each
// operation is one transaction together with its audit event. No HTTP here.
package manage

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// Manager performs admin operations as Actor.
type Manager struct {
	Store  storage.Store
	Audit  *audit.Recorder
	Hasher *keys.SecretHasher
	Issuer string
	Actor  string // "cli", or the admin's user id
	Now    func() time.Time
}

// ErrInvalid wraps input errors the caller should show as they are.
var ErrInvalid = errors.New("invalid input")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// EnrollmentLifetime is how long an enrolment link works.
const EnrollmentLifetime = 72 * time.Hour

// NewUser is a created user with the link to hand over.
type NewUser struct {
	User          storage.User
	EnrollmentURL string
	ExpiresAt     time.Time
}

// CreateUser adds a user and returns their single-use enrolment link.
func (m *Manager) CreateUser(ctx context.Context, email, name string, admin bool) (NewUser, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != strings.TrimSpace(email) {
		return NewUser{}, invalid("%q is not an email address", email)
	}
	if len(name) > 200 {
		return NewUser{}, invalid("the name is longer than 200 characters")
	}
	id, err := keys.RandomToken(16)
	if err != nil {
		return NewUser{}, err
	}
	now := m.Now()
	u := storage.User{ID: "u_" + id, Email: strings.ToLower(addr.Address), Name: name, Admin: admin, CreatedAt: now, UpdatedAt: now}
	var out NewUser
	err = m.Store.InTx(ctx, func(ctx context.Context) error {
		if err := m.Store.CreateUser(ctx, u); err != nil {
			if errors.Is(err, storage.ErrAlreadyExists) {
				return invalid("a user with email %s already exists", u.Email)
			}
			return err
		}
		if err := m.Audit.Record(ctx, storage.AuditEvent{Type: audit.UserCreated, Actor: m.Actor, UserID: u.ID,
			Result: audit.Success, Details: map[string]string{"email": u.Email, "admin": fmt.Sprint(admin)}}); err != nil {
			return err
		}
		out, err = m.issueEnrollment(ctx, u)
		return err
	})
	return out, err
}

// IssueEnrollment gives an existing user a new enrolment link (to set a
// new password and authenticator).
func (m *Manager) IssueEnrollment(ctx context.Context, email string) (NewUser, error) {
	var out NewUser
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := m.userByEmail(ctx, email)
		if err != nil {
			return err
		}
		out, err = m.issueEnrollment(ctx, u)
		return err
	})
	return out, err
}

func (m *Manager) issueEnrollment(ctx context.Context, u storage.User) (NewUser, error) {
	token, err := keys.RandomToken(32)
	if err != nil {
		return NewUser{}, err
	}
	now := m.Now()
	e := storage.Enrollment{TokenHash: keys.HashToken(token), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(EnrollmentLifetime)}
	if err := m.Store.CreateEnrollment(ctx, e); err != nil {
		return NewUser{}, err
	}
	if err := m.Audit.Record(ctx, storage.AuditEvent{Type: audit.EnrollmentStarted, Actor: m.Actor, UserID: u.ID,
		Result: audit.Success, Details: map[string]string{"expires_at": e.ExpiresAt.UTC().Format(time.RFC3339)}}); err != nil {
		return NewUser{}, err
	}
	return NewUser{User: u, EnrollmentURL: m.Issuer + "/enroll?token=" + url.QueryEscape(token), ExpiresAt: e.ExpiresAt}, nil
}

func (m *Manager) userByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := m.Store.GetUserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if errors.Is(err, storage.ErrNotFound) {
		return u, invalid("no user has email %s", email)
	}
	return u, err
}

// Suspension is what a suspend ended.
type Suspension struct {
	User     storage.User
	Sessions int
	Tokens   int
}

// SuspendUser disables the account and, in the same transaction, ends
// every browser session and revokes every code and token of theirs: the
// next introspection, refresh or userinfo call anywhere fails.
func (m *Manager) SuspendUser(ctx context.Context, email string) (Suspension, error) {
	var out Suspension
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := m.userByEmail(ctx, email)
		if err != nil {
			return err
		}
		now := m.Now()
		if err := m.Store.UpdateUser(ctx, u.ID, func(x *storage.User) error {
			if x.SuspendedAt.IsZero() {
				x.SuspendedAt = now
			}
			x.UpdatedAt = now
			u = *x
			return nil
		}); err != nil {
			return err
		}
		sids, err := m.Store.DeleteUserSessions(ctx, u.ID)
		if err != nil {
			return err
		}
		n, err := m.Store.RevokeSubject(ctx, u.ID)
		if err != nil {
			return err
		}
		out = Suspension{User: u, Sessions: len(sids), Tokens: n}
		return m.Audit.Record(ctx, storage.AuditEvent{Type: audit.UserSuspended, Actor: m.Actor, UserID: u.ID,
			Result: audit.Success, Details: map[string]string{"sessions_ended": fmt.Sprint(len(sids)), "tokens_revoked": fmt.Sprint(n)}})
	})
	return out, err
}

// ClientSpec describes an app to register.
type ClientSpec struct {
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Public                 bool
	GrantTypes             []string
	MinACR                 string
}

// NewClient is a registered app and, for confidential ones, its secret —
// shown now and never again (only a keyed hash is stored).
type NewClient struct {
	Client storage.Client
	Secret string
}

var knownGrants = []string{"authorization_code", "refresh_token", "client_credentials"}

// RegisterClient validates spec and stores the app.
func (m *Manager) RegisterClient(ctx context.Context, spec ClientSpec) (NewClient, error) {
	if err := validateClient(&spec); err != nil {
		return NewClient{}, err
	}
	id, err := keys.RandomToken(16)
	if err != nil {
		return NewClient{}, err
	}
	now := m.Now()
	c := storage.Client{
		ID: "c_" + id, Name: spec.Name, RedirectURIs: spec.RedirectURIs,
		PostLogoutRedirectURIs: spec.PostLogoutRedirectURIs, GrantTypes: spec.GrantTypes,
		ResponseTypes: []string{"code"}, Public: spec.Public, MinACR: spec.MinACR, TokenFormat: "opaque",
		Scopes:    []string{"openid", "email", "profile", "offline_access"},
		CreatedAt: now, UpdatedAt: now,
	}
	var out NewClient
	if !spec.Public {
		if out.Secret, err = keys.NewSecret(); err != nil {
			return NewClient{}, err
		}
		if c.SecretHash, err = m.Hasher.Hash(ctx, []byte(out.Secret)); err != nil {
			return NewClient{}, err
		}
	}
	out.Client = c
	err = m.Store.InTx(ctx, func(ctx context.Context) error {
		if err := m.Store.CreateClient(ctx, c); err != nil {
			return err
		}
		return m.Audit.Record(ctx, storage.AuditEvent{Type: audit.ClientCreated, Actor: m.Actor, ClientID: c.ID,
			Result: audit.Success, Details: map[string]string{"name": c.Name, "grants": strings.Join(c.GrantTypes, " "),
				"public": fmt.Sprint(c.Public), "min_acr": c.MinACR}})
	})
	return out, err
}

func validateClient(s *ClientSpec) error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" || len(s.Name) > 200 {
		return invalid("a client needs a name of 1 to 200 characters")
	}
	if len(s.GrantTypes) == 0 {
		s.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range s.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			return invalid("unknown grant %q (known: %s)", g, strings.Join(knownGrants, ", "))
		}
	}
	if s.Public && slices.Contains(s.GrantTypes, "client_credentials") {
		return invalid("a public client cannot use client_credentials: it has no secret")
	}
	if slices.Contains(s.GrantTypes, "authorization_code") && len(s.RedirectURIs) == 0 {
		return invalid("the authorization_code grant needs at least one --redirect-uri")
	}
	for _, list := range [][]string{s.RedirectURIs, s.PostLogoutRedirectURIs} {
		for _, u := range list {
			if err := validateRedirect(u); err != nil {
				return err
			}
		}
	}
	if s.MinACR == "" {
		s.MinACR = "mfa"
	}
	if !slices.Contains([]string{"mfa", "phr", "phrh"}, s.MinACR) {
		return invalid("--acr must be mfa, phr or phrh, not %q", s.MinACR)
	}
	return nil
}

// validateRedirect accepts absolute URIs without fragments; plain http
// only for loopback hosts (RFC 8252 native apps, local development).
func validateRedirect(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" && u.Scheme != "" && (u.Scheme == "http" || u.Scheme == "https") {
		return invalid("redirect URI %q is not an absolute URI", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "javascript", "data", "vbscript", "file", "blob", "about":
		// A browser would run or read these instead of handing the code
		// to an app.
		return invalid("redirect URI %q uses the %s: scheme, which no app can receive a code on", raw, u.Scheme)
	}
	if u.Fragment != "" {
		return invalid("redirect URI %q must not have a fragment", raw)
	}
	if u.Scheme == "http" {
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return invalid("redirect URI %q uses plain http on a non-loopback host; use https", raw)
		}
	}
	return nil
}
