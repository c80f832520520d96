package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// fuzzRoutes are the admin API calls FuzzAdminAPI makes: what an
// administrator's browser may send, with {id} and {cred} from the input.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodGet, "users"},
	{http.MethodPost, "users"},
	{http.MethodGet, "users/{id}"},
	{http.MethodPut, "users/{id}/admin"},
	{http.MethodPost, "users/{id}/suspend"},
	{http.MethodPost, "users/{id}/reenroll"},
	{http.MethodDelete, "users/{id}/sessions/{cred}"},
	{http.MethodPost, "users/{id}/keys/{cred}/rename"},
	{http.MethodPost, "users/{id}/keys/{cred}/revoke"},
	{http.MethodPost, "clients"},
	{http.MethodGet, "clients/{id}"},
	{http.MethodPut, "clients/{id}"},
	{http.MethodPost, "clients/{id}/rotate-secret"},
	{http.MethodGet, "audit"},
	{http.MethodPut, "users/{id}/role"},
	{http.MethodGet, "groups"},
	{http.MethodPost, "groups"},
	{http.MethodGet, "groups/{id}"},
	{http.MethodPut, "groups/{id}"},
	{http.MethodPost, "groups/{id}/members"},
	{http.MethodDelete, "groups/{id}/members/{cred}"},
}

// FuzzAdminAPI drives the admin JSON API as a signed-in administrator with
// hostile path ids, query strings and bodies: whatever comes in, the
// answer is never a server error, and every body it sends is JSON.
// useReal swaps the input's id for a real user's (app's, group's), so the
// handlers are reached past their lookups.
func FuzzAdminAPI(f *testing.F) {
	in := servertest.Start(f, func(c *server.Config) { c.Admin.FreshKeyTap = 24 * time.Hour })
	h := in.Srv.Handler()
	m := in.Manager()
	admin, err := m.CreateUser(f.Context(), manage.UserSpec{Email: "admin@example.com", Role: storage.RoleAdmin})
	if err != nil {
		f.Fatal(err)
	}
	user, err := m.CreateUser(f.Context(), manage.UserSpec{Email: "user@example.com"})
	if err != nil {
		f.Fatal(err)
	}
	app, err := m.RegisterClient(f.Context(), manage.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example/cb"}})
	if err != nil {
		f.Fatal(err)
	}
	group, err := m.CreateGroup(f.Context(), manage.GroupSpec{Name: "support"})
	if err != nil {
		f.Fatal(err)
	}
	b := in.Mint(f, session.Auth{UserID: admin.User.ID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"}, AuthTime: time.Now()})

	f.Fuzz(func(t *testing.T, route uint8, useReal bool, id, cred, query string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		if useReal {
			id = user.User.ID
			switch {
			case strings.HasPrefix(rt.path, "clients"):
				id = app.Client.ID
			case strings.HasPrefix(rt.path, "groups"):
				id = group.ID
			}
		}
		path := strings.NewReplacer("{id}", url.PathEscape(id), "{cred}", url.PathEscape(cred)).Replace(rt.path)
		u, err := url.ParseRequestURI("/api/admin/v1/" + path + "?" + query)
		if err != nil {
			return // no HTTP request can carry it
		}
		r := httptest.NewRequestWithContext(t.Context(), rt.method, "/", bytes.NewReader(body))
		r.URL, r.RequestURI = u, u.RequestURI()
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-CSRF-Token", b.CSRF)
		r.AddCookie(b.Cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s with %q: %d %s", rt.method, u, body, w.Code, w.Body)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: %d with a body that is not JSON: %q", rt.method, u, w.Code, w.Body)
		}
	})
}
