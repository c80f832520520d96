package server_test

// Notices to users through the whole server, delivered by the real outbox
// deliverer to a real SMTP server (mailtest), and the "this wasn't me"
// link followed against the real HTTP server.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"github.com/keygate/keygate/server/notice"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/storage"
)

// mailing is a server that mails through a real SMTP server and alerts a
// real webhook receiver, and runs its outbox when told to.
type mailing struct {
	*instance
	smtp   *mailtest.Server
	cfg    mail.Config
	alerts *receiver
	mu     sync.Mutex
	bcl    []manage.BackchannelLogout // back-channel logouts the outbox sent
}

// receiver is an HTTP endpoint that keeps the bodies posted to it.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, b)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) alerts(t *testing.T, typ string) []audit.Alert {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []audit.Alert
	for _, b := range rc.bodies {
		var a audit.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		if a.Type == typ {
			out = append(out, a)
		}
	}
	return out
}

func startMailing(t *testing.T) *mailing {
	smtp := mailtest.Start(t)
	cfg := servertest.MailConfig(smtp).WithDefaults()
	alerts := newReceiver(t)
	in := start(t, func(c *server.Config) {
		c.Mail = &cfg
		c.AlertWebhooks = []string{alerts.URL}
	})
	return &mailing{instance: in, smtp: smtp, cfg: cfg, alerts: alerts}
}

