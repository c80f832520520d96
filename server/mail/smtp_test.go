package mail_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/mail/mailtest"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
)

var t0 = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

// rig is a real SQLite file, a real SMTP server over TCP, and the outbox
// deliverer with the mail sender, all on one hand-moved clock.
type rig struct {
	t      *testing.T
	path   string
	db     *sqlite.Store
	master *keys.Master
	clock  *clocktest.Clock
	smtp   *mailtest.Server
	logs   *syncBuffer
	queue  *mail.Queue
}

func newRig(t *testing.T, opts ...mailtest.Option) *rig {
	t.Helper()
	master, err := keys.NewMaster([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "k.db"), master: master, clock: clocktest.New(t0),
		smtp: mailtest.Start(t, opts...), logs: &syncBuffer{}}
	r.open()
	return r
}

// open opens the database file (again, after a restart).
func (r *rig) open() {
	r.t.Helper()
	db, err := sqlite.Open(r.t.Context(), r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { db.Close() })
	r.db = db
	r.queue = &mail.Queue{Outbox: db, Sealer: r.master, Now: r.clock.Now}
}

// restart closes the database and opens it again, as a restarted server
// does; the next deliverer starts from what the file holds.
func (r *rig) restart() {
	r.t.Helper()
	if err := r.db.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.open()
}

func (r *rig) sender() *mail.Sender {
	return &mail.Sender{Config: servertest.MailConfig(r.smtp).WithDefaults(), Sealer: r.master, Now: r.clock.Now}
}

func (r *rig) deliverer() *audit.Deliverer {
	return &audit.Deliverer{DB: r.db, Now: r.clock.Now,
		Logger:  slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Senders: map[string]func(context.Context, storage.OutboxMessage) error{mail.OutboxKind: r.sender().Send}}
}

func (r *rig) enqueue(m mail.Message) {
	r.t.Helper()
	if err := r.queue.Enqueue(r.t.Context(), m); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) runOnce(d *audit.Deliverer) int {
	r.t.Helper()
	n, err := d.RunOnce(r.t.Context())
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func enrollmentTo(t *testing.T, email, name string) mail.Message {
	t.Helper()
	e := enrollment
	e.Email, e.Name = email, name
	e.Expires = t0.Add(72 * time.Hour)
	m, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSendOverSTARTTLSWithAuth(t *testing.T) {
	r := newRig(t)
	r.enqueue(enrollmentTo(t, "ada@example.com", "Ada Lovelace"))
	if n := r.runOnce(r.deliverer()); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}
	got := r.smtp.Received()
	if len(got) != 1 {
		t.Fatalf("the mail server got %d messages, want 1", len(got))
	}
	m := got[0]
	t.Run("over TLS, authenticated", func(t *testing.T) {
		if !m.TLS || m.User != mailtest.Username {
			t.Fatalf("TLS %v, user %q", m.TLS, m.User)
		}
	})
	t.Run("to the right recipient, from the configured sender", func(t *testing.T) {
		if strings.Join(m.Rcpt, ",") != "ada@example.com" || m.From != "keygate@id.example.com" {
			t.Fatalf("envelope from %q to %v", m.From, m.Rcpt)
		}
		if to := m.To(t); to.Address != "ada@example.com" || to.Name != "Ada Lovelace" {
			t.Fatalf("To %q", m.Header.Get("To"))
		}
	})
	t.Run("with the subject, both bodies and the link", func(t *testing.T) {
		if s := m.Subject(t); s != "Set up your sign-in at id.example.com" {
			t.Fatalf("subject %q", s)
		}
		if link := m.Link(t, issuer+"/"); link != enrollment.URL {
			t.Fatalf("link %q, want %q", link, enrollment.URL)
		}
		if !strings.Contains(m.Part(t, "text/html"), `href="`+enrollment.URL+`"`) {
			t.Fatalf("the HTML part does not link to the enrolment URL:\n%s", m.Part(t, "text/html"))
		}
	})
	t.Run("marked as sent by a machine, with a Message-ID of the sender's domain", func(t *testing.T) {
		if m.Header.Get("Auto-Submitted") != "auto-generated" {
			t.Fatalf("Auto-Submitted %q", m.Header.Get("Auto-Submitted"))
		}
		if id := m.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@id.example.com>") {
			t.Fatalf("Message-ID %q", id)
		}
	})
	t.Run("sent once", func(t *testing.T) {
		r.clock.Advance(48 * time.Hour)
		if n := r.runOnce(r.deliverer()); n != 0 {
			t.Fatalf("delivered %d more", n)
		}
		if n := len(r.smtp.Received()); n != 1 {
			t.Fatalf("the mail server got %d messages, want still 1", n)
		}
	})
}

