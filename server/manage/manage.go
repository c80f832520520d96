// Package manage holds the operations an administrator performs — create a
// user and their enrolment link, suspend, register an app, manage groups
// and roles — so that the CLI, the console and the JSON API behave
// identically. Each operation is one transaction together with its audit
// event, and every kill action (suspend, end sessions, sign out, disable an
// app, rotate its secret, remove a group member) revokes what it ends in
// that same transaction. No HTTP here.
package manage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/storage"
)

// Manager performs admin operations as Actor.
type Manager struct {
	Store  storage.Store
	Audit  *audit.Recorder
	Hasher *keys.SecretHasher
	Issuer string
	Actor  string // "cli", or the admin's user id
	// IP and UserAgent of the request that asked, when there is one.
	IP, UserAgent string
	Now           func() time.Time
	// Mail queues email; nil when no mail server is configured.
	Mail *mail.Queue
	// emailLinks: every enrolment link issued is also emailed (Emailing).
	emailLinks bool
}

// As returns a copy acting for actor from a request's address and agent.
func (m *Manager) As(actor, ip, userAgent string) *Manager {
	c := *m
	c.Actor, c.IP, c.UserAgent = actor, ip, userAgent
	return &c
}

// record writes an audit event of this manager's actor in ctx's transaction.
func (m *Manager) record(ctx context.Context, e storage.AuditEvent) error {
	e.Actor, e.IP, e.UserAgent = m.Actor, m.IP, m.UserAgent
	if e.Result == "" {
		e.Result = audit.Success
	}
	return m.Audit.Record(ctx, e)
}

// ErrInvalid wraps input errors the caller should show as they are.
var ErrInvalid = errors.New("invalid input")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}
