package httpx

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Guard documents who may call a route. It is metadata, not enforcement:
// the capability that owns the route enforces it (a "client" route
// authenticates the OAuth client inside its handler, a "user" route checks
// the session, and so on). Recording it on every Route lets tests enumerate
// the surface and assert, for example, that nothing under /admin is public.
type Guard string

// The guards a Route may carry. Router.Handle rejects any other value, so a
// misspelt guard fails at start-up instead of silently documenting nothing.
const (
	GuardPublic Guard = "public" // anyone, unauthenticated
	GuardClient Guard = "client" // an OAuth client; the handler authenticates it
	GuardUser   Guard = "user"   // a signed-in end user
	GuardAdmin  Guard = "admin"  // an administrator
)

// Valid reports whether g is one of the known guards.
func (g Guard) Valid() bool {
	switch g {
	case GuardPublic, GuardClient, GuardUser, GuardAdmin:
		return true
	}
	return false
}

// Route is one endpoint. Pattern uses Go 1.22+ ServeMux syntax without the
// method (e.g. "/oauth2/token" or "/admin/clients/{id}"); the method goes in
// Method. An empty Method matches every method. By ServeMux rules a "GET"
// route also answers HEAD.
type Route struct {
	Method  string
	Pattern string
	Guard   Guard
	Handler http.Handler
}

// String renders the route the way it is registered with the ServeMux,
// e.g. "GET /oauth2/auth".
func (rt Route) String() string {
	if rt.Method == "" {
		return rt.Pattern
	}
	return rt.Method + " " + rt.Pattern
}

// Mounter is implemented by every capability package that serves HTTP.
type Mounter interface {
	Routes() []Route
}

// RouteMiddleware wraps one route's handler knowing the Route it belongs
// to; it is how per-route concerns such as metrics labelled by the route
// pattern are attached (see Router.Use).
type RouteMiddleware func(rt Route, next http.Handler) http.Handler

// Router wraps an *http.ServeMux and records every Route registered
// through it. The zero value is not usable; call NewRouter.
type Router struct {
	mux *http.ServeMux

	mu     sync.Mutex
	routes []Route
	wraps  []RouteMiddleware
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	return &Router{mux: http.NewServeMux()}
}

// Use adds a RouteMiddleware applied to the handler of every route
// registered afterwards; the first one added is the outermost. It panics if
// routes were already registered, because they would silently miss it.
func (r *Router) Use(mw RouteMiddleware) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.routes) > 0 {
		panic("httpx: Router.Use called after routes were registered")
	}
	r.wraps = append(r.wraps, mw)
}

// Mount registers every route of m.
func (r *Router) Mount(m Mounter) {
	for _, rt := range m.Routes() {
		r.Handle(rt)
	}
}

// Handle registers one route. Like http.ServeMux.Handle it panics on
// programmer errors: a nil handler, an unknown Guard, a method written into
// Pattern instead of Method, an invalid or conflicting pattern.
func (r *Router) Handle(rt Route) {
	if rt.Handler == nil {
		panic(fmt.Sprintf("httpx: route %q has a nil handler", rt))
	}
	if !rt.Guard.Valid() {
		panic(fmt.Sprintf("httpx: route %q has unknown guard %q (want public, client, user or admin)", rt, rt.Guard))
	}
	if strings.ContainsAny(rt.Pattern, " \t") {
		panic(fmt.Sprintf("httpx: route pattern %q must not contain a method or spaces; set Route.Method", rt.Pattern))
	}
	if strings.ContainsAny(rt.Method, " \t") {
		panic(fmt.Sprintf("httpx: route method %q is not a token", rt.Method))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	h := rt.Handler
	for i := len(r.wraps) - 1; i >= 0; i-- {
		h = r.wraps[i](rt, h)
	}
	// ServeMux panics on an invalid or conflicting pattern; record the route
	// only once it is really registered.
	r.mux.Handle(rt.String(), h)
	r.routes = append(r.routes, rt)
}

// Routes returns a copy of every route registered so far, in registration
// order, with the handlers as given (before any RouteMiddleware).
func (r *Router) Routes() []Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.routes)
}

// ServeHTTP dispatches to the matching route. Unknown paths get ServeMux's
// 404; a known path with the wrong method gets 405 with an Allow header.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mux.ServeHTTP(w, req)
}
