package session_test

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

// t0 is the injected clock's start; nothing here reads the wall clock.
var t0 = time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)

const lifetime = 12 * time.Hour

type fixture struct {
	db    *sqlite.Store
	store *session.Store
	clock *clocktest.Clock
	name  string // cookie name
}

func newFixture(t *testing.T, secure bool) *fixture {
	t.Helper()
	db := sqlitetest.Open(t)
	c := clocktest.New(t0)
	f := &fixture{db: db, clock: c, name: "keygate_session"}
	if secure {
		f.name = "__Host-keygate_session"
	}
	f.store = session.NewStore(db, session.Config{Secure: secure, Lifetime: lifetime, Now: c.Now})
	// Only an existing, active user can hold a signed-in session.
	if err := db.CreateUser(t.Context(), storage.User{ID: alice.UserID, Email: "alice@example.com", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return f
}

// request is one browser request: it loads the session from cookie (nil:
// none), lets fn work on it, and returns the cookie the response set (nil:
// none).
func (f *fixture) request(t *testing.T, cookie *http.Cookie, fn func(x *session.Session, w http.ResponseWriter) error) *http.Cookie {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "https://id.example/", nil)
	if cookie != nil {
		r.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	w := httptest.NewRecorder()
	x, err := f.store.Load(r)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := fn(x, w); err != nil {
		t.Fatal(err)
	}
	cookies := w.Result().Cookies()
	switch len(cookies) {
	case 0:
		return nil
	case 1:
		return cookies[0]
	}
	t.Fatalf("response set %d cookies, want at most one", len(cookies))
	return nil
}

// save starts a session (or continues cookie's) and saves it.
func (f *fixture) save(t *testing.T, cookie *http.Cookie) *http.Cookie {
	t.Helper()
	return f.request(t, cookie, func(x *session.Session, w http.ResponseWriter) error { return x.Save(w) })
}

// load returns the session that cookie names, without saving it.
func (f *fixture) load(t *testing.T, cookie *http.Cookie) *session.Session {
	t.Helper()
	var out *session.Session
	f.request(t, cookie, func(x *session.Session, _ http.ResponseWriter) error { out = x; return nil })
	return out
}

func sum(id string) []byte {
	s := sha256.Sum256([]byte(id))
	return s[:]
}

// row reads the stored session of cookie id at the injected now.
func (f *fixture) row(t *testing.T, id string) (storage.BrowserSession, error) {
	t.Helper()
	return f.db.GetSession(t.Context(), sum(id), f.clock.Now())
}

var alice = session.Auth{UserID: "u_alice", ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: t0.Add(-time.Minute)}

func TestNewSession(t *testing.T) {
	t.Run("a new session gets a 43-character id of which only the SHA-256 is stored", func(t *testing.T) {
		f := newFixture(t, false)
		c := f.save(t, nil)
		if c == nil {
			t.Fatal("no cookie set")
		}
		if c.Name != f.name || len(c.Value) != 43 {
			t.Fatalf("cookie %s=%q (%d chars), want %s with 43 characters", c.Name, c.Value, len(c.Value), f.name)
		}
		row, err := f.row(t, c.Value)
		if err != nil {
			t.Fatalf("row under SHA-256(id): %v", err)
		}
		if _, err := f.db.GetSession(t.Context(), []byte(c.Value), f.clock.Now()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("row under the raw id: err = %v, want ErrNotFound", err)
		}
		if strings.Contains(string(row.Data), c.Value) {
			t.Error("the stored data holds the cookie id")
		}
		if !row.CreatedAt.Equal(t0) || !row.ExpiresAt.Equal(t0.Add(lifetime)) || row.UserID != "" || row.SID == "" {
			t.Errorf("row = created %v, expires %v, user %q, sid %q; want %v, %v, no user, a sid",
				row.CreatedAt, row.ExpiresAt, row.UserID, row.SID, t0, t0.Add(lifetime))
		}
	})

	t.Run("two new sessions get different ids and sids", func(t *testing.T) {
		f := newFixture(t, false)
		a, b := f.save(t, nil), f.save(t, nil)
		if a.Value == b.Value {
			t.Fatal("two sessions share an id")
		}
		ra, _ := f.row(t, a.Value)
		rb, _ := f.row(t, b.Value)
		if ra.SID == rb.SID {
			t.Error("two sessions share a sid")
		}
	})

	t.Run("the session's IDHash is the SHA-256 of its cookie id", func(t *testing.T) {
		f := newFixture(t, false)
		var hash []byte
		c := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
			hash = x.IDHash() // before Save, as an authorize request binds its flow
			return x.Save(w)
		})
		if !slices.Equal(hash, sum(c.Value)) {
			t.Error("IDHash taken before Save does not match the cookie id saved")
		}
		if got := f.load(t, c).IDHash(); !slices.Equal(got, sum(c.Value)) {
			t.Error("IDHash of the loaded session does not match its cookie id")
		}
	})

	t.Run("a saved session comes back with what it holds", func(t *testing.T) {
		f := newFixture(t, false)
		var sid string
		c := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
			if err := x.SignIn(alice); err != nil {
				return err
			}
			sid = x.SID()
			return x.Save(w)
		})
		x := f.load(t, c)
		got := x.Auth()
		if got.UserID != alice.UserID || got.ACR != alice.ACR || !slices.Equal(got.AMR, alice.AMR) || !got.AuthTime.Equal(alice.AuthTime) {
			t.Errorf("Auth = %+v, want %+v", got, alice)
		}
		if x.SID() != sid {
			t.Errorf("SID = %q, want %q", x.SID(), sid)
		}
		row, err := f.row(t, c.Value)
		if err != nil || row.UserID != alice.UserID || row.SID != sid {
			t.Errorf("row = user %q sid %q (%v), want %q %q", row.UserID, row.SID, err, alice.UserID, sid)
		}
	})
}

