package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
)

// managerProvisioner provisions as the keygate CLI does — the same
// manage.Manager calls `keygate user import` and `keygate client add`
// make — on an in-process server's store, so the tests need no binary.
type managerProvisioner struct{ m *manage.Manager }

func (p managerProvisioner) addUsers(ctx context.Context, emails []string) ([]newUser, error) {
	specs := make([]manage.UserSpec, len(emails))
	for i, e := range emails {
		specs[i] = manage.UserSpec{Email: e}
	}
	added, err := p.m.ImportUsers(ctx, specs)
	if err != nil {
		return nil, err
	}
	users := make([]newUser, len(added))
	for i, nu := range added {
		users[i] = newUser{ID: nu.User.ID, Email: nu.User.Email, EnrollmentURL: nu.EnrollmentURL}
	}
	return users, nil
}

func (p managerProvisioner) addApp(ctx context.Context, name, redirectURI, idTokenAlg string) (appCreds, error) {
	nc, err := p.m.RegisterClient(ctx, manage.ClientSpec{Name: name, RedirectURIs: []string{redirectURI},
		GrantTypes: []string{"authorization_code", "refresh_token"}, IDTokenAlg: idTokenAlg})
	return appCreds{ID: nc.Client.ID, Secret: nc.Secret}, err
}

// prepared is a sign-in mode with its users enrolled on a fresh in-process
// keygate; opts change the generator's settings first.
func prepared(t *testing.T, mode string, users int, opts ...func(*Config)) (*servertest.Instance, *signIns) {
	t.Helper()
	in := servertest.Start(t)
	cfg := Config{BaseURL: in.Base, Conns: 2, Users: users, Mode: mode, Auth: "basic", Keygate: "unused",
		Timeout: 10 * time.Second, MaxDuration: time.Minute}
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := cfg.normalise(); err != nil {
		t.Fatal(err)
	}
	l, err := newSignIns(cfg, managerProvisioner{in.Manager()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	if err := l.prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	return in, l
}

// eventsOf is how many events of typ the server recorded after mark.
func eventsOf(t *testing.T, in *servertest.Instance, mark int64, typ string) int {
	t.Helper()
	return len(in.Events(t, mark, typ))
}

// TestSignInModesCountWhatTheServerDid runs each mode for a few sign-ins
// and checks each counted one against the server's own record of it.
func TestSignInModesCountWhatTheServerDid(t *testing.T) {
	for _, tc := range []struct {
		mode, event string
	}{
		{modeSignInTOTP, audit.SigninSucceeded},
		{modeSignInPasskey, audit.SigninSucceeded},
		{modeSSO, audit.SigninSSO},
		{modeRefresh, audit.TokenRefreshed},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			// Eight users, four for each worker, and four sign-ins: however
			// the workers share them, no TOTP step is used twice and no
			// worker waits for the next.
			in, l := prepared(t, tc.mode, 8)
			mark := in.AuditMark(t)
			s := Summarize(l.run(t.Context(), time.Minute, 4))
			if s.OK != 4 || s.Errors != 0 || s.Waits != 0 {
				t.Fatalf("ok %d, errors %d (%s), waits %d; want 4 sign-ins", s.OK, s.Errors, s.FirstErr, s.Waits)
			}
			if n := eventsOf(t, in, mark, tc.event); n != 4 {
				t.Errorf("the server recorded %d %s events, want 4", n, tc.event)
			}
			if n := eventsOf(t, in, mark, audit.SigninFailed); n != 0 {
				t.Errorf("the server recorded %d failed sign-ins", n)
			}
		})
	}
}

// TestIDTokenAlgorithms registers the app for each ID token algorithm:
// its sign-ins count only with ID tokens signed with it.
func TestIDTokenAlgorithms(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			in, l := prepared(t, modeSSO, 2, func(c *Config) { c.IDTokenAlg = alg })
			c, err := in.DB.GetClient(t.Context(), l.site.app.ID)
			if err != nil || c.IDTokenSignedResponseAlg() != alg {
				t.Fatalf("the app's algorithm %q (%v), want %s", c.IDTokenAlg, err, alg)
			}
			if s := Summarize(l.run(t.Context(), time.Minute, 2)); s.OK != 2 || s.Errors != 0 {
				t.Fatalf("ok %d, errors %d (%s); want 2 sign-ins", s.OK, s.Errors, s.FirstErr)
			}
			// Expecting the other algorithm, the generator refuses them.
			l.site.idTokenAlg = map[string]string{"RS256": "ES256", "ES256": "RS256"}[alg]
			if s := Summarize(l.run(t.Context(), time.Minute, 2)); s.OK != 0 || !strings.Contains(s.FirstErr, "want "+l.site.idTokenAlg) {
				t.Errorf("expecting %s: ok %d, first error %q; want every sign-in refused", l.site.idTokenAlg, s.OK, s.FirstErr)
			}
		})
	}
}

