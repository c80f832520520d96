package notice_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/notice"
	"github.com/keygate/keygate/server/risk"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

const issuer = "https://id.example.com"

var now = time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)

// setup is a store with an enrolled user u and one still enrolling, v,
// and a notifier mailing into its outbox.
func setup(t *testing.T) (storage.Store, *notice.Notifier) {
	t.Helper()
	db := sqlitetest.Open(t)
	for _, u := range []storage.User{
		{ID: "u", Email: "ada@example.com", Name: "Ada", EnrolledAt: now, CreatedAt: now},
		{ID: "v", Email: "bob@example.com", CreatedAt: now},
	} {
		if err := db.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	master, err := keys.NewMaster([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	return db, &notice.Notifier{Store: db, Mail: &mail.Queue{Outbox: db, Sealer: master, Now: clock}, Issuer: issuer, Now: clock}
}

// queued counts the mail in the outbox.
func queued(t *testing.T, db storage.Store) int {
	t.Helper()
	ms, err := db.ClaimOutbox(t.Context(), now.Add(time.Hour), now.Add(2*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.Kind == mail.OutboxKind {
			n++
		}
	}
	return n
}

func TestSignedIn(t *testing.T) {
	signIn := notice.SignIn{UserID: "u", SID: "sid-1", DeviceID: "dev-1", Time: now, IP: "192.0.2.20",
		Place: risk.Place{Country: "PL", City: "Szczecin"}, Device: "Firefox on Linux"}
	for _, c := range []struct {
		name    string
		reasons []risk.Reason
		mailed  bool
	}{
		{"a new country is told", []risk.Reason{{Code: risk.CodeNewCountry, Text: "new country: PL"}}, true},
		{"a new device is told", []risk.Reason{{Code: risk.CodeNewDevice, Text: "new device"}}, true},
		{"an unusual hour alone is not", []risk.Reason{{Code: risk.CodeUnusualHour, Text: "unusual hour"}}, false},
		{"a sign-in with nothing new is not", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, n := setup(t)
			s := signIn
			s.Reasons = c.reasons
			if err := n.SignedIn(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			if got := queued(t, db); got != map[bool]int{true: 1, false: 0}[c.mailed] {
				t.Fatalf("%d messages queued", got)
			}
		})
	}

	t.Run("in a transaction that rolls back, no mail remains", func(t *testing.T) {
		db, n := setup(t)
		s := signIn
		s.Reasons = []risk.Reason{{Code: risk.CodeNewDevice, Text: "new device"}}
		rollback := context.Canceled
		err := db.InTx(t.Context(), func(ctx context.Context) error {
			if err := n.SignedIn(ctx, s); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("InTx = %v", err)
		}
		if got := queued(t, db); got != 0 {
			t.Fatalf("%d messages outlived the rollback", got)
		}
	})

	t.Run("without a mail server nothing is queued and no link made", func(t *testing.T) {
		db, n := setup(t)
		n.Mail = nil
		s := signIn
		s.Reasons = []risk.Reason{{Code: risk.CodeNewDevice, Text: "new device"}}
		if err := n.SignedIn(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		if got := queued(t, db); got != 0 {
			t.Fatalf("%d messages queued", got)
		}
	})
}

func TestRecorded(t *testing.T) {
	for _, c := range []struct {
		name   string
		event  storage.AuditEvent
		mailed bool
	}{
		{"a key added is told", storage.AuditEvent{Type: audit.WebAuthnRegistered, UserID: "u", Actor: "u", Result: audit.Success,
			Details: map[string]string{"name": "YubiKey"}}, true},
		{"a role granted is told", storage.AuditEvent{Type: audit.RoleGranted, UserID: "u", Actor: "cli", Result: audit.Success,
			Details: map[string]string{"role": "admin"}}, true},
		{"recovery codes regenerated are told", storage.AuditEvent{Type: audit.RecoveryCodesIssued, UserID: "u", Actor: "u",
			Result: audit.Success, Details: map[string]string{"reason": "regenerated"}}, true},
		{"recovery codes issued at enrolment are not", storage.AuditEvent{Type: audit.RecoveryCodesIssued, UserID: "u", Actor: "u",
			Result: audit.Success}, false},
		{"a change to a user still enrolling is not", storage.AuditEvent{Type: audit.WebAuthnRegistered, UserID: "v", Actor: "v",
			Result: audit.Success}, false},
		{"a failed attempt is not", storage.AuditEvent{Type: audit.WebAuthnRegistered, UserID: "u", Actor: "u", Result: audit.Failure}, false},
		{"an event of no one is not", storage.AuditEvent{Type: audit.WebAuthnRegistered, Result: audit.Success}, false},
		{"a user that is gone is not", storage.AuditEvent{Type: audit.RoleGranted, UserID: "gone", Result: audit.Success}, false},
		{"a sign-in is not (SignedIn tells of those)", storage.AuditEvent{Type: audit.SigninSucceeded, UserID: "u", Result: audit.Success}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, n := setup(t)
			c.event.Time = now
			if err := n.Recorded(t.Context(), c.event); err != nil {
				t.Fatal(err)
			}
			if got := queued(t, db); got != map[bool]int{true: 1, false: 0}[c.mailed] {
				t.Fatalf("%d messages queued", got)
			}
		})
	}
}

func TestAlertMailToAdministrators(t *testing.T) {
	db, n := setup(t)
	for _, u := range []storage.User{
		{ID: "a", Email: "root@example.com", Role: storage.RoleAdmin, CreatedAt: now},                   // asks
		{ID: "b", Email: "audit@example.com", Role: storage.RoleAuditor, CreatedAt: now},                // does not
		{ID: "c", Email: "gone@example.com", Role: storage.RoleAdmin, SuspendedAt: now, CreatedAt: now}, // asks, suspended
		{ID: "d", Email: "former@example.com", CreatedAt: now},                                          // asked, lost the role
	} {
		if err := db.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "c", "d"} {
		if err := notice.SetAlertMail(t.Context(), db, id, true); err != nil {
			t.Fatal(err)
		}
	}
	denied := storage.AuditEvent{Type: audit.SigninDenied, UserID: "u", Result: audit.Denied, Time: now}
	if err := n.Recorded(t.Context(), denied); err != nil {
		t.Fatal(err)
	}
	if got := queued(t, db); got != 1 {
		t.Fatalf("%d mails for one alert, want 1 (to the one unsuspended administrator who asked)", got)
	}
	if err := n.Recorded(t.Context(), storage.AuditEvent{Type: audit.SigninSucceeded, UserID: "u", Result: audit.Success, Time: now}); err != nil {
		t.Fatal(err)
	}
	if got := queued(t, db); got != 0 {
		t.Fatalf("%d mails for an event that is no alert", got)
	}
	// A spray raises alerts by the minute: one mail of a kind per
	// administrator every 10 minutes, whatever comes in between.
	for range 5 {
		if err := n.Recorded(t.Context(), denied); err != nil {
			t.Fatal(err)
		}
	}
	if got := queued(t, db); got != 0 {
		t.Fatalf("%d mails for five more alerts of the kind just mailed, want none", got)
	}
	if err := n.Recorded(t.Context(), storage.AuditEvent{Type: audit.UserSuspended, UserID: "u", Result: audit.Success, Time: now}); err != nil {
		t.Fatal(err)
	}
	if got := queued(t, db); got != 1 {
		t.Fatalf("%d mails for an alert of another kind, want 1", got)
	}
	n.Now = func() time.Time { return now.Add(10 * time.Minute) }
	if err := n.Recorded(t.Context(), denied); err != nil {
		t.Fatal(err)
	}
	if got := queued(t, db); got != 1 {
		t.Fatalf("%d mails for the kind 10 minutes later, want 1", got)
	}
	if err := notice.SetAlertMail(t.Context(), db, "a", false); err != nil {
		t.Fatal(err)
	}
	if err := n.Recorded(t.Context(), denied); err != nil {
		t.Fatal(err)
	}
	if got := queued(t, db); got != 0 {
		t.Fatalf("%d mails after the administrator stopped them", got)
	}
}
