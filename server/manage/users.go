package manage

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// EnrollmentLifetime is how long an enrolment link works.
const EnrollmentLifetime = 72 * time.Hour

// NewUser is a created user with the link to hand over.
type NewUser struct {
	User          storage.User
	EnrollmentURL string
	ExpiresAt     time.Time
}

// UserSpec describes a user to add.
type UserSpec struct {
	Email, Name string
	Role        string   // storage.RoleAdmin, RoleHelpdesk, RoleAuditor or ""
	Groups      []string // names of existing groups to join
}

// CreateUser adds a user, with their role and groups, and returns their
// single-use enrolment link — all in one transaction.
func (m *Manager) CreateUser(ctx context.Context, spec UserSpec) (NewUser, error) {
	u, err := m.newUser(spec)
	if err != nil {
		return NewUser{}, err
	}
	var out NewUser
	err = m.Store.InTx(ctx, func(ctx context.Context) error {
		out, err = m.createUser(ctx, u, spec.Groups)
		return err
	})
	return out, err
}

// newUser checks spec and makes the user it describes.
func (m *Manager) newUser(spec UserSpec) (storage.User, error) {
	addr, err := mail.ParseAddress(spec.Email)
	if err != nil || addr.Address != strings.TrimSpace(spec.Email) {
		return storage.User{}, invalid("%q is not an email address", spec.Email)
	}
	if len(spec.Name) > 200 {
		return storage.User{}, invalid("the name is longer than 200 characters")
	}
	// A name is one line: it goes into mail headers and pages.
	if strings.ContainsFunc(spec.Name, unicode.IsControl) {
		return storage.User{}, invalid("the name must not contain line breaks or other control characters")
	}
	if err := validRole(spec.Role); err != nil {
		return storage.User{}, err
	}
	id, err := keys.RandomToken(16)
	if err != nil {
		return storage.User{}, err
	}
	now := m.Now()
	return storage.User{ID: "u_" + id, Email: strings.ToLower(addr.Address), Name: spec.Name, Role: spec.Role,
		CreatedAt: now, UpdatedAt: now}, nil
}

// createUser stores u, makes them a member of the named groups and issues
// their enrolment link, in ctx's transaction.
func (m *Manager) createUser(ctx context.Context, u storage.User, groups []string) (NewUser, error) {
	if err := m.Store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return NewUser{}, invalid("a user with email %s already exists", u.Email)
		}
		return NewUser{}, err
	}
	if err := m.record(ctx, storage.AuditEvent{Type: audit.UserCreated, UserID: u.ID,
		Result: audit.Success, Details: map[string]string{"email": u.Email, "role": u.Role}}); err != nil {
		return NewUser{}, err
	}
	if u.Role != "" {
		if err := m.record(ctx, storage.AuditEvent{Type: audit.RoleGranted, UserID: u.ID,
			Details: map[string]string{"role": u.Role}}); err != nil {
			return NewUser{}, err
		}
	}
	for _, name := range groups {
		g, err := m.groupByName(ctx, name)
		if err != nil {
			return NewUser{}, err
		}
		if err := m.addMember(ctx, g, u); err != nil {
			return NewUser{}, err
		}
	}
	return m.issueEnrollment(ctx, u)
}

func validRole(role string) error {
	if role != "" && !slices.Contains(storage.Roles, role) {
		return invalid("the role must be admin, helpdesk or auditor, not %q", role)
	}
	return nil
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
	if err := m.record(ctx, storage.AuditEvent{Type: audit.EnrollmentStarted, UserID: u.ID,
		Result: audit.Success, Details: map[string]string{"expires_at": e.ExpiresAt.UTC().Format(time.RFC3339)}}); err != nil {
		return NewUser{}, err
	}
	nu := NewUser{User: u, EnrollmentURL: enrollmentURL(m.Issuer, token), ExpiresAt: e.ExpiresAt}
	if m.emailLinks {
		if err := m.emailLink(ctx, nu); err != nil {
			return NewUser{}, err
		}
	}
	return nu, nil
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

// SuspendUser disables the account of email; see SuspendUserID.
func (m *Manager) SuspendUser(ctx context.Context, email string) (Suspension, error) {
	var out Suspension
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := m.userByEmail(ctx, email)
		if err != nil {
			return err
		}
		out, err = m.SuspendUserID(ctx, u.ID)
		return err
	})
	return out, err
}