func TestUnusableCookie(t *testing.T) {
	tests := []struct {
		name   string
		cookie func(t *testing.T, f *fixture) string
	}{
		{"an unknown id yields a fresh empty session", func(t *testing.T, f *fixture) string {
			return strings.Repeat("A", 43)
		}},
		{"a short cookie yields a fresh empty session", func(t *testing.T, f *fixture) string {
			return "abc"
		}},
		{"a long cookie yields a fresh empty session", func(t *testing.T, f *fixture) string {
			return strings.Repeat("A", 44)
		}},
		{"a cookie of the right length but not an id yields a fresh empty session", func(t *testing.T, f *fixture) string {
			return strings.Repeat(".", 43)
		}},
		{"an id whose row does not decode yields a fresh empty session", func(t *testing.T, f *fixture) string {
			id := strings.Repeat("B", 43)
			err := f.db.CreateSession(t.Context(), storage.BrowserSession{IDHash: sum(id), SID: "sid-x",
				Data: []byte("not gob"), CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			value := tc.cookie(t, f)
			var auth session.Auth
			var validBefore bool
			c := f.request(t, &http.Cookie{Name: f.name, Value: value}, func(x *session.Session, w http.ResponseWriter) error {
				auth = x.Auth()
				validBefore = x.ValidCSRF("")
				return x.Save(w)
			})
			if auth.UserID != "" {
				t.Errorf("Auth = %+v, want none", auth)
			}
			if validBefore {
				t.Error("an empty CSRF token is valid")
			}
			if c == nil || c.Value == value || len(c.Value) != 43 {
				t.Fatalf("cookie after save = %v, want a new 43-character id", c)
			}
			if _, err := f.row(t, c.Value); err != nil {
				t.Errorf("the fresh session was not stored: %v", err)
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Errorf("fresh session's cookie: HttpOnly %v, SameSite %v, Path %q; want true, Lax, /", c.HttpOnly, c.SameSite, c.Path)
			}
		})
	}
}

func TestSignIn(t *testing.T) {
	t.Run("signing in issues a new id and deletes the old row", func(t *testing.T) {
		f := newFixture(t, false)
		before := f.save(t, nil)
		oldRow, err := f.row(t, before.Value)
		if err != nil {
			t.Fatal(err)
		}
		after := f.request(t, before, func(x *session.Session, w http.ResponseWriter) error {
			if err := x.SignIn(alice); err != nil {
				return err
			}
			return x.Save(w)
		})
		if after == nil || after.Value == before.Value {
			t.Fatalf("cookie after sign-in = %v, want a new id", after)
		}
		if _, err := f.row(t, before.Value); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the pre-sign-in row: err = %v, want ErrNotFound", err)
		}
		newRow, err := f.row(t, after.Value)
		if err != nil {
			t.Fatal(err)
		}
		if newRow.UserID != alice.UserID {
			t.Errorf("new row user = %q, want %q", newRow.UserID, alice.UserID)
		}
		if newRow.SID == oldRow.SID {
			t.Error("the sid survived sign-in")
		}
		// The planted id is worthless: it loads nothing.
		if got := f.load(t, before).Auth(); got.UserID != "" {
			t.Errorf("the old cookie loads %+v", got)
		}
	})

	t.Run("a session whose row another request deleted can still sign in", func(t *testing.T) {
		f := newFixture(t, false)
		before := f.save(t, nil)
		after := f.request(t, before, func(x *session.Session, w http.ResponseWriter) error {
			// A concurrent request (a second tab's sign-out) deleted the
			// row after this one loaded it.
			if err := f.db.DeleteSession(t.Context(), sum(before.Value)); err != nil {
				return err
			}
			if err := x.SignIn(alice); err != nil {
				return err
			}
			return x.Save(w)
		})
		if after == nil || after.Value == before.Value {
			t.Fatalf("cookie after sign-in = %v, want a new id", after)
		}
		if got := f.load(t, after).Auth(); got.UserID != alice.UserID {
			t.Errorf("Auth = %+v, want %s", got, alice.UserID)
		}
	})

	t.Run("starting an enrolment issues a new id and drops a sign-in", func(t *testing.T) {
		f := newFixture(t, false)
		signedIn := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
			if err := x.SignIn(alice); err != nil {
				return err
			}
			return x.Save(w)
		})
		enrolling := f.request(t, signedIn, func(x *session.Session, w http.ResponseWriter) error {
			if err := x.SetEnrolling("u_bob", []byte("link-hash")); err != nil {
				return err
			}
			return x.Save(w)
		})
		if enrolling.Value == signedIn.Value {
			t.Fatal("SetEnrolling kept the id")
		}
		if _, err := f.row(t, signedIn.Value); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the signed-in row: err = %v, want ErrNotFound", err)
		}
		x := f.load(t, enrolling)
		if x.Auth().UserID != "" || x.Enrolling() != "u_bob" || string(x.EnrollmentLink()) != "link-hash" {
			t.Errorf("Auth = %+v, Enrolling = %q, link %q; want no sign-in, u_bob, link-hash", x.Auth(), x.Enrolling(), x.EnrollmentLink())
		}
	})
}

