package session_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

// withCookies is a request carrying header as its Cookie header.
func withCookies(tb testing.TB, header string) *http.Request {
	r := httptest.NewRequestWithContext(tb.Context(), http.MethodGet, "https://id.example/", nil)
	r.Header.Set("Cookie", header)
	return r
}

// FuzzSessionCookie: whatever Cookie header a request carries, loading its
// session is not an error, and it is signed in only when it presents the
// id this store issued for that sign-in — exactly, as a browser holds it.
func FuzzSessionCookie(f *testing.F) {
	db := sqlitetest.Open(f)
	store := session.NewStore(db, session.Config{})
	// Only an existing user can be signed in.
	if err := db.CreateUser(f.Context(), storage.User{ID: "u_alice", Email: "alice@example.com", CreatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	alice := sessiontest.Mint(f, store, session.Auth{UserID: "u_alice", ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: time.Now()})
	f.Add(alice.Cookie.String())
	f.Fuzz(func(t *testing.T, header string) {
		r := withCookies(t, header)
		x, err := store.Load(r)
		if err != nil {
			t.Fatalf("Cookie %q: %v", header, err)
		}
		if uid := x.Auth().UserID; uid != "" {
			c, err := r.Cookie(alice.Cookie.Name)
			if err != nil || c.Value != alice.Cookie.Value || uid != "u_alice" {
				t.Fatalf("Cookie %q signed in as %q", header, uid)
			}
		}
	})
}

// FuzzDeviceCookie: a device is recognised only by a cookie this server
// issued; no edit of one, and nothing else, names a device. The key is new
// each run, so no stored input can carry a valid signature.
func FuzzDeviceCookie(f *testing.F) {
	devices := session.NewDevices([]byte(rand.Text()), false)
	var issued []string
	for range 3 {
		w := httptest.NewRecorder()
		issued = append(issued, devices.Ensure(w, httptest.NewRequest(http.MethodGet, "/", nil)))
		f.Add(w.Result().Cookies()[0].String())
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := withCookies(t, header)
		if id := devices.ID(r); id != "" && !slices.Contains(issued, id) {
			t.Fatalf("Cookie %q names device %q, which was never issued", header, id)
		}
		w := httptest.NewRecorder()
		id := devices.Ensure(w, r)
		if known := devices.ID(r); known != "" && (id != known || len(w.Result().Cookies()) != 0) {
			t.Fatalf("Cookie %q: a recognised device %q got %q and a new cookie", header, known, id)
		}
	})
}

// FuzzCSRF: a session's CSRF check accepts its own token and nothing else:
// not a prefix, not the token with more after it, not an edit of it.
func FuzzCSRF(f *testing.F) {
	store := session.NewStore(sqlitetest.Open(f), session.Config{})
	b := sessiontest.Mint(f, store, session.Auth{})
	r := httptest.NewRequestWithContext(f.Context(), http.MethodGet, "/", nil)
	r.AddCookie(b.Cookie)
	x, err := store.Load(r)
	if err != nil {
		f.Fatal(err)
	}
	token := x.CSRFToken()
	if token != b.CSRF {
		f.Fatalf("the loaded session's token %q is not the minted %q", token, b.CSRF)
	}
	f.Fuzz(func(t *testing.T, keep uint8, tail string) {
		// Start from the real token, so the check is tried near it too.
		submitted := token[:min(int(keep), len(token))] + tail
		if got, want := x.ValidCSRF(submitted), submitted == token; got != want {
			t.Fatalf("ValidCSRF(%q) = %v, want %v", submitted, got, want)
		}
	})
}