// SuspendUserID disables the account and, in the same transaction, ends
// every browser session and revokes every code and token of theirs: the
// next introspection, refresh or userinfo call anywhere fails. Apps with a
// back-channel logout URI are told of each ended session.
func (m *Manager) SuspendUserID(ctx context.Context, userID string) (Suspension, error) {
	var out Suspension
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		now := m.Now()
		var u storage.User
		if err := m.Store.UpdateUser(ctx, userID, func(x *storage.User) error {
			if x.SuspendedAt.IsZero() {
				x.SuspendedAt = now
			}
			x.UpdatedAt = now
			u = *x
			return nil
		}); err != nil {
			return notFound(err, "no such user")
		}
		sids, n, err := m.cutOff(ctx, u.ID)
		if err != nil {
			return err
		}
		out = Suspension{User: u, Sessions: len(sids), Tokens: n}
		return m.record(ctx, storage.AuditEvent{Type: audit.UserSuspended, UserID: u.ID,
			Details: map[string]string{"sessions_ended": fmt.Sprint(len(sids)), "tokens_revoked": fmt.Sprint(n)}})
	})
	return out, err
}

// cutOff ends every session and token of the user and queues the
// back-channel logouts.
func (m *Manager) cutOff(ctx context.Context, userID string) (sids []string, tokens int, err error) {
	if sids, err = m.Store.DeleteUserSessions(ctx, userID); err != nil {
		return nil, 0, err
	}
	if tokens, err = m.Store.RevokeSubject(ctx, userID); err != nil {
		return nil, 0, err
	}
	return sids, tokens, m.queueBackchannelLogout(ctx, userID, sids)
}

// UnsuspendUser lets the user sign in again. Their old sessions and tokens
// stay dead: they sign in afresh.
func (m *Manager) UnsuspendUser(ctx context.Context, userID string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		if err := m.Store.UpdateUser(ctx, userID, func(x *storage.User) error {
			x.SuspendedAt = time.Time{}
			x.UpdatedAt = m.Now()
			return nil
		}); err != nil {
			return notFound(err, "no such user")
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.UserUnsuspended, UserID: userID})
	})
}

// IssueEnrollmentFor gives the user a new single-use enrolment link.
func (m *Manager) IssueEnrollmentFor(ctx context.Context, userID string) (NewUser, error) {
	var out NewUser
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := m.Store.GetUser(ctx, userID)
		if err != nil {
			return notFound(err, "no such user")
		}
		out, err = m.issueEnrollment(ctx, u)
		return err
	})
	return out, err
}

// errLastAdmin: keygate always keeps an administrator who can sign in.
var errLastAdmin = fmt.Errorf("%w: this is the last active administrator; make someone else an administrator first", ErrInvalid)

// activeAdmins counts administrators who are not suspended.
func (m *Manager) activeAdmins(ctx context.Context) (int, error) {
	users, err := m.Store.ListUsers(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range users {
		if u.IsAdmin() && !u.Suspended() {
			n++
		}
	}
	return n, nil
}

// SetRole gives the user a role ("" for none), refusing to take the last
// active administrator's away. Granting a role raises an alert: it is how
// a taken-over console account would make itself a second one.
func (m *Manager) SetRole(ctx context.Context, userID, role string) error {
	if err := validRole(role); err != nil {
		return err
	}
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := m.Store.GetUser(ctx, userID)
		if err != nil {
			return notFound(err, "no such user")
		}
		if u.Role == role {
			return nil
		}
		if u.IsAdmin() && !u.Suspended() {
			if n, err := m.activeAdmins(ctx); err != nil {
				return err
			} else if n <= 1 {
				return errLastAdmin
			}
		}
		if err := m.Store.UpdateUser(ctx, userID, func(x *storage.User) error {
			x.Role = role
			x.UpdatedAt = m.Now()
			return nil
		}); err != nil {
			return err
		}
		if role == "" {
			return m.record(ctx, storage.AuditEvent{Type: audit.RoleRevoked, UserID: userID,
				Details: map[string]string{"role": u.Role}})
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.RoleGranted, UserID: userID,
			Details: map[string]string{"role": role, "previous": u.Role}})
	})
}

// DeleteUser ends everything of the user and deletes them (their keys,
// codes and history go with them; the audit log keeps their events).
func (m *Manager) DeleteUser(ctx context.Context, userID string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := m.Store.GetUser(ctx, userID)
		if err != nil {
			return notFound(err, "no such user")
		}
		if u.IsAdmin() && !u.Suspended() {
			if n, err := m.activeAdmins(ctx); err != nil {
				return err
			} else if n <= 1 {
				return errLastAdmin
			}
		}
		if _, _, err := m.cutOff(ctx, userID); err != nil {
			return err
		}
		if err := m.Store.DeleteUser(ctx, userID); err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.UserDeleted, UserID: userID,
			Details: map[string]string{"email": u.Email}})
	})
}

