package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/mail/mailtest"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/storage"
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
	ln, issuer := listen(t)
	mailCfg := servertest.MailConfig(smtp).WithDefaults()
	serve(t, ln, db, master, server.Config{Issuer: issuer, Mail: &mailCfg}, io.Discard)

	m := cliManager(db, master, issuer)
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

// cliManager acts as the CLI does with --send-email: it queues mail in
// the store, and the server sends it.
func cliManager(db storage.Store, master *keys.Master, issuer string) *manage.Manager {
	return &manage.Manager{Store: db, Audit: audit.NewRecorder(db, slog.New(slog.DiscardHandler), nil, time.Now),
		Hasher: keys.NewSecretHasher(master.Derive("client-secret", 32)), Issuer: issuer, Actor: "cli", Now: time.Now,
		Mail: &mail.Queue{Outbox: db, Sealer: master, Now: time.Now}}
}

// listen is a loopback listener and the issuer it serves.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://localhost:" + port
}

// logWatch is a log destination a test can wait on.
type logWatch struct {
	mu    sync.Mutex
	b     strings.Builder
	wrote chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{wrote: make(chan struct{})} }

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.wrote)
	l.wrote = make(chan struct{})
	return len(p), nil
}

// waitFor blocks until the log holds s.
func (l *logWatch) waitFor(t *testing.T, s string) {
	t.Helper()
	for {
		l.mu.Lock()
		found, ch := strings.Contains(l.b.String(), s), l.wrote
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-ch:
		case <-t.Context().Done():
			t.Fatalf("the log never said %q", s)
		}
	}
}

// serve runs the server on ln over db, with its background workers, as
// `keygate serve` does, until the returned stop is called.
func serve(t *testing.T, ln net.Listener, db storage.Store, master *keys.Master, cfg server.Config, logs io.Writer) (stop func()) {
	t.Helper()
	srv, err := server.New(t.Context(), cfg, db, master, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestMailQueuedForAServerWithoutSMTPWaits: a command with an smtp section
// may queue mail for a server started without one. That server keeps it,
// failing and retrying; restarted with the section, it sends it, once.
func TestMailQueuedForAServerWithoutSMTPWaits(t *testing.T) {
	smtp := mailtest.Start(t)
	db := sqlitetest.Open(t)
	master, err := keys.NewMaster([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	ln, issuer := listen(t)
	logs := newLogWatch()
	stop := serve(t, ln, db, master, server.Config{Issuer: issuer}, logs)

	m := cliManager(db, master, issuer)
	nu, err := m.Emailing().CreateUser(t.Context(), manage.UserSpec{Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "no smtp section")
	stop()

	mailCfg := servertest.MailConfig(smtp).WithDefaults()
	ln, _ = listen(t)
	serve(t, ln, db, master, server.Config{Issuer: issuer, Mail: &mailCfg}, io.Discard)
	smtp.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 0 })
	got := smtp.Received()
	if len(got) != 1 || got[0].Link(t, issuer+"/") != nu.EnrollmentURL {
		t.Fatalf("%d messages; want the one queued", len(got))
	}
}
