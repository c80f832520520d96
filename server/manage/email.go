package manage

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/storage"
)

// ErrNoMail: emailing was asked for, but no mail server is configured.
var ErrNoMail = fmt.Errorf("%w: email is not set up: configure the smtp section to send mail; nothing was changed", ErrInvalid)

// Emailing returns a copy of m that also emails every enrolment link it
// issues to its user, queued in the transaction that issues it. Without a
// mail server (Mail nil) its operations fail with ErrNoMail and change
// nothing.
func (m *Manager) Emailing() *Manager {
	c := *m
	c.emailLinks = true
	return &c
}

// emailLink queues the enrolment mail of nu and records that it did, in
// ctx's transaction.
func (m *Manager) emailLink(ctx context.Context, nu NewUser) error {
	if m.Mail == nil {
		return ErrNoMail
	}
	msg, err := mail.Enrollment{Issuer: m.Issuer, Email: nu.User.Email, Name: nu.User.Name, URL: nu.EnrollmentURL,
		Expires: nu.ExpiresAt, Again: nu.User.Enrolled()}.Message()
	if err != nil {
		return err
	}
	if err := m.Mail.Enqueue(ctx, msg); err != nil {
		return err
	}
	return m.record(ctx, storage.AuditEvent{Type: audit.EnrollmentEmailed, UserID: nu.User.ID,
		Details: map[string]string{"email": nu.User.Email}})
}

// EmailEnrollmentLink emails to the user a link already issued to them
// and still unused — the one the console has just shown — instead of
// issuing another. A token that is not such a link of this user is
// refused as not found.
func (m *Manager) EmailEnrollmentLink(ctx context.Context, userID, token string) (NewUser, error) {
	if m.Mail == nil {
		return NewUser{}, ErrNoMail
	}
	var out NewUser
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := m.Store.GetUser(ctx, userID)
		if err != nil {
			return notFound(err, "no such user")
		}
		e, err := m.Store.GetEnrollment(ctx, keys.HashToken(token), m.Now())
		if errors.Is(err, storage.ErrNotFound) || (err == nil && e.UserID != u.ID) {
			return fmt.Errorf("%w: this enrolment link was used, has expired or is not this user's", ErrNotFound)
		} else if err != nil {
			return err
		}
		out = NewUser{User: u, EnrollmentURL: enrollmentURL(m.Issuer, token), ExpiresAt: e.ExpiresAt}
		return m.emailLink(ctx, out)
	})
	return out, err
}

func enrollmentURL(issuer, token string) string {
	return issuer + "/enroll?token=" + url.QueryEscape(token)
}