// RevokeSession ends one browser session of the user and every token
// issued from it.
func (m *Manager) RevokeSession(ctx context.Context, userID, sid string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		owner, err := m.Store.DeleteSessionBySID(ctx, sid)
		if err != nil {
			return notFound(err, "no such session")
		}
		if owner != userID {
			return fmt.Errorf("%w: that session belongs to another user", ErrInvalid)
		}
		n, err := m.Store.RevokeSession(ctx, sid)
		if err != nil {
			return err
		}
		if err := m.queueBackchannelLogout(ctx, userID, []string{sid}); err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.SessionRevoked, UserID: userID,
			Details: map[string]string{"sid": shortID(sid), "tokens_revoked": fmt.Sprint(n)}})
	})
}

// SignOut ends the user's own browser session sid at their request (from
// keygate's sign-out, or an app's RP-initiated logout, clientID): the
// session row, every token issued from it, the back-channel logouts and
// the audit event, in one transaction. A request that is writing a code
// for the session then either commits first, and its code is revoked with
// the rest, or finds the session gone. A session already ended is not an
// error: its tokens are revoked again, which changes nothing, and ended
// says it was not this call that ended it.
func (m *Manager) SignOut(ctx context.Context, userID, sid, clientID string) (ended bool, err error) {
	err = m.Store.InTx(ctx, func(ctx context.Context) error {
		owner, err := m.Store.DeleteSessionBySID(ctx, sid)
		ended = err == nil
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		case owner != userID:
			return fmt.Errorf("%w: that session belongs to another user", ErrInvalid)
		}
		n, err := m.Store.RevokeSession(ctx, sid)
		if err != nil {
			return err
		}
		if ended {
			if err := m.queueBackchannelLogout(ctx, userID, []string{sid}); err != nil {
				return err
			}
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.SignedOut, UserID: userID, ClientID: clientID,
			Details: map[string]string{"sid": shortID(sid), "tokens_revoked": fmt.Sprint(n), "ended": fmt.Sprint(ended)}})
	})
	return ended && err == nil, err
}

// RevokeSessions ends every session and token of the user (sign out
// everywhere) without suspending them.
func (m *Manager) RevokeSessions(ctx context.Context, userID string) (int, error) {
	var ended int
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		sids, n, err := m.cutOff(ctx, userID)
		if err != nil {
			return err
		}
		ended = len(sids)
		return m.record(ctx, storage.AuditEvent{Type: audit.SessionRevoked, UserID: userID,
			Details: map[string]string{"sessions_ended": fmt.Sprint(len(sids)), "tokens_revoked": fmt.Sprint(n)}})
	})
	return ended, err
}

// ResetTOTP removes the user's authenticator app; they enrol it again
// through an enrolment link.
func (m *Manager) ResetTOTP(ctx context.Context, userID string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		if err := m.Store.DeleteTOTP(ctx, userID); err != nil {
			return notFound(err, "the user has no authenticator app")
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.TOTPReset, UserID: userID})
	})
}

// RenameKey renames one of the user's security keys.
func (m *Manager) RenameKey(ctx context.Context, userID string, credID []byte, name string) error {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: a key name has 1 to 64 characters", ErrInvalid)
	}
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		c, err := m.ownedKey(ctx, userID, credID)
		if err != nil {
			return err
		}
		if err := m.Store.RenameWebAuthnCredential(ctx, credID, name); err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.WebAuthnRenamed, UserID: userID,
			Details: map[string]string{"from": c.Name, "to": name}})
	})
}

// RevokeKey disables one of the user's security keys; it stays listed,
// with the reason, so the user knows why it stopped working.
func (m *Manager) RevokeKey(ctx context.Context, userID string, credID []byte) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		c, err := m.ownedKey(ctx, userID, credID)
		if err != nil {
			return err
		}
		if err := m.Store.DisableWebAuthnCredential(ctx, credID, "revoked by an administrator", m.Now()); err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.WebAuthnRevoked, UserID: userID,
			Details: map[string]string{"name": c.Name}})
	})
}

func (m *Manager) ownedKey(ctx context.Context, userID string, credID []byte) (storage.WebAuthnCredential, error) {
	c, err := m.Store.GetWebAuthnCredential(ctx, credID)
	if err != nil {
		return c, notFound(err, "no such key")
	}
	if c.UserID != userID {
		return c, fmt.Errorf("%w: no such key", ErrInvalid)
	}
	return c, nil
}

// ErrNotFound wraps a missing thing the caller should show as 404.
var ErrNotFound = errors.New("not found")

// notFound turns storage's not-found into a caller-facing one.
func notFound(err error, what string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return err
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
