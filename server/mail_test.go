package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/mail/mailtest"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

// TestServeMailsTheEnrolmentLink runs the server as `keygate serve` does
// (Serve, with its background workers) against a real SMTP server: a user
// added with their link by email gets it from the server's outbox worker,
// once, and the link opens the enrolment page of that server.
func TestServeMailsTheEnrolmentLink(t *testing.T) {
	smtp := mailtest.Start(t)
	db := sqlitetest.Open(t)
	master, err := keys.NewMaster([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://localhost:" + portOf(t, ln)
	mailCfg := smtp.Config().WithDefaults()
	srv, err := server.New(t.Context(), server.Config{Issuer: issuer, Mail: &mailCfg}, db, master, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})

	// The CLI's manager: it writes to the same store, the server sends.
	m := &manage.Manager{Store: db, Audit: audit.NewRecorder(db, slog.New(slog.DiscardHandler), nil, time.Now),
		Hasher: keys.NewSecretHasher(master.Derive("client-secret", 32)), Issuer: issuer, Actor: "cli", Now: time.Now,
		Mail: &mail.Queue{Outbox: db, Sealer: master, Now: time.Now}}
	nu, err := m.Emailing().CreateUser(t.Context(), manage.UserSpec{Email: "ada@example.com", Name: "Ada Lovelace"})
	if err != nil {
		t.Fatal(err)
	}
	smtp.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 0 })
	got := smtp.Received()[0]
	if got.To(t).Address != "ada@example.com" {
		t.Fatalf("mailed to %q", got.Header.Get("To"))
	}
	link := got.Link(t, issuer+"/")
	if link != nu.EnrollmentURL {
		t.Fatalf("mailed link %q, want %q", link, nu.EnrollmentURL)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the mailed link: %d\n%s", resp.StatusCode, body)
	}

	// A second user's mail goes out after the first: by then the first
	// has been marked delivered, so it must not have been sent again.
	if _, err := m.Emailing().CreateUser(t.Context(), manage.UserSpec{Email: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	smtp.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 1 })
	if all := smtp.Received(); len(all) != 2 || all[1].To(t).Address != "bob@example.com" {
		t.Fatalf("the mail server got %d messages, want Ada's and then Bob's", len(all))
	}
}

func portOf(t *testing.T, ln net.Listener) string {
	t.Helper()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}
