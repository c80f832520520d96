package admin_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/mail/mailtest"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/storage"
)

// mailingConsole is the whole server with a mail server configured, and
// the outbox deliverer the server's worker runs, run here by hand.
type mailingConsole struct {
	*instance
	smtp *mailtest.Server
	d    *audit.Deliverer
}

func startMailing(t *testing.T) mailingConsole {
	t.Helper()
	srv := mailtest.Start(t)
	cfg := servertest.MailConfig(srv).WithDefaults()
	in := &instance{servertest.Start(t, func(c *server.Config) { c.Mail = &cfg })}
	sender := &mail.Sender{Config: cfg, Sealer: in.Master, Now: time.Now}
	d := &audit.Deliverer{DB: in.DB, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Senders: map[string]func(context.Context, storage.OutboxMessage) error{mail.OutboxKind: sender.Send}}
	return mailingConsole{instance: in, smtp: srv, d: d}
}

func (c mailingConsole) deliver(t *testing.T) []mailtest.Received {
	t.Helper()
	if _, err := c.d.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c.smtp.Received()
}

// opens checks that link opens the enrolment page of the server.
func (c mailingConsole) opens(t *testing.T, link string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, c.Issuer+"/enroll?") {
		t.Fatalf("link %q is not the issuer's enrolment page", link)
	}
	if r := c.get(t, nil, u.RequestURI()); r.Status != http.StatusOK {
		t.Fatalf("GET %s: %s", link, r)
	}
}

var reSendForm = regexp.MustCompile(`action="/admin/users/([^/"]+)/enrollment-email"[\s\S]*?name="token" value="([^"]+)"`)

func TestConsoleSendsTheShownLinkByEmail(t *testing.T) {
	c := startMailing(t)
	admin := c.newUser(t, "root@example.com", true)
	b := c.key(t, admin.ID)

	page := c.form(t, &b, "/admin/users", url.Values{"email": {"ada@example.com"}, "name": {"Ada Lovelace"}})
	if page.Status != http.StatusOK {
		t.Fatalf("create: %s", page)
	}
	shown := servertest.Scrape(t, page, reEnrollURL)
	form := reSendForm.FindSubmatch(page.Body)
	if form == nil {
		t.Fatalf("the link page has no send-by-email form:\n%s", page.Body)
	}
	userID, token := string(form[1]), string(form[2])
	if !strings.HasSuffix(shown, "token="+url.QueryEscape(token)) {
		t.Fatalf("the form's token is not the shown link's")
	}

	t.Run("Send by email mails the shown link to its user, once", func(t *testing.T) {
		r := c.form(t, &b, "/admin/users/"+userID+"/enrollment-email", url.Values{"token": {token}})
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/users/"+userID+"?notice=enrollment-emailed" {
			t.Fatalf("send: %s, Location %q", r, r.Location())
		}
		got := c.deliver(t)
		if len(got) != 1 || got[0].To(t).Address != "ada@example.com" || got[0].To(t).Name != "Ada Lovelace" {
			t.Fatalf("%d messages, first to %q", len(got), got[0].Header.Get("To"))
		}
		link := got[0].Link(t, c.Issuer+"/")
		if link != shown {
			t.Fatalf("mailed %q, shown %q", link, shown)
		}
		c.opens(t, link)
		if n := len(c.deliver(t)); n != 1 {
			t.Fatalf("%d messages after another run, want 1", n)
		}
	})
	t.Run("another user's link is not mailed", func(t *testing.T) {
		other := c.newUser(t, "bob@example.com", false)
		r := c.form(t, &b, "/admin/users/"+other.ID+"/enrollment-email", url.Values{"token": {token}})
		if r.Status != http.StatusNotFound {
			t.Fatalf("send another's link: %s", r)
		}
		if n := len(c.deliver(t)); n != 1 {
			t.Fatalf("%d messages, want still 1", n)
		}
	})
	t.Run("Email a new enrolment link never shows the link", func(t *testing.T) {
		if user := c.get(t, &b, "/admin/users/"+userID); !strings.Contains(string(user.Body), "Email a new enrolment link") {
			t.Fatalf("the user page has no email button:\n%s", user.Body)
		}
		r := c.form(t, &b, "/admin/users/"+userID+"/reenroll", url.Values{"send": {"email"}})
		if r.Status != http.StatusSeeOther || strings.Contains(string(r.Body), "token=") {
			t.Fatalf("reenroll by email: %s", r)
		}
		got := c.deliver(t)
		if len(got) != 2 {
			t.Fatalf("%d messages, want 2", len(got))
		}
		link := got[1].Link(t, c.Issuer+"/")
		if link == shown {
			t.Fatal("a new link was asked for; the old one was mailed")
		}
		c.opens(t, link)
	})
}

