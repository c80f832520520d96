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
	"unicode/utf8"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/login"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
)

const (
	fuzzEmail    = "fuzz@example.com"
	fuzzPassword = "correct horse battery staple"
)

var reTokenField = regexp.MustCompile(`name="token" value="([^"]*)"`)

// contentTypes are the bodies a form handler may be sent.
var contentTypes = []string{
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=b",
	"",
	"text/plain",
}

// startForms is a server without throttling (so every input reaches the
// handler's checks) and a user who has a password.
func startForms(f *testing.F) (*servertest.Instance, storage.User) {
	in := servertest.Start(f, func(c *server.Config) { c.Throttle = server.ThrottleConfig{PerAccount: 1 << 30, PerIP: 1 << 30} })
	nu, err := in.Manager().CreateUser(f.Context(), fuzzEmail, "", false)
	if err != nil {
		f.Fatal(err)
	}
	hash, err := login.HashPassword(fuzzPassword)
	if err != nil {
		f.Fatal(err)
	}
	if err := in.DB.UpdateUser(f.Context(), nu.User.ID, func(u *storage.User) error { u.PasswordHash = hash; return nil }); err != nil {
		f.Fatal(err)
	}
	return in, nu.User
}

// post sends body to path from browser b; a form body starts with the
// session's CSRF token and extra (URL-encoded) so the handler reads on.
func post(t *testing.T, in *servertest.Instance, b sessiontest.Browser, path string, kind uint8, extra url.Values, body []byte) (servertest.Reply, url.Values) {
	ctype := contentTypes[int(kind)%len(contentTypes)]
	if ctype == contentTypes[0] {
		extra.Set("csrf_token", b.CSRF)
		body = append([]byte(extra.Encode()+"&"), body...)
	}
	r := in.Request(t, http.MethodPost, path, ctype, body, nil)
	r.AddCookie(b.Cookie)
	reply := servertest.Read(t, in.HTTP, r)
	if reply.Status >= 500 {
		t.Fatalf("POST %s (%s) %q: %s", path, ctype, body, reply)
	}
	form, _ := url.ParseQuery(string(body)) // what a form handler read, near enough
	return reply, form
}

// FuzzPasswordForm: the password step is passed only with the user's
// password.
func FuzzPasswordForm(f *testing.F) {
	in, user := startForms(f)
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		b := sessiontest.Mint(t, in.Sessions, session.Auth{})
		flow := newFlow(t, in, b, storage.Flow{})
		reply, form := post(t, in, b, "/login", kind, url.Values{"flow": {flow.ID}}, body)
		if reply.Status == http.StatusSeeOther && strings.HasPrefix(reply.Location(), "/login/continue") {
			got, err := in.DB.GetFlow(t.Context(), flow.ID, time.Now())
			if err != nil || got.UserID != user.ID || form.Get("password") != fuzzPassword {
				t.Fatalf("%q passed the password step (flow %+v, %v)", body, got, err)
			}
		}
	})
}

// FuzzEnrollForm: the enrolment page shows any token without letting it
// out of its attribute, and setting a password takes a link keygate
// issued, once, with a password of the required length typed twice.
func FuzzEnrollForm(f *testing.F) {
	in, user := startForms(f)
	f.Fuzz(func(t *testing.T, kind uint8, useIssued bool, token string, body []byte) {
		page := servertest.Read(t, in.HTTP, in.Request(t, http.MethodGet, "/enroll?token="+url.QueryEscape(token), "", nil, nil))
		if page.Status != http.StatusOK {
			t.Fatalf("GET /enroll?token=%q: %s", token, page)
		}
		// html/template writes NUL and bytes that are not UTF-8 as U+FFFD.
		if utf8.ValidString(token) && !strings.ContainsRune(token, 0) {
			m := reTokenField.FindSubmatch(page.Body)
			if m == nil || html.UnescapeString(string(m[1])) != token {
				t.Fatalf("GET /enroll?token=%q: the form does not carry the token, or it left its attribute", token)
			}
		}
		if useIssued {
			nu, err := in.Manager().IssueEnrollmentFor(t.Context(), user.ID)
			if err != nil {
				t.Fatal(err)
			}
			link, _ := url.Parse(nu.EnrollmentURL)
			token = link.Query().Get("token")
		}
		b := sessiontest.Mint(t, in.Sessions, session.Auth{})
		reply, form := post(t, in, b, "/enroll", kind, url.Values{"token": {token}}, body)
		if reply.Status == http.StatusSeeOther {
			pw := form.Get("password")
			if !useIssued || form.Get("token") != token || len(pw) < login.MinPasswordLength || pw != form.Get("confirm") {
				t.Fatalf("token %q (issued: %v) and %q set a password", token, useIssued, body)
			}
		}
	})
}

// newFlow stores a sign-in flow of browser b, like f, in state identify
// unless f says otherwise.
func newFlow(t *testing.T, in *servertest.Instance, b sessiontest.Browser, f storage.Flow) storage.Flow {
	t.Helper()
	id, err := keys.RandomToken(24)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.ID, f.SessionHash, f.RequiredACR, f.MaxAge = id, b.IDHash, session.ACRMFA, -1
	f.CreatedAt, f.ExpiresAt = now, now.Add(15*time.Minute)
	if err := in.DB.CreateFlow(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	return f
}
