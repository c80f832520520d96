package notice

import (
	"context"
	"errors"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/storage"
)

// Alert mail is kept in storage.Meta, one key per administrator, so that
// asking for it needs no schema of its own; the value is "on" or "off".
const alertMailPrefix = "alert-mail:"

func alertMailKey(userID string) string { return alertMailPrefix + userID }

// AlertMail reports whether the user asked for alert mail.
func AlertMail(ctx context.Context, s storage.Meta, userID string) (bool, error) {
	v, err := s.GetMeta(ctx, alertMailKey(userID))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return v == "on", err
}

// SetAlertMail records whether the user wants alert mail. Only a user
// with a console role receives it: one who loses their role stops, and
// starts again only if given a role and still asking.
func SetAlertMail(ctx context.Context, s storage.Meta, userID string, on bool) error {
	v := "off"
	if on {
		v = "on"
	}
	return s.SetMeta(ctx, alertMailKey(userID), v)
}

// alertSummaries put the alerting event types in plain words; a type
// missing here is named by itself.
var alertSummaries = map[string]string{
	audit.RefreshReused:            "A refresh token was used twice",
	audit.SigninDenied:             "A sign-in was denied",
	audit.SigninReported:           "A user reported a sign-in that was not theirs",
	audit.AdminBulkRead:            "An administrator read many users' details in a short time",
	audit.RoleGranted:              "A console role was granted",
	audit.WebAuthnCloneSuspected:   "A security key may have been cloned",
	audit.SigninThrottled:          "Sign-ins were throttled",
	audit.UserSuspended:            "A user was suspended",
	audit.WebAuthnModelCompromised: "A security key was disabled: its model is reported compromised",
}

// alerted queues, in ctx's transaction, one mail of an alerting event to
// every administrator (a user with a console role, not suspended) who
// asked for alert mail.
func (n *Notifier) alerted(ctx context.Context, e storage.AuditEvent) error {
	if n.Mail == nil || !audit.Alerting(e.Type) {
		return nil
	}
	users, err := n.Store.ListUsers(ctx)
	if err != nil {
		return err
	}
	var to []storage.User
	for _, u := range users {
		if u.Role == "" || u.Suspended() {
			continue
		}
		on, err := AlertMail(ctx, n.Store, u.ID)
		if err != nil {
			return err
		}
		if !on {
			continue
		}
		if due, err := n.alertDue(ctx, u.ID, e.Type); err != nil {
			return err
		} else if due {
			to = append(to, u)
		}
	}
	if len(to) == 0 {
		return nil
	}
	who, err := n.emailOf(ctx, e.UserID)
	if err != nil {
		return err
	}
	actor, err := n.emailOf(ctx, e.Actor)
	if err != nil {
		return err
	}
	summary, ok := alertSummaries[e.Type]
	if !ok {
		summary = "Alert " + e.Type
	}
	for _, u := range to {
		msg, err := mail.Alert{Issuer: n.Issuer, Email: u.Email, Name: u.Name, Summary: summary, Type: e.Type,
			Seq: e.Seq, Result: e.Result, User: who, Actor: actor, IP: e.IP, Time: e.Time, Details: e.Details}.Message()
		if err != nil {
			return err
		}
		if err := n.Mail.Enqueue(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

// alertMailEvery bounds the alert mail one administrator gets of one kind:
// a password spray raises sampled alerts by the minute, and a mailbox that
// fills with them is one nobody reads. The audit log has every alert.
const alertMailEvery = 10 * time.Minute

// alertDue reports whether the administrator may be mailed an alert of
// this type now, and if so records that they are, in ctx's transaction.
func (n *Notifier) alertDue(ctx context.Context, userID, typ string) (bool, error) {
	key := "alert-mail-sent:" + userID + ":" + typ
	now := n.Now()
	v, err := n.Store.GetMeta(ctx, key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, err
	}
	if last, perr := time.Parse(time.RFC3339Nano, v); err == nil && perr == nil && now.Sub(last) < alertMailEvery {
		return false, nil
	}
	return true, n.Store.SetMeta(ctx, key, now.UTC().Format(time.RFC3339Nano))
}

// emailOf names a user id by the user's address; anything else (a client,
// "cli", a user since deleted) by itself.
func (n *Notifier) emailOf(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	u, err := n.Store.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return id, nil
	}
	if err != nil {
		return "", err
	}
	return u.Email, nil
}