func TestDestroy(t *testing.T) {
	t.Run("destroying a session deletes its row and expires the cookie", func(t *testing.T) {
		f := newFixture(t, false)
		c := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
			if err := x.SignIn(alice); err != nil {
				return err
			}
			return x.Save(w)
		})
		gone := f.request(t, c, func(x *session.Session, w http.ResponseWriter) error { return x.Destroy(w) })
		if gone == nil || gone.Name != f.name || gone.Value != "" || gone.MaxAge >= 0 {
			t.Fatalf("cookie after Destroy = %+v, want %s emptied with Max-Age=0", gone, f.name)
		}
		if _, err := f.row(t, c.Value); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("row after Destroy: err = %v, want ErrNotFound", err)
		}
		if got := f.load(t, c).Auth(); got.UserID != "" {
			t.Errorf("the destroyed cookie still loads %+v", got)
		}
	})

	t.Run("destroying a session whose row is already gone still expires the cookie", func(t *testing.T) {
		f := newFixture(t, false)
		c := f.save(t, nil)
		gone := f.request(t, c, func(x *session.Session, w http.ResponseWriter) error {
			// A double-clicked sign-out: the other request deleted the
			// row after this one loaded it.
			if err := f.db.DeleteSession(t.Context(), sum(c.Value)); err != nil {
				return err
			}
			return x.Destroy(w)
		})
		if gone == nil || gone.MaxAge >= 0 {
			t.Fatalf("cookie after Destroy = %+v, want it expired", gone)
		}
	})
}