func TestConsoleWithoutMail(t *testing.T) {
	in := start(t)
	admin := in.newUser(t, "root@example.com", true)
	b := in.key(t, admin.ID)
	page := in.form(t, &b, "/admin/users", url.Values{"email": {"ada@example.com"}})
	if page.Status != http.StatusOK || reSendForm.Match(page.Body) || strings.Contains(string(page.Body), "Send by email") {
		t.Fatalf("the link page offers email without a mail server:\n%s", page.Body)
	}
	u, err := in.DB.GetUserByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if user := in.get(t, &b, "/admin/users/"+u.ID); strings.Contains(string(user.Body), "Email a new enrolment link") {
		t.Fatal("the user page offers email without a mail server")
	}
	token := url.Values{"token": {strings.TrimPrefix(servertest.Scrape(t, page, reEnrollURL), in.Issuer+"/enroll?token=")}}
	for _, post := range []struct {
		path string
		form url.Values
	}{{"/admin/users/" + u.ID + "/enrollment-email", token}, {"/admin/users/" + u.ID + "/reenroll", url.Values{"send": {"email"}}}} {
		r := in.form(t, &b, post.path, post.form)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "mail is not set up") {
			t.Fatalf("POST %s: %s", post.path, r)
		}
	}
}

func TestCreatingAndReenrollingByEmail(t *testing.T) {
	c := startMailing(t)
	admin := c.newUser(t, "root@example.com", true)
	b := c.key(t, admin.ID)
	if page := c.get(t, &b, "/admin/users"); !strings.Contains(string(page.Body), `name="send" value="email"`) {
		t.Fatal("the create form offers no email button")
	}
	// received checks that message i went to email and its link opens.
	received := func(t *testing.T, i int, email string) {
		t.Helper()
		got := c.deliver(t)
		if len(got) != i+1 || got[i].To(t).Address != email {
			t.Fatalf("%d messages; want message %d to %s", len(got), i, email)
		}
		c.opens(t, got[i].Link(t, c.Issuer+"/"))
	}

	t.Run("the console creates a user and emails the link it never shows", func(t *testing.T) {
		r := c.form(t, &b, "/admin/users", url.Values{"email": {"ada@example.com"}, "send": {"email"}})
		if r.Status != http.StatusSeeOther || !strings.HasSuffix(r.Location(), "?notice=enrollment-emailed") || strings.Contains(string(r.Body), "token=") {
			t.Fatalf("create by email: %s, Location %q", r, r.Location())
		}
		received(t, 0, "ada@example.com")
	})
	var bobID string
	t.Run("the API creates a user with send_email and answers no link", func(t *testing.T) {
		r := c.call(t, &b, "", http.MethodPost, "/api/admin/v1/users", map[string]any{"email": "bob@example.com", "send_email": true})
		body := servertest.Decode[map[string]any](t, r)
		if r.Status != http.StatusCreated || body["email_queued"] != true || body["enrollment_url"] != nil {
			t.Fatalf("create: %s", r)
		}
		bobID = body["user"].(map[string]any)["id"].(string)
		received(t, 1, "bob@example.com")
	})
	t.Run("the API reenrolls with send_email and answers no link", func(t *testing.T) {
		r := c.call(t, &b, "", http.MethodPost, "/api/admin/v1/users/"+bobID+"/reenroll", map[string]any{"send_email": true})
		body := servertest.Decode[map[string]any](t, r)
		if r.Status != http.StatusOK || body["email_queued"] != true || body["enrollment_url"] != nil {
			t.Fatalf("reenroll: %s", r)
		}
		received(t, 2, "bob@example.com")
	})
	t.Run("the API reenrolls without a body as before", func(t *testing.T) {
		r := c.call(t, &b, "", http.MethodPost, "/api/admin/v1/users/"+bobID+"/reenroll", nil)
		if body := servertest.Decode[map[string]any](t, r); r.Status != http.StatusOK || body["enrollment_url"] == nil {
			t.Fatalf("reenroll: %s", r)
		}
		if n := len(c.deliver(t)); n != 3 {
			t.Fatalf("%d messages, want still 3", n)
		}
	})
}

func TestAPISendEmailWithoutMail(t *testing.T) {
	in := start(t)
	admin := in.newUser(t, "root@example.com", true)
	b := in.key(t, admin.ID)
	r := in.call(t, &b, "", http.MethodPost, "/api/admin/v1/users", map[string]any{"email": "ada@example.com", "send_email": true})
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "mail is not set up") {
		t.Fatalf("create: %s", r)
	}
	if _, err := in.DB.GetUserByEmail(t.Context(), "ada@example.com"); err == nil {
		t.Fatal("the user was created")
	}
}
