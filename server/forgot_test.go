package server_test

// Forgot password through the whole server: the form's answer, the mail
// over SMTP, the link, the second factor, and what changes after.

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/login"
	"github.com/keygate/keygate/server/servertest"
)

// reNonce is the per-response CSP nonce: the one part of two pages that
// differs by design.
var reNonce = regexp.MustCompile(`nonce="[^"]*"`)

func (a *agent) forgot(t *testing.T, csrf, email string) servertest.Reply {
	t.Helper()
	r := a.form(t, "/login/forgot", url.Values{"csrf_token": {csrf}, "email": {email}})
	r.Body = reNonce.ReplaceAll(r.Body, nil)
	return r
}

func TestForgotPassword(t *testing.T) {
	m := startMailing(t)
	const email, newPassword = "ada@example.com", "a much better passphrase"
	k := newKey(false, false)
	uid, enrolled, _ := m.enrol(t, email, k, "YubiKey")
	password := func(t *testing.T, pw string) bool {
		t.Helper()
		u, err := m.DB.GetUser(t.Context(), uid)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := login.VerifyPassword(u.PasswordHash, pw)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	v := m.newAgent(t)
	if page := v.follow(t, v.get(t, "/login")); !bytes.Contains(page.Body, []byte(`href="/login/forgot"`)) {
		t.Fatalf("the sign-in page offers no \"Forgot password?\": %s", page)
	}
	page := v.get(t, "/login/forgot")
	if page.Status != http.StatusOK {
		t.Fatalf("forgot page: %s", page)
	}
	csrf := servertest.Scrape(t, page, reCSRFField)

	t.Run("a known and an unknown address get the same answer; only the known one gets mail", func(t *testing.T) {
		mark := m.AuditMark(t)
		known, unknown := v.forgot(t, csrf, email), v.forgot(t, csrf, "nobody@example.com")
		if known.Status != http.StatusOK || !bytes.Contains(known.Body, []byte("If an account exists")) {
			t.Fatalf("answer for a known address: %s", known)
		}
		if unknown.Status != known.Status || !bytes.Equal(unknown.Body, known.Body) {
			t.Fatalf("the answers differ:\nknown   %s\nunknown %s", known, unknown)
		}
		m.deliver(t)
		got := m.mails(0)
		if len(got) != 1 || got[0].To(t).Address != email || len(got[0].Rcpt) != 1 {
			t.Fatalf("%d messages, want one to %s", len(got), email)
		}
		if s := got[0].Subject(t); !strings.HasPrefix(s, "Choose a new password at ") {
			t.Errorf("subject %q", s)
		}
		ev := m.Events(t, mark, audit.PasswordResetRequested)
		if len(ev) != 2 || ev[0].UserID != uid || ev[0].Result != audit.Success ||
			ev[1].UserID != "" || ev[1].Result != audit.Failure || ev[1].Details["reason"] != "unknown email" {
			t.Errorf("reset requests recorded %+v, want the known address's and the unknown one's failure", ev)
		}
	})

	t.Run("requests are throttled per address, known or not, alike", func(t *testing.T) {
		var last [2]servertest.Reply
		for range 3 {
			for i, addr := range []string{"grace@example.com", "nobody@example.com"} {
				last[i] = v.forgot(t, csrf, addr)
			}
		}
		// nobody@ asked once before: its fourth is refused, grace's third is not.
		if last[0].Status != http.StatusOK || last[1].Status != http.StatusTooManyRequests {
			t.Fatalf("third request %s, fourth %s; want 200 and 429", last[0], last[1])
		}
		if again := v.forgot(t, csrf, "grace@example.com"); again.Status != http.StatusTooManyRequests || !bytes.Equal(again.Body, last[1].Body) {
			t.Fatalf("a fourth request for another address: %s, want the same 429", again)
		}
	})

	link := m.mails(0)[0].Link(t, m.Issuer+"/login/reset?token=")
	path := strings.TrimPrefix(link, m.Issuer)
	form := v.get(t, path)
	if form.Status != http.StatusOK {
		t.Fatalf("the link's page: %s", form)
	}
	fields := url.Values{"csrf_token": {servertest.Scrape(t, form, reCSRFField)}, "token": {servertest.Scrape(t, form, reTokenField)},
		"password": {newPassword}, "confirm": {newPassword}}

	t.Run("a mistyped confirmation is refused", func(t *testing.T) {
		bad := url.Values{}
		for k, vs := range fields {
			bad[k] = vs
		}
		bad.Set("confirm", "something else entirely")
		if r := v.form(t, "/login/reset", bad); r.Status != http.StatusBadRequest {
			t.Fatalf("mismatched passwords: %s, want 400", r)
		}
	})

	r := v.form(t, "/login/reset", fields)
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/mfa/verify?flow=") {
		t.Fatalf("new password: %s (Location %q), want the second factor", r, r.Location())
	}
	if !password(t, waPassword) || password(t, newPassword) {
		t.Fatal("the password changed before the second factor")
	}
	verify := v.get(t, r.Location())
	if verify.Status != http.StatusOK {
		t.Fatalf("second-factor page: %s", verify)
	}
	mark := m.AuditMark(t)
	flow, vcsrf := servertest.Scrape(t, verify, reDataFlow), servertest.Scrape(t, verify, reDataCSRF)
	bg := v.begin(t, "assert", flow, vcsrf)
	fin, done := v.finish(t, "assert", bg.Challenge, vcsrf, k.assert(t, bg.Options, m.rp()))
	if fin.Status != http.StatusOK {
		t.Fatalf("key: %s", fin)
	}
	changed := v.follow(t, v.get(t, done.Next))
	if changed.Status != http.StatusOK || !bytes.Contains(changed.Body, []byte("Your password has been changed")) {
		t.Fatalf("after the key: %s", changed)
	}

	t.Run("the password changed, every session ended, nobody was signed in", func(t *testing.T) {
		if password(t, waPassword) || !password(t, newPassword) {
			t.Fatal("the new password is not the one that works")
		}
		if r := enrolled.get(t, "/account"); r.Status == http.StatusOK {
			t.Error("a session from before the reset still opens the account page")
		}
		if r := v.get(t, "/account"); r.Status == http.StatusOK {
			t.Error("the reset signed its browser in")
		}
		if ev := m.Events(t, mark, audit.PasswordReset); len(ev) != 1 || ev[0].Details["sessions_ended"] != "1" {
			t.Errorf("password.reset events %+v, want one that ended the session", ev)
		}
	})

	t.Run("the user is told by mail", func(t *testing.T) {
		n := len(m.smtp.Received())
		m.deliver(t)
		got := m.mails(n)
		if len(got) != 1 || got[0].To(t).Address != email || !strings.HasPrefix(got[0].Subject(t), "The password of your account was changed") {
			t.Fatalf("%d messages after the reset, want the change notice", len(got))
		}
	})

	t.Run("the link works once", func(t *testing.T) {
		if r := v.get(t, path); r.Status != http.StatusGone {
			t.Errorf("the used link: %s, want 410", r)
		}
	})
}