func TestExpiry(t *testing.T) {
	t.Run("a session loads until its lifetime ends and not at that instant", func(t *testing.T) {
		f := newFixture(t, false)
		c := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
			if err := x.SignIn(alice); err != nil {
				return err
			}
			return x.Save(w)
		})
		f.clock.Advance(lifetime - time.Second)
		if got := f.load(t, c).Auth(); got.UserID != alice.UserID {
			t.Fatalf("a second before the end: Auth = %+v", got)
		}
		f.clock.Advance(time.Second)
		if got := f.load(t, c).Auth(); got.UserID != "" {
			t.Errorf("at the end of the lifetime: Auth = %+v, want none", got)
		}
	})

	t.Run("saving a session again does not extend its lifetime", func(t *testing.T) {
		f := newFixture(t, false)
		c := f.save(t, nil)
		f.clock.Advance(lifetime / 2)
		again := f.save(t, c)
		if again.Value != c.Value {
			t.Fatal("a plain save changed the id")
		}
		row, err := f.row(t, c.Value)
		if err != nil {
			t.Fatal(err)
		}
		if !row.ExpiresAt.Equal(t0.Add(lifetime)) || !row.LastSeenAt.Equal(t0.Add(lifetime/2)) {
			t.Errorf("row expires %v, last seen %v; want %v, %v", row.ExpiresAt, row.LastSeenAt, t0.Add(lifetime), t0.Add(lifetime/2))
		}
		// The cookie lasts as long as the row, by the injected clock.
		if want := int((lifetime / 2).Seconds()); again.MaxAge != want {
			t.Errorf("cookie Max-Age = %d, want %d", again.MaxAge, want)
		}
	})
}

func TestCSRF(t *testing.T) {
	t.Run("the token is stable within a session and checked exactly", func(t *testing.T) {
		f := newFixture(t, false)
		var token string
		c := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
			token = x.CSRFToken()
			if again := x.CSRFToken(); again != token {
				t.Errorf("second CSRFToken = %q, want %q", again, token)
			}
			return x.Save(w)
		})
		if len(token) < 43 {
			t.Fatalf("token %q is shorter than 256 bits", token)
		}
		x := f.load(t, c)
		if got := x.CSRFToken(); got != token {
			t.Errorf("CSRFToken on the next request = %q, want %q", got, token)
		}
		for _, tc := range []struct {
			name      string
			submitted string
			want      bool
		}{
			{"the session's own token is valid", token, true},
			{"an empty token is not", "", false},
			{"another token is not", strings.Repeat("x", len(token)), false},
			{"the token with a character more is not", token + "x", false},
			{"the token less its last character is not", token[:len(token)-1], false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := x.ValidCSRF(tc.submitted); got != tc.want {
					t.Errorf("ValidCSRF = %v, want %v", got, tc.want)
				}
			})
		}
	})

	t.Run("another session's token is not valid", func(t *testing.T) {
		f := newFixture(t, false)
		var a, b *session.Session
		f.request(t, nil, func(x *session.Session, _ http.ResponseWriter) error { a = x; return nil })
		f.request(t, nil, func(x *session.Session, _ http.ResponseWriter) error { b = x; return nil })
		if a.CSRFToken() == b.CSRFToken() || a.ValidCSRF(b.CSRFToken()) {
			t.Error("one session accepts another's token")
		}
	})

	t.Run("a session that never made a token accepts none", func(t *testing.T) {
		f := newFixture(t, false)
		x := f.load(t, f.save(t, nil))
		if x.ValidCSRF("") {
			t.Error("ValidCSRF(\"\") = true without a token")
		}
	})
}

func TestCookieFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secure bool
		want   string
	}{
		{"a development cookie is HttpOnly and SameSite=Lax", false, "keygate_session"},
		{"a secure cookie is also Secure and named __Host-", true, "__Host-keygate_session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.secure)
			c := f.save(t, nil)
			if c.Name != tc.want {
				t.Errorf("name = %q, want %q", c.Name, tc.want)
			}
			if !c.HttpOnly {
				t.Error("not HttpOnly")
			}
			if c.SameSite != http.SameSiteLaxMode {
				t.Errorf("SameSite = %v, want Lax", c.SameSite)
			}
			if c.Secure != tc.secure {
				t.Errorf("Secure = %v, want %v", c.Secure, tc.secure)
			}
			// __Host- requires Path=/ and no Domain; keep both for all.
			if c.Path != "/" || c.Domain != "" {
				t.Errorf("Path = %q, Domain = %q; want /, none", c.Path, c.Domain)
			}
			if want := int(lifetime.Seconds()); c.MaxAge != want {
				t.Errorf("Max-Age = %d, want %d (the lifetime, by the injected clock)", c.MaxAge, want)
			}
		})
	}
}

func TestLoadFlow(t *testing.T) {
	f := newFixture(t, false)
	ctx := t.Context()
	c := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
		err := f.db.CreateFlow(ctx, storage.Flow{ID: "flow-mine", SessionHash: x.IDHash(), ClientID: "c",
			MaxAge: -1, CreatedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)})
		if err != nil {
			return err
		}
		return x.Save(w)
	})
	mine := f.load(t, c)
	other := f.load(t, f.save(t, nil))

	for _, tc := range []struct {
		name string
		x    *session.Session
		id   string
		at   time.Time
		want error
	}{
		{"the session's own flow loads", mine, "flow-mine", t0, nil},
		{"another session's flow is refused", other, "flow-mine", t0, session.ErrFlowOther},
		{"an unknown flow is gone", mine, "flow-nope", t0, session.ErrFlowGone},
		{"an expired flow is gone", mine, "flow-mine", t0.Add(15 * time.Minute), session.ErrFlowGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl, err := session.LoadFlow(ctx, f.db, tc.x, tc.id, tc.at)
			if err != tc.want {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && fl.ID != tc.id {
				t.Errorf("flow = %q, want %q", fl.ID, tc.id)
			}
		})
	}
}