// deliver runs the outbox once, as the server's worker does: mail over
// SMTP, alerts to the webhook; back-channel logouts are kept.
func (m *mailing) deliver(t *testing.T) {
	t.Helper()
	d := &audit.Deliverer{DB: m.DB, Client: http.DefaultClient, Secret: []byte("alert-secret"),
		Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Senders: map[string]func(context.Context, storage.OutboxMessage) error{
			mail.OutboxKind: (&mail.Sender{Config: m.cfg, Sealer: m.Master, Now: time.Now}).Send,
			manage.OutboxBackchannelLogout: func(_ context.Context, om storage.OutboxMessage) error {
				var b manage.BackchannelLogout
				if err := json.Unmarshal(om.Payload, &b); err != nil {
					return err
				}
				m.mu.Lock()
				m.bcl = append(m.bcl, b)
				m.mu.Unlock()
				return nil
			},
		}}
	if _, err := d.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// mails are the messages received since the first n.
func (m *mailing) mails(n int) []mailtest.Received { return m.smtp.Received()[n:] }

// signIn signs the agent in with k to keygate itself and lands on the
// account page.
func (a *agent) signIn(t *testing.T, email string, k *vkey) servertest.Reply {
	t.Helper()
	_, done := a.signInWithKey(t, "/login", email, k)
	page := a.follow(t, a.get(t, done.Next))
	if page.Status != http.StatusOK {
		t.Fatalf("account page after signing in: %s", page)
	}
	return page
}

// newSID is the one session of the user in after that is not in before.
func newSID(t *testing.T, before, after map[string]bool) string {
	t.Helper()
	var sids []string
	for sid := range after {
		if !before[sid] {
			sids = append(sids, sid)
		}
	}
	if len(sids) != 1 {
		t.Fatalf("%d new sessions, want 1", len(sids))
	}
	return sids[0]
}

// reportForm posts the confirmation of a "this wasn't me" link as the
// page's form does, with these headers (name, value, name, value, …).
func (a *agent) reportForm(t *testing.T, token string, header ...string) servertest.Reply {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return a.send(t, http.MethodPost, "/signin/report", "application/x-www-form-urlencoded",
		[]byte(url.Values{"token": {token}}.Encode()), h)
}

func TestSignInNoticeAndThisWasntMe(t *testing.T) {
	m := startMailing(t)
	ctx := t.Context()
	const email = "ada@example.com"
	k := newKey(false, false)
	uid, a, _ := m.enrol(t, email, k, "YubiKey")
	nc := m.registerClient(t, manage.ClientSpec{Name: "Wiki", RedirectURIs: []string{waApp},
		BackchannelLogoutURI: "https://wiki.example/logout"})

	// A name that tries to add a header of its own.
	if err := m.DB.UpdateUser(ctx, uid, func(u *storage.User) error {
		u.Name = "Ada\r\nBcc: eve@evil.example"
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The first sign-in has no history to be new against.
	a.signIn(t, email, k)
	m.deliver(t)
	if got := m.mails(0); len(got) != 0 {
		t.Fatalf("enrolling and a first sign-in mailed %d messages, want none: %q", len(got), got[0].Subject(t))
	}

	// A sign-in from another browser: a new device.
	before := m.sids(t, uid)
	thief := m.newAgent(t)
	thief.signIn(t, email, k)
	sid := newSID(t, before, m.sids(t, uid))
	token := m.AccessToken(t, nc.Client.ID, uid, sid)
	m.deliver(t)
	got := m.mails(0)
	if len(got) != 1 {
		t.Fatalf("%d messages after a sign-in from a new device, want 1", len(got))
	}
	msg := got[0]
	if to := msg.To(t); to.Address != email || len(msg.Rcpt) != 1 || msg.Rcpt[0] != email {
		t.Fatalf("the notice went to %v (RCPT %v), want %s", to, msg.Rcpt, email)
	}
	if to := msg.To(t); strings.ContainsAny(to.Name, "\r\n") || msg.Header.Get("Bcc") != "" {
		t.Fatalf("the name reached the headers: To %q, Bcc %q", to.Name, msg.Header.Get("Bcc"))
	}
	for name, v := range msg.Header {
		for _, line := range v {
			if strings.Contains(line, "evil.example") && name != "To" {
				t.Errorf("header %s carries the name: %q", name, line)
			}
		}
	}
	if s := msg.Subject(t); !strings.HasPrefix(s, "New sign-in to your account at ") {
		t.Errorf("subject %q", s)
	}
	text := msg.Part(t, "text/plain")
	for _, want := range []string{"new device", "Device: Go client", "It signs nobody in."} {
		if !strings.Contains(text, want) {
			t.Errorf("the notice lacks %q:\n%s", want, text)
		}
	}
	link := msg.Link(t, m.Issuer+"/signin/report?token=")

	// Following the link shows a page and changes nothing.
	visitor := m.newAgent(t)
	for range 2 {
		page := visitor.get(t, link)
		if page.Status != http.StatusOK || !bytes.Contains(page.Body, []byte(`action="/signin/report"`)) {
			t.Fatalf("the link's page: %s", page)
		}
	}
	if r := thief.get(t, "/account"); r.Status != http.StatusOK {
		t.Fatalf("opening the link ended the session: %s", r)
	}
	form := servertest.Scrape(t, visitor.get(t, link), reTokenField)

	t.Run("a confirmation another site's page sends is refused and changes nothing", func(t *testing.T) {
		for _, h := range [][]string{
			{"Origin", "https://evil.example"},
			{"Sec-Fetch-Site", "cross-site", "Origin", "null"},
			{"Sec-Fetch-Site", "same-site"},
		} {
			if r := visitor.reportForm(t, form, h...); r.Status != http.StatusForbidden {
				t.Fatalf("confirmation with %v: %s, want 403", h, r)
			}
		}
		if r := thief.get(t, "/account"); r.Status != http.StatusOK {
			t.Fatalf("a refused confirmation ended the session: %s", r)
		}
	})

	mark := m.AuditMark(t)
	t.Run("of two confirmations at once exactly one acts", func(t *testing.T) {
		replies := make([]servertest.Reply, 2)
		var wg sync.WaitGroup
		for i := range replies {
			wg.Go(func() {
				replies[i] = m.newAgent(t).reportForm(t, form, "Sec-Fetch-Site", "same-origin", "Origin", "null")
			})
		}
		wg.Wait()
		ok, gone := 0, 0
		for _, r := range replies {
			switch r.Status {
			case http.StatusOK:
				ok++
			case http.StatusGone:
				gone++
			default:
				t.Errorf("a confirmation answered %s", r)
			}
		}
		if ok != 1 || gone != 1 {
			t.Fatalf("%d confirmations acted and %d were told the link is gone, want 1 and 1", ok, gone)
		}
		if ev := m.Events(t, mark, audit.SigninReported); len(ev) != 1 || ev[0].UserID != uid || ev[0].Details["session_ended"] != "true" {
			t.Fatalf("signin.reported events %+v, want one for the user that ended the session", ev)
		}
	})

	t.Run("the reported session, its tokens and its device are gone; the other session is not", func(t *testing.T) {
		if r := thief.get(t, "/account"); r.Status == http.StatusOK {
			t.Fatalf("the reported session still opens the account page")
		}
		if m.TokenActive(t, token) {
			t.Error("a token issued from the reported session is still active")
		}
		if r := a.get(t, "/account"); r.Status != http.StatusOK {
			t.Errorf("the user's own session ended too: %s", r)
		}
		devices, err := m.DB.ListUserDevices(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if len(devices) != 1 {
			t.Errorf("%d devices known after the report, want only the user's own", len(devices))
		}
	})

	t.Run("the apps are told and the alert webhook fires", func(t *testing.T) {
		m.deliver(t)
		m.mu.Lock()
		bcl := m.bcl
		m.mu.Unlock()
		if len(bcl) != 1 || bcl[0].SID != sid || bcl[0].Subject != uid || bcl[0].ClientID != nc.Client.ID {
			t.Errorf("back-channel logouts %+v, want one for session %s", bcl, sid)
		}
		if al := m.alerts.alerts(t, audit.SigninReported); len(al) != 1 || al[0].UserID != uid {
			t.Errorf("signin.reported alerts %+v, want one", al)
		}
	})

	t.Run("a used link shows 410 and does nothing", func(t *testing.T) {
		mark := m.AuditMark(t)
		if r := visitor.get(t, link); r.Status != http.StatusGone {
			t.Errorf("GET a used link: %s, want 410", r)
		}
		if r := visitor.reportForm(t, form, "Origin", m.Issuer); r.Status != http.StatusGone {
			t.Errorf("POST a used link: %s, want 410", r)
		}
		if ev := m.Events(t, mark, ""); len(ev) != 0 {
			t.Errorf("a used link recorded %+v", ev)
		}
	})

	t.Run("an expired link shows 410", func(t *testing.T) {
		tok, err := keys.RandomToken(32)
		if err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-notice.ReportLifetime - time.Minute)
		if err := m.DB.CreateLink(ctx, storage.Link{TokenHash: keys.HashToken(tok), Purpose: storage.LinkSignInReport,
			UserID: uid, SID: "sid-of-old", CreatedAt: past, ExpiresAt: past.Add(notice.ReportLifetime)}); err != nil {
			t.Fatal(err)
		}
		if r := visitor.get(t, notice.ReportURL(m.Issuer, tok)); r.Status != http.StatusGone {
			t.Errorf("GET an expired link: %s, want 410", r)
		}
		if r := visitor.reportForm(t, tok, "Origin", m.Issuer); r.Status != http.StatusGone {
			t.Errorf("POST an expired link: %s, want 410", r)
		}
	})

	t.Run("no page of it signed anybody in", func(t *testing.T) {
		if r := visitor.get(t, "/account"); r.Status == http.StatusOK {
			t.Fatal("the visitor who followed the link is signed in")
		}
	})
}

// TestAccountChangeNotices: each change to how an account is signed in to
// or what it may do mails its user once, whether they made it themselves
// or an administrator did through the command line's manager; the mail's
// link leads to the account page.
func TestAccountChangeNotices(t *testing.T) {
	m := startMailing(t)
	const email = "grace@example.com"
	k := newKey(false, false)
	uid, _, _ := m.enrol(t, email, k, "YubiKey")
	a := m.newAgent(t)
	page := a.signIn(t, email, k)
	csrf := servertest.Scrape(t, page, reDataCSRF)
	// The command line's manager, wired as cmd/keygate wires it with an
	// smtp section.
	rec := audit.NewRecorder(m.DB, slog.New(slog.DiscardHandler), nil, time.Now)
	rec.Notify((&notice.Notifier{Store: m.DB, Mail: &mail.Queue{Outbox: m.DB, Sealer: m.Master, Now: time.Now},
		Issuer: m.Issuer, Now: time.Now}).Recorded)
	cli := &manage.Manager{Store: m.DB, Audit: rec, Issuer: m.Issuer, Actor: "cli", Now: time.Now}
	second := newKey(true, true)

	for _, c := range []struct {
		change  string
		do      func(t *testing.T)
		subject string
		detail  string
		byAdmin bool
	}{
		{"a key added by the user", func(t *testing.T) {
			if r, _ := a.register(t, csrf, second, "Phone\r\nBcc: eve@evil.example"); r.Status != http.StatusOK {
				t.Fatalf("register: %s", r)
			}
		}, "A security key or passkey was added to your account", "Phone", false},
		{"a key removed by the user", func(t *testing.T) {
			if r := a.form(t, "/mfa/keys/remove", url.Values{"csrf_token": {csrf}, "id": {second.idString()}}); r.Status != http.StatusSeeOther {
				t.Fatalf("remove: %s", r)
			}
		}, "A security key or passkey was removed from your account", "Phone", false},
		{"recovery codes regenerated", func(t *testing.T) {
			r := a.form(t, "/mfa/recovery-codes", url.Values{"csrf_token": {csrf}})
			if r.Status != http.StatusOK {
				t.Fatalf("regenerate: %s", r)
			}
		}, "New recovery codes were made for your account; the old ones no longer work", "", false},
		{"a key disabled by an administrator", func(t *testing.T) {
			if err := cli.RevokeKey(t.Context(), uid, k.id()); err != nil {
				t.Fatal(err)
			}
		}, "A security key or passkey of your account was disabled", "YubiKey", true},
		{"the admin role granted", func(t *testing.T) {
			if err := cli.SetRole(t.Context(), uid, storage.RoleAdmin); err != nil {
				t.Fatal(err)
			}
		}, "Your account was given a role in keygate's administration", "admin", true},
	} {
		t.Run(c.change+" mails the user once", func(t *testing.T) {
			n := len(m.smtp.Received())
			c.do(t)
			m.deliver(t)
			got := m.mails(n)
			if len(got) != 1 {
				t.Fatalf("%d messages, want 1", len(got))
			}
			msg := got[0]
			if to := msg.To(t); to.Address != email || len(msg.Rcpt) != 1 {
				t.Fatalf("sent to %v (RCPT %v)", to, msg.Rcpt)
			}
			if s := msg.Subject(t); !strings.HasPrefix(s, c.subject+" at ") {
				t.Errorf("subject %q, want %q", s, c.subject)
			}
			text := msg.Part(t, "text/plain")
			if c.detail != "" && !strings.Contains(text, c.detail) {
				t.Errorf("the text does not name %q:\n%s", c.detail, text)
			}
			if got := strings.Contains(text, "by an administrator"); got != c.byAdmin {
				t.Errorf("says it was an administrator: %v, want %v:\n%s", got, c.byAdmin, text)
			}
			for name, v := range msg.Header {
				for _, line := range v {
					if strings.Contains(line, "evil.example") || strings.Contains(line, "Phone") {
						t.Errorf("header %s carries what the user typed: %q", name, line)
					}
				}
			}
			link := msg.Link(t, m.Issuer+"/")
			if link != m.Issuer+"/account" {
				t.Fatalf("the link is %s, want the account page", link)
			}
			// Under the issuer's name the browser's cookies are Base's.
			if r := a.get(t, strings.TrimPrefix(link, m.Issuer)); r.Status != http.StatusOK {
				t.Errorf("the link: %s", r)
			}
		})
	}
}
