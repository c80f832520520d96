package manage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/mail/mailtest"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
)

// mailing is a manager that may email, a real SMTP server, and the outbox
// deliverer that sends to it.
type mailing struct {
	m    *manage.Manager
	s    *sqlite.Store
	smtp *mailtest.Server
	d    *audit.Deliverer
}

func newMailing(t *testing.T) mailing {
	t.Helper()
	m, s := newManager(t)
	master, err := keys.NewMaster(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	m.Mail = &mail.Queue{Outbox: s, Sealer: master, Now: m.Now}
	srv := mailtest.Start(t)
	sender := &mail.Sender{Config: servertest.MailConfig(srv).WithDefaults(), Sealer: master, Now: m.Now}
	d := &audit.Deliverer{DB: s, Logger: slog.New(slog.DiscardHandler), Now: m.Now,
		Senders: map[string]func(context.Context, storage.OutboxMessage) error{mail.OutboxKind: sender.Send}}
	return mailing{m: m, s: s, smtp: srv, d: d}
}

// deliver runs the deliverer once and returns what the mail server holds.
func (x mailing) deliver(t *testing.T) []mailtest.Received {
	t.Helper()
	if _, err := x.d.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	return x.smtp.Received()
}

// usableLink checks that the mailed link's token is an unused enrolment
// of the user.
func usableLink(t *testing.T, s storage.Store, r mailtest.Received, userID string) {
	t.Helper()
	tok := tokenOf(t, r.Link(t, issuer+"/enroll"))
	e, err := s.GetEnrollment(t.Context(), keys.HashToken(tok), t0)
	if err != nil || e.UserID != userID {
		t.Fatalf("the mailed link's enrolment: %+v, %v; want one of %s", e, err, userID)
	}
}

func TestEmailingEnrolmentLinks(t *testing.T) {
	t.Run("a new user gets their link by email, once", func(t *testing.T) {
		x := newMailing(t)
		nu, err := x.m.Emailing().CreateUser(t.Context(), manage.UserSpec{Email: "Ada@Example.com", Name: "Ada Lovelace"})
		if err != nil {
			t.Fatal(err)
		}
		got := x.deliver(t)
		if len(got) != 1 || strings.Join(got[0].Rcpt, ",") != "ada@example.com" {
			t.Fatalf("%d messages, first to %v", len(got), got[0].Rcpt)
		}
		if got[0].Link(t, issuer+"/enroll") != nu.EnrollmentURL {
			t.Fatal("the mailed link is not the link issued")
		}
		usableLink(t, x.s, got[0], nu.User.ID)
		if evs := events(t, x.s, audit.EnrollmentEmailed); len(evs) != 1 || evs[0].UserID != nu.User.ID || evs[0].Actor != "cli" {
			t.Fatalf("enrollment.emailed events: %+v", evs)
		}
		if n := len(x.deliver(t)); n != 1 {
			t.Fatalf("%d messages after a second run, want 1", n)
		}
	})
	t.Run("a new link for an existing user", func(t *testing.T) {
		x := newMailing(t)
		nu, err := x.m.CreateUser(t.Context(), manage.UserSpec{Email: "ada@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if got := x.deliver(t); len(got) != 0 {
			t.Fatalf("a user created without emailing got %d messages", len(got))
		}
		again, err := x.m.Emailing().IssueEnrollment(t.Context(), "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		got := x.deliver(t)
		if len(got) != 1 || got[0].Link(t, issuer+"/enroll") != again.EnrollmentURL {
			t.Fatalf("%d messages; want the new link", len(got))
		}
		usableLink(t, x.s, got[0], nu.User.ID)
	})
	t.Run("an import mails every user their own link", func(t *testing.T) {
		x := newMailing(t)
		added, err := x.m.Emailing().ImportUsers(t.Context(), []manage.UserSpec{
			{Email: "a@example.com"}, {Email: "b@example.com"}, {Email: "c@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		got := x.deliver(t)
		if len(got) != len(added) {
			t.Fatalf("%d messages for %d users", len(got), len(added))
		}
		for i, nu := range added {
			r := got[i]
			if strings.Join(r.Rcpt, ",") != nu.User.Email || r.Link(t, issuer+"/enroll") != nu.EnrollmentURL {
				t.Errorf("message %d to %v does not carry %s's link", i, r.Rcpt, nu.User.Email)
			}
		}
	})
	t.Run("an import that fails mails nobody", func(t *testing.T) {
		x := newMailing(t)
		_, err := x.m.Emailing().ImportUsers(t.Context(), []manage.UserSpec{
			{Email: "a@example.com"}, {Email: "not an address"}})
		if !errors.Is(err, manage.ErrInvalid) {
			t.Fatalf("ImportUsers = %v, want ErrInvalid", err)
		}
		if got := x.deliver(t); len(got) != 0 {
			t.Fatalf("%d messages from an import that changed nothing", len(got))
		}
	})
}

func TestEmailingWithoutAMailServerChangesNothing(t *testing.T) {
	m, s := newManager(t)
	_, err := m.Emailing().CreateUser(t.Context(), manage.UserSpec{Email: "ada@example.com"})
	if !errors.Is(err, manage.ErrNoMail) || !errors.Is(err, manage.ErrInvalid) {
		t.Fatalf("CreateUser = %v, want ErrNoMail", err)
	}
	if _, err := s.GetUserByEmail(t.Context(), "ada@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the user was created: %v", err)
	}
	if evs := events(t, s, ""); len(evs) != 0 {
		t.Fatalf("%d audit events", len(evs))
	}
}

func TestEmailEnrollmentLink(t *testing.T) {
	x := newMailing(t)
	ada, err := x.m.CreateUser(t.Context(), manage.UserSpec{Email: "ada@example.com", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := x.m.CreateUser(t.Context(), manage.UserSpec{Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the shown link is mailed as it is", func(t *testing.T) {
		nu, err := x.m.EmailEnrollmentLink(t.Context(), ada.User.ID, tokenOf(t, ada.EnrollmentURL))
		if err != nil {
			t.Fatal(err)
		}
		got := x.deliver(t)
		if len(got) != 1 || got[0].Link(t, issuer+"/enroll") != ada.EnrollmentURL || nu.EnrollmentURL != ada.EnrollmentURL {
			t.Fatalf("%d messages; want Ada's link", len(got))
		}
	})
	refused := []struct{ name, user, token string }{
		{"another user's link", ada.User.ID, tokenOf(t, bob.EnrollmentURL)},
		{"a made-up token", ada.User.ID, strings.Repeat("x", 43)},
		{"an unknown user", "u_nobody", tokenOf(t, ada.EnrollmentURL)},
	}
	for _, tt := range refused {
		t.Run(tt.name+" is not found, and mailed to nobody", func(t *testing.T) {
			before := len(x.smtp.Received())
			if _, err := x.m.EmailEnrollmentLink(t.Context(), tt.user, tt.token); !errors.Is(err, manage.ErrNotFound) {
				t.Fatalf("EmailEnrollmentLink = %v, want ErrNotFound", err)
			}
			if got := x.deliver(t); len(got) != before {
				t.Fatalf("%d messages, want %d", len(got), before)
			}
		})
	}
	t.Run("a used link is not mailed", func(t *testing.T) {
		tok := tokenOf(t, bob.EnrollmentURL)
		if _, err := x.s.ConsumeEnrollment(t.Context(), keys.HashToken(tok), t0); err != nil {
			t.Fatal(err)
		}
		if _, err := x.m.EmailEnrollmentLink(t.Context(), bob.User.ID, tok); !errors.Is(err, manage.ErrNotFound) {
			t.Fatalf("EmailEnrollmentLink = %v, want ErrNotFound", err)
		}
	})
}

func TestUserNamesAndAddressesCannotCarryHeaders(t *testing.T) {
	for _, spec := range []manage.UserSpec{
		{Email: "ada@example.com\r\nBcc: eve@evil.example"},
		{Email: "ada@example.com\nBcc: eve@evil.example"},
		{Email: "\"ada\r\nbcc\"@example.com"},
		{Email: "ada@example.com", Name: "Ada\r\nBcc: eve@evil.example"},
		{Email: "ada@example.com", Name: "Ada\nLovelace"},
		{Email: "ada@example.com", Name: "Ada\x00"},
	} {
		m, s := newManager(t)
		if _, err := m.CreateUser(t.Context(), spec); !errors.Is(err, manage.ErrInvalid) {
			t.Errorf("CreateUser(%q, %q) = %v, want ErrInvalid", spec.Email, spec.Name, err)
		}
		if users, _ := s.ListUsers(t.Context()); len(users) != 0 {
			t.Errorf("a user was stored for %q, %q", spec.Email, spec.Name)
		}
	}
}

// TestEmailingUnderConcurrency: many administrators add users with their
// links by email at once while the deliverer sends: every user gets one
// message, with their own link.
func TestEmailingUnderConcurrency(t *testing.T) {
	x := newMailing(t)
	const users = 24
	links := make([]string, users)
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for i := range users {
		wg.Go(func() {
			nu, err := x.m.Emailing().CreateUser(t.Context(), manage.UserSpec{Email: fmt.Sprintf("u%02d@example.com", i)})
			if err != nil {
				errs <- err
				return
			}
			links[i] = nu.EnrollmentURL
		})
	}
	delivering := make(chan error, 1)
	go func() {
		// Send while the users are being added, until all have arrived.
		for len(x.smtp.Received()) < users && t.Context().Err() == nil {
			if _, err := x.d.RunOnce(t.Context()); err != nil {
				delivering <- err
				return
			}
		}
		delivering <- nil
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := <-delivering; err != nil {
		t.Fatal(err)
	}
	x.deliver(t) // one more run: nothing may be sent twice
	got := map[string]string{}
	for _, r := range x.smtp.Received() {
		to := strings.Join(r.Rcpt, ",")
		if _, twice := got[to]; twice {
			t.Errorf("%s got two messages", to)
		}
		got[to] = r.Link(t, issuer+"/enroll")
	}
	for i, link := range links {
		if to := fmt.Sprintf("u%02d@example.com", i); got[to] != link {
			t.Errorf("%s got %q, want their link %q", to, got[to], link)
		}
	}
}