func TestEndedSessionStaysEnded(t *testing.T) {
	signIn := func(t *testing.T, f *fixture) *http.Cookie {
		return f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
			if err := x.SignIn(alice); err != nil {
				return err
			}
			return x.Save(w)
		})
	}
	// saveAfter loads the session, lets end run (another request ending
	// it) and then saves what it loaded, as a request in flight would.
	saveAfter := func(t *testing.T, f *fixture, c *http.Cookie, end func()) (*http.Cookie, error) {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "https://id.example/account", nil)
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		x, err := f.store.Load(r)
		if err != nil {
			t.Fatal(err)
		}
		if x.Auth().UserID != alice.UserID {
			t.Fatal("the session did not load signed in")
		}
		end()
		w := httptest.NewRecorder()
		err = x.Save(w)
		var set *http.Cookie
		if cs := w.Result().Cookies(); len(cs) == 1 {
			set = cs[0]
		}
		return set, err
	}
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, f *fixture, c *http.Cookie)
	}{
		{"signed out", func(t *testing.T, f *fixture, c *http.Cookie) {
			if err := f.db.DeleteSession(t.Context(), sum(c.Value)); err != nil {
				t.Fatal(err)
			}
		}},
		{"all sessions ended", func(t *testing.T, f *fixture, c *http.Cookie) {
			if _, err := f.db.DeleteUserSessions(t.Context(), alice.UserID); err != nil {
				t.Fatal(err)
			}
		}},
		{"user suspended", func(t *testing.T, f *fixture, c *http.Cookie) {
			// Only the suspension, not its ending of the sessions: the
			// write itself refuses a suspended user.
			if err := f.db.UpdateUser(t.Context(), alice.UserID, func(u *storage.User) error { u.SuspendedAt = t0; return nil }); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run("a request in flight when the session was "+tc.name+" does not bring it back", func(t *testing.T) {
			f := newFixture(t, false)
			c := signIn(t, f)
			set, err := saveAfter(t, f, c, func() { tc.end(t, f, c) })
			if !errors.Is(err, session.ErrEnded) {
				t.Fatalf("Save = %v, want ErrEnded", err)
			}
			if _, err := f.row(t, c.Value); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the ended session's row: %v, want ErrNotFound", err)
			}
			// No cookie: the browser may hold a newer session's by now
			// (see the sign-in race below); the old one loads as nothing.
			if set != nil {
				t.Errorf("cookie set = %v, want none", set)
			}
			if got := f.load(t, c).Auth(); got.UserID != "" {
				t.Errorf("the cookie still loads %+v", got)
			}
		})
	}

	// A sign-in renews the session's id and deletes the row under the old
	// one. A request of another tab that loaded the old row and answers
	// after the sign-in must not take the new session from the browser.
	t.Run("a request in flight across a sign-in in another tab does not clear the new session's cookie", func(t *testing.T) {
		for _, before := range []string{"anonymous", "signed in"} {
			t.Run(before, func(t *testing.T) {
				f := newFixture(t, false)
				old := f.save(t, nil)
				if before == "signed in" {
					old = signIn(t, f)
				}
				// The other tab's request loads the old session...
				r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "https://id.example/login", nil)
				r.AddCookie(&http.Cookie{Name: old.Name, Value: old.Value})
				inFlight, err := f.store.Load(r)
				if err != nil {
					t.Fatal(err)
				}
				inFlight.CSRFToken()
				// ...this tab signs in, and its response sets the new cookie...
				jar := f.request(t, old, func(x *session.Session, w http.ResponseWriter) error {
					if err := x.SignIn(alice); err != nil {
						return err
					}
					return x.Save(w)
				})
				if jar == nil || jar.Value == old.Value || jar.MaxAge <= 0 {
					t.Fatalf("the sign-in set %v, want a new session cookie", jar)
				}
				// ...and then the other tab's response lands.
				w := httptest.NewRecorder()
				if err := inFlight.Save(w); !errors.Is(err, session.ErrEnded) {
					t.Fatalf("the other tab's Save = %v, want ErrEnded", err)
				}
				for _, c := range w.Result().Cookies() {
					t.Errorf("the other tab's response sets %v, want no cookie", c)
					if c.Name == jar.Name {
						jar = c
					}
				}
				if got := f.load(t, jar).Auth(); got.UserID != alice.UserID {
					t.Errorf("the browser's cookie loads %+v, want the new sign-in", got)
				}
				if _, err := f.row(t, old.Value); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("the old session's row: %v, want ErrNotFound", err)
				}
				if got := f.load(t, old).Auth(); got.UserID != "" {
					t.Errorf("the old cookie loads %+v", got)
				}
			})
		}
	})

	t.Run("a suspended user cannot be signed in", func(t *testing.T) {
		f := newFixture(t, false)
		if err := f.db.UpdateUser(t.Context(), alice.UserID, func(u *storage.User) error { u.SuspendedAt = t0; return nil }); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "https://id.example/", nil)
		x, err := f.store.Load(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.SignIn(alice); err != nil {
			t.Fatal(err)
		}
		if err := x.Save(httptest.NewRecorder()); !errors.Is(err, session.ErrEnded) {
			t.Fatalf("Save = %v, want ErrEnded", err)
		}
		if n, err := f.db.ListUserSessions(t.Context(), alice.UserID); err != nil || len(n) != 0 {
			t.Fatalf("sessions of the suspended user: %v, %v", n, err)
		}
	})
}

