package httpx_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate/server/httpx"
)

// BenchmarkChain measures the full recommended middleware chain around a
// handler that writes a two-byte body, logging to a JSON handler that
// discards its output.
func BenchmarkChain(b *testing.B) {
	logger := slog.New(httpx.NewLogHandler(slog.NewJSONHandler(io.Discard, nil)))
	router := httpx.NewRouter()
	router.Handle(httpx.Route{Method: "GET", Pattern: "/ping", Guard: httpx.GuardPublic,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })})
	h := httpx.Chain(router,
		httpx.RequestID,
		httpx.ClientIP(proxies),
		httpx.AccessLog(logger),
		httpx.SecurityHeaders(httpx.SecurityConfig{HSTS: true}),
		httpx.Recover(logger),
		httpx.BodyLimit(1<<20),
	)
	req := httptest.NewRequest("GET", "/ping?code=x", nil)
	req.RemoteAddr = "10.0.0.1:1234"
	req.Header.Set("X-Forwarded-For", "198.51.100.7, 10.0.0.2")
	req.Header.Set("User-Agent", "bench")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkWriteJSON writes an introspection-sized answer.
func BenchmarkWriteJSON(b *testing.B) {
	v := struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
		Exp      int64  `json:"exp"`
		Issuer   string `json:"iss"`
	}{true, "c_xDZHXJn66P6aVpkGVvTO7A", 1796593186, "http://localhost:8080"}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		httpx.WriteJSON(w, http.StatusOK, v)
	}
}
