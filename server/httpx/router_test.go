package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/httpx"
)

type mounter []httpx.Route

func (m mounter) Routes() []httpx.Route { return m }

// text returns a handler answering with body s.
func text(s string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(s))
	})
}

func TestRouterEnumeratesEveryRoute(t *testing.T) {
	r := httpx.NewRouter()
	r.Mount(mounter{
		{Method: http.MethodGet, Pattern: "/oauth2/auth", Guard: httpx.GuardPublic, Handler: text("auth")},
		{Method: http.MethodPost, Pattern: "/oauth2/token", Guard: httpx.GuardClient, Handler: text("token")},
	})
	r.Mount(mounter{
		{Method: http.MethodGet, Pattern: "/admin/clients/{id}", Guard: httpx.GuardAdmin, Handler: text("client")},
	})
	r.Handle(httpx.Route{Pattern: "/userinfo", Guard: httpx.GuardUser, Handler: text("userinfo")})

	var got []string
	for _, rt := range r.Routes() {
		got = append(got, string(rt.Guard)+" "+rt.String())
	}
	want := []string{
		"public GET /oauth2/auth",
		"client POST /oauth2/token",
		"admin GET /admin/clients/{id}",
		"user /userinfo",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Routes() = %q, want %q", got, want)
	}

	t.Run("the returned slice is a copy the caller cannot use to alter the router", func(t *testing.T) {
		rs := r.Routes()
		rs[0].Guard = httpx.GuardAdmin
		if r.Routes()[0].Guard != httpx.GuardPublic {
			t.Fatal("modifying the result of Routes changed the router")
		}
	})
}

func TestRouterRoutesByMethod(t *testing.T) {
	r := httpx.NewRouter()
	r.Mount(mounter{
		{Method: http.MethodGet, Pattern: "/thing", Guard: httpx.GuardPublic, Handler: text("get")},
		{Method: http.MethodPost, Pattern: "/thing", Guard: httpx.GuardPublic, Handler: text("post")},
		{Method: http.MethodDelete, Pattern: "/things/{id}", Guard: httpx.GuardAdmin, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("delete " + r.PathValue("id")))
		})},
		{Pattern: "/any", Guard: httpx.GuardPublic, Handler: text("any")},
	})
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody           string
		wantAllow          string
	}{
		{"a GET reaches the GET route", "GET", "/thing", 200, "get", ""},
		{"a POST reaches the POST route", "POST", "/thing", 200, "post", ""},
		{"a HEAD is answered by the GET route", "HEAD", "/thing", 200, "", ""},
		{"an unregistered method on a known path is 405 with Allow", "PUT", "/thing", 405, "", "GET, HEAD, POST"},
		{"path wildcards reach the handler", "DELETE", "/things/42", 200, "delete 42", ""},
		{"a route without a method answers every method", "PATCH", "/any", 200, "any", ""},
		{"an unknown path is 404", "GET", "/nope", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body.String(), tt.wantBody)
			}
			if tt.wantAllow != "" && rec.Header().Get("Allow") != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", rec.Header().Get("Allow"), tt.wantAllow)
			}
		})
	}
}

func TestRouterRejectsBadRoutes(t *testing.T) {
	tests := []struct {
		name  string
		route httpx.Route
		want  string
	}{
		{"a route without a guard is rejected", httpx.Route{Method: "GET", Pattern: "/x", Handler: text("")}, "unknown guard"},
		{"a misspelt guard is rejected", httpx.Route{Method: "GET", Pattern: "/x", Guard: "Admin", Handler: text("")}, "unknown guard"},
		{"a method written into the pattern is rejected", httpx.Route{Pattern: "GET /x", Guard: httpx.GuardPublic, Handler: text("")}, "set Route.Method"},
		{"a nil handler is rejected", httpx.Route{Method: "GET", Pattern: "/x", Guard: httpx.GuardPublic}, "nil handler"},
		{"a conflicting pattern is rejected", httpx.Route{Method: "GET", Pattern: "/dup", Guard: httpx.GuardPublic, Handler: text("")}, "conflicts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httpx.NewRouter()
			r.Handle(httpx.Route{Method: "GET", Pattern: "/dup", Guard: httpx.GuardPublic, Handler: text("")})
			msg := catchPanic(func() { r.Handle(tt.route) })
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("panic = %q, want it to mention %q", msg, tt.want)
			}
			if n := len(r.Routes()); n != 1 {
				t.Errorf("rejected route was recorded: %d routes", n)
			}
		})
	}
}

func catchPanic(f func()) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = fmtAny(p)
		}
	}()
	f()
	return ""
}

func fmtAny(p any) string {
	if err, ok := p.(error); ok {
		return err.Error()
	}
	if s, ok := p.(string); ok {
		return s
	}
	return "non-string panic"
}

func TestRouterUseWrapsEachRouteKnowingItsPattern(t *testing.T) {
	r := httpx.NewRouter()
	r.Use(func(rt httpx.Route, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("X-Route", rt.String())
			next.ServeHTTP(w, req)
		})
	})
	r.Handle(httpx.Route{Method: "GET", Pattern: "/clients/{id}", Guard: httpx.GuardAdmin, Handler: text("ok")})

	t.Run("the wrapper sees the pattern, not the path", func(t *testing.T) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", "/clients/7", nil))
		if got := rec.Header().Get("X-Route"); got != "GET /clients/{id}" {
			t.Fatalf("X-Route = %q", got)
		}
	})
	t.Run("Use after a route was registered panics", func(t *testing.T) {
		msg := catchPanic(func() {
			r.Use(func(_ httpx.Route, h http.Handler) http.Handler { return h })
		})
		if !strings.Contains(msg, "after routes") {
			t.Fatalf("panic = %q", msg)
		}
	})
}