func TestCSRFTokenChangesAtSignIn(t *testing.T) {
	f := newFixture(t, false)
	var before string
	c := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
		before = x.CSRFToken() // shown on the sign-in form
		return x.Save(w)
	})
	var after string
	f.request(t, c, func(x *session.Session, w http.ResponseWriter) error {
		if !x.ValidCSRF(before) {
			t.Fatal("the form's token is refused before sign-in")
		}
		if err := x.SignIn(alice); err != nil {
			return err
		}
		if x.ValidCSRF(before) {
			t.Error("the token from before sign-in still passes")
		}
		after = x.CSRFToken()
		return x.Save(w)
	})
	if after == "" || after == before {
		t.Fatalf("CSRF token after sign-in = %q, before %q; want a new one", after, before)
	}
}

// A page that loads a session and saves it unchanged writes nothing: no
// row update (the last-seen time moves at most once a minute) and no
// cookie, which could overwrite a newer session's set by another tab.
// Any change is written, and an ended session still answers ErrEnded.
func TestUnchangedSessionIsNotWritten(t *testing.T) {
	f := newFixture(t, false)
	c := f.request(t, nil, func(x *session.Session, w http.ResponseWriter) error {
		if err := x.SignIn(alice); err != nil {
			return err
		}
		return x.Save(w)
	})
	before, err := f.row(t, c.Value)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	if set := f.save(t, c); set != nil {
		t.Errorf("an unchanged save set cookie %v", set)
	}
	if got, err := f.row(t, c.Value); err != nil || !got.LastSeenAt.Equal(before.LastSeenAt) {
		t.Errorf("after an unchanged save: last seen %v (%v), want %v", got.LastSeenAt, err, before.LastSeenAt)
	}

	// A minute on, the last-seen time is written.
	f.clock.Advance(time.Minute)
	if set := f.save(t, c); set == nil || set.Value != c.Value {
		t.Errorf("a last-seen save set cookie %v, want the session's", set)
	}
	if got, err := f.row(t, c.Value); err != nil || !got.LastSeenAt.Equal(f.clock.Now()) {
		t.Errorf("last seen %v (%v), want %v", got.LastSeenAt, err, f.clock.Now())
	}

	// A changed value is written at once.
	var token string
	f.request(t, c, func(x *session.Session, w http.ResponseWriter) error {
		token = x.CSRFToken()
		return x.Save(w)
	})
	if !f.load(t, c).ValidCSRF(token) {
		t.Error("the CSRF token created on a page was not saved")
	}

	// Unchanged, but the user was suspended: ErrEnded, no cookie.
	if err := f.db.UpdateUser(t.Context(), alice.UserID, func(u *storage.User) error { u.SuspendedAt = t0; return nil }); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "https://id.example/", nil)
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	x, err := f.store.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := x.Save(w); !errors.Is(err, session.ErrEnded) {
		t.Errorf("unchanged save of a suspended user's session = %v, want ErrEnded", err)
	}
	if cs := w.Result().Cookies(); len(cs) != 0 {
		t.Errorf("cookies set: %v", cs)
	}
}
