package manage_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

var t0 = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

const issuer = "https://id.example.com"

// newManager returns a manager over a fresh database, acting as "cli" at
// t0, that alerts the given webhooks.
func newManager(t *testing.T, webhooks ...string) (*manage.Manager, *sqlite.Store) {
	t.Helper()
	s := sqlitetest.Open(t)
	master, err := keys.NewMaster(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return t0 }
	return &manage.Manager{
		Store:  s,
		Audit:  audit.NewRecorder(s, slog.New(slog.DiscardHandler), webhooks, now),
		Hasher: keys.NewSecretHasher(master.Derive("client-secret", 32)),
		Issuer: issuer,
		Actor:  "cli",
		Now:    now,
	}, s
}

// events lists the audit events of one type, oldest first.
func events(t *testing.T, s storage.Audit, typ string) []storage.AuditEvent {
	t.Helper()
	var out []storage.AuditEvent
	err := s.WalkAudit(t.Context(), func(e storage.AuditEvent) error {
		if typ == "" || e.Type == typ {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func outbox(t *testing.T, s storage.Store) []storage.OutboxMessage {
	t.Helper()
	ms, err := storage.PendingOutbox(t.Context(), s, t0.Add(24*time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// tokenOf is the enrolment token carried by an enrolment URL.
func tokenOf(t *testing.T, enrollmentURL string) string {
	t.Helper()
	u, err := url.Parse(enrollmentURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != issuer+"/enroll" {
		t.Fatalf("enrolment URL %q does not point at %s/enroll", enrollmentURL, issuer)
	}
	tok := u.Query().Get("token")
	if len(tok) < 40 {
		t.Fatalf("enrolment token %q is too short to be unguessable", tok)
	}
	return tok
}

func TestCreateUser(t *testing.T) {
	t.Run("the email is stored in lower case", func(t *testing.T) {
		m, s := newManager(t)
		nu, err := m.CreateUser(t.Context(), manage.UserSpec{Email: "Ann.Lee@Example.COM", Name: "Ann Lee", Role: storage.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if nu.User.Email != "ann.lee@example.com" {
			t.Fatalf("returned email %q", nu.User.Email)
		}
		u, err := s.GetUserByEmail(t.Context(), "ann.lee@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != nu.User.ID || u.Name != "Ann Lee" || !u.IsAdmin() || u.PasswordHash != "" || u.Suspended() {
			t.Fatalf("stored user %+v", u)
		}
	})

	malformed := []struct{ name, email string }{
		{"an empty email", ""},
		{"a word without an at sign", "ann"},
		{"an address without a domain", "ann@"},
		{"an address without a local part", "@example.com"},
		{"two addresses", "ann@example.com, bob@example.com"},
		{"a display name with an address", "Ann <ann@example.com>"},
		{"an address with a space inside", "ann lee@example.com"},
	}
	for _, tt := range malformed {
		t.Run(tt.name+" is refused as invalid", func(t *testing.T) {
			m, s := newManager(t)
			_, err := m.CreateUser(t.Context(), manage.UserSpec{Email: tt.email})
			if !errors.Is(err, manage.ErrInvalid) {
				t.Fatalf("CreateUser(%q) = %v, want ErrInvalid", tt.email, err)
			}
			if users, _ := s.ListUsers(t.Context()); len(users) != 0 {
				t.Fatalf("a user was stored: %+v", users)
			}
			if evs := events(t, s, ""); len(evs) != 0 {
				t.Fatalf("%d audit events for a refused user", len(evs))
			}
		})
	}

	t.Run("a name over 200 characters is refused as invalid", func(t *testing.T) {
		m, _ := newManager(t)
		if _, err := m.CreateUser(t.Context(), manage.UserSpec{Email: "ann@example.com", Name: strings.Repeat("n", 201)}); !errors.Is(err, manage.ErrInvalid) {
			t.Fatalf("CreateUser = %v, want ErrInvalid", err)
		}
	})

	duplicates := []struct{ name, first, second string }{
		{"the same email twice", "ann@example.com", "ann@example.com"},
		{"the same email in another case", "ann@example.com", "ANN@Example.com"},
	}
	for _, tt := range duplicates {
		t.Run(tt.name+" is refused as invalid and leaves no trace", func(t *testing.T) {
			m, s := newManager(t)
			if _, err := m.CreateUser(t.Context(), manage.UserSpec{Email: tt.first}); err != nil {
				t.Fatal(err)
			}
			before := len(events(t, s, ""))
			_, err := m.CreateUser(t.Context(), manage.UserSpec{Email: tt.second})
			if !errors.Is(err, manage.ErrInvalid) || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("CreateUser = %v, want ErrInvalid saying it already exists", err)
			}
			if users, _ := s.ListUsers(t.Context()); len(users) != 1 {
				t.Fatalf("%d users, want 1", len(users))
			}
			if after := len(events(t, s, "")); after != before {
				t.Fatalf("a refused duplicate left %d audit events", after-before)
			}
		})
	}

	t.Run("the enrolment link works once and only its token's hash is stored", func(t *testing.T) {
		m, s := newManager(t)
		nu, err := m.CreateUser(t.Context(), manage.UserSpec{Email: "ann@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if !nu.ExpiresAt.Equal(t0.Add(manage.EnrollmentLifetime)) {
			t.Fatalf("expires at %v, want %v", nu.ExpiresAt, t0.Add(manage.EnrollmentLifetime))
		}
		tok := tokenOf(t, nu.EnrollmentURL)
		if _, err := s.ConsumeEnrollment(t.Context(), []byte(tok), t0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("consuming with the raw token = %v, want ErrNotFound (only the hash is stored)", err)
		}
		e, err := s.ConsumeEnrollment(t.Context(), keys.HashToken(tok), t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("ConsumeEnrollment = %v", err)
		}
		if e.UserID != nu.User.ID {
			t.Fatalf("enrolment is for %q, want %q", e.UserID, nu.User.ID)
		}
		if _, err := s.ConsumeEnrollment(t.Context(), keys.HashToken(tok), t0.Add(2*time.Minute)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second ConsumeEnrollment = %v, want ErrNotFound", err)
		}
	})

	t.Run("the enrolment link expires after the enrolment lifetime", func(t *testing.T) {
		m, s := newManager(t)
		nu, err := m.CreateUser(t.Context(), manage.UserSpec{Email: "ann@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		late := t0.Add(manage.EnrollmentLifetime + time.Second)
		if _, err := s.ConsumeEnrollment(t.Context(), keys.HashToken(tokenOf(t, nu.EnrollmentURL)), late); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("ConsumeEnrollment after expiry = %v, want ErrNotFound", err)
		}
	})

	t.Run("creating a user is audited with the user and the link", func(t *testing.T) {
		m, s := newManager(t)
		nu, err := m.CreateUser(t.Context(), manage.UserSpec{Email: "Ann@example.com", Role: storage.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		created := events(t, s, audit.UserCreated)
		started := events(t, s, audit.EnrollmentStarted)
		if len(created) != 1 || len(started) != 1 {
			t.Fatalf("%d user.created, %d enrollment.started events; want 1 each", len(created), len(started))
		}
		c := created[0]
		if c.Actor != "cli" || c.UserID != nu.User.ID || c.Details["email"] != "ann@example.com" || c.Details["role"] != "admin" {
			t.Fatalf("user.created event %+v", c)
		}
		// Granting a role alerts, also when it comes with a new user.
		if g := events(t, s, audit.RoleGranted); len(g) != 1 || g[0].UserID != nu.User.ID || g[0].Details["role"] != "admin" {
			t.Fatalf("role events %+v", g)
		}
		if started[0].UserID != nu.User.ID || strings.Contains(fmt.Sprint(started[0].Details), tokenOf(t, nu.EnrollmentURL)) {
			t.Fatalf("enrollment.started event %+v (it must not carry the token)", started[0])
		}
	})
}

func TestIssueEnrollment(t *testing.T) {
	m, s := newManager(t)
	nu, err := m.CreateUser(t.Context(), manage.UserSpec{Email: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("an existing user gets a new working link, found by email in any case", func(t *testing.T) {
		again, err := m.IssueEnrollment(t.Context(), " ANN@example.com ")
		if err != nil {
			t.Fatal(err)
		}
		if again.EnrollmentURL == nu.EnrollmentURL {
			t.Fatal("the new link equals the old one")
		}
		e, err := s.ConsumeEnrollment(t.Context(), keys.HashToken(tokenOf(t, again.EnrollmentURL)), t0)
		if err != nil || e.UserID != nu.User.ID {
			t.Fatalf("ConsumeEnrollment = %+v, %v", e, err)
		}
	})
	t.Run("an unknown email is refused as invalid", func(t *testing.T) {
		if _, err := m.IssueEnrollment(t.Context(), "nobody@example.com"); !errors.Is(err, manage.ErrInvalid) {
			t.Fatalf("IssueEnrollment = %v, want ErrInvalid", err)
		}
	})
}

func TestRegisterClientValidation(t *testing.T) {
	tests := []struct {
		name string
		spec manage.ClientSpec
		want string // part of the error; "" for accepted
	}{
		{"a client without a name is refused",
			manage.ClientSpec{RedirectURIs: []string{"https://app.example.com/cb"}}, "needs a name"},
		{"a client whose name is only spaces is refused",
			manage.ClientSpec{Name: "   ", RedirectURIs: []string{"https://app.example.com/cb"}}, "needs a name"},
		{"a client with a 201-character name is refused",
			manage.ClientSpec{Name: strings.Repeat("a", 201), RedirectURIs: []string{"https://app.example.com/cb"}}, "needs a name"},
		{"an unknown grant is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}, GrantTypes: []string{"password"}}, "unknown grant"},
		{"the implicit grant is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}, GrantTypes: []string{"authorization_code", "implicit"}}, "unknown grant"},
		{"a public client with client_credentials is refused",
			manage.ClientSpec{Name: "App", Public: true, GrantTypes: []string{"client_credentials"}}, "public client cannot use client_credentials"},
		{"the code grant without a redirect URI is refused",
			manage.ClientSpec{Name: "App"}, "needs at least one"},
		{"a plain http redirect on a non-loopback host is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"http://app.example.com/cb"}}, "plain http"},
		{"a plain http redirect on a host named like localhost is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"http://localhost.evil.example/cb"}}, "plain http"},
		{"a plain http post-logout redirect on a non-loopback host is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}, PostLogoutRedirectURIs: []string{"http://app.example.com/bye"}}, "plain http"},
		{"a redirect with a fragment is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb#frag"}}, "fragment"},
		{"a redirect with an empty fragment is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb#"}}, "fragment"},
		{"a javascript: redirect is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"javascript:alert(1)"}}, "javascript"},
		{"a data: post-logout redirect is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}, PostLogoutRedirectURIs: []string{"data:text/html,hi"}}, "data"},
		{"a relative redirect is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"/cb"}}, "not an absolute URI"},
		{"an https redirect without a host is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https:///cb"}}, "not an absolute URI"},
		{"an unparseable redirect is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/%zz"}}, "not an absolute URI"},
		{"an unknown acr is refused",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}, MinACR: "aal2"}, "--acr must be"},

		{"an https redirect is accepted",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}}, ""},
		{"plain http on localhost is accepted",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"http://localhost:3000/cb"}}, ""},
		{"plain http on 127.0.0.1 is accepted",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"http://127.0.0.1:51234/cb"}}, ""},
		{"plain http on [::1] is accepted",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"http://[::1]:8000/cb"}}, ""},
		{"a native app's private-use scheme is accepted",
			manage.ClientSpec{Name: "App", Public: true, RedirectURIs: []string{"com.example.app:/oauth2redirect"}}, ""},
		{"a confidential client_credentials client needs no redirect",
			manage.ClientSpec{Name: "Batch job", GrantTypes: []string{"client_credentials"}}, ""},
		{"acr phrh is accepted",
			manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}, MinACR: "phrh"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := newManager(t)
			nc, err := m.RegisterClient(t.Context(), tt.spec)
			clients, lerr := s.ListClients(t.Context())
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("RegisterClient = %v, want accepted", err)
				}
				if len(clients) != 1 || clients[0].ID != nc.Client.ID {
					t.Fatalf("stored clients %+v", clients)
				}
				return
			}
			if !errors.Is(err, manage.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RegisterClient = %v, want ErrInvalid containing %q", err, tt.want)
			}
			if len(clients) != 0 {
				t.Fatalf("a refused client was stored: %+v", clients)
			}
			if evs := events(t, s, ""); len(evs) != 0 {
				t.Fatalf("%d audit events for a refused client", len(evs))
			}
		})
	}
}

func TestRegisterClient(t *testing.T) {
	t.Run("a confidential client's secret verifies with the same hasher, and only its hash is stored", func(t *testing.T) {
		m, s := newManager(t)
		nc, err := m.RegisterClient(t.Context(), manage.ClientSpec{Name: " Wiki ", RedirectURIs: []string{"https://wiki.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(nc.Secret) != 43 {
			t.Fatalf("secret %q is not 32 bytes of base64url", nc.Secret)
		}
		c, err := s.GetClient(t.Context(), nc.Client.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Hasher.Compare(t.Context(), c.SecretHash, []byte(nc.Secret)); err != nil {
			t.Fatalf("Compare(stored hash, secret) = %v", err)
		}
		if err := m.Hasher.Compare(t.Context(), c.SecretHash, []byte(nc.Secret+"x")); !errors.Is(err, keys.ErrSecretMismatch) {
			t.Fatalf("Compare with a wrong secret = %v, want ErrSecretMismatch", err)
		}
		if strings.Contains(string(c.SecretHash), nc.Secret) {
			t.Fatal("the stored hash contains the secret")
		}
		other := keys.NewSecretHasher(make([]byte, 32))
		if err := other.Compare(t.Context(), c.SecretHash, []byte(nc.Secret)); err == nil {
			t.Fatal("the secret verifies under another key")
		}
	})
	t.Run("a public client has no secret", func(t *testing.T) {
		m, s := newManager(t)
		nc, err := m.RegisterClient(t.Context(), manage.ClientSpec{Name: "SPA", Public: true, RedirectURIs: []string{"https://spa.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.GetClient(t.Context(), nc.Client.ID)
		if err != nil {
			t.Fatal(err)
		}
		if nc.Secret != "" || len(c.SecretHash) != 0 || !c.Public {
			t.Fatalf("public client: secret %q, stored hash %x, public %v", nc.Secret, c.SecretHash, c.Public)
		}
	})
	t.Run("defaults are the code and refresh grants and acr mfa, and the name is trimmed", func(t *testing.T) {
		m, s := newManager(t)
		nc, err := m.RegisterClient(t.Context(), manage.ClientSpec{Name: "  Wiki  ", RedirectURIs: []string{"https://wiki.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.GetClient(t.Context(), nc.Client.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "Wiki" || strings.Join(c.GrantTypes, " ") != "authorization_code refresh_token" ||
			c.MinACR != "mfa" || strings.Join(c.ResponseTypes, " ") != "code" || !strings.HasPrefix(c.ID, "c_") {
			t.Fatalf("stored client %+v", c)
		}
	})
	t.Run("registering is audited", func(t *testing.T) {
		m, s := newManager(t)
		nc, err := m.RegisterClient(t.Context(), manage.ClientSpec{Name: "Wiki", RedirectURIs: []string{"https://wiki.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		evs := events(t, s, audit.ClientCreated)
		if len(evs) != 1 || evs[0].ClientID != nc.Client.ID || evs[0].Actor != "cli" || evs[0].Details["public"] != "false" {
			t.Fatalf("client.created events %+v", evs)
		}
		if strings.Contains(fmt.Sprint(evs[0].Details), nc.Secret) {
			t.Fatal("the audit event carries the secret")
		}
	})
}

// suspendFixture is a user with sessions and tokens of every kind, and
// another user and a machine client whose must survive the suspension.
type suspendFixture struct {
	user, other storage.User
	ownTokens   []storage.TokenRecord // active, of the user
	keepTokens  []storage.TokenRecord // must stay active
	ownSessions [][]byte
	keepSession []byte
}

func setUpSuspension(t *testing.T, m *manage.Manager, s *sqlite.Store) suspendFixture {
	t.Helper()
	ctx := t.Context()
	var f suspendFixture
	for i, email := range []string{"ann@example.com", "bob@example.com"} {
		nu, err := m.CreateUser(ctx, manage.UserSpec{Email: email})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			f.user = nu.User
		} else {
			f.other = nu.User
		}
	}
	session := func(n int, userID string) []byte {
		h := keys.HashToken(fmt.Sprintf("cookie-%d", n))
		if err := s.CreateSession(ctx, storage.BrowserSession{IDHash: h, SID: fmt.Sprintf("sid-%d", n), UserID: userID,
			CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(12 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return h
	}
	f.ownSessions = [][]byte{session(1, f.user.ID), session(2, f.user.ID)}
	f.keepSession = session(3, f.other.ID)

	token := func(kind, sig, subject, sid string, active bool) storage.TokenRecord {
		tr := storage.TokenRecord{Kind: kind, Signature: sig, RequestID: "req-" + sig, ClientID: "c_app",
			Subject: subject, SID: sid, Active: active, Request: []byte("{}"),
			RequestedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := s.CreateToken(ctx, tr); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	f.ownTokens = []storage.TokenRecord{
		token(storage.KindAuthorizeCode, "code-1", f.user.ID, "sid-1", true),
		token(storage.KindAccessToken, "at-1", f.user.ID, "sid-1", true),
		token(storage.KindRefreshToken, "rt-1", f.user.ID, "sid-1", true),
		token(storage.KindOIDC, "oidc-1", f.user.ID, "sid-1", true),
		token(storage.KindPKCE, "pkce-1", f.user.ID, "sid-1", true),
		token(storage.KindAccessToken, "at-2", f.user.ID, "", true), // not from a browser session
	}
	token(storage.KindAccessToken, "at-old", f.user.ID, "sid-1", false) // already revoked: not counted
	f.keepTokens = []storage.TokenRecord{
		token(storage.KindAccessToken, "at-bob", f.other.ID, "sid-3", true),
		token(storage.KindAccessToken, "at-machine", "", "", true), // client_credentials
	}
	return f
}

func TestSuspendUser(t *testing.T) {
	hooks := []string{"https://hooks.example.com/a", "https://pager.example.net/b"}
	for _, tc := range []struct {
		name  string
		hooks []string
	}{{"without webhooks", nil}, {"with two webhooks", hooks}} {
		t.Run(tc.name, func(t *testing.T) {
			m, s := newManager(t, tc.hooks...)
			f := setUpSuspension(t, m, s)
			ctx := t.Context()
			queued := len(outbox(t, s))

			res, err := m.SuspendUser(ctx, "ANN@example.com")
			if err != nil {
				t.Fatal(err)
			}
			t.Run("the result counts the sessions ended and the active tokens revoked", func(t *testing.T) {
				if res.User.ID != f.user.ID || res.Sessions != len(f.ownSessions) || res.Tokens != len(f.ownTokens) {
					t.Fatalf("result %+v, want user %s, %d sessions, %d tokens", res, f.user.ID, len(f.ownSessions), len(f.ownTokens))
				}
			})
			t.Run("the user is suspended as of now", func(t *testing.T) {
				u, err := s.GetUser(ctx, f.user.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !u.Suspended() || !u.SuspendedAt.Equal(t0) {
					t.Fatalf("suspended at %v, want %v", u.SuspendedAt, t0)
				}
			})
			t.Run("every session of the user is gone", func(t *testing.T) {
				for _, h := range f.ownSessions {
					if _, err := s.GetSession(ctx, h, t0); !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("GetSession = %v, want ErrNotFound", err)
					}
				}
				if left, _ := s.ListUserSessions(ctx, f.user.ID); len(left) != 0 {
					t.Errorf("%d sessions left", len(left))
				}
			})
			t.Run("every token of the user is inactive", func(t *testing.T) {
				for _, tr := range f.ownTokens {
					got, err := s.GetToken(ctx, tr.Kind, tr.Signature)
					if err != nil {
						t.Fatal(err)
					}
					if got.Active {
						t.Errorf("%s %s is still active", tr.Kind, tr.Signature)
					}
				}
			})
			t.Run("other users' sessions and tokens are untouched", func(t *testing.T) {
				if _, err := s.GetSession(ctx, f.keepSession, t0); err != nil {
					t.Errorf("the other user's session: %v", err)
				}
				for _, tr := range f.keepTokens {
					got, err := s.GetToken(ctx, tr.Kind, tr.Signature)
					if err != nil || !got.Active {
						t.Errorf("%s %s: active %v, %v", tr.Kind, tr.Signature, got.Active, err)
					}
				}
				if o, _ := s.GetUser(ctx, f.other.ID); o.Suspended() {
					t.Error("the other user is suspended too")
				}
			})
			t.Run("a user.suspended event records the counts", func(t *testing.T) {
				evs := events(t, s, audit.UserSuspended)
				if len(evs) != 1 {
					t.Fatalf("%d user.suspended events, want 1", len(evs))
				}
				e := evs[0]
				if e.UserID != f.user.ID || e.Actor != "cli" || e.Result != audit.Success ||
					e.Details["sessions_ended"] != fmt.Sprint(len(f.ownSessions)) ||
					e.Details["tokens_revoked"] != fmt.Sprint(len(f.ownTokens)) {
					t.Fatalf("event %+v", e)
				}
			})
			t.Run("an alert is queued for each webhook", func(t *testing.T) {
				msgs := outbox(t, s)
				if got := len(msgs) - queued; got != len(tc.hooks) {
					t.Fatalf("%d new outbox messages, want %d", got, len(tc.hooks))
				}
				for _, msg := range msgs[queued:] {
					if msg.Kind != audit.OutboxAlert || !strings.Contains(string(msg.Payload), `"type":"user.suspended"`) {
						t.Errorf("message %+v", msg)
					}
				}
			})
		})
	}

	t.Run("suspending again keeps the first time and revokes nothing more", func(t *testing.T) {
		m, s := newManager(t)
		f := setUpSuspension(t, m, s)
		if _, err := m.SuspendUser(t.Context(), f.user.Email); err != nil {
			t.Fatal(err)
		}
		later := t0.Add(time.Hour)
		m.Now = func() time.Time { return later }
		res, err := m.SuspendUser(t.Context(), f.user.Email)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sessions != 0 || res.Tokens != 0 || !res.User.SuspendedAt.Equal(t0) {
			t.Fatalf("second suspension %+v, want nothing more and SuspendedAt %v", res, t0)
		}
	})

	t.Run("an unknown email is refused as invalid", func(t *testing.T) {
		m, _ := newManager(t)
		if _, err := m.SuspendUser(t.Context(), "nobody@example.com"); !errors.Is(err, manage.ErrInvalid) {
			t.Fatalf("SuspendUser = %v, want ErrInvalid", err)
		}
	})

	t.Run("it is one transaction: when the caller's transaction fails, nothing of it remains", func(t *testing.T) {
		m, s := newManager(t, hooks...)
		f := setUpSuspension(t, m, s)
		queued := len(outbox(t, s))
		auditBefore := len(events(t, s, ""))
		boom := errors.New("the caller failed afterwards")
		err := s.InTx(t.Context(), func(ctx context.Context) error {
			if _, err := m.SuspendUser(ctx, f.user.Email); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		if u, _ := s.GetUser(t.Context(), f.user.ID); u.Suspended() {
			t.Error("the user is suspended")
		}
		if left, _ := s.ListUserSessions(t.Context(), f.user.ID); len(left) != len(f.ownSessions) {
			t.Errorf("%d sessions left, want %d", len(left), len(f.ownSessions))
		}
		for _, tr := range f.ownTokens {
			if got, _ := s.GetToken(t.Context(), tr.Kind, tr.Signature); !got.Active {
				t.Errorf("%s %s was revoked", tr.Kind, tr.Signature)
			}
		}
		if n := len(events(t, s, "")); n != auditBefore {
			t.Errorf("%d audit events were kept", n-auditBefore)
		}
		if n := len(outbox(t, s)); n != queued {
			t.Errorf("%d outbox messages were kept", n-queued)
		}
	})
}

func TestSignOut(t *testing.T) {
	m, s := newManager(t)
	f := setUpSuspension(t, m, s)
	ctx := t.Context()
	app, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "CRM", RedirectURIs: []string{"https://crm.example/cb"},
		BackchannelLogoutURI: "https://crm.example/logout"})
	if err != nil {
		t.Fatal(err)
	}
	queued := len(outbox(t, s))

	ended, err := m.SignOut(ctx, f.user.ID, "sid-1", app.Client.ID)
	if err != nil || !ended {
		t.Fatalf("SignOut = %v, %v; want ended", ended, err)
	}
	t.Run("the session and every token issued from it end", func(t *testing.T) {
		if _, err := s.GetSession(ctx, f.ownSessions[0], t0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the session: %v, want ErrNotFound", err)
		}
		for _, tr := range f.ownTokens {
			got, err := s.GetToken(ctx, tr.Kind, tr.Signature)
			if err != nil {
				t.Fatal(err)
			}
			if fromSession := tr.SID == "sid-1"; got.Active == fromSession {
				t.Errorf("%s %s (sid %q): active %v", tr.Kind, tr.Signature, tr.SID, got.Active)
			}
		}
		if _, err := s.GetSession(ctx, f.ownSessions[1], t0); err != nil {
			t.Errorf("the user's other session ended too: %v", err)
		}
	})
	t.Run("apps with a back-channel logout URI are told, in the same transaction", func(t *testing.T) {
		msgs := outbox(t, s)[queued:]
		if len(msgs) != 1 || msgs[0].Kind != manage.OutboxBackchannelLogout || msgs[0].Target != "https://crm.example/logout" ||
			!strings.Contains(string(msgs[0].Payload), `"sid":"sid-1"`) {
			t.Fatalf("outbox %+v, want one back-channel logout for sid-1", msgs)
		}
	})
	t.Run("a signed_out event names the app", func(t *testing.T) {
		evs := events(t, s, audit.SignedOut)
		if len(evs) != 1 || evs[0].UserID != f.user.ID || evs[0].ClientID != app.Client.ID || evs[0].Details["ended"] != "true" {
			t.Fatalf("events %+v", evs)
		}
	})
	t.Run("signing out of an ended session says so and tells no app again", func(t *testing.T) {
		before := len(outbox(t, s))
		ended, err := m.SignOut(ctx, f.user.ID, "sid-1", "")
		if err != nil || ended {
			t.Fatalf("SignOut again = %v, %v; want not ended, no error", ended, err)
		}
		if n := len(outbox(t, s)) - before; n != 0 {
			t.Errorf("%d more back-channel logouts", n)
		}
	})
	t.Run("another user's session is refused and left alone", func(t *testing.T) {
		if _, err := m.SignOut(ctx, f.user.ID, "sid-3", ""); !errors.Is(err, manage.ErrInvalid) {
			t.Fatalf("SignOut of another's session = %v, want ErrInvalid", err)
		}
		if _, err := s.GetSession(ctx, f.keepSession, t0); err != nil {
			t.Errorf("the other user's session: %v", err)
		}
	})
}
