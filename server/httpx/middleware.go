package httpx

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
)

// Chain wraps h in mws. The first middleware is the outermost: it sees the
// request first and the response last.
func Chain(h http.Handler, mws ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// HeaderRequestID is the header RequestID reads and echoes.
const HeaderRequestID = "X-Request-Id"

const maxRequestIDLen = 64

// RequestID gives every request an id, available through RequestIDFrom and
// echoed in the X-Request-Id response header. A well-formed incoming
// X-Request-Id (1 to 64 characters of [A-Za-z0-9-_.]) is kept so an id set
// by a load balancer follows the request; anything else is replaced by a
// fresh random id. The id only correlates log lines: nothing may trust it.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, info := withInfo(r)
		if info.id == "" {
			if in := r.Header.Get(HeaderRequestID); validRequestID(in) {
				info.id = in
			} else {
				info.id = rand.Text()
			}
		}
		w.Header().Set(HeaderRequestID, info.id)
		next.ServeHTTP(w, r)
	})
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// ClientIPConfig lists the proxies whose X-Forwarded-For entries are
// believed. With no TrustedProxies the header is ignored entirely.
type ClientIPConfig struct {
	TrustedProxies []netip.Prefix
}

// ClientIP resolves the client address and stores it for ClientIPFrom.
//
// The client is the peer (RemoteAddr) unless the peer is a trusted proxy. In
// that case X-Forwarded-For is walked from the right (the entry the nearest
// proxy appended) leftwards, skipping trusted proxies; the first untrusted
// address is the client. Entries left of it were written by the client
// itself and are never looked at. When an entry is malformed the walk stops
// and the last trusted hop is taken as the client: it is the furthest point
// whose view can be believed, and garbage is never parsed into an address.
// If every entry is a trusted proxy the leftmost one is the client.
//
// IPv4-mapped IPv6 addresses are unmapped, so ::ffff:192.0.2.1 is stored
// and matched as 192.0.2.1.
func ClientIP(cfg ClientIPConfig) func(http.Handler) http.Handler {
	trusted := make([]netip.Prefix, 0, len(cfg.TrustedProxies))
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			continue
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		trusted = append(trusted, p.Masked())
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, info := withInfo(r)
			info.ip = resolveClientIP(r, trusted)
			next.ServeHTTP(w, r)
		})
	}
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.WithZone("")
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses one address as written in RemoteAddr or an
// X-Forwarded-For entry: a bare IP or IP:port ([IPv6]:port). portFirst
// says which form to try first (RemoteAddr normally has a port, an
// X-Forwarded-For entry normally not), sparing the failed parse's error
// allocation on the common path.
func parseHop(s string, portFirst bool) (netip.Addr, bool) {
	if portFirst {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().Unmap(), true
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if !portFirst {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func resolveClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, ok := parseHop(r.RemoteAddr, true)
	if !ok {
		return netip.Addr{}
	}
	if len(trusted) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	client := peer // the last trusted hop seen so far
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			var entry string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				entry, v = v, ""
			}
			a, ok := parseHop(strings.TrimSpace(entry), false)
			if !ok {
				return client
			}
			if !isTrusted(a, trusted) {
				return a
			}
			client = a
			if v == "" {
				break
			}
		}
	}
	return client
}

// SecurityConfig configures SecurityHeaders.
type SecurityConfig struct {
	// HSTS sends Strict-Transport-Security. Turn it on only when the server
	// is reached over TLS (directly or through a TLS-terminating proxy).
	HSTS bool
}

