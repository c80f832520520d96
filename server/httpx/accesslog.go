package httpx

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// responseWriter records the status and body size of a response. It keeps
// optional interfaces reachable: Flush and ReadFrom are forwarded, and
// Unwrap lets http.ResponseController reach the underlying writer for
// Hijack, SetReadDeadline, EnableFullDuplex and the like.
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func newResponseWriter(w http.ResponseWriter) *responseWriter {
	return &responseWriter{ResponseWriter: w}
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		// 1xx responses other than 101 are informational: the final
		// status is still to come.
		if code >= 200 || code == http.StatusSwitchingProtocols {
			w.status = code
			w.wroteHeader = true
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.status = http.StatusOK
		w.wroteHeader = true
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the sendfile fast path of the underlying writer.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.status = http.StatusOK
		w.wroteHeader = true
	}
	n, err := io.Copy(w.ResponseWriter, src)
	w.bytes += n
	return n, err
}

// Flush implements http.Flusher for code that type-asserts instead of
// using http.ResponseController.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.status = http.StatusOK
		w.wroteHeader = true
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker for code that type-asserts; a hijacked
// connection is logged with status 101 if nothing was written before.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && !w.wroteHeader {
		w.status = http.StatusSwitchingProtocols
		w.wroteHeader = true
	}
	return c, rw, err
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// findResponseWriter returns the *responseWriter inside w, following
// Unwrap chains, or nil.
func findResponseWriter(w http.ResponseWriter) *responseWriter {
	for range 16 {
		if rw, ok := w.(*responseWriter); ok {
			return rw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

const maxUserAgentLen = 256

// AccessLog writes one Info record per request with the message
// "http request" and the attributes method, path, status, bytes,
// duration_ms, request_id, client_ip and user_agent.
//
// The query string is never logged: on an identity provider it carries
// authorization codes, state, login hints and sometimes tokens. Only
// r.URL.Path is. A request that panics is logged with status 500 (unless a
// status was already sent) before the panic travels on. A nil logger means
// slog.Default().
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			r, info := withInfo(r)
			rw := newResponseWriter(w)
			completed := false
			defer func() {
				status := rw.status
				if !rw.wroteHeader {
					status = http.StatusOK // what net/http sends for an empty response
					if !completed {
						status = http.StatusInternalServerError
					}
				}
				l := logger
				if l == nil {
					l = slog.Default()
				}
				// Under --log-level warn the line is dropped anyway: skip
				// building it (measurable at tens of thousands of req/s).
				if !l.Enabled(r.Context(), slog.LevelInfo) {
					return
				}
				ua := r.UserAgent()
				if len(ua) > maxUserAgentLen {
					ua = ua[:maxUserAgentLen]
				}
				clientIP := ""
				if info.ip.IsValid() {
					clientIP = info.ip.String()
				}
				l.LogAttrs(r.Context(), slog.LevelInfo, "http request",
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Int64("bytes", rw.bytes),
					slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
					slog.String("request_id", info.id),
					slog.String("client_ip", clientIP),
					slog.String("user_agent", ua),
				)
			}()
			next.ServeHTTP(rw, r)
			completed = true
		})
	}
}
