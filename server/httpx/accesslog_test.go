package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/httpx"
)

func decodeLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

var proxies = httpx.ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name    string
		order   func(logger *slog.Logger, h http.Handler) http.Handler
		handler http.HandlerFunc
		status  float64
		bytes   float64
	}{
		{
			name: "one line per request with every field",
			order: func(l *slog.Logger, h http.Handler) http.Handler {
				return httpx.Chain(h, httpx.RequestID, httpx.ClientIP(proxies), httpx.AccessLog(l))
			},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				_, _ = w.Write([]byte("hello"))
			},
			status: 201, bytes: 5,
		},
		{
			name: "the id and client IP are logged even when AccessLog is outermost",
			order: func(l *slog.Logger, h http.Handler) http.Handler {
				return httpx.Chain(h, httpx.AccessLog(l), httpx.RequestID, httpx.ClientIP(proxies))
			},
			handler: func(w http.ResponseWriter, r *http.Request) {},
			status:  200, bytes: 0,
		},
		{
			name: "a panic recovered outside the access log is logged as 500",
			order: func(l *slog.Logger, h http.Handler) http.Handler {
				return httpx.Chain(h, httpx.Recover(slog.New(slog.DiscardHandler)), httpx.RequestID, httpx.ClientIP(proxies), httpx.AccessLog(l))
			},
			handler: func(w http.ResponseWriter, r *http.Request) { panic("boom") },
			status:  500,
		},
		{
			name: "a panic recovered inside the access log is logged with the 500 that was sent",
			order: func(l *slog.Logger, h http.Handler) http.Handler {
				return httpx.Chain(h, httpx.RequestID, httpx.ClientIP(proxies), httpx.AccessLog(l), httpx.Recover(slog.New(slog.DiscardHandler)))
			},
			handler: func(w http.ResponseWriter, r *http.Request) { panic("boom") },
			status:  500, bytes: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			h := tt.order(logger, tt.handler)
			req := httptest.NewRequest("GET", "/oauth2/auth?code=SECRETCODE&state=SECRETSTATE&access_token=SECRETTOKEN", nil)
			req.RemoteAddr = "10.0.0.1:1234"
			req.Header.Set("X-Forwarded-For", "198.51.100.7")
			req.Header.Set("X-Request-Id", "rid-1")
			req.Header.Set("User-Agent", "test-agent/1.0")
			h.ServeHTTP(httptest.NewRecorder(), req)

			if strings.Contains(buf.String(), "SECRET") || strings.Contains(buf.String(), "code=") {
				t.Fatalf("the query string reached the log: %s", buf.String())
			}
			lines := decodeLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1: %s", len(lines), buf.String())
			}
			l := lines[0]
			want := map[string]any{
				"msg": "http request", "method": "GET", "path": "/oauth2/auth", "status": tt.status,
				"request_id": "rid-1", "client_ip": "198.51.100.7", "user_agent": "test-agent/1.0",
			}
			if tt.bytes >= 0 {
				want["bytes"] = tt.bytes
			}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("%s = %v, want %v", k, l[k], v)
				}
			}
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Errorf("duration_ms missing: %v", l)
			}
		})
	}
}

func TestResponseWriterKeepsOptionalInterfaces(t *testing.T) {
	t.Run("http.Flusher survives the access log wrapper", func(t *testing.T) {
		h := httpx.AccessLog(slog.New(slog.DiscardHandler))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, ok := w.(http.Flusher)
			if !ok {
				t.Fatal("not an http.Flusher")
			}
			f.Flush()
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if !rec.Flushed {
			t.Fatal("flush did not reach the recorder")
		}
	})
	t.Run("http.ResponseController reaches the underlying writer", func(t *testing.T) {
		srv := httptest.NewServer(httpx.AccessLog(slog.New(slog.DiscardHandler))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("SetWriteDeadline: %v", err)
			}
			_, _ = w.Write([]byte("x"))
			if err := rc.Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		})))
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	})
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(httpx.NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "inside")
		logger.InfoContext(r.Context(), "explicit", "request_id", "mine")
		logger.Info("no context")
	}), httpx.RequestID, httpx.ClientIP(httpx.ClientIPConfig{}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Request-Id", "rid-9")
	req.RemoteAddr = "192.0.2.4:999"
	h.ServeHTTP(httptest.NewRecorder(), req)
	logger.InfoContext(context.Background(), "outside")

	lines := decodeLines(t, &buf)
	tests := []struct {
		name   string
		line   int
		wantID any
		wantIP any
	}{
		{"a record logged with the request context gets request_id and client_ip", 0, "rid-9", "192.0.2.4"},
		{"an attribute already on the record is not duplicated", 1, "mine", "192.0.2.4"},
		{"a record logged without a context gets nothing", 2, nil, nil},
		{"a context without request data adds nothing", 3, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := lines[tt.line]
			if l["request_id"] != tt.wantID || l["client_ip"] != tt.wantIP {
				t.Fatalf("line %v", l)
			}
		})
	}
	if n := strings.Count(buf.String(), `"request_id"`); n != 2 {
		t.Errorf("request_id appears %d times, want 2 (no duplicates): %s", n, buf.String())
	}
}
