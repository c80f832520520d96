package login_test

// The sign-in forms through the whole server (package servertest), with
// hostile bodies: whatever is posted, the answer is never a server error,
// and no step is passed without what it asks for.

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/login"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

const (
	fuzzEmail    = "fuzz@example.com"
	fuzzPassword = "correct horse battery staple"
)

var reTokenField = regexp.MustCompile(`name="token" value="([^"]*)"`)

// startForms is a server without throttling (so every input reaches the
// handler's checks) and an enrolled user who has a password (a pending
// one could never pass the password step, and the fuzz target could not
// fail).
func startForms(f *testing.F) (*servertest.Instance, storage.User) {
	in := servertest.Start(f, func(c *server.Config) { c.Throttle = server.ThrottleConfig{PerAccount: 1 << 30, PerIP: 1 << 30} })
	nu, err := in.Manager().CreateUser(f.Context(), manage.UserSpec{Email: fuzzEmail})
	if err != nil {
		f.Fatal(err)
	}
	hash, err := login.HashPassword(fuzzPassword)
	if err != nil {
		f.Fatal(err)
	}
	if err := in.DB.UpdateUser(f.Context(), nu.User.ID, func(u *storage.User) error { u.PasswordHash, u.EnrolledAt = hash, time.Now(); return nil }); err != nil {
		f.Fatal(err)
	}
	return in, nu.User
}

// FuzzPasswordForm: the password step is passed only with the user's
// password.
func FuzzPasswordForm(f *testing.F) {
	in, user := startForms(f)
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		b := in.Mint(t, session.Auth{})
		flow := in.Flow(t, b, storage.Flow{})
		reply, form := in.PostHostile(t, b, "/login", kind, url.Values{"flow": {flow.ID}}, body)
		if reply.Status == http.StatusSeeOther && strings.HasPrefix(reply.Location(), "/login/continue") {
			got, err := in.DB.GetFlow(t.Context(), flow.ID, time.Now())
			if err != nil || got.UserID != user.ID || form.Get("password") != fuzzPassword {
				t.Fatalf("%q passed the password step (flow %+v, %v)", body, got, err)
			}
		}
	})
}

// FuzzEnrollForm: a link keygate did not issue gets the 410 page before
// any form; an issued one shows the form carrying its token; and setting
// a password takes a link keygate issued, with a password of the required
// length typed twice.
func FuzzEnrollForm(f *testing.F) {
	in, user := startForms(f)
	f.Fuzz(func(t *testing.T, kind uint8, useIssued bool, token string, body []byte) {
		page := servertest.Read(t, in.HTTP, in.Request(t, http.MethodGet, "/enroll?token="+url.QueryEscape(token), "", nil, nil))
		if page.Status != http.StatusGone || reTokenField.Match(page.Body) {
			t.Fatalf("GET /enroll?token=%q: %s, want 410 without a form", token, page)
		}
		if useIssued {
			nu, err := in.Manager().IssueEnrollmentFor(t.Context(), user.ID)
			if err != nil {
				t.Fatal(err)
			}
			link, _ := url.Parse(nu.EnrollmentURL)
			token = link.Query().Get("token")
			page := servertest.Read(t, in.HTTP, in.Request(t, http.MethodGet, "/enroll?token="+url.QueryEscape(token), "", nil, nil))
			m := reTokenField.FindSubmatch(page.Body)
			if page.Status != http.StatusOK || m == nil || html.UnescapeString(string(m[1])) != token {
				t.Fatalf("GET of an issued link: %s; the form does not carry its token", page)
			}
		}
		b := in.Mint(t, session.Auth{})
		reply, form := in.PostHostile(t, b, "/enroll", kind, url.Values{"token": {token}}, body)
		if reply.Status == http.StatusSeeOther {
			pw := form.Get("password")
			if !useIssued || form.Get("token") != token || len(pw) < login.MinPasswordLength || pw != form.Get("confirm") {
				t.Fatalf("token %q (issued: %v) and %q set a password", token, useIssued, body)
			}
		}
	})
}
