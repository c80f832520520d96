// Package metrics owns keygate's Prometheus instrumentation: the HTTP
// request counters and latency histogram every route is wrapped with, the
// two business counters (sign-ins by result, tokens issued by grant type)
// and the Go runtime and process collectors.
//
// Everything lives on a private prometheus.Registry created by New, never on
// the global default registry, so that tests can build as many independent
// Metrics as they like and nothing imported by accident (a library that
// registers on the default registry at init) ends up in keygate's exposition.
//
// HTTP metrics are labelled by the route pattern given to Middleware (e.g.
// "/admin/clients/{id}"), never by the raw request path, and the method label
// is folded to a fixed set, so the number of series stays bounded whatever
// clients send. The exposition handler returned by Handler carries no
// authentication of its own: serve it on an internal listener or behind an
// admin guard.
//
// The package does not import the rest of keygate; callers report events
// through SignIn and TokenIssued.
package metrics
