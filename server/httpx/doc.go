// Package httpx is the shared HTTP ground every keygate capability package
// mounts on. It owns four things and nothing else:
//
//   - The routing contract: a capability package exposes its endpoints as
//     []Route through the Mounter interface, each Route saying which method,
//     which pattern (Go 1.22+ ServeMux syntax) and which Guard documents who
//     may call it. Router records every Route it registers so tests and
//     operators can enumerate the whole HTTP surface of the server and check,
//     for example, that every "admin" route really is protected.
//
//   - The request middleware every route runs behind: RequestID, ClientIP
//     (with an explicit list of trusted proxies, never a blanket trust of
//     X-Forwarded-For), SecurityHeaders (strict CSP with a per-response
//     nonce, HSTS when TLS is on), BodyLimit, Recover and AccessLog. They are
//     plain func(http.Handler) http.Handler values composed with Chain.
//
//   - The error-returning handler adapter (HandlerFunc, Error, Adapt) so that
//     handlers return an error instead of repeating "log, pick a status,
//     render a body"; the public message and the hidden cause are kept apart
//     so internal details never leak into a response. WriteJSON is the one
//     way API handlers write JSON bodies.
//
//   - NewLogHandler, a slog.Handler wrapper that stamps request_id and
//     client_ip on every record logged with a ...Context method, so log lines
//     written deep inside a capability can be joined with the access log.
//
// The package imports only the standard library and no other package of
// this module, so every other package may depend on it without cycles.
//
// # Recommended order
//
//	h := httpx.Chain(router,
//		httpx.RequestID,
//		httpx.ClientIP(ipCfg),
//		httpx.AccessLog(logger),
//		httpx.SecurityHeaders(secCfg),
//		httpx.Recover(logger),
//		httpx.BodyLimit(1<<20),
//	)
//
// The first middleware in the list is the outermost. The middlewares share
// one per-request record in the context, so the order is forgiving: the
// access log line carries the request id and client IP even when AccessLog
// runs outside RequestID and ClientIP, and it records a 500 for a panic even
// when Recover runs inside it.
//
// # What is deliberately not here
//
// Authentication and authorization (a Guard only documents the intent; the
// capability enforces it), Cache-Control (a handler's choice: token and
// userinfo responses need no-store, static assets do not), CSRF, sessions and
// metrics (see package server/metrics) live elsewhere.
package httpx
