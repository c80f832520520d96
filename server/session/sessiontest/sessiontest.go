// Package sessiontest mints browser sessions for tests: a session stored
// through a session.Store exactly as sign-in stores one, and the cookie a
// browser would send back for it, so that a handler over the same store
// accepts it without the test going through the sign-in pages.
//
// It is a test helper: only _test.go files may import it (the architecture
// test in internal/archtest checks that no other package depends on it).
// It depends on package session only, so the in-package tests of the
// capabilities (server/oidc, ...) can use it; package servertest builds on
// it for the whole server.
package sessiontest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate/server/session"
)

// Browser is a minted session as a browser holds it.
type Browser struct {
	Cookie *http.Cookie // the session cookie, name and value only, as a browser sends it
	CSRF   string       // the session's CSRF token, for forms and the X-CSRF-Token header
	SID    string       // the session's id, as tokens and logout name it
	IDHash []byte       // what a sign-in flow of this session is bound to (storage.Flow.SessionHash)
}

// Mint stores a new session through s, signed in with a; a zero a.UserID
// leaves it anonymous (the other fields of a are then ignored). It fails t
// on any error.
func Mint(t testing.TB, s *session.Store, a session.Auth) Browser {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	x, err := s.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	if a.UserID != "" {
		if err := x.SignIn(a); err != nil {
			t.Fatal(err)
		}
	}
	b := Browser{CSRF: x.CSRFToken(), SID: x.SID(), IDHash: x.IDHash()}
	if err := x.Save(w); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()[0]
	b.Cookie = &http.Cookie{Name: c.Name, Value: c.Value}
	return b
}