// The CSP is split around the nonce so building it is one concatenation.
//
// form-action is deliberately absent. Chrome enforces form-action not only on
// the form's own target but on every redirect that follows the POST, and
// our login and consent forms end in a redirect to the client's registered
// redirect_uri on another origin. form-action 'self' would therefore break
// every sign-in; listing redirect URIs per response is not worth it because
// the forms post only to our own origin anyway. With default-src 'none'
// in place, form-action does not fall back to it (it is not a fetch
// directive), so leaving it out means "unrestricted", as intended.
const (
	cspPrefix = "default-src 'none'; script-src 'self' 'nonce-"
	cspSuffix = "'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)

// SecurityHeaders sets the security headers every response carries:
// a strict Content-Security-Policy with a fresh nonce per response (see
// NonceFrom), X-Content-Type-Options, Referrer-Policy, X-Frame-Options,
// Cross-Origin-Opener-Policy and, when cfg.HSTS is set,
// Strict-Transport-Security. A handler may still override any of them.
// Cache-Control is left to handlers.
func SecurityHeaders(cfg SecurityConfig) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, info := withInfo(r)
			if info.nonce == "" {
				info.nonce = rand.Text() // 128 bits, base32: valid in a CSP nonce-source
			}
			// Equivalent to six Header.Set calls, but the one-element value
			// slices share one per-response array instead of costing an
			// allocation each. Each slice is capped at length 1, so an
			// Add by a handler reallocates rather than overwriting a
			// neighbour. The keys are already in canonical form.
			v := &[6]string{cspPrefix + info.nonce + cspSuffix, "nosniff", "no-referrer", "DENY", "same-origin", "max-age=31536000"}
			h := w.Header()
			h["Content-Security-Policy"] = v[0:1:1]
			h["X-Content-Type-Options"] = v[1:2:2]
			h["Referrer-Policy"] = v[2:3:3]
			h["X-Frame-Options"] = v[3:4:4]
			h["Cross-Origin-Opener-Policy"] = v[4:5:5]
			if cfg.HSTS {
				h["Strict-Transport-Security"] = v[5:6:6]
			}
			next.ServeHTTP(w, r)
		})
	}
}

// BodyLimit caps request bodies at n bytes. A request whose Content-Length
// already exceeds n is answered 413 without calling next; otherwise the body
// is wrapped in http.MaxBytesReader, so reading past n fails with
// *http.MaxBytesError (which Adapt turns into a 413) and the connection is
// closed after the response. n must not be negative.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	if n < 0 {
		panic("httpx: BodyLimit with a negative limit")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				w.Header().Set("Connection", "close")
				http.Error(w, "Request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			r2 := *r // as http.MaxBytesHandler does: never mutate the caller's request
			r2.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, &r2)
		})
	}
}

// Recover turns a panic in next into a 500 response with a generic body
// carrying the request id, and logs the panic value and stack at Error level
// with the method, path and request id — never the query string or body.
// http.ErrAbortHandler is re-panicked so net/http aborts the response as
// documented. If the response had already started, only the log is written.
// A nil logger means slog.Default().
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Reuse the status-recording writer AccessLog installed, if
			// any, to know whether the response has started.
			rw := findResponseWriter(w)
			wrapped := rw != nil
			if !wrapped {
				rw = newResponseWriter(w)
			}
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
				l := logger
				if l == nil {
					l = slog.Default()
				}
				id := RequestIDFrom(r.Context())
				l.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
					slog.String("panic", fmt.Sprint(p)),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("request_id", id),
					slog.String("stack", string(debug.Stack())),
				)
				if rw.wroteHeader {
					return
				}
				writeInternalError(rw, id)
			}()
			if wrapped {
				next.ServeHTTP(w, r)
			} else {
				next.ServeHTTP(rw, r)
			}
		})
	}
}

// writeInternalError writes the generic 500 body, dropping headers the
// failed handler may have set for a response that will not happen.
func writeInternalError(w http.ResponseWriter, requestID string) {
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Disposition",
		"Location", "Set-Cookie", "ETag", "Last-Modified", "Trailer"} {
		h.Del(k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusInternalServerError)
	body := "Something went wrong.\n"
	if requestID != "" {
		body += "Request ID: " + requestID + "\n"
	}
	_, _ = w.Write([]byte(body))
}
