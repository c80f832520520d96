package notice

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/risk"
	"github.com/keygate/keygate/storage"
)

// ReportLifetime is how long a "this wasn't me" link works: long enough
// for someone back from a week away to read their mail.
const ReportLifetime = 7 * 24 * time.Hour

// Notifier queues notices to users.
type Notifier struct {
	Store  storage.Store
	Mail   *mail.Queue // nil: no mail server; nothing is queued
	Issuer string
	Now    func() time.Time
}

// SignIn is a completed sign-in, as login saw it.
type SignIn struct {
	UserID   string
	ClientID string // "" for keygate itself
	SID      string // the session it signed in
	DeviceID string // the device cookie's id
	Time     time.Time
	Place    risk.Place
	IP       string
	Device   string // the browser's family, e.g. "Chrome on Linux"
	Reasons  []risk.Reason
}

// noticed reports whether a sign-in is one the user is told of: from a
// device or a country they never signed in from.
func (s SignIn) noticed() bool {
	return slices.ContainsFunc(s.Reasons, func(r risk.Reason) bool {
		return r.Code == risk.CodeNewDevice || r.Code == risk.CodeNewCountry
	})
}

// SignedIn queues, in ctx's transaction, the notice of a new-looking
// sign-in with its "this wasn't me" link; other sign-ins it leaves alone.
func (n *Notifier) SignedIn(ctx context.Context, s SignIn) error {
	if n.Mail == nil || !s.noticed() || s.SID == "" {
		return nil
	}
	u, err := n.Store.GetUser(ctx, s.UserID)
	if err != nil {
		return err
	}
	token, err := keys.RandomToken(32)
	if err != nil {
		return err
	}
	now := n.Now()
	l := storage.Link{TokenHash: keys.HashToken(token), Purpose: storage.LinkSignInReport, UserID: u.ID,
		SID: s.SID, DeviceID: s.DeviceID, CreatedAt: now, ExpiresAt: now.Add(ReportLifetime)}
	if err := n.Store.CreateLink(ctx, l); err != nil {
		return err
	}
	app := ""
	if s.ClientID != "" {
		c, err := n.Store.GetClient(ctx, s.ClientID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		app = c.Name
	}
	texts := make([]string, len(s.Reasons))
	for i, r := range s.Reasons {
		texts[i] = r.Text
	}
	msg, err := mail.SignInNotice{Issuer: n.Issuer, Email: u.Email, Name: u.Name, Time: s.Time, Place: placeText(s.Place),
		IP: s.IP, Device: s.Device, App: app, Reasons: texts,
		ReportURL: ReportURL(n.Issuer, token), ReportExpires: l.ExpiresAt}.Message()
	if err != nil {
		return err
	}
	return n.Mail.Enqueue(ctx, msg)
}

// ReportURL is the "this wasn't me" link of token.
func ReportURL(issuer, token string) string {
	return issuer + reportPath + "?token=" + url.QueryEscape(token)
}

// placeText says where an address is, as precisely as keygate knows.
func placeText(p risk.Place) string {
	s := p.City
	if p.Country != "" {
		if s != "" {
			s += ", "
		}
		s += p.Country
	}
	if p.Network != "" {
		if s != "" {
			s += ", "
		}
		s += "network " + p.Network
	}
	return s
}

// changes are the audited events a user is told of, in keygate's words;
// the detail names what changed (from the event's details), if anything.
var changes = map[string]struct{ summary, detail string }{
	audit.WebAuthnRegistered:  {"A security key or passkey was added to your account", "name"},
	audit.WebAuthnRemoved:     {"A security key or passkey was removed from your account", "name"},
	audit.WebAuthnRevoked:     {"A security key or passkey of your account was disabled", "name"},
	audit.TOTPEnrolled:        {"An authenticator app was added to your account", ""},
	audit.TOTPReset:           {"The authenticator app was removed from your account", ""},
	audit.RecoveryCodesIssued: {"New recovery codes were made for your account; the old ones no longer work", ""},
	audit.RoleGranted:         {"Your account was given a role in keygate's administration", "role"},
	audit.PasswordReset:       {"The password of your account was changed", ""},
}

// Recorded is the audit recorder's hook: it queues the notice of a change
// to a user's account, in the event's transaction. A user who has not
// finished enrolling is not told: they have no way in to protect yet, and
// their first mail is their enrolment link.
//
// It also mails every alerting event to the administrators who asked for
// it (alert.go).
func (n *Notifier) Recorded(ctx context.Context, e storage.AuditEvent) error {
	if err := n.alerted(ctx, e); err != nil {
		return err
	}
	c, ok := changes[e.Type]
	if n.Mail == nil || !ok || e.UserID == "" || e.Result != audit.Success {
		return nil
	}
	// The codes issued with a first factor are part of enrolling; only
	// new ones replacing old ones are news.
	if e.Type == audit.RecoveryCodesIssued && e.Details["reason"] != "regenerated" {
		return nil
	}
	u, err := n.Store.GetUser(ctx, e.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !u.Enrolled() {
		return nil
	}
	detail := ""
	if c.detail != "" {
		detail = e.Details[c.detail]
	}
	msg, err := mail.AccountChange{Issuer: n.Issuer, Email: u.Email, Name: u.Name, Summary: c.summary, Detail: detail,
		Time: e.Time, ByAdmin: e.Actor != e.UserID}.Message()
	if err != nil {
		return err
	}
	return n.Mail.Enqueue(ctx, msg)
}