func TestIDTokenAlgFlag(t *testing.T) {
	for alg, ok := range map[string]bool{"": true, "RS256": true, "ES256": true, "HS256": false, "es256": false} {
		cfg := Config{BaseURL: "http://127.0.0.1:8080", Conns: 1, Mode: modeSSO, Auth: "basic", Keygate: "keygate",
			Timeout: time.Second, MaxDuration: time.Minute, IDTokenAlg: alg}
		if err := cfg.normalise(); (err == nil) != ok {
			t.Errorf("-id-token-alg %q: %v", alg, err)
		}
	}
}

// TestSignInModesCountRefusalsAsErrors spoils each mode's credential and
// checks that what the server refuses is counted as an error, never as a
// sign-in.
func TestSignInModesCountRefusalsAsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		spoil      func(t *testing.T, in *servertest.Instance, l *signIns, acc *account)
		want       string // in the first error
	}{
		{"a wrong TOTP code", modeSignInTOTP, func(t *testing.T, _ *servertest.Instance, _ *signIns, acc *account) {
			acc.totpSecret = strings.Repeat("A", 32) // another app's secret: a well-formed, wrong code
		}, "TOTP code: 401"},
		{"a refused assertion", modeSignInPasskey, func(t *testing.T, _ *servertest.Instance, l *signIns, acc *account) {
			stranger, err := newPasskey(l.site.rp)
			if err != nil {
				t.Fatal(err)
			}
			stranger.auth.Options.UserHandle = acc.key.auth.Options.UserHandle // claims to be the user's passkey
			acc.key = stranger
		}, "passkey finish: 400"},
		{"an ID token for someone else", modeSignInPasskey, func(t *testing.T, _ *servertest.Instance, l *signIns, acc *account) {
			acc.user.ID = l.accounts[0].user.ID + "-not"
		}, "code redemption"},
		{"a suspended user's session", modeSSO, func(t *testing.T, in *servertest.Instance, _ *signIns, acc *account) {
			if _, err := in.Manager().SuspendUserID(t.Context(), acc.user.ID); err != nil {
				t.Fatal(err)
			}
		}, "back to the app"},
		{"a refresh token keygate never issued", modeRefresh, func(t *testing.T, _ *servertest.Instance, _ *signIns, acc *account) {
			acc.refresh += "x"
		}, "token refresh_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, l := prepared(t, tc.mode, 4)
			for _, acc := range l.accounts {
				tc.spoil(t, in, l, acc)
			}
			mark := in.AuditMark(t)
			s := Summarize(l.run(t.Context(), time.Minute, 2))
			if s.OK != 0 || s.Errors != 2 || !strings.Contains(s.FirstErr, tc.want) {
				t.Fatalf("ok %d, errors %d, first error %q; want 2 errors naming %q", s.OK, s.Errors, s.FirstErr, tc.want)
			}
			for _, typ := range []string{audit.SigninSucceeded, audit.SigninSSO, audit.TokenRefreshed} {
				if tc.want != "code redemption" && eventsOf(t, in, mark, typ) != 0 {
					t.Errorf("the server recorded %s for a spoiled credential", typ)
				}
			}
		})
	}
}

// TestSetPasswordWaitsOutTheArgonGate checks the enrolment waits out a 503
// with Retry-After from keygate's argon2id gate, and fails on any other
// refusal at once.
func TestSetPasswordWaitsOutTheArgonGate(t *testing.T) {
	var posts atomic.Int32
	refuse := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			_, _ = io.WriteString(w, `<input type="hidden" name="csrf_token" value="c"><input type="hidden" name="token" value="t">`)
		case http.MethodPost:
			if r.PostFormValue("csrf_token") != "c" || r.PostFormValue("token") != "t" || r.PostFormValue("password") == "" {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			if posts.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "busy", refuse)
				return
			}
			http.Redirect(w, r, "/mfa/enroll", http.StatusSeeOther)
		}
	}))
	defer srv.Close()
	cfg := Config{BaseURL: srv.URL, Conns: 1, Users: 1, Mode: modeSignInPasskey, Auth: "basic", Keygate: "unused",
		Timeout: 5 * time.Second, MaxDuration: time.Minute}
	if err := cfg.normalise(); err != nil {
		t.Fatal(err)
	}
	u := newUser{Email: "a@example.com", EnrollmentURL: "http://localhost/enroll?token=t"}
	for _, tc := range []struct {
		refuse, posts int
		ok            bool
	}{{http.StatusServiceUnavailable, 2, true}, {http.StatusTooManyRequests, 1, false}} {
		posts.Store(0)
		refuse = tc.refuse
		l, err := newSignIns(cfg, nil, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		s := l.site
		err = s.setPassword(t.Context(), s.browser(nil), u)
		if (err == nil) != tc.ok || int(posts.Load()) != tc.posts {
			t.Errorf("first answer %d: error %v after %d posts; want success %v after %d", tc.refuse, err, posts.Load(), tc.ok, tc.posts)
		}
		l.close()
	}
}