func TestQueuedMailIsSealed(t *testing.T) {
	r := newRig(t)
	token := "tok_" + strings.Repeat("s", 40)
	e := enrollment
	e.URL = issuer + "/enroll?token=" + token
	m, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	// Capture what goes into the outbox by queueing through a spy.
	spy := &outboxSpy{Outbox: r.db}
	q := &mail.Queue{Outbox: spy, Sealer: r.master, Now: r.clock.Now}
	if err := q.Enqueue(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	row := spy.last
	if row.Kind != mail.OutboxKind || row.Target != "ada@example.com" {
		t.Fatalf("outbox row kind %q target %q", row.Kind, row.Target)
	}
	if bytes.Contains(row.Payload, []byte(token)) || bytes.Contains(row.Payload, []byte("Ada")) {
		t.Fatal("the outbox payload holds the message in clear")
	}
	t.Run("a payload moved to another recipient's row does not open", func(t *testing.T) {
		moved := row
		moved.Target = "eve@evil.example"
		err := r.sender().Send(t.Context(), moved)
		if !errors.Is(err, audit.ErrUndeliverable) {
			t.Fatalf("Send = %v, want undeliverable", err)
		}
		if n := len(r.smtp.Received()); n != 0 {
			t.Fatalf("the mail server got %d messages", n)
		}
	})
}

// outboxSpy records the last message queued and passes it on.
type outboxSpy struct {
	storage.Outbox
	last storage.OutboxMessage
}

func (s *outboxSpy) EnqueueOutbox(ctx context.Context, m storage.OutboxMessage) (int64, error) {
	s.last = m
	return s.Outbox.EnqueueOutbox(ctx, m)
}

func TestMailServerDownThenUp(t *testing.T) {
	r := newRig(t)
	recipients := []string{"a@example.com", "b@example.com", "c@example.com"}
	for _, to := range recipients {
		r.enqueue(enrollmentTo(t, to, ""))
	}
	r.smtp.Down()
	d := r.deliverer()
	for range 3 {
		if n := r.runOnce(d); n != 0 {
			t.Fatalf("delivered %d while the mail server was down", n)
		}
		r.clock.Advance(audit.Backoff(3))
	}
	if !strings.Contains(r.logs.String(), "outbox delivery failed") {
		t.Fatalf("the failures were not logged: %s", r.logs.String())
	}
	// The server restarts too: only the database file carries the queue.
	r.restart()
	r.smtp.Up()
	r.clock.Advance(time.Hour)
	if n := r.runOnce(r.deliverer()); n != len(recipients) {
		t.Fatalf("delivered %d after the mail server came back, want %d", n, len(recipients))
	}
	r.clock.Advance(24 * time.Hour)
	r.restart()
	if n := r.runOnce(r.deliverer()); n != 0 {
		t.Fatalf("delivered %d again after another restart", n)
	}
	got := map[string]int{}
	ids := map[string]bool{}
	for _, m := range r.smtp.Received() {
		got[strings.Join(m.Rcpt, ",")]++
		ids[m.Header.Get("Message-ID")] = true
	}
	for _, to := range recipients {
		if got[to] != 1 {
			t.Errorf("%s got %d messages, want 1", to, got[to])
		}
	}
	if len(got) != len(recipients) || len(ids) != len(recipients) {
		t.Fatalf("messages %v with %d Message-IDs", got, len(ids))
	}
}

func TestWrongSMTPPasswordIsRetriedAndNeverLogged(t *testing.T) {
	r := newRig(t)
	r.smtp.SetPassword("the server's new password")
	r.enqueue(enrollmentTo(t, "ada@example.com", ""))
	d := r.deliverer()
	if n := r.runOnce(d); n != 0 {
		t.Fatalf("delivered %d with a wrong password", n)
	}
	if r.smtp.AuthFailures() == 0 {
		t.Fatal("the mail server saw no failed AUTH: the test proves nothing")
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "535") {
		t.Fatalf("the log does not say why: %s", logs)
	}
	if strings.Contains(logs, mailtest.Password) || strings.Contains(logs, "horse") {
		t.Fatalf("the log holds the password: %s", logs)
	}
	// The operator fixes the password; the message goes out on the next
	// attempt after its backoff, once.
	r.smtp.SetPassword(mailtest.Password)
	r.clock.Advance(audit.Backoff(1))
	if n := r.runOnce(d); n != 1 {
		t.Fatalf("delivered %d after the password was fixed, want 1", n)
	}
	if n := len(r.smtp.Received()); n != 1 {
		t.Fatalf("the mail server got %d messages, want 1", n)
	}
}

// spySends wraps the deliverer's mail sender to record each attempt's error.
func spySends(d *audit.Deliverer) *[]error {
	var errs []error
	send := d.Senders[mail.OutboxKind]
	d.Senders[mail.OutboxKind] = func(ctx context.Context, m storage.OutboxMessage) error {
		err := send(ctx, m)
		errs = append(errs, err)
		return err
	}
	return &errs
}

func TestPermanentRefusalIsNotRetried(t *testing.T) {
	r := newRig(t)
	r.smtp.Refuse("gone@example.com")
	r.enqueue(enrollmentTo(t, "gone@example.com", ""))
	d := r.deliverer()
	attempts := spySends(d)
	for range 3 {
		if n := r.runOnce(d); n != 0 {
			t.Fatalf("delivered %d to a refused recipient", n)
		}
		r.clock.Advance(24 * time.Hour) // far past any backoff
	}
	if len(*attempts) != 1 {
		t.Fatalf("%d attempts, want 1", len(*attempts))
	}
	if err := (*attempts)[0]; !errors.Is(err, audit.ErrUndeliverable) || !strings.Contains(err.Error(), "550") {
		t.Fatalf("Send = %v, want undeliverable with the server's 550", err)
	}
}

func TestExpiredMessageIsNotSent(t *testing.T) {
	r := newRig(t)
	r.enqueue(enrollmentTo(t, "late@example.com", ""))
	r.smtp.Down()
	r.runOnce(r.deliverer())
	r.smtp.Up()
	r.clock.Advance(73 * time.Hour) // past the link's 72 hours
	d := r.deliverer()
	attempts := spySends(d)
	for range 2 {
		if n := r.runOnce(d); n != 0 {
			t.Fatalf("delivered %d expired messages", n)
		}
		r.clock.Advance(24 * time.Hour)
	}
	if len(*attempts) != 1 || !errors.Is((*attempts)[0], audit.ErrUndeliverable) || len(r.smtp.Received()) != 0 {
		t.Fatalf("attempts %v, %d received; want one undeliverable and nothing sent", *attempts, len(r.smtp.Received()))
	}
}

func TestHeaderInjectionNeverReachesAHeader(t *testing.T) {
	r := newRig(t)
	t.Run("an address with a line break or a second address is refused", func(t *testing.T) {
		for _, to := range []string{
			"ada@example.com\r\nBcc: eve@evil.example",
			"ada@example.com\nBcc: eve@evil.example",
			"ada@example.com, eve@evil.example",
			"Ada <ada@example.com>",
			"ada@example.com\r\n",
			"",
		} {
			m := enrollmentTo(t, "ada@example.com", "")
			m.To = to
			if err := r.queue.Enqueue(t.Context(), m); err == nil {
				t.Errorf("a message to %q was queued", to)
			}
		}
	})
	t.Run("names and subjects with line breaks arrive encoded in their own header", func(t *testing.T) {
		hostile := []string{
			"Eve\r\nBcc: eve@evil.example",
			"Eve\nBcc: eve@evil.example",
			"Eve\rBcc: eve@evil.example",
			"\"Eve\" <eve@evil.example>, x",
			"=?utf-8?q?Eve=0D=0ABcc:_eve@evil.example?=",
			"Ève Ünïcødé\u2028Bcc: eve@evil.example",
		}
		for _, name := range hostile {
			m := enrollmentTo(t, "ada@example.com", name)
			m.ToName = name // as if stored before names were checked
			m.Subject = "Hello\r\nBcc: eve@evil.example"
			r.enqueue(m)
		}
		if n := r.runOnce(r.deliverer()); n != len(hostile) {
			t.Fatalf("delivered %d, want %d", n, len(hostile))
		}
		for _, m := range r.smtp.Received() {
			if strings.Join(m.Rcpt, ",") != "ada@example.com" {
				t.Errorf("envelope recipients %v", m.Rcpt)
			}
			head, _, _ := bytes.Cut(m.Raw, []byte("\r\n\r\n"))
			for _, line := range strings.Split(string(head), "\r\n") {
				if strings.HasPrefix(strings.ToLower(line), "bcc:") || strings.HasPrefix(strings.ToLower(line), "cc:") {
					t.Errorf("a header was injected: %q in\n%s", line, head)
				}
			}
			if len(m.Header["To"]) != 1 || m.To(t).Address != "ada@example.com" {
				t.Errorf("To %q", m.Header["To"])
			}
			if s := m.Subject(t); strings.ContainsAny(s, "\r\n") {
				t.Errorf("subject %q has a line break", s)
			}
		}
	})
}

// TestTwoDeliverersSendEachMessageOnce: deliverers racing over one
// database (two servers, or a server and its restart overlapping) claim
// each message once, so nobody gets a message twice.
func TestTwoDeliverersSendEachMessageOnce(t *testing.T) {
	r := newRig(t)
	const n = 30
	for i := range n {
		r.enqueue(enrollmentTo(t, fmt.Sprintf("u%02d@example.com", i), ""))
	}
	other, err := sqlite.Open(t.Context(), r.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	first, second := r.deliverer(), r.deliverer()
	second.DB = other
	var wg sync.WaitGroup
	counts := make([]int, 2)
	errs := make([]error, 2)
	for i, d := range []*audit.Deliverer{first, second} {
		wg.Go(func() { counts[i], errs[i] = d.RunOnce(t.Context()) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || counts[0]+counts[1] != n {
		t.Fatalf("delivered %v with errors %v; want %d in all", counts, errs, n)
	}
	seen := map[string]int{}
	for _, m := range r.smtp.Received() {
		seen[strings.Join(m.Rcpt, ",")]++
	}
	for i := range n {
		if to := fmt.Sprintf("u%02d@example.com", i); seen[to] != 1 {
			t.Errorf("%s got %d messages, want 1", to, seen[to])
		}
	}
}

func TestImplicitTLS(t *testing.T) {
	r := newRig(t, mailtest.ImplicitTLS)
	r.enqueue(enrollmentTo(t, "ada@example.com", ""))
	if n := r.runOnce(r.deliverer()); n != 1 {
		t.Fatalf("delivered %d, want 1: %s", n, r.logs.String())
	}
	if got := r.smtp.Received(); len(got) != 1 || !got[0].TLS || got[0].User != mailtest.Username {
		t.Fatalf("received %+v", got)
	}
}

// TestNoMailWithoutTheServersTLS: a mail server that does not offer
// STARTTLS (or a man in the middle who strips it), or whose certificate
// does not verify, gets neither the password nor the message.
func TestNoMailWithoutTheServersTLS(t *testing.T) {
	tests := []struct {
		name   string
		opt    mailtest.Option
		config func(*mail.Config)
		why    string // in the logged error
	}{
		{"STARTTLS not offered", mailtest.NoTLS, func(*mail.Config) {}, "STARTTLS"},
		{"a certificate nobody trusts", 0, func(c *mail.Config) { c.RootCAs = x509.NewCertPool() }, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []mailtest.Option
			if tt.opt != 0 {
				opts = append(opts, tt.opt)
			}
			r := newRig(t, opts...)
			r.enqueue(enrollmentTo(t, "ada@example.com", ""))
			cfg := servertest.MailConfig(r.smtp).WithDefaults()
			tt.config(&cfg)
			d := r.deliverer()
			d.Senders[mail.OutboxKind] = (&mail.Sender{Config: cfg, Sealer: r.master, Now: r.clock.Now}).Send
			if n := r.runOnce(d); n != 0 {
				t.Fatalf("delivered %d", n)
			}
			if r.smtp.Auths() != 0 || len(r.smtp.Received()) != 0 {
				t.Fatalf("the server saw %d AUTH and %d messages", r.smtp.Auths(), len(r.smtp.Received()))
			}
			if logs := r.logs.String(); !strings.Contains(logs, "outbox delivery failed") || !strings.Contains(logs, tt.why) {
				t.Fatalf("the failure was not logged with %q: %s", tt.why, logs)
			}
		})
	}
}

// TestPlainTextToThisMachine: tls none reaches a relay on this machine;
// even there a password is never sent in plain text.
func TestPlainTextToThisMachine(t *testing.T) {
	send := func(t *testing.T, r *rig, username string) int {
		t.Helper()
		cfg := servertest.MailConfig(r.smtp)
		cfg.TLS, cfg.Port, cfg.RootCAs = mail.NoTLS, r.smtp.Port, nil
		if username == "" {
			cfg.Username, cfg.Password = "", ""
		}
		if problems := cfg.WithDefaults().Problems(); len(problems) != 0 {
			t.Fatal(problems)
		}
		r.enqueue(enrollmentTo(t, "ada@example.com", ""))
		d := r.deliverer()
		d.Senders[mail.OutboxKind] = (&mail.Sender{Config: cfg.WithDefaults(), Sealer: r.master, Now: r.clock.Now}).Send
		return r.runOnce(d)
	}
	t.Run("a relay that needs no AUTH gets the message", func(t *testing.T) {
		r := newRig(t, mailtest.NoTLS, mailtest.NoAuth)
		if n := send(t, r, ""); n != 1 || len(r.smtp.Received()) != 1 || r.smtp.Received()[0].TLS {
			t.Fatalf("delivered %d: %s", n, r.logs.String())
		}
	})
	t.Run("a relay that asks for AUTH PLAIN does not get the password", func(t *testing.T) {
		r := newRig(t, mailtest.NoTLS)
		if n := send(t, r, mailtest.Username); n != 0 || r.smtp.Auths() != 0 || len(r.smtp.Received()) != 0 {
			t.Fatalf("delivered %d, %d AUTH", n, r.smtp.Auths())
		}
	})
}
